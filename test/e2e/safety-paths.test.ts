// The ownership and safety rules of api.md on the paths where they used to fail: a paused
// Connector holds a leaver's deprovisioning instead of letting the Employee go; a search that finds
// nothing is not taken to mean the account is gone (the recorded DN is read directly, and an entry
// that no longer carries the employeeNumber is a Conflict, not "gone"); a Terminated duplicate of an
// employeeId touches nothing; plain-text transports are flagged; long target error text is cut
// before it reaches status. Real kube-apiserver, slapd and SCIM server; the operator is a separate
// process; every wait is for a positive signal.
import { afterAll, describe, inject, it } from "vitest";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { Attribute, Change, type Entry } from "ldapts";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector, Employee } from "../../src/api/types.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, getRoster, PLURALS, type Kube } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import {
  counterOrZero,
  requireMetric,
  startOperator,
  type OperatorProcess,
  employeeQueueIdle,
} from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const FINALIZER = "roster.dev/deprovision";
const LOCKED = "000001010000Z";
const WIKI = "wiki";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

async function setUp(
  prefix: string,
  connectorSpec: Record<string, unknown> = {},
  policy = true,
): Promise<{ s: Scenario; operator: OperatorProcess }> {
  const s = await scenario(info, prefix, connectorSpec);
  cleanups.push(() => s.close());
  if (policy)
    await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  const operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  cleanups.push(() => operator.stop());
  return { s, operator };
}

/** A SCIM server of this test's own and a Connector `wiki` on it (plain http:// on loopback). */
async function scimConnector(s: Scenario, spec: Record<string, unknown> = {}): Promise<ScimServer> {
  const scim = await startScimServer();
  cleanups.push(() => scim.stop());
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  const { scim: scimSpec, ...rest } = spec as { scim?: Record<string, unknown> };
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: WIKI },
    spec: {
      ...rest,
      scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" }, ...scimSpec },
    },
  });
  return scim;
}

async function getConnector(kube: Kube, namespace: string, name: string): Promise<Connector> {
  return (await getRoster(kube, namespace, "Connector", name)) as unknown as Connector;
}

async function patchConnector(s: Scenario, name: string, spec: Record<string, unknown>): Promise<number> {
  const patched = (await s.kube.custom.patchNamespacedCustomObject(
    {
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: PLURALS.Connector!,
      name,
      body: { spec },
    },
    mergePatch,
  )) as unknown as Connector;
  return patched.metadata.generation!;
}

/**
 * Waits until the operator has written the Connector's status for `generation` (or later) and it
 * satisfies `check`: the operator's cache holds that spec, so every reconcile from now on uses it.
 */
async function connectorUntil(
  s: Scenario,
  name: string,
  what: string,
  check: (c: Connector) => boolean,
  generation = 1,
  timeoutMs = 30_000,
): Promise<Connector> {
  let last: Connector | undefined;
  await waitFor(
    async () => {
      last = await getConnector(s.kube, s.namespace, name);
      return (last.status?.observedGeneration ?? 0) >= generation && check(last);
    },
    timeoutMs,
    () => `Connector ${name}: ${what}; last status: ${JSON.stringify(last?.status)}`,
    200,
  );
  return last!;
}

const condition = (obj: { status?: { conditions?: { type: string }[] } }, type: string) =>
  obj.status?.conditions?.find((c) => c.type === type) as
    { type: string; status: string; reason: string; message: string } | undefined;

async function deleteEmployee(s: Scenario, name: string): Promise<void> {
  await s.kube.custom.deleteNamespacedCustomObject({
    group: "roster.dev",
    version: "v1alpha1",
    namespace: s.namespace,
    plural: PLURALS.Employee!,
    name,
  });
}

