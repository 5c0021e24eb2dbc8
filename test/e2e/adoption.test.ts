// Adopting accounts that already exist (issue 15, api.md "Adopting accounts"), on the real API
// server, slapd and the SCIM test server, the operator a separate process:
// - hand-made accounts that match Employees are proposed (Unlinked), not written to, until the
//   Employee is annotated roster.dev/adopt or the Connector's mode is Automatic; unmatched ones
//   stay orphans, untouched (entryCSN / the SCIM server's request log);
// - ambiguous matches and accounts that carry another key are never linked;
// - protected accounts keep their groups and attributes through a policy edit, drift and a leaver;
// - adopting many accounts whose state differs from policy goes through the mass-change brake.
import { afterAll, describe, expect, inject, it } from "vitest";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { Attribute, Change, type Client } from "ldapts";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector, Employee } from "../../src/api/types.ts";
import { startScimServer } from "../harness/scim.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, getRoster, listRoster } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import { COUNTS_WAIT_MS, counterOrZero, employeeQueueIdle, startOperator } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const ADOPT = "roster.dev/adopt";
const NO_BRAKE = { maxDeprovisionsPerHour: 100000, maxDeprovisionPercent: 100 };
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const pad = (i: number) => String(i).padStart(2, "0");

async function setUp(prefix: string, connectorSpec: Record<string, unknown>) {
  const s = await scenario(info, prefix, connectorSpec);
  cleanups.push(() => s.close());
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  return s;
}

async function operatorFor(s: Scenario) {
  const operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  cleanups.push(() => operator.stop());
  return operator;
}

/** A person entry made by hand (no employeeNumber), as a directory has thousands of. */
async function handMade(client: Client, s: Scenario, uid: string, extra: Record<string, string> = {}) {
  const dn = `uid=${uid},${s.usersDN}`;
  await client.add(dn, {
    objectClass: ["inetOrgPerson"],
    uid,
    cn: `Hand ${uid}`,
    sn: "Made",
    mail: `${uid}@example.com`,
    title: "Set by hand",
    ...extra,
  });
  return dn;
}

/** entryCSN of each DN: it changes with every write to the entry. */
async function csns(s: Scenario, dns: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const dn of dns) {
    const { searchEntries } = await s.ldap.client.search(dn, { scope: "base", attributes: ["entryCSN"] });
    out[dn] = attr(searchEntries[0], "entryCSN")[0]!;
  }
  return out;
}

const employees = (s: Scenario) => listRoster<Employee>(s.kube, s.namespace, "Employee");

const accountIn = (e: Employee, connector: string) =>
  e.status?.accounts?.find((a) => a.connector === connector);
const current = (e: Employee) => e.status?.observedGeneration === e.metadata.generation;

/** Waits until `count` Employees named by `names` have their account in `state`. */
async function inState(s: Scenario, names: string[], state: string, timeoutMs = 60_000): Promise<Employee[]> {
  let found: Employee[] = [];
  await waitFor(
    async () => {
      const all = await employees(s);
      found = all.filter(
        (e) => names.includes(e.metadata.name) && current(e) && accountIn(e, s.connector)?.state === state,
      );
      return found.length === names.length;
    },
    timeoutMs,
    () => `only ${found.length} of ${names.length} accounts are ${state}`,
    250,
  );
  return found;
}

async function annotate(s: Scenario, name: string, annotations: Record<string, string | null>) {
  await s.kube.custom.patchNamespacedCustomObject(
    {
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: "employees",
      name,
      body: { metadata: { annotations } },
    },
    mergePatch,
  );
}

async function patchConnector(s: Scenario, name: string, spec: Record<string, unknown>) {
  await s.kube.custom.patchNamespacedCustomObject(
    {
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: "connectors",
      name,
      body: { spec },
    },
    mergePatch,
  );
}

const connector = async (s: Scenario, name = s.connector) =>
  (await getRoster(s.kube, s.namespace, "Connector", name)) as unknown as Connector;

