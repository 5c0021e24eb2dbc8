// An account Roster does not own (the username is taken in the target, with no employeeNumber in
// LDAP / no externalId in SCIM) is a terminal failure: the account shows Conflict, Ready is False
// with reason Conflict, one ProvisioningFailed Event is written, and the operator does not retry it
// in a loop; it looks again when the Employee changes. Real slapd, a real SCIM server, and
// `roster operator` as a separate process.
//
// The two cases run concurrently (each waits a minute on purpose) against one operator: each
// connector has only its own case's Employees, so a connector's request counters belong to it.
import { afterAll, beforeAll, describe, inject, it } from "vitest";
import type { Entry } from "ldapts";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { createRoster, PLURALS } from "../support/kube.ts";
import {
  counterOrZero,
  employeeQueueIdle,
  startOperator,
  type OperatorProcess,
} from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let scim: ScimServer;
let operator: OperatorProcess;
const WIKI = "wiki";
/** The one place waiting is the behaviour under test: a retry loop would show within a minute. */
const QUIET_MS = 60_000;
/** A re-check or two in that minute is tolerated; a loop with backoff would make dozens. */
const MAX_REQUESTS = 3;

/** The connector calls one Employee's reconcile makes (the scan's listAccounts and the health check are not). */
const EMPLOYEE_OPERATIONS = [
  "findAccount",
  "createAccount",
  "updateAttributes",
  "setEnabled",
  "addToGroup",
  "removeFromGroup",
  "deleteAccount",
] as const;

type Calls = Record<string, number>;

/**
 * The connector's requests by operation and result. A labelled counter has no series until its
 * first inc(), so a missing one is 0 here; the conflict itself (findAccount, createAccount error)
 * has always created the series before this is read, so the counters are known to be exported.
 */
function callsOf(metrics: string, connector: string): Calls {
  const key = `${s.namespace}/${connector}`;
  const out: Calls = {};
  for (const operation of [...EMPLOYEE_OPERATIONS, "listAccounts"])
    for (const result of ["success", "error"])
      out[`${operation}/${result}`] = counterOrZero(metrics, "roster_connector_requests_total", {
        connector: key,
        operation,
        result,
      });
  return out;
}

const employeeCalls = (calls: Calls) =>
  EMPLOYEE_OPERATIONS.reduce((n, op) => n + calls[`${op}/success`]! + calls[`${op}/error`]!, 0);

const delta = (after: Calls, before: Calls) =>
  Object.fromEntries(
    Object.entries(after)
      .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
      .filter(([, v]) => v !== 0),
  );

/** The Employee's Events with their aggregation count (repeats bump count, not the list). */
async function eventsOf(name: string) {
  const list = await s.kube.core.listNamespacedEvent({
    namespace: s.namespace,
    fieldSelector: `involvedObject.name=${name},involvedObject.kind=Employee`,
  });
  return list.items.map((e) => ({
    reason: e.reason ?? "",
    type: e.type ?? "",
    message: e.message ?? "",
    count: e.count ?? 1,
  }));
}

