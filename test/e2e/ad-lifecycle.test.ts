// Joiner, mover, leaver, delete and rehire into the real Samba AD DC, driven by a real `roster
// operator` process against a real kube-apiserver: a Connector as an AD admin would write it
// (flavor ActiveDirectory, ldaps with the domain's CA, the delegated service account, OU paths),
// and every assertion looks at what the admin or the person would see.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  AndFilter,
  Attribute,
  Change,
  Client,
  EqualityFilter,
  InvalidCredentialsError,
  type Entry,
} from "ldapts";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector, Employee } from "../../src/api/types.ts";
import { waitFor } from "../harness/processes.ts";
import { startRangeProxy, type RangeProxy } from "../harness/range-proxy.ts";
import { adOrganizationalUnits, asAdmin, emptySubtree, type AdInfo } from "../harness/samba.ts";
import { createRoster, freshNamespace, getRoster, kubeFrom, PLURALS, type Kube } from "../support/kube.ts";
import {
  counterOrZero,
  employeeQueueIdle,
  startOperator,
  type OperatorProcess,
} from "../support/operator.ts";
import { person, readyCondition } from "../support/scenario.ts";

const info = inject("harness");
const ad: AdInfo = info.ad;
const kube: Kube = kubeFrom(info);
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const values = (v: unknown): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
const uac = (e: Entry | undefined) => Number(values(e?.userAccountControl)[0]);

