// `roster plan --live` (issue 18): the plan made on what slapd and the SCIM server hold, read
// through the CLI's read-only client. One title changed by hand on an account Roster owns (drift
// policy Correct) shows as its correction with the entry's real DN and the value it writes back;
// the operator, started afterwards, writes exactly that and nothing else. The plan writes nothing:
// slapd is reached through a TCP proxy that swallows (and counts) every write request, every
// entry's entryCSN is unchanged, and the SCIM server saw only GETs and holds what it held.
// Adoption candidates and orphans that `orphans: Disable` acts on show with their DNs; those
// orphans count against the mass-change brake, so the live plan exits 3 where the plan from
// status alone exits 0. Real kube-apiserver, slapd and scimmy; the operator a separate process.
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { dump } from "js-yaml";
import { Attribute, Change, type Entry } from "ldapts";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Preview } from "../../src/plan/preview.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { registerDirectory, waitFor } from "../harness/processes.ts";
import { createRoster } from "../support/kube.ts";
import { startLdapProxy, type LdapProxy } from "../support/ldap-proxy.ts";
import { attr } from "../support/ldap.ts";
import { employeeQueueIdle, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const run = promisify(execFile);
const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
const WIKI = "wiki";
let s: Scenario;
let scim: ScimServer;
let proxy: LdapProxy;
let operator: OperatorProcess | undefined;

const PEOPLE: Record<string, Record<string, unknown>> = {
  ada: person("L-ADA", "ada", { department: "Engineering", title: "Engineer" }),
  bob: person("L-BOB", "bob", { department: "Sales", title: "Rep" }),
  carol: person("L-CAROL", "carol", { department: "Sales", title: "Rep" }),
};

async function plan(
  dir: string,
  ...extra: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const args = [bin, "plan", dir, "--kubeconfig", info.kubeconfigPath, "-n", s.namespace, ...extra];
    const { stdout, stderr } = await run(process.execPath, args);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The pull request's directory: the same people, unchanged. */
function directory(): string {
  const dir = mkdtempSync(join(tmpdir(), "roster-plan-live-"));
  registerDirectory(dir);
  mkdirSync(join(dir, "people"));
  for (const [name, spec] of Object.entries(PEOPLE))
    writeFileSync(
      join(dir, "people", `${name}.yaml`),
      dump({ apiVersion: API_VERSION, kind: "Employee", metadata: { name }, spec }),
    );
  return dir;
}

/** Every entry of the test's subtrees (people and groups), DN -> entryCSN: any write changes one. */
async function csns(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const base of [s.usersDN, s.groupsDN]) {
    const { searchEntries } = await s.ldap.client.search(base, {
      scope: "sub",
      filter: "(objectClass=*)",
      attributes: ["entryCSN"],
    });
    for (const e of searchEntries) out.set(e.dn.toLowerCase(), attr(e, "entryCSN")[0]!);
  }
  return out;
}

/** An entry's user attributes (lower-cased names, sorted values). */
async function entry(dn: string): Promise<Record<string, string[]>> {
  const { searchEntries } = await s.ldap.client.search(dn, { scope: "base", attributes: ["*"] });
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(searchEntries[0] as Entry))
    if (name !== "dn") out[name.toLowerCase()] = (Array.isArray(value) ? value : [value]).map(String).sort();
  return out;
}

const changed = (a: Record<string, string[]>, b: Record<string, string[]>) =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => JSON.stringify(a[k] ?? []) !== JSON.stringify(b[k] ?? []))
    .sort();

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

beforeAll(async () => {
  proxy = await startLdapProxy(info.ldap.url);
  scim = await startScimServer();
  s = await scenario(info, "planlive", {
    drift: { policy: "Correct", resyncInterval: "1h" },
    orphans: "Disable",
    adoption: { match: "Username", mode: "Propose" },
    safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 },
    ldap: { url: proxy.url },
  });
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: WIKI },
    spec: {
      scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" } },
      drift: { policy: "Correct", resyncInterval: "1h" },
    },
  });
  await s.apply("AccessPolicy", "everyone", {
    grants: [
      { connector: s.connector, groups: ["staff"] },
      { connector: WIKI, groups: ["readers"] },
    ],
  });
  // Made by hand before Roster: carol's account (an adoption candidate), and two accounts whose
  // Employees are gone (orphans carrying an employeeId: orphans Disable acts on them).
  const handMade = (uid: string, employeeNumber?: string) =>
    s.ldap.client.add(`uid=${uid},${s.usersDN}`, {
      objectClass: ["inetOrgPerson"],
      uid,
      cn: uid,
      sn: "Made",
      mail: `${uid}@example.com`,
      ...(employeeNumber ? { employeeNumber } : {}),
    });
  await handMade("carol");
  await handMade("gone1", "GONE-1");
  await handMade("gone2", "GONE-2");
  for (const [name, spec] of Object.entries(PEOPLE)) await s.apply("Employee", name, spec);
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  for (const name of ["ada", "bob"]) await s.until(name, "Active", (e) => e.status?.phase === "Active");
  await s.until("carol", "Unlinked", (e) =>
    (e.status?.accounts ?? []).some((a) => a.connector === s.connector && a.state === "Unlinked"),
  );
  await employeeQueueIdle(operator);
  // Stopped while the plan runs: whatever reaches the targets then is the plan's.
  await operator.stop();
  operator = undefined;
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  await s?.close();
  await scim?.stop();
  await proxy?.close();
});