type GroupRuleStatus = {
  unmanagedMembers?: { connector: string; action: string; count: number; members: string[] }[];
};
/** Reads a GroupRule; `last` keeps the status last read, for a wait's failure message. */
function groupRule(s: Scenario, name: string) {
  const reader = {
    last: undefined as GroupRuleStatus | undefined,
    async read() {
      const found = (await getRoster(s.kube, s.namespace, "GroupRule", name)) as { status?: GroupRuleStatus };
      reader.last = found.status;
      return found;
    },
  };
  return reader;
}

describe("adopting accounts that already exist", () => {
  it(
    "LDAP: 50 hand-made accounts, 40 matched: proposed, 20 linked by annotation, the rest by Automatic, 10 untouched",
    { timeout: 240_000 },
    async () => {
      const s = await setUp("adopt-ldap", {
        adoption: { match: "Username", mode: "Propose" },
        safety: NO_BRAKE,
        drift: { resyncInterval: "3s" },
      });
      const hand = Array.from({ length: 50 }, (_, i) => `hand${pad(i)}`);
      const dns = [];
      for (const uid of hand) dns.push(await handMade(s.ldap.client, s, uid));
      const untouchedAtStart = await csns(s, dns);
      const matched = hand.slice(0, 40);
      const fresh = Array.from({ length: 10 }, (_, i) => `new${pad(i)}`);
      for (const [i, name] of [...matched, ...fresh].entries())
        await s.apply("Employee", name, person(`AD-${pad(i)}`, name));
      const operator = await operatorFor(s);

      const proposed = await inState(s, matched, "Unlinked");
      for (const e of proposed) {
        const account = accountIn(e, s.connector)!;
        expect(account.id).toBe(`uid=${e.spec.username},${s.usersDN}`);
        expect(account.message).toContain(
          `kubectl annotate employee ${e.metadata.name} ${ADOPT}=${s.connector}`,
        );
        expect(readyCondition(e)).toMatchObject({ status: "False", reason: "Unlinked" });
      }
      await inState(s, fresh, "Active");
      await waitFor(
        async () => (await connector(s)).status?.adoptionCandidates === 40,
        COUNTS_WAIT_MS,
        () => "the Connector does not count 40 adoption candidates",
      );
      // Nothing was written to any of the 50.
      expect(await csns(s, dns)).toEqual(untouchedAtStart);

      // Review in Git, then annotate: exactly those 20 are linked.
      const approved = matched.slice(0, 20);
      for (const name of approved) await annotate(s, name, { [ADOPT]: s.connector });
      await inState(s, approved, "Active");
      for (const [i, uid] of approved.entries()) {
        const entry = await s.ldap.person(s.usersDN, `AD-${pad(i)}`);
        expect(entry?.dn).toBe(`uid=${uid},${s.usersDN}`);
        // Corrected to what the Employee says (no title), mail as it was.
        expect(attr(entry, "title")).toEqual([]);
        expect(attr(entry, "mail")).toEqual([`${uid}@example.com`]);
        expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["staff"]);
      }
      const others = dns.slice(20);
      expect(await csns(s, others)).toEqual(
        Object.fromEntries(others.map((dn) => [dn, untouchedAtStart[dn]])),
      );

      // Automatic links the rest; the 10 without an Employee stay orphans, untouched.
      await patchConnector(s, s.connector, { adoption: { match: "Username", mode: "Automatic" } });
      await inState(s, matched, "Active");
      const unmatched = dns.slice(40);
      expect(await csns(s, unmatched)).toEqual(
        Object.fromEntries(unmatched.map((dn) => [dn, untouchedAtStart[dn]])),
      );
      await waitFor(
        async () => {
          const c = await connector(s);
          return c.status?.orphanAccounts?.count === 10 && c.status?.adoptionCandidates === 0;
        },
        COUNTS_WAIT_MS,
        () => `the Connector does not show 10 orphans and no candidates:\n${operator.tail(10)}`,
      );
    },
  );

  it("ambiguous matches and accounts with another key are never linked", { timeout: 120_000 }, async () => {
    const s = await setUp("adopt-ambiguous", {
      adoption: { match: "Email", mode: "Automatic" },
      safety: NO_BRAKE,
    });
    const twins = [
      await handMade(s.ldap.client, s, "twin-a", { mail: "shared@example.com" }),
      await handMade(s.ldap.client, s, "twin-b", { mail: "shared@example.com" }),
    ];
    const keyed = await handMade(s.ldap.client, s, "keyed", { employeeNumber: "SOMEONE-ELSE" });
    const before = await csns(s, [...twins, keyed]);
    await s.apply("Employee", "shared", person("AMB-1", "shared", { email: "shared@example.com" }));
    await s.apply("Employee", "keyed", person("AMB-2", "keyed", { email: "keyed-new@example.com" }));
    await operatorFor(s);

    const shared = await s.until(
      "shared",
      "Conflict",
      (e) => accountIn(e, s.connector)?.state === "Conflict",
    );
    expect(accountIn(shared, s.connector)!.message).toMatch(
      /2 existing accounts match by email .*twin-a.*twin-b/,
    );
    const other = await s.until("keyed", "Conflict", (e) => accountIn(e, s.connector)?.state === "Conflict");
    expect(accountIn(other, s.connector)!.message).toContain("not owned by Roster");
    expect(await csns(s, [...twins, keyed])).toEqual(before);
    expect(await s.ldap.person(s.usersDN, "AMB-1")).toBeUndefined();
  });

  it(
    "a protected account keeps its groups and attributes through a policy edit, drift and a leaver",
    { timeout: 150_000 },
    async () => {
      const s = await setUp("protect", {
        protected: { usernames: ["root-admin"] },
        drift: { resyncInterval: "2s" },
        safety: NO_BRAKE,
      });
      await s.apply("AccessPolicy", "ops", {
        match: [{ key: "department", operator: "In", values: ["Ops"] }],
        grants: [{ connector: s.connector, groups: ["ops"] }],
      });
      // The administrator's account is Roster's (it carries the key) and in the managed group,
      // made before Roster ran; the group too.
      const dn = await handMade(s.ldap.client, s, "root-admin", { employeeNumber: "PR-1", title: "Root" });
      await s.ldap.client.add(`cn=ops,${s.groupsDN}`, {
        objectClass: ["groupOfNames"],
        cn: "ops",
        member: [dn],
      });
      await s.apply("Employee", "root-admin", person("PR-1", "root-admin", { department: "Ops" }));
      await s.apply("Employee", "colleague", person("PR-2", "colleague", { department: "Ops" }));
      const operator = await operatorFor(s);
      await s.until("colleague", "Active in ops", (e) =>
        (accountIn(e, s.connector)?.groups ?? []).includes("ops"),
      );
      await s.until("root-admin", "Protected", (e) => accountIn(e, s.connector)?.state === "Protected");
      const snapshot = async () => ({
        csn: (await csns(s, [dn]))[dn],
        groups: await s.ldap.groupsOf(s.groupsDN, dn),
      });
      const start = await snapshot();
      expect(start.groups).toEqual(["ops"]);
      const scans = async () =>
        counterOrZero(await operator.metrics(), "controller_runtime_reconcile_total", { controller: "scan" });

      // A policy edit that takes ops away from everyone: the colleague loses it, the admin does not.
      await s.apply("AccessPolicy", "ops", {
        match: [{ key: "department", operator: "In", values: ["Nobody"] }],
        grants: [{ connector: s.connector, groups: ["ops"] }],
      });
      await s.until(
        "colleague",
        "out of ops",
        (e) => !(accountIn(e, s.connector)?.groups ?? []).includes("ops"),
      );
      // Drift: a hand edit of the admin's entry is not put back (Correct is the default policy).
      await s.ldap.client.modify(
        dn,
        new Change({
          operation: "replace",
          modification: new Attribute({ type: "title", values: ["Root, edited"] }),
        }),
      );
      const edited = await snapshot();
      // A leaver: the admin's Employee is terminated.
      await s.apply(
        "Employee",
        "root-admin",
        person("PR-1", "root-admin", { department: "Ops", employmentStatus: "Terminated" }),
      );
      const admin = await s.until(
        "root-admin",
        "Protected after leaving",
        (e) => accountIn(e, s.connector)?.state === "Protected",
      );
      expect(accountIn(admin, s.connector)!.message).toContain("username root-admin is protected");
      // Full scans compare it (resync every 2 s): two more, and nothing was corrected.
      const seen = await scans();
      await waitFor(
        async () => (await scans()) >= seen + 2,
        30_000,
        () => "no full scan ran",
      );
      await employeeQueueIdle(operator);
      expect(await snapshot()).toEqual(edited);
      expect(edited.groups).toEqual(["ops"]);
      expect(attr(await s.ldap.person(s.usersDN, "PR-1"), "pwdAccountLockedTime")).toEqual([]);
    },
  );

  it(
    "adopting 100 accounts whose state differs from policy is held by a brake of 20",
    { timeout: 240_000 },
    async () => {
      const s = await setUp("adopt-brake", {
        adoption: { match: "Username", mode: "Automatic" },
        safety: { maxDeprovisionsPerHour: 20, maxDeprovisionPercent: 100 },
      });
      const names = Array.from({ length: 100 }, (_, i) => `bulk${String(i).padStart(3, "0")}`);
      const dns = [];
      for (const uid of names) dns.push(await handMade(s.ldap.client, s, uid));
      const before = await csns(s, dns);
      for (const [i, name] of names.entries()) await s.apply("Employee", name, person(`BK-${i}`, name));
      await operatorFor(s);

      let linked: Employee[] = [];
      let held: Employee[] = [];
      await waitFor(
        async () => {
          const all = (await employees(s)).filter(current);
          linked = all.filter((e) => accountIn(e, s.connector)?.state === "Active");
          held = all.filter((e) => accountIn(e, s.connector)?.state === "Held");
          return linked.length === 20 && held.length === 80;
        },
        120_000,
        () => `${linked.length} linked, ${held.length} held (want 20 and 80)`,
        500,
      );
      expect((await connector(s)).status?.heldDeprovisions).toBe(80);
      const after = await csns(s, dns);
      const written = dns.filter((dn) => after[dn] !== before[dn]);
      expect(written.sort()).toEqual(linked.map((e) => `uid=${e.spec.username},${s.usersDN}`).sort());
      for (const e of held) expect(accountIn(e, s.connector)!.message).toContain("linking this account held");
    },
  );

  it(
    "SCIM: hand-made users are proposed, linked by annotation, the unmatched one untouched",
    { timeout: 120_000 },
    async () => {
      const s = await setUp("adopt-scim", {});
      const scim = await startScimServer();
      cleanups.push(() => scim.stop());
      const auth = { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" };
      const ids: Record<string, string> = {};
      for (const userName of ["sam", "sue", "sid", "lone"]) {
        const res = await fetch(`${scim.baseURL}/Users`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({
            schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
            userName,
            name: { givenName: userName, familyName: "Hand" },
            emails: [{ value: `${userName}@example.com`, primary: true }],
            title: "Set by hand",
          }),
        });
        expect(res.status).toBe(201);
        ids[userName] = ((await res.json()) as { id: string }).id;
      }
      await s.kube.core.createNamespacedSecret({
        namespace: s.namespace,
        body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
      });
      await createRoster(s.kube, s.namespace, {
        apiVersion: API_VERSION,
        kind: "Connector",
        metadata: { name: "wiki" },
        spec: {
          scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" } },
          adoption: { match: "Email", mode: "Propose" },
          safety: NO_BRAKE,
        },
      });
      await s.apply("AccessPolicy", "everyone", { grants: [{ connector: "wiki", groups: [] }] });
      for (const [i, name] of ["sam", "sue", "sid", "newbie"].entries())
        await s.apply("Employee", name, person(`SC-${i}`, name));
      const writesTo = (id: string) =>
        scim.requests.filter((r) => r.method !== "GET" && r.path.includes(id)).length;
      await operatorFor(s);

      const wiki = { ...s, connector: "wiki" } as Scenario;
      await inState(wiki, ["sam", "sue", "sid"], "Unlinked");
      await inState(wiki, ["newbie"], "Active");
      for (const name of ["sam", "sue", "sid", "lone"]) expect(writesTo(ids[name]!)).toBe(0);

      await annotate(s, "sam", { [ADOPT]: "wiki" });
      const [sam] = await inState(wiki, ["sam"], "Active");
      expect(accountIn(sam!, "wiki")!.id).toBe(ids.sam);
      const stored = scim.storage.users.get(ids.sam!)!;
      expect(stored.externalId).toBe("SC-0");
      expect(stored.userName).toBe("sam");
      for (const name of ["sue", "sid", "lone"]) expect(writesTo(ids[name]!)).toBe(0);
      expect(scim.storage.users.get(ids.sue!)!.externalId).toBeUndefined();
    },
  );
});