/** A namespace with an AD Connector on its own OUs, and the helpers to drive and watch it. */
async function adScenario(
  prefix: string,
  opts: { url?: string; ca?: string; spec?: Record<string, unknown> } = {},
) {
  const namespace = await freshNamespace(kube, prefix);
  const { usersDN, groupsDN } = await adOrganizationalUnits(ad, namespace);
  cleanups.push(() =>
    asAdmin(ad, async (c) => Promise.all([emptySubtree(c, usersDN), emptySubtree(c, groupsDN)])),
  );
  await kube.core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "ad-bind" }, type: "Opaque", stringData: { password: ad.servicePassword } },
  });
  await kube.core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "ad-ca" }, type: "Opaque", stringData: { "ca.crt": opts.ca ?? ad.ca } },
  });
  const connector = "corp-ad";
  await createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: connector },
    spec: {
      ldap: {
        url: opts.url ?? ad.url,
        flavor: "ActiveDirectory",
        caSecretRef: { name: "ad-ca", key: "ca.crt" },
        bindDN: ad.serviceDN,
        bindPasswordSecretRef: { name: "ad-bind", key: "password" },
        usersDN,
        groupsDN,
      },
      credentials: "GeneratedSecret",
      ...opts.spec,
    },
  });
  const apply = async (kind: string, name: string, spec: Record<string, unknown>) => {
    const body = { apiVersion: API_VERSION, kind, metadata: { name }, spec };
    try {
      const existing = await getRoster(kube, namespace, kind, name);
      await kube.custom.replaceNamespacedCustomObject({
        group: "roster.dev",
        version: "v1alpha1",
        namespace,
        plural: PLURALS[kind]!,
        name,
        body: { ...body, metadata: { ...(existing.metadata as object), name } },
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      await createRoster(kube, namespace, body);
    }
  };
  const employee = async (name: string) =>
    (await getRoster(kube, namespace, "Employee", name)) as unknown as Employee;
  const until = async (name: string, what: string, check: (e: Employee) => boolean, timeoutMs = 30_000) => {
    let last: Employee | undefined;
    await waitFor(
      async () => {
        last = await employee(name);
        return last.status?.observedGeneration === last.metadata.generation && check(last);
      },
      timeoutMs,
      () => `${name}: ${what}; last status: ${JSON.stringify(last?.status)}`,
      150,
    );
    return last!;
  };
  const connectorStatus = async () =>
    ((await getRoster(kube, namespace, "Connector", connector)) as unknown as Connector).status ?? {};
  /** The person entry carrying employeeNumber = id, read by the admin, with what AD keeps. */
  const entryOf = (id: string) =>
    asAdmin(ad, async (c) => {
      const { searchEntries } = await c.search(usersDN, {
        scope: "sub",
        filter: new AndFilter({
          filters: [
            new EqualityFilter({ attribute: "objectClass", value: "user" }),
            new EqualityFilter({ attribute: "employeeNumber", value: id }),
          ],
        }),
        attributes: ["*", "uSNChanged", "objectGUID"],
        explicitBufferAttributes: ["objectGUID"],
      });
      return searchEntries;
    });
  /** Names of the groups (below groupsDN) the DN is a member of, as AD answers `(member=dn)`. */
  const groupsOf = (dn: string) =>
    asAdmin(ad, async (c) => {
      const { searchEntries } = await c.search(groupsDN, {
        scope: "one",
        filter: new EqualityFilter({ attribute: "member", value: dn }),
        attributes: ["cn"],
      });
      return searchEntries.map((e) => values(e.cn)[0]!).sort();
    });
  const password = async (name: string) => {
    const secret = await kube.core.readNamespacedSecret({
      namespace,
      name: `${name}-${connector}-credentials`,
    });
    return Buffer.from(secret.data!.password!, "base64").toString();
  };
  return {
    namespace,
    usersDN,
    groupsDN,
    connector,
    apply,
    employee,
    until,
    connectorStatus,
    entryOf,
    groupsOf,
    password,
  };
}

/** Whether the person can sign in with this password over ldaps, by UPN as they would. */
async function canBind(upn: string, password: string): Promise<boolean> {
  const c = new Client({ url: ad.url, tlsOptions: { ca: [ad.ca] }, connectTimeout: 2000 });
  try {
    await c.bind(upn, password);
    return true;
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false;
    throw err;
  } finally {
    await c.unbind().catch(() => {});
  }
}

/**
 * Completed full scans (every Connector's scan is one reconcile of the "scan" queue, requeued for
 * the next resync); 0 before the first one has finished, which a freshly started operator shows.
 */
const scansDone = async (operator: OperatorProcess) =>
  counterOrZero(await operator.metrics(), "controller_runtime_reconcile_total", { controller: "scan" });

/** The operator's warnings and errors, for a failure message. */
const complaints = (operator: OperatorProcess) =>
  JSON.stringify(
    operator
      .logLines()
      .filter((l) => Number(l.level) >= 40)
      .slice(-5),
  );

describe("roster operator with Active Directory (Samba AD DC)", () => {
  let s: Awaited<ReturnType<typeof adScenario>>;
  let operator: OperatorProcess;
  let unowned: { dn: string; usn: string[] };

  beforeAll(async () => {
    s = await adScenario("ad-life", { spec: { drift: { policy: "Correct", resyncInterval: "2s" } } });
    // An account an admin made by hand in the managed OU, before Roster: never written to.
    const dn = `CN=Helpdesk Kiosk,${s.usersDN}`;
    await asAdmin(ad, (c) =>
      c.add(dn, { objectClass: "user", sAMAccountName: `kiosk-${s.namespace.slice(-6)}` }),
    );
    unowned = {
      dn,
      usn: values(
        (await asAdmin(ad, (c) => c.search(dn, { scope: "base", attributes: ["uSNChanged"] })))
          .searchEntries[0]?.uSNChanged,
      ),
    };
    await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
    await s.apply("AccessPolicy", "engineering", {
      match: [{ key: "department", operator: "In", values: ["Engineering"] }],
      grants: [{ connector: s.connector, groups: ["engineering", "vpn-users"] }],
    });
    await s.apply("AccessPolicy", "sales", {
      match: [{ key: "department", operator: "In", values: ["Sales"] }],
      grants: [{ connector: s.connector, groups: ["sales"] }],
    });
    operator = await startOperator({ namespace: s.namespace, leaderElection: false });
    cleanups.push(() => operator.stop());
  });

  const zoe = (extra: Record<string, unknown> = {}) =>
    person("E-Z1", "zoe.obrien", {
      givenName: "Zoë",
      familyName: "O'Brien-Núñez, Jr. +1",
      email: "zoe@example.com",
      department: "Engineering",
      ...extra,
    });

  it("hires a person with an awkward name: a user named CN=…, with sAMAccountName, UPN and employeeNumber, enabled without PASSWD_NOTREQD, in groups the operator made, and the generated password signs in", async () => {
    await s.apply("Employee", "zoe", zoe());
    const e = await s.until(
      "zoe",
      "Active and Ready",
      (x) => x.status?.phase === "Active" && readyCondition(x)?.status === "True",
    );
    const [entry, ...more] = await s.entryOf("E-Z1");
    expect(more).toEqual([]);
    expect(entry!.dn).toBe(`CN=Zoë O'Brien-Núñez\\, Jr. \\+1,${s.usersDN}`);
    expect(values(entry!.objectClass)).toContain("user");
    expect(values(entry!.sAMAccountName)).toEqual(["zoe.obrien"]);
    expect(values(entry!.userPrincipalName)).toEqual(["zoe.obrien@roster.test"]);
    expect(values(entry!.employeeNumber)).toEqual(["E-Z1"]);
    expect(values(entry!.department)).toEqual(["Engineering"]);
    expect(uac(entry) & 0x2).toBe(0);
    expect(uac(entry) & 0x20).toBe(0);
    expect(e.status?.accounts).toEqual([
      expect.objectContaining({
        connector: s.connector,
        id: entry!.dn,
        state: "Active",
        groups: ["engineering", "staff", "vpn-users"],
      }),
    ]);
    expect(await s.groupsOf(entry!.dn)).toEqual(["engineering", "staff", "vpn-users"]);
    const staff = (
      await asAdmin(ad, (c) =>
        c.search(`CN=staff,${s.groupsDN}`, { scope: "base", attributes: ["groupType", "sAMAccountName"] }),
      )
    ).searchEntries[0];
    expect(values(staff?.groupType)).toEqual(["-2147483646"]);
    expect(values(staff?.sAMAccountName)).toEqual(["staff"]);
    const password = await s.password("zoe");
    expect(await canBind("zoe.obrien@roster.test", password)).toBe(true);
    expect(operator.tail(100000)).not.toContain(password);
  });

  it("moves: a department change moves the person from the old groups to the new ones", async () => {
    await s.apply("Employee", "zoe", zoe({ department: "Sales" }));
    await s.until(
      "zoe",
      "in sales",
      (x) => JSON.stringify(x.status?.accounts?.[0]?.groups) === JSON.stringify(["sales", "staff"]),
    );
    const [entry] = await s.entryOf("E-Z1");
    expect(await s.groupsOf(entry!.dn)).toEqual(["sales", "staff"]);
    expect(values(entry!.department)).toEqual(["Sales"]);
  });

  it("leaver: Terminated sets ACCOUNTDISABLE, removes every managed group and the password no longer signs in; a rehire enables the same object", async () => {
    const password = await s.password("zoe");
    const [before] = await s.entryOf("E-Z1");
    await s.apply("Employee", "zoe", zoe({ department: "Sales", employmentStatus: "Terminated" }));
    const gone = await s.until("zoe", "Deprovisioned", (x) => x.status?.phase === "Deprovisioned");
    expect(gone.status?.accounts?.[0]).toMatchObject({ state: "Disabled", groups: [] });
    const [after] = await s.entryOf("E-Z1");
    expect(uac(after)).toBe(0x202);
    expect(await s.groupsOf(after!.dn)).toEqual([]);
    expect(await canBind("zoe.obrien@roster.test", password)).toBe(false);

    await s.apply("Employee", "zoe", zoe({ department: "Engineering", employmentStatus: "Active" }));
    await s.until(
      "zoe",
      "rehired",
      (x) => x.status?.phase === "Active" && x.status.accounts?.[0]?.state === "Active",
    );
    const rehired = await s.entryOf("E-Z1");
    expect(rehired).toHaveLength(1);
    expect((rehired[0]!.objectGUID as Buffer).equals(before!.objectGUID as Buffer)).toBe(true);
    expect(uac(rehired[0])).toBe(0x200);
    expect(await s.groupsOf(rehired[0]!.dn)).toEqual(["engineering", "staff", "vpn-users"]);
  });

  it("deleting an Employee disables its account and takes it out of every group before the object goes", async () => {
    await s.apply("Employee", "bob", person("E-B2", "bob", { department: "Engineering" }));
    await s.until("bob", "Active", (x) => x.status?.phase === "Active");
    const [entry] = await s.entryOf("E-B2");
    expect(entry!.dn).toBe(`CN=Bob Tester,${s.usersDN}`);
    await kube.custom.deleteNamespacedCustomObject({
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: "employees",
      name: "bob",
    });
    await waitFor(
      async () =>
        s.employee("bob").then(
          () => false,
          (err: { code?: number }) => err.code === 404,
        ),
      30_000,
      () => "bob was not removed",
    );
    const [after] = await s.entryOf("E-B2");
    expect(uac(after)).toBe(0x202);
    expect(await s.groupsOf(after!.dn)).toEqual([]);
  });

  it("the account made by hand in the OU is reported as an orphan and never written to (uSNChanged unchanged)", async () => {
    let last: Connector["status"];
    await waitFor(
      async () => {
        last = await s.connectorStatus();
        return last.orphanAccounts?.ids?.includes(unowned.dn) ?? false;
      },
      30_000,
      () => `the orphan was not reported: ${JSON.stringify(last)}`,
    );
    const scans = await scansDone(operator);
    await waitFor(
      async () => (await scansDone(operator)) >= scans + 2,
      30_000,
      () => `no further scans ran: ${complaints(operator)}`,
    );
    await employeeQueueIdle(operator);
    const now = (
      await asAdmin(ad, (c) => c.search(unowned.dn, { scope: "base", attributes: ["uSNChanged"] }))
    ).searchEntries[0];
    expect(values(now?.uSNChanged)).toEqual(unowned.usn);
  });
});

describe("roster operator with a 1,600-member AD group, through a server that answers in ranges of 1,500", () => {
  let s: Awaited<ReturnType<typeof adScenario>>;
  let operator: OperatorProcess;
  let proxy: RangeProxy;
  const handMade: string[] = [];

  beforeAll(async () => {
    const upstream = new URL(ad.url);
    proxy = await startRangeProxy({ host: upstream.hostname, port: Number(upstream.port), ca: ad.ca });
    cleanups.push(() => proxy.stop());
    s = await adScenario("ad-range", {
      url: proxy.url,
      ca: proxy.ca,
      spec: { drift: { policy: "Report", resyncInterval: "2s" } },
    });
    // The domain's 1,600 contacts (made by hand, outside usersDN) in a group an admin made.
    handMade.push(...ad.contacts);
    await asAdmin(ad, async (c) => {
      const group = `CN=all-hands,${s.groupsDN}`;
      await c.add(group, { objectClass: "group", sAMAccountName: `all-hands-${s.namespace.slice(-6)}` });
      for (let i = 0; i < handMade.length; i += 400)
        await c.modify(
          group,
          new Change({
            operation: "add",
            modification: new Attribute({ type: "member", values: handMade.slice(i, i + 400) }),
          }),
        );
    });
    await s.apply("AccessPolicy", "everyone", {
      grants: [{ connector: s.connector, groups: ["all-hands"] }],
    });
    operator = await startOperator({ namespace: s.namespace, leaderElection: false });
    cleanups.push(() => operator.stop());
  });

  const members = () =>
    asAdmin(ad, async (c) => {
      // Straight from Samba (not through the proxy): it answers all values at once.
      const e = (await c.search(`CN=all-hands,${s.groupsDN}`, { scope: "base", attributes: ["member"] }))
        .searchEntries[0];
      return values(e?.member).map((m) => m.toLowerCase());
    });

  it("adds the Employee, keeps the 1,600, and the full scans see the membership (no drift)", async () => {
    await s.apply("Employee", "ann", person("E-R1", "ann"));
    await s.until(
      "ann",
      "Active",
      (x) => x.status?.phase === "Active" && x.status.accounts?.[0]?.groups?.[0] === "all-hands",
    );
    const [entry] = await s.entryOf("E-R1");
    const now = await members();
    expect(now).toHaveLength(1601);
    expect(now).toContain(entry!.dn.toLowerCase());
    const ranged = proxy.rangedAnswers();
    const scans = await scansDone(operator);
    await waitFor(
      async () => (await scansDone(operator)) >= scans + 2,
      30_000,
      () => `no full scans ran: ${complaints(operator)}`,
    );
    await employeeQueueIdle(operator);
    expect(proxy.rangedAnswers()).toBeGreaterThan(ranged); // the scans' reads were answered in ranges
    const e = await s.employee("ann");
    expect(e.status?.conditions?.find((c) => c.type === "Drifted")?.status ?? "False").toBe("False");
    expect((await s.connectorStatus()).driftedAccounts ?? 0).toBe(0);
    expect(await members()).toHaveLength(1601);
  });

  it("removes the Employee when the grant goes, and the 1,600 stay", async () => {
    await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: [] }] });
    await s.until("ann", "out of all-hands", (x) => (x.status?.accounts?.[0]?.groups ?? []).length === 0);
    const [entry] = await s.entryOf("E-R1");
    const now = await members();
    expect(now).toHaveLength(1600);
    expect(now).not.toContain(entry!.dn.toLowerCase());
    expect(new Set(now)).toEqual(new Set(handMade.map((m) => m.toLowerCase())));
  });
});