describe("roster plan --live", () => {
  const adaDN = () => `uid=ada,${s.usersDN}`;
  let beforeEdit: Record<string, string[]>;
  let handEdited: Record<string, string[]>;
  let live: Preview;
  let atPlan: Map<string, string>;

  it("shows the hand-made drift as its correction with the real DN, and writes nothing anywhere", async () => {
    beforeEdit = await entry(adaDN());
    await s.ldap.client.modify(
      adaDN(),
      new Change({
        operation: "replace",
        modification: new Attribute({ type: "title", values: ["Changed by hand"] }),
      }),
    );
    handEdited = await entry(adaDN());
    atPlan = await csns();
    const scimUsers = JSON.stringify(await scim.users());
    const scimGroups = JSON.stringify(await scim.groups());
    const scimSeen = scim.requests.length;
    proxy.fault = "swallow-writes";
    proxy.hits = 0;
    const dir = directory();

    const json = await plan(dir, "--live", "-o", "json");
    const text = await plan(dir, "--live");
    const fromStatus = await plan(dir, "-o", "json");
    proxy.fault = "none";

    // Two orphans to disable against a limit of one: the live plan trips the brake.
    expect(json.code, json.stderr).toBe(3);
    live = JSON.parse(json.stdout) as Preview;
    expect(live.changes).toEqual([
      {
        employee: "ada",
        username: "ada",
        connector: s.connector,
        action: "update",
        attributes: ["title"],
        groupsAdded: [],
        groupsRemoved: [],
        reason: "puts back what was changed outside Roster: attributes changed: title",
        id: adaDN(),
        attributeValues: { title: { from: ["Changed by hand"], to: ["Engineer"] } },
        drift: "attributes changed: title",
      },
    ]);
    expect(live.live!.adoptionCandidates).toEqual([
      expect.objectContaining({
        employee: "carol",
        connector: s.connector,
        id: `uid=carol,${s.usersDN}`,
        state: "Unlinked",
      }),
    ]);
    expect(
      live.live!.orphans.filter((o) => o.action !== "report").map((o) => [o.id, o.employeeId, o.action]),
    ).toEqual([
      [`uid=gone1,${s.usersDN}`, "GONE-1", "disable"],
      [`uid=gone2,${s.usersDN}`, "GONE-2", "disable"],
    ]);
    expect(live.brake).toEqual([
      expect.objectContaining({ connector: s.connector, deprovisions: 2, limit: 1, trips: true }),
    ]);

    expect(text.code).toBe(3);
    expect(text.stdout).toContain(
      `| ada (ada) | \`${adaDN()}\` | update title: "Changed by hand" → "Engineer" |  |  | puts back what was changed outside Roster: attributes changed: title |`,
    );
    expect(text.stdout).toContain(`| carol (carol) | \`uid=carol,${s.usersDN}\` | Unlinked |`);
    expect(text.stdout).toContain(`| \`uid=gone1,${s.usersDN}\` | GONE-1 | disable |`);

    // From status alone nothing shows: the operator last saw everyone in sync.
    expect(fromStatus.code, fromStatus.stderr).toBe(0);
    expect((JSON.parse(fromStatus.stdout) as Preview).changes).toEqual([]);

    // Reads only: no write request reached the proxy, no entry changed, the SCIM server was read.
    expect(proxy.hits).toBe(0);
    expect(await csns()).toEqual(atPlan);
    const during = scim.requests.slice(scimSeen);
    expect(during.length).toBeGreaterThan(0);
    expect(during.filter((r) => WRITE_METHODS.has(r.method)).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(JSON.stringify(await scim.users())).toBe(scimUsers);
    expect(JSON.stringify(await scim.groups())).toBe(scimGroups);
  });

  it("the operator then performs exactly that correction, and nothing else", async () => {
    expect(live, "the plan above ran").toBeDefined();
    const scimSeen = scim.requests.length;
    operator = await startOperator({ namespace: s.namespace, leaderElection: false });
    await waitFor(
      async () => (await entry(adaDN())).title?.[0] === "Engineer",
      60_000,
      () => `ada's title was not put back:\n${operator!.tail(30)}`,
      250,
    );
    await employeeQueueIdle(operator);
    const after = await entry(adaDN());
    const [planned] = live.changes;
    // What changed is what the plan listed, with the values it said it would write...
    expect(changed(handEdited, after)).toEqual(
      Object.keys(planned!.attributeValues!).map((k) => k.toLowerCase()),
    );
    for (const [name, values] of Object.entries(planned!.attributeValues!))
      expect(after[name.toLowerCase()]).toEqual(values.to);
    expect(after).toEqual(beforeEdit);
    // ...and no other entry was written (the orphans wait for a second scan, carol for a link).
    const now = await csns();
    for (const [dn, csn] of atPlan)
      if (dn !== adaDN().toLowerCase()) expect([dn, now.get(dn)]).toEqual([dn, csn]);
    expect(now.get(adaDN().toLowerCase())).not.toBe(atPlan.get(adaDN().toLowerCase()));
    expect(
      scim.requests
        .slice(scimSeen)
        .filter((r) => WRITE_METHODS.has(r.method))
        .map((r) => r.path),
    ).toEqual([]);
    // (On start every Employee is reconciled: ada's read finds the title and puts it back, before
    // the scan would.) The operator says what it wrote.
    const events = await s.eventsUntil("ada", "an AccountUpdated Event", (events) =>
      events.some((e) => e.reason === "AccountUpdated"),
    );
    expect(events.filter((e) => e.reason === "AccountUpdated" && /\btitle\b/.test(e.message))).toHaveLength(
      1,
    );
  }, 90_000);
});