describe("an existing group with members added by hand", () => {
  it(
    "an Authoritative GroupRule shows them in its status and removes them through the brake; protected and Additive ones stay",
    { timeout: 150_000 },
    async () => {
      const s = await setUp("unmanaged", {
        protected: { usernames: ["admin"] },
        drift: { resyncInterval: "2s" },
        safety: { maxDeprovisionsPerHour: 2, maxDeprovisionPercent: 100 },
      });
      const admin = await handMade(s.ldap.client, s, "admin");
      const hand = [await handMade(s.ldap.client, s, "h1"), await handMade(s.ldap.client, s, "h2")];
      hand.push(await handMade(s.ldap.client, s, "h3"));
      await s.ldap.client.add(`cn=devs,${s.groupsDN}`, {
        objectClass: ["groupOfNames"],
        cn: "devs",
        member: [admin, ...hand],
      });
      // staff is the policy's group (setUp): its hand-added member is only shown, never removed.
      await s.ldap.client.add(`cn=staff,${s.groupsDN}`, {
        objectClass: ["groupOfNames"],
        cn: "staff",
        member: [hand[0]!],
      });
      await s.apply("GroupRule", "devs", {
        group: "devs",
        connectors: [s.connector],
        match: [{ key: "department", operator: "In", values: ["Engineering"] }],
      });
      await s.apply("Employee", "ada", person("UM-1", "ada", { department: "Engineering" }));
      const before = await csns(s, [admin, ...hand]);
      const operator = await operatorFor(s);
      const devsRule = groupRule(s, "devs");
      const rule = () => devsRule.read();

      // Two an hour: two of the three are removed, the third is held for approval.
      await waitFor(
        async () => (await connector(s)).status?.heldDeprovisions === 1,
        60_000,
        () => `the brake does not hold the third removal:\n${operator.tail(20)}`,
        500,
      );
      const adaDN = (await s.ldap.person(s.usersDN, "UM-1"))!.dn;
      const members = (await s.ldap.members(s.groupsDN, "devs")).map((m) => m.toLowerCase());
      expect(members).toContain(adaDN.toLowerCase());
      expect(members).toContain(admin.toLowerCase());
      const left = hand.filter((dn) => members.includes(dn.toLowerCase()));
      expect(left).toHaveLength(1);
      const leftUid = left[0]!.split(",")[0]!.slice(4);
      await waitFor(
        async () => (await rule()).status?.unmanagedMembers?.[0]?.count === 1,
        30_000,
        () => `GroupRule status: ${JSON.stringify(devsRule.last)}`,
      );
      expect((await rule()).status?.unmanagedMembers).toEqual([
        { connector: s.connector, action: "Remove", count: 1, members: [leftUid] },
      ]);
      expect((await connector(s)).status?.unmanagedMembers).toEqual([
        { group: "devs", action: "Remove", count: 1, members: [leftUid] },
        { group: "staff", action: "Keep", count: 1, members: ["h1"] },
      ]);
      const removedEvents = (
        await s.eventsUntil(s.connector, "an UnmanagedMembersRemoved Event", (events) =>
          events.some((e) => e.reason === "UnmanagedMembersRemoved"),
        )
      ).filter((e) => e.reason === "UnmanagedMembersRemoved");
      expect(removedEvents.map((e) => e.message).join("\n")).toContain("GroupRule/devs is Authoritative");

      // The exact approval removes the held one; the group is then as the rule says, plus the
      // protected administrator. No person entry was written to.
      await s.kube.custom.patchNamespacedCustomObject(
        {
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "connectors",
          name: s.connector,
          body: { metadata: { annotations: { "roster.dev/approve-deprovisioning": "1" } } },
        },
        mergePatch,
      );
      let devs: string[] = [];
      await waitFor(
        async () => (devs = await s.ldap.members(s.groupsDN, "devs")).length === 2,
        60_000,
        () => `devs still has ${devs.join("; ")}:\n${operator.tail(20)}`,
        500,
      );
      await waitFor(
        async () => (await rule()).status?.unmanagedMembers === undefined,
        30_000,
        () => `GroupRule status: ${JSON.stringify(devsRule.last)}`,
      );
      expect(await s.ldap.members(s.groupsDN, "staff")).toContain(hand[0]);
      expect(await csns(s, [admin, ...hand])).toEqual(before);

      // Additive: a member added by hand now is shown and kept.
      await s.apply("GroupRule", "devs", {
        group: "devs",
        connectors: [s.connector],
        membership: "Additive",
        match: [{ key: "department", operator: "In", values: ["Engineering"] }],
      });
      await s.ldap.client.modify(
        `cn=devs,${s.groupsDN}`,
        new Change({ operation: "add", modification: new Attribute({ type: "member", values: [hand[1]!] }) }),
      );
      await waitFor(
        async () => (await rule()).status?.unmanagedMembers?.[0]?.action === "Keep",
        30_000,
        () => `GroupRule status: ${JSON.stringify(devsRule.last)}`,
      );
      const scans = async () =>
        counterOrZero(await operator.metrics(), "controller_runtime_reconcile_total", { controller: "scan" });
      const seen = await scans();
      await waitFor(
        async () => (await scans()) >= seen + 2,
        30_000,
        () => "no full scan ran",
      );
      expect(await s.ldap.members(s.groupsDN, "devs")).toContain(hand[1]);
      expect((await rule()).status?.unmanagedMembers).toEqual([
        { connector: s.connector, action: "Keep", count: 1, members: ["h2"] },
      ]);
      expect((await connector(s)).status?.heldDeprovisions).toBe(0);
    },
  );

  it(
    "SCIM: members without externalId are listed, removed through the brake, not written to; the protected admin stays",
    { timeout: 150_000 },
    async () => {
      const s = await setUp("unmanaged-scim", {});
      const scim = await startScimServer();
      cleanups.push(() => scim.stop());
      const auth = { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" };
      const post = async (resource: string, body: Record<string, unknown>) => {
        const res = await fetch(`${scim.baseURL}/${resource}`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify(body),
        });
        expect(res.status).toBe(201);
        return ((await res.json()) as { id: string }).id;
      };
      // Made by hand, before Roster: no externalId. lovelace has ada's email (it waits to be linked).
      const ids: Record<string, string> = {};
      for (const [userName, email] of [
        ["admin", "admin@example.com"],
        ["h1", "h1@example.com"],
        ["h2", "h2@example.com"],
        ["h3", "h3@example.com"],
        ["lovelace", "ada@example.com"],
      ] as const)
        ids[userName] = await post("Users", {
          schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
          userName,
          emails: [{ value: email, type: "work", primary: true }],
          title: "Set by hand",
        });
      const hand = ["h1", "h2", "h3"];
      const group = (displayName: string, names: string[]) =>
        post("Groups", {
          schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
          displayName,
          members: names.map((n) => ({ value: ids[n] })),
        });
      const devsId = await group("devs", ["admin", ...hand, "lovelace"]);
      // staff is the policy's group: its hand-added member is only shown, never removed.
      const staffId = await group("staff", ["h1"]);
      const lastModified = () =>
        Object.fromEntries(
          Object.entries(ids).map(([n, id]) => [
            n,
            (scim.storage.users.get(id)!.meta as { lastModified: string }).lastModified,
          ]),
        );
      const before = lastModified();
      const writesTo = (id: string) =>
        scim.requests.filter((r) => r.method !== "GET" && r.path.includes(`/Users/${id}`)).length;
      const members = (id: string) =>
        ((scim.storage.groups.get(id)!.members ?? []) as { value: string }[]).map((m) => m.value);

      await s.kube.core.createNamespacedSecret({
        namespace: s.namespace,
        body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
      });
      await createRoster(s.kube, s.namespace, {
        apiVersion: API_VERSION,
        kind: "Connector",
        metadata: { name: "wiki" },
        spec: {
          scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" } },
          protected: { usernames: ["admin"] },
          drift: { resyncInterval: "2s" },
          safety: { maxDeprovisionsPerHour: 2, maxDeprovisionPercent: 100 },
        },
      });
      await s.apply("AccessPolicy", "wiki", { grants: [{ connector: "wiki", groups: ["staff"] }] });
      await s.apply("GroupRule", "devs", {
        group: "devs",
        connectors: ["wiki"],
        match: [{ key: "department", operator: "In", values: ["Engineering"] }],
      });
      await s.apply("Employee", "ada", person("UMS-1", "ada", { department: "Engineering" }));
      const operator = await operatorFor(s);
      const devsRule = groupRule(s, "devs");
      const rule = () => devsRule.read();

      // Two an hour: two of the three are removed, the third is held for approval.
      await waitFor(
        async () => (await connector(s, "wiki")).status?.heldDeprovisions === 1,
        60_000,
        () => `the brake does not hold the third removal:\n${operator.tail(20)}`,
        500,
      );
      const [ada] = await inState({ ...s, connector: "wiki" } as Scenario, ["ada"], "Active");
      const adaId = accountIn(ada!, "wiki")!.id!;
      const devs = members(devsId);
      expect(devs).toEqual(expect.arrayContaining([adaId, ids.admin, ids.lovelace]));
      const left = hand.filter((n) => devs.includes(ids[n]!));
      expect(left).toHaveLength(1);
      await waitFor(
        async () => (await rule()).status?.unmanagedMembers?.[0]?.count === 1,
        30_000,
        () => `GroupRule status: ${JSON.stringify(devsRule.last)}`,
      );
      expect((await rule()).status?.unmanagedMembers).toEqual([
        { connector: "wiki", action: "Remove", count: 1, members: left },
      ]);
      expect((await connector(s, "wiki")).status?.unmanagedMembers).toEqual([
        { group: "devs", action: "Remove", count: 1, members: left },
        { group: "staff", action: "Keep", count: 1, members: ["h1"] },
      ]);
      const removedEvents = (
        await s.eventsUntil("wiki", "an UnmanagedMembersRemoved Event", (events) =>
          events.some((e) => e.reason === "UnmanagedMembersRemoved"),
        )
      ).filter((e) => e.reason === "UnmanagedMembersRemoved");
      expect(removedEvents.map((e) => e.message).join("\n")).toContain("GroupRule/devs is Authoritative");

      // The exact approval removes the held one; devs is then as the rule says, plus the protected
      // administrator and the account that waits to be linked. No User made by hand was written to.
      await s.kube.custom.patchNamespacedCustomObject(
        {
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "connectors",
          name: "wiki",
          body: { metadata: { annotations: { "roster.dev/approve-deprovisioning": "1" } } },
        },
        mergePatch,
      );
      await waitFor(
        async () => members(devsId).length === 3,
        60_000,
        () => `devs still has ${members(devsId).join("; ")}:\n${operator.tail(20)}`,
        500,
      );
      expect(members(devsId).sort()).toEqual([adaId, ids.admin!, ids.lovelace!].sort());
      await waitFor(
        async () => (await rule()).status?.unmanagedMembers === undefined,
        30_000,
        () => `GroupRule status: ${JSON.stringify(devsRule.last)}`,
      );
      expect(members(staffId).sort()).toEqual([adaId, ids.h1!].sort());
      expect(lastModified()).toEqual(before);
      for (const id of Object.values(ids)) expect(writesTo(id)).toBe(0);
      expect((await connector(s, "wiki")).status?.heldDeprovisions).toBe(0);
    },
  );
});