/** The Employee, or undefined once the API server answers 404. */
async function employeeOrGone(s: Scenario, name: string): Promise<Employee | undefined> {
  try {
    return await s.employee(name);
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

async function untilGone(s: Scenario, name: string, timeoutMs = 30_000): Promise<void> {
  let last: Employee | undefined;
  await waitFor(
    async () => (last = await employeeOrGone(s, name)) === undefined,
    timeoutMs,
    () =>
      `Employee ${name} is still there: ${JSON.stringify({ metadata: last?.metadata, status: last?.status })}`,
    150,
  );
}

/**
 * Completed full scans. The series appears with the first scan (2 s after the Connector is seen),
 * so before it there have been none: missing is 0 here.
 */
const scansDone = async (operator: OperatorProcess) =>
  counterOrZero(await operator.metrics(), "controller_runtime_reconcile_total", { controller: "scan" });

/**
 * Requests that take access away or change an account, made to one connector. A labelled counter
 * has no series before its first inc(), so a missing one is 0: the callers show that requests are
 * counted at all (createAccount, success) before they rely on an absence.
 */
function removals(metrics: string, connector: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const operation of ["setEnabled", "removeFromGroup", "deleteAccount", "updateAttributes"])
    out[operation] = counterOrZero(metrics, "roster_connector_requests_total", { connector, operation });
  return out;
}

/** A user entry with its operational attributes (modifyTimestamp, entryCSN, memberOf), or undefined. */
async function readEntry(s: Scenario, dn: string): Promise<Entry | undefined> {
  try {
    const { searchEntries } = await s.ldap.client.search(dn, {
      scope: "base",
      attributes: ["*", "+", "pwdAccountLockedTime"],
    });
    return searchEntries[0];
  } catch (error) {
    if ((error as { code?: number }).code === 32) return undefined; // noSuchObject
    throw error;
  }
}

const accountIn = (e: Employee, connector: string) =>
  e.status?.accounts?.find((a) => a.connector === connector);

describe.concurrent("ownership and safety rules on real targets", () => {
  it(
    "a paused Connector holds a leaver's deprovisioning: the Employee stays until it is resumed",
    { timeout: 120_000 },
    async ({ expect }) => {
      const { s, operator } = await setUp("sp-paused");
      await s.apply("Employee", "lee", person("P-LEE", "lee"));
      await s.until(
        "lee",
        "Active",
        (e) => e.status?.phase === "Active" && accountIn(e, s.connector)?.state === "Active",
      );
      const dn = (await s.ldap.person(s.usersDN, "P-LEE"))!.dn;
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["staff"]);

      const pausedGeneration = await patchConnector(s, s.connector, { paused: true });
      await connectorUntil(
        s,
        s.connector,
        "shows Paused",
        (c) => condition(c, "Paused")?.status === "True",
        pausedGeneration,
      );

      await deleteEmployee(s, "lee");
      const waiting = await s.until(
        "lee",
        "deletion reconciled against the paused Connector",
        (e) => !!e.metadata.deletionTimestamp && readyCondition(e)?.status === "False",
      );
      expect(waiting.metadata.deletionTimestamp).toBeDefined();
      expect(waiting.metadata.finalizers).toContain(FINALIZER);
      // Soft: the rest of the path is checked even when the reason is wrong.
      expect.soft(readyCondition(waiting)).toMatchObject({ status: "False", reason: "ConnectorPaused" });
      expect.soft(readyCondition(waiting)?.message, "Ready says why").toMatch(/paused/i);
      expect(accountIn(waiting, s.connector)?.message).toMatch(/deprovisioning waits/);
      expect(accountIn(waiting, s.connector)?.id?.toLowerCase()).toBe(dn.toLowerCase());

      // The pause is respected: the reconcile that wrote this has finished, nothing is pending, and
      // no request that takes access away reached the directory.
      await employeeQueueIdle(operator);
      const entry = await readEntry(s, dn);
      expect(attr(entry, "pwdAccountLockedTime")).toEqual([]);
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["staff"]);
      const metrics = await operator.metrics();
      const key = `${s.namespace}/${s.connector}`;
      expect(
        requireMetric(metrics, "roster_connector_requests_total", {
          connector: key,
          operation: "createAccount",
          result: "success",
        }),
      ).toBe(1);
      expect(removals(metrics, key)).toEqual({
        setEnabled: 0,
        removeFromGroup: 0,
        deleteAccount: 0,
        updateAttributes: 0,
      });
      expect((await employeeOrGone(s, "lee"))?.metadata.finalizers).toContain(FINALIZER);

      // Resumed: the leaver is disabled and out of the group, and only then does the object go.
      await patchConnector(s, s.connector, { paused: false });
      await untilGone(s, "lee");
      const after = await readEntry(s, dn);
      expect(after, "a Disable leaver keeps the entry").toBeDefined();
      expect(attr(after, "pwdAccountLockedTime")).toEqual([LOCKED]);
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual([]);
      const done = removals(await operator.metrics(), key);
      expect(done.setEnabled).toBe(1);
      expect(done.removeFromGroup).toBe(1);
    },
  );

  it(
    "a search that no longer finds the entry is not 'gone': the recorded DN is read and the leaver disabled",
    { timeout: 120_000 },
    async ({ expect }) => {
      const { s, operator } = await setUp("sp-search");
      await s.apply("Employee", "sid", person("S-SID", "sid"));
      await s.until(
        "sid",
        "Active",
        (e) => e.status?.phase === "Active" && accountIn(e, s.connector)?.state === "Active",
      );
      const dn = (await s.ldap.person(s.usersDN, "S-SID"))!.dn;
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["staff"]);

      // shadowAccount (nis schema, loaded by the harness) is a class the entry does not have: the
      // operator's employeeNumber search, which requires every userObjectClass, now finds nothing.
      const generation = await patchConnector(s, s.connector, {
        ldap: { userObjectClasses: ["inetOrgPerson", "shadowAccount"] },
      });
      await connectorUntil(s, s.connector, "status for the new object classes", () => true, generation);
      const { searchEntries } = await s.ldap.client.search(s.usersDN, {
        scope: "sub",
        filter: "(&(objectClass=inetOrgPerson)(objectClass=shadowAccount)(employeeNumber=S-SID))",
        attributes: ["1.1"],
      });
      expect(searchEntries, "the search under the new object classes finds nothing").toEqual([]);
      expect(attr(await readEntry(s, dn), "objectClass")).not.toContain("shadowAccount");

      await deleteEmployee(s, "sid");
      await untilGone(s, "sid");
      // The finalizer came off only after the account was confirmed deprovisioned: at this point the
      // entry is disabled and out of its group.
      const entry = await readEntry(s, dn);
      expect(entry, "Disable keeps the entry").toBeDefined();
      expect(attr(entry, "pwdAccountLockedTime")).toEqual([LOCKED]);
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual([]);
      // ...and it was found by a direct read of the recorded DN, as the operator says.
      await waitFor(
        async () =>
          operator
            .logLines()
            .some(
              (l) =>
                l.level === "warn" &&
                String(l.msg).includes("found by its recorded id only") &&
                String(l.dn).toLowerCase() === dn.toLowerCase(),
            ),
        10_000,
        () => "no warning that the account was found by its recorded DN only",
      );
    },
  );

  it(
    "an entry that lost its employeeNumber is a Conflict, not gone: the Employee keeps its finalizer",
    { timeout: 120_000 },
    async ({ expect }) => {
      const { s, operator } = await setUp("sp-owner");
      await s.apply("Employee", "oda", person("S-ODA", "oda"));
      await s.until(
        "oda",
        "Active",
        (e) => e.status?.phase === "Active" && accountIn(e, s.connector)?.state === "Active",
      );
      const dn = (await s.ldap.person(s.usersDN, "S-ODA"))!.dn;
      // By hand: the employeeNumber removed; the entry is otherwise enabled and in staff.
      await s.ldap.client.modify(dn, [
        new Change({
          operation: "delete",
          modification: new Attribute({ type: "employeeNumber", values: [] }),
        }),
      ]);
      const handEdited = (await readEntry(s, dn))!;
      expect(attr(handEdited, "employeeNumber")).toEqual([]);
      expect(attr(handEdited, "pwdAccountLockedTime")).toEqual([]);

      await deleteEmployee(s, "oda");
      const conflict = await s.until(
        "oda",
        "Conflict while deleting",
        (e) => !!e.metadata.deletionTimestamp && accountIn(e, s.connector)?.state === "Conflict",
      );
      expect(conflict.metadata.finalizers).toContain(FINALIZER);
      expect(readyCondition(conflict)).toMatchObject({ status: "False", reason: "Conflict" });
      const message = accountIn(conflict, s.connector)!.message!;
      expect(message.toLowerCase()).toContain(dn.toLowerCase());
      expect(message).toMatch(/employeeNumber/);

      // Nothing is pending and nothing was written: the entry is exactly as it was left by hand.
      await employeeQueueIdle(operator);
      expect(await readEntry(s, dn)).toEqual(handEdited);
      expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["staff"]);
      const still = await employeeOrGone(s, "oda");
      expect(still, "the Employee must not go while its account is enabled").toBeDefined();
      expect(still!.metadata.finalizers).toContain(FINALIZER);
      expect(removals(await operator.metrics(), `${s.namespace}/${s.connector}`)).toEqual({
        setEnabled: 0,
        removeFromGroup: 0,
        deleteAccount: 0,
        updateAttributes: 0,
      });
    },
  );

  it(
    "a Terminated Employee with the employeeId of an active one is a DuplicateEmployeeId and changes nothing",
    { timeout: 120_000 },
    async ({ expect }) => {
      // Delete at once: were the old record to act, the account would be gone immediately.
      const { s, operator } = await setUp("sp-dup", {
        deprovisioning: { action: "Delete", deleteAfter: "0s" },
        drift: { resyncInterval: "2s" },
      });
      await s.apply("Employee", "rehire", person("E-DUP", "rehire"));
      await s.until(
        "rehire",
        "Active",
        (e) => e.status?.phase === "Active" && accountIn(e, s.connector)?.state === "Active",
      );
      const dn = (await s.ldap.person(s.usersDN, "E-DUP"))!.dn;
      const key = `${s.namespace}/${s.connector}`;

      await s.apply(
        "Employee",
        "old-record",
        person("E-DUP", "rehire", { employmentStatus: "Terminated", title: "Former" }),
      );
      const old = await s.until(
        "old-record",
        "DuplicateEmployeeId",
        (e) => condition(e, "DuplicateEmployeeId")?.status === "True",
      );
      expect(condition(old, "DuplicateEmployeeId")!.message).toContain("rehire");
      expect(old.status?.accounts ?? []).toEqual([]);
      // Two full scans after the duplicate showed, and whatever reconcile anything caused is done.
      const scans = await scansDone(operator);
      await waitFor(
        async () => (await scansDone(operator)) >= scans + 2,
        20_000,
        () => "no full scan ran after the duplicate appeared",
      );
      await employeeQueueIdle(operator);

      const unchanged = async () => {
        const entry = await readEntry(s, dn);
        expect(entry, "the account of the active Employee exists").toBeDefined();
        expect(attr(entry, "pwdAccountLockedTime")).toEqual([]);
        expect(attr(entry, "title")).not.toContain("Former");
        expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["staff"]);
        const rehire = await s.employee("rehire");
        expect(rehire.status?.phase).toBe("Active");
        expect(accountIn(rehire, s.connector)?.state).toBe("Active");
        expect(condition(rehire, "DuplicateEmployeeId")).toBeUndefined();
        const metrics = await operator.metrics();
        expect(
          requireMetric(metrics, "roster_connector_requests_total", {
            connector: key,
            operation: "createAccount",
            result: "success",
          }),
        ).toBe(1);
        expect(removals(metrics, key)).toEqual({
          setEnabled: 0,
          removeFromGroup: 0,
          deleteAccount: 0,
          updateAttributes: 0,
        });
      };
      await unchanged();

      // Deleting the old record removes it without touching the account.
      await deleteEmployee(s, "old-record");
      await untilGone(s, "old-record");
      await employeeQueueIdle(operator);
      await unchanged();
    },
  );

  it(
    "plain-text transports: ldap:// without startTLS and an http:// SCIM base URL are Insecure, with a warning in the log",
    { timeout: 120_000 },
    async ({ expect }) => {
      const { s, operator } = await setUp("sp-insecure", {}, false);
      await scimConnector(s);
      // A control: the same directory asked for StartTLS is not flagged (it cannot connect, which
      // is the Ready condition's business, not this one's).
      await createRoster(s.kube, s.namespace, {
        apiVersion: API_VERSION,
        kind: "Connector",
        metadata: { name: "tls-ldap" },
        spec: {
          ldap: {
            url: info.ldap.url,
            startTLS: true,
            bindDN: info.ldap.adminDN,
            bindPasswordSecretRef: { name: "ldap-bind", key: "password" },
            usersDN: s.usersDN,
            groupsDN: s.groupsDN,
          },
        },
      });
      expect(info.ldap.url.startsWith("ldap://")).toBe(true);

      const ldap = await connectorUntil(
        s,
        s.connector,
        "Insecure",
        (c) => condition(c, "Insecure")?.status === "True",
      );
      expect(condition(ldap, "Insecure")).toMatchObject({ status: "True", reason: "InsecureTransport" });
      expect(condition(ldap, "Insecure")!.message).toMatch(/ldap:\/\/.*plain text/);
      const wiki = await connectorUntil(
        s,
        WIKI,
        "Insecure",
        (c) => condition(c, "Insecure")?.status === "True",
      );
      expect(condition(wiki, "Insecure")).toMatchObject({ status: "True", reason: "InsecureTransport" });
      expect(condition(wiki, "Insecure")!.message).toMatch(/http:\/\/.*plain text/);
      const tls = await connectorUntil(
        s,
        "tls-ldap",
        "Insecure evaluated",
        (c) => !!condition(c, "Insecure"),
      );
      expect(condition(tls, "Insecure")?.status).toBe("False");

      const warnings = () =>
        operator
          .logLines()
          .filter(
            (l) => l.level === "warn" && /insecure/i.test(String(l.msg)) && /plain text/.test(String(l.msg)),
          );
      await waitFor(
        async () => {
          const about = warnings().map((l) => String(l.connector));
          return about.includes(`${s.namespace}/${s.connector}`) && about.includes(`${s.namespace}/${WIKI}`);
        },
        10_000,
        () => `no warning for both plain-text connectors: ${JSON.stringify(warnings())}`,
      );
      expect(warnings().map((l) => String(l.connector))).not.toContain(`${s.namespace}/tls-ldap`);
    },
  );

  it(
    "a SCIM error with a very long detail is cut before status, and status keeps following the Employee",
    { timeout: 120_000 },
    async ({ expect }) => {
      const { s, operator } = await setUp("sp-long", {}, false);
      // scimmy quotes a PATCH path it does not know in its error detail. The attribute is accepted
      // by the Connector (a valid path), silently dropped on create, and then patched every time.
      const longName = `x${"y".repeat(6000)}`;
      const scim = await scimConnector(s, { scim: { attributes: { [longName]: "{{title}}" } } });
      await s.apply("AccessPolicy", "wiki-everyone", { grants: [{ connector: WIKI, groups: ["readers"] }] });

      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${scim.baseURL}${path}`, {
          method,
          headers: { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      // By hand, through the SCIM API: the person's user, owned (externalId), so the first
      // reconcile finds it and patches the mapped attribute at once.
      const created = await call("POST", "/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "lon",
        externalId: "E-LONG",
        name: { givenName: "Lon", familyName: "Tester" },
        active: true,
      });
      expect(created.status).toBe(201);
      const id = String(created.body.id);
      // The precondition: the service's own answer to that PATCH carries a detail of over 6000
      // characters, more than an account message may hold (4096).
      const probe = await call("PATCH", `/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: longName, value: "probe" }],
      });
      expect(probe.status).toBe(400);
      expect(String(probe.body.detail).length).toBeGreaterThan(6000);

      await s.apply("Employee", "lon", person("E-LONG", "lon", { title: "Engineer" }));
      const failed = await s.until(
        "lon",
        "the failed PATCH in status",
        (e) =>
          accountIn(e, WIKI)?.state === "Failed" && (accountIn(e, WIKI)?.message ?? "").includes("HTTP 400"),
        60_000,
      );
      const message = accountIn(failed, WIKI)!.message!;
      expect(message).toContain("Invalid path");
      expect(message.length).toBeLessThanOrEqual(1024);
      expect(readyCondition(failed)!.status).toBe("False");
      expect(readyCondition(failed)!.message.length).toBeLessThanOrEqual(1024 + WIKI.length + 2);
      expect(
        requireMetric(await operator.metrics(), "roster_connector_requests_total", {
          connector: `${s.namespace}/${WIKI}`,
          operation: "updateAttributes",
          result: "error",
        }),
      ).toBeGreaterThanOrEqual(1);
      const failures = (await s.events("lon")).filter((e) => e.reason === "ProvisioningFailed");
      expect(failures.length).toBeGreaterThanOrEqual(1);
      for (const event of failures) expect(event.message.length).toBeLessThanOrEqual(1024 + WIKI.length + 2);

      // Status keeps following the Employee: a new generation is observed, still cut.
      await s.apply("Employee", "lon", person("E-LONG", "lon", { title: "Staff Engineer" }));
      const next = await s.until(
        "lon",
        "the new generation observed",
        (e) => (e.metadata.generation ?? 0) >= 2 && accountIn(e, WIKI)?.state === "Failed",
        60_000,
      );
      expect(accountIn(next, WIKI)!.message!.length).toBeLessThanOrEqual(1024);
      expect(operator.child.exitCode).toBeNull();
    },
  );
});
