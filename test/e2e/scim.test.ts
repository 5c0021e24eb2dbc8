// LDAP and SCIM side by side: two AccessPolicies and a GroupRule give accounts and groups in
// both targets; movers and leavers follow in both; a throttling, failing SCIM server is waited
// out without ever exceeding requestsPerSecond.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector } from "../../src/api/types.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, getRoster } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let scim: ScimServer;
let operator: OperatorProcess;
const RATE = 20;

type ScimUser = { id: string; userName: string; externalId?: string; active?: boolean; [k: string]: unknown };
type ScimGroup = { id: string; displayName: string; members?: { value: string }[] };

const scimUser = async (externalId: string) =>
  (await scim.users()).find((u) => (u as ScimUser).externalId === externalId) as ScimUser | undefined;
const scimGroupsOf = async (id: string) =>
  ((await scim.groups()) as ScimGroup[])
    .filter((g) => g.members?.some((m) => m.value === id))
    .map((g) => g.displayName)
    .sort();

beforeAll(async () => {
  scim = await startScimServer();
  s = await scenario(info, "scim");
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: "wiki" },
    spec: {
      scim: {
        baseURL: scim.baseURL,
        tokenSecretRef: { name: "wiki-token", key: "token" },
        requestsPerSecond: RATE,
      },
    },
  });
  await s.apply("AccessPolicy", "everyone", {
    grants: [
      { connector: s.connector, groups: ["staff"] },
      { connector: "wiki", groups: ["readers"] },
    ],
  });
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [
      { connector: s.connector, groups: ["engineering"] },
      { connector: "wiki", groups: ["engineers"] },
    ],
  });
  await s.apply("AccessPolicy", "sales", {
    match: [{ key: "department", operator: "In", values: ["Sales"] }],
    grants: [{ connector: "wiki", groups: ["sales"] }],
  });
  await s.apply("GroupRule", "leads", {
    group: "leads",
    match: [{ key: "title", operator: "Matches", values: ["Lead"] }],
    connectors: [s.connector, "wiki"],
  });
  operator = await startOperator({
    namespace: s.namespace,
    leaderElection: false,
  });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
  await scim?.stop();
});

describe("LDAP and SCIM", () => {
  it("gives an LDAP account and a SCIM account with the right groups, and names every source", async () => {
    await s.apply(
      "Employee",
      "eve",
      person("S1", "eve", { department: "Engineering", title: "Tech Lead", costCenter: "CC-7" }),
    );
    const eve = await s.until(
      "eve",
      "Active in both",
      (e) => e.status?.phase === "Active" && e.status.accounts?.length === 2,
    );
    const dn = (await s.ldap.person(s.usersDN, "S1"))!.dn;
    expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["engineering", "leads", "staff"]);
    const user = (await scimUser("S1"))!;
    expect(user).toMatchObject({ userName: "eve", externalId: "S1", active: true });
    expect(JSON.stringify(user)).toContain("CC-7");
    expect(await scimGroupsOf(user.id)).toEqual(["engineers", "leads", "readers"]);
    expect(eve.status?.accounts?.find((a) => a.connector === "wiki")).toMatchObject({
      id: user.id,
      state: "Active",
    });
    for (const entitlement of [
      { connector: "wiki", group: "readers", source: "AccessPolicy/everyone" },
      { connector: "wiki", group: "engineers", source: "AccessPolicy/engineering" },
      { connector: "wiki", group: "leads", source: "GroupRule/leads" },
      { connector: s.connector, group: "leads", source: "GroupRule/leads" },
    ])
      expect(eve.status?.entitlements).toContainEqual(entitlement);
    await waitFor(
      async () =>
        !!((await getRoster(s.kube, s.namespace, "Connector", "wiki")) as unknown as Connector).status
          ?.capabilities,
      15_000,
      () => "SCIM capabilities not in Connector status",
    );
    const wiki = (await getRoster(s.kube, s.namespace, "Connector", "wiki")) as unknown as Connector;
    expect(wiki.status?.capabilities).toMatchObject({ patch: true, filter: true });
  });

  it("a department change moves groups in both targets", async () => {
    await s.apply(
      "Employee",
      "eve",
      person("S1", "eve", { department: "Sales", title: "Tech Lead", costCenter: "CC-7" }),
    );
    await s.until(
      "eve",
      "moved",
      (e) => e.status?.accounts?.find((a) => a.connector === "wiki")?.groups?.includes("sales") === true,
    );
    const dn = (await s.ldap.person(s.usersDN, "S1"))!.dn;
    expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["leads", "staff"]);
    expect(await scimGroupsOf((await scimUser("S1"))!.id)).toEqual(["leads", "readers", "sales"]);
  });

  it("a Terminated Employee is disabled in LDAP and inactive in SCIM in the same reconcile", async () => {
    await s.apply(
      "Employee",
      "eve",
      person("S1", "eve", { department: "Sales", employmentStatus: "Terminated" }),
    );
    const gone = await s.until("eve", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    expect(gone.status?.accounts?.map((a) => [a.connector, a.state])).toEqual([
      [s.connector, "Disabled"],
      ["wiki", "Disabled"],
    ]);
    // One status write carried both: same lastSyncTime.
    const [ldapSync, scimSync] = gone.status!.accounts!.map((a) => a.lastSyncTime);
    expect(ldapSync).toBe(scimSync);
    expect(attr(await s.ldap.person(s.usersDN, "S1"), "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
    const user = (await scimUser("S1"))!;
    expect(user.active).toBe(false);
    expect(await scimGroupsOf(user.id)).toEqual([]);
  });

  it("with the SCIM server answering 429 and then 500 for a while, everything converges, never above requestsPerSecond", async () => {
    scim.faults.throttleNext(5, 1);
    scim.faults.failNext(8, 500);
    const started = Date.now();
    const names = Array.from({ length: 8 }, (_, i) => `f${i}`);
    await Promise.all(
      names.map((n, i) => s.apply("Employee", n, person(`F${i}`, n, { department: "Engineering" }))),
    );
    for (const n of names)
      await s.until(n, "Active after the storm", (e) => e.status?.phase === "Active", 120_000);
    for (let i = 0; i < names.length; i++) expect((await scimUser(`F${i}`))?.active).toBe(true);
    const statuses = scim.requests.filter((r) => r.at >= started).map((r) => r.status);
    expect(statuses).toContain(429);
    expect(statuses).toContain(500);
    // No window of one second holds more than requestsPerSecond requests.
    const times = scim.requests
      .filter((r) => r.at >= started)
      .map((r) => r.at)
      .sort((a, b) => a - b);
    let worst = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      worst = Math.max(worst, i - j + 1);
    }
    expect(worst).toBeLessThanOrEqual(RATE);
    // No duplicates.
    const users = (await scim.users()) as ScimUser[];
    expect(new Set(users.map((u) => u.externalId)).size).toBe(users.length);
  });
});