async function annotate(name: string, annotations: Record<string, string>): Promise<void> {
  await s.kube.custom.patchNamespacedCustomObject(
    {
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: PLURALS.Employee!,
      name,
      body: { metadata: { annotations } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

const conflicted = (connector: string) => (e: Employee) =>
  e.status?.phase === "Failed" &&
  readyCondition(e)?.status === "False" &&
  e.status.accounts?.find((a) => a.connector === connector)?.state === "Conflict";

const activeIn = (connector: string) => (e: Employee) =>
  e.status?.phase === "Active" &&
  readyCondition(e)?.status === "True" &&
  e.status.accounts?.find((a) => a.connector === connector)?.state === "Active";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A user entry read back with operational attributes (modifyTimestamp, entryCSN, memberOf). */
async function readEntry(dn: string): Promise<Entry | undefined> {
  try {
    const { searchEntries } = await s.ldap.client.search(dn, { scope: "base", attributes: ["*", "+"] });
    return searchEntries[0];
  } catch (error) {
    if ((error as { code?: number }).code === 32) return undefined; // noSuchObject
    throw error;
  }
}

/** A SCIM call as an administrator would make it, over HTTP with the server's bearer token. */
async function scimCall(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${scim.baseURL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`SCIM ${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

const scimUserById = async (id: string) =>
  (await scim.users()).find((u) => u.id === id) as Record<string, unknown> | undefined;

beforeAll(async () => {
  scim = await startScimServer();
  // A short resync: the full scan reads every account (the hand-made ones too) every few seconds,
  // so "no retry" is tested against an operator that keeps looking at the targets.
  s = await scenario(info, "conflict", { drift: { resyncInterval: "5s" } });
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
      drift: { resyncInterval: "5s" },
    },
  });
  // Engineering gets LDAP only, Support gets SCIM only: each case touches one connector.
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [{ connector: s.connector, groups: ["staff"] }],
  });
  await s.apply("AccessPolicy", "support", {
    match: [{ key: "department", operator: "In", values: ["Support"] }],
    grants: [{ connector: WIKI, groups: ["readers"] }],
  });
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
  await scim?.stop();
});

describe.concurrent(
  "a NotOwned account produces one Event and a Conflict condition, not a retry loop",
  () => {
    it("LDAP: an entry with the username and no employeeNumber", { timeout: 150_000 }, async ({ expect }) => {
      // By hand, before Roster: uid=ida under usersDN, nobody's employeeNumber.
      const dn = `uid=ida,${s.usersDN}`;
      await s.ldap.client.add(dn, {
        objectClass: ["inetOrgPerson"],
        uid: "ida",
        cn: "Ida Contractor",
        sn: "Contractor",
        title: "Contractor",
        mail: "ida@contractor.example",
      });
      const handMade = (await readEntry(dn))!;
      expect(handMade.employeeNumber).toBeUndefined();

      await s.apply("Employee", "ida", person("C-IDA", "ida", { department: "Engineering" }));
      const ida = await s.until("ida", "Conflict in LDAP", conflicted(s.connector));
      const ready = readyCondition(ida)!;
      expect(ready.reason).toBe("Conflict");
      expect(ready.message.toLowerCase()).toContain(dn.toLowerCase());
      const account = ida.status!.accounts!.find((a) => a.connector === s.connector)!;
      expect(account.message?.toLowerCase()).toContain(dn.toLowerCase());
      expect(account.message).toMatch(/not owned by Roster/);

      // The operator is alive and reconciling this namespace and this connector after the conflict.
      await s.apply("Employee", "ivy", person("C-IVY", "ivy", { department: "Engineering" }));
      await s.until("ivy", "Active in LDAP", activeIn(s.connector));
      expect(await s.ldap.person(s.usersDN, "C-IVY")).toBeDefined();
      await employeeQueueIdle(operator);

      const before = callsOf(await operator.metrics(), s.connector);
      expect(
        before["createAccount/error"],
        "the conflict was counted as a failed createAccount",
      ).toBeGreaterThanOrEqual(1);
      await sleep(QUIET_MS);
      const after = callsOf(await operator.metrics(), s.connector);

      // Alive all along: the operator scanned this connector several times during the minute...
      expect(after["listAccounts/success"]! - before["listAccounts/success"]!).toBeGreaterThanOrEqual(3);
      expect(operator.child.exitCode).toBeNull();
      // ...and only ida can have made Employee requests to it (ivy is in sync, nobody else uses it).
      expect(
        employeeCalls(after) - employeeCalls(before),
        `requests to ${s.connector} in ${QUIET_MS / 1000} s: ${JSON.stringify(delta(after, before))}`,
      ).toBeLessThanOrEqual(MAX_REQUESTS);

      const failed = (await eventsOf("ida")).filter((e) => e.reason === "ProvisioningFailed");
      expect(failed, JSON.stringify(failed)).toHaveLength(1);
      expect(failed[0]).toMatchObject({ type: "Warning", count: 1 });
      expect(failed[0]!.message.toLowerCase()).toContain(dn.toLowerCase());

      // The hand-made entry was not touched: not adopted, not written to, in no group.
      expect(await readEntry(dn)).toEqual(handMade);
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual([]);
      // Still Conflict, the same condition (no flapping between attempts).
      const still = await s.employee("ida");
      expect(conflicted(s.connector)(still)).toBe(true);
      expect(readyCondition(still)).toEqual(ready);

      // Resolved by hand (the entry removed), then the Employee touched: looked at again, provisioned.
      await s.ldap.client.del(dn);
      await annotate("ida", { "example.com/recheck": "1" });
      await s.until("ida", "Active in LDAP after the change", activeIn(s.connector));
      const entry = await s.ldap.person(s.usersDN, "C-IDA");
      expect(entry?.dn.toLowerCase()).toBe(dn.toLowerCase());
      expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["staff"]);
    });

    it("SCIM: a user with the userName and no externalId", { timeout: 150_000 }, async ({ expect }) => {
      // By hand, before Roster, through the SCIM API: userName sam, no externalId.
      const created = await scimCall("POST", "/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "sam",
        name: { givenName: "Sam", familyName: "Contractor" },
        title: "Contractor",
        emails: [{ value: "sam@contractor.example", type: "work", primary: true }],
        active: true,
      });
      const id = String(created.id);
      const handMade = (await scimUserById(id))!;
      expect(handMade.externalId).toBeUndefined();

      await s.apply("Employee", "sam", person("C-SAM", "sam", { department: "Support" }));
      const sam = await s.until("sam", "Conflict in SCIM", conflicted(WIKI));
      const ready = readyCondition(sam)!;
      expect(ready.reason).toBe("Conflict");
      expect(ready.message).toContain(`${WIKI}: `);
      expect(ready.message).toContain(id);
      const account = sam.status!.accounts!.find((a) => a.connector === WIKI)!;
      expect(account.message).toContain(id);
      expect(account.message).toMatch(/not owned by Roster/);

      await s.apply("Employee", "sue", person("C-SUE", "sue", { department: "Support" }));
      await s.until("sue", "Active in SCIM", activeIn(WIKI));
      await employeeQueueIdle(operator);

      // Requests naming sam, as the SCIM server saw them (the scan's paged reads name nobody).
      const namesSam = (r: { path: string; body?: unknown }) => {
        const path = decodeURIComponent(r.path);
        const body = r.body as { userName?: string } | undefined;
        return (
          path.includes('"sam"') || path.includes('"C-SAM"') || path.includes(id) || body?.userName === "sam"
        );
      };
      const httpFrom = scim.requests.length;
      const before = callsOf(await operator.metrics(), WIKI);
      expect(
        before["createAccount/error"],
        "the conflict was counted as a failed createAccount",
      ).toBeGreaterThanOrEqual(1);
      await sleep(QUIET_MS);
      const after = callsOf(await operator.metrics(), WIKI);
      const http = scim.requests.slice(httpFrom);

      expect(after["listAccounts/success"]! - before["listAccounts/success"]!).toBeGreaterThanOrEqual(3);
      expect(operator.child.exitCode).toBeNull();
      expect(
        employeeCalls(after) - employeeCalls(before),
        `requests to ${WIKI} in ${QUIET_MS / 1000} s: ${JSON.stringify(delta(after, before))}`,
      ).toBeLessThanOrEqual(MAX_REQUESTS);
      const aboutSam = http.filter(namesSam);
      const described = aboutSam.map((r) => `${r.method} ${decodeURIComponent(r.path)}`);
      // Each attempt to create sam is one POST: at most one more, and nothing written to the user.
      expect(aboutSam.filter((r) => r.method === "POST").length, described.join("\n")).toBeLessThanOrEqual(1);
      expect(
        aboutSam.filter((r) => r.method !== "GET" && r.path.includes(id)),
        described.join("\n"),
      ).toEqual([]);

      const failed = (await eventsOf("sam")).filter((e) => e.reason === "ProvisioningFailed");
      expect(failed, JSON.stringify(failed)).toHaveLength(1);
      expect(failed[0]).toMatchObject({ type: "Warning", count: 1 });
      expect(failed[0]!.message).toContain(id);

      // The hand-made user is as it was: no externalId, nothing changed (meta.lastModified included).
      expect(await scimUserById(id)).toEqual(handMade);
      const still = await s.employee("sam");
      expect(conflicted(WIKI)(still)).toBe(true);
      expect(readyCondition(still)).toEqual(ready);

      // Resolved by hand: an administrator marks the user as sam's (externalId); then the Employee
      // changes (a new title, a new generation) and the account is adopted, not created again.
      await scimCall("PATCH", `/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "add", path: "externalId", value: "C-SAM" }],
      });
      await s.apply("Employee", "sam", person("C-SAM", "sam", { department: "Support", title: "Writer" }));
      const adopted = await s.until("sam", "Active in SCIM after the change", activeIn(WIKI));
      expect(adopted.status?.accounts?.find((a) => a.connector === WIKI)?.id).toBe(id);
      const users = (await scim.users()).filter((u) => u.userName === "sam");
      expect(users.map((u) => u.id)).toEqual([id]);
      expect(users[0]).toMatchObject({ externalId: "C-SAM", title: "Writer", active: true });
    });
  },
);
