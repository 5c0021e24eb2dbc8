// What happens when things are deleted (issue 12, items 9-11), on the real API server (with its
// namespace and garbage-collector controllers) and slapd, the operator a separate process:
// - a deleted Connector waits for the Employees that own accounts through it, and keeps the Secret
//   it needs to deprovision them, however they were deleted;
// - with deprovisioning.action Delete, the deletion after deleteAfter happens also when the Employee
//   object is gone, across an operator restart, and not when the person was rehired meanwhile;
// - a generated password whose setting failed after the account was created is set on a later try.
import { afterAll, describe, expect, inject, it } from "vitest";
import { InvalidCredentialsError, Client } from "ldapts";
import type { V1Secret } from "@kubernetes/client-node";
import type { Connector } from "../../src/api/types.ts";
import { waitFor } from "../harness/processes.ts";
import { getRoster } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import { startLdapProxy } from "../support/ldap-proxy.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

const SECRET_FINALIZER = "roster.dev/connector-credentials";
const CONNECTOR_FINALIZER = "roster.dev/accounts";

async function setUp(prefix: string, connectorSpec: Record<string, unknown> = {}) {
  const s = await scenario(info, prefix, connectorSpec);
  cleanups.push(() => s.close());
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  const operator = await start(s);
  return { s, operator };
}

async function start(s: Scenario): Promise<OperatorProcess> {
  const operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  cleanups.push(() => operator.stop());
  return operator;
}

const gone = (error: unknown) => (error as { code?: number }).code === 404;

async function connectorOrGone(s: Scenario): Promise<Connector | undefined> {
  try {
    return (await getRoster(s.kube, s.namespace, "Connector", s.connector)) as unknown as Connector;
  } catch (error) {
    if (gone(error)) return undefined;
    throw error;
  }
}

async function secretOrGone(s: Scenario, name: string): Promise<V1Secret | undefined> {
  try {
    return await s.kube.core.readNamespacedSecret({ name, namespace: s.namespace });
  } catch (error) {
    if (gone(error)) return undefined;
    throw error;
  }
}

async function employeeGone(s: Scenario, name: string): Promise<boolean> {
  try {
    await s.employee(name);
    return false;
  } catch (error) {
    if (gone(error)) return true;
    throw error;
  }
}

const deleteEmployee = (s: Scenario, name: string) =>
  s.kube.custom.deleteNamespacedCustomObject({
    group: "roster.dev",
    version: "v1alpha1",
    namespace: s.namespace,
    plural: "employees",
    name,
  });

const isDisabled = (entry: Awaited<ReturnType<Scenario["ldap"]["person"]>>) =>
  attr(entry, "pwdAccountLockedTime").length > 0;

async function canBind(dn: string, password: string): Promise<boolean> {
  const c = new Client({ url: info.ldap.url, timeout: 10_000 });
  try {
    await c.bind(dn, password);
    return true;
  } catch (error) {
    if (error instanceof InvalidCredentialsError) return false;
    throw error;
  } finally {
    await c.unbind().catch(() => {});
  }
}

describe("deleting Connectors, Secrets and Employees", () => {
  it(
    "a deleted Connector waits for its accounts and keeps its Secret; it goes once they are deprovisioned",
    { timeout: 120_000 },
    async () => {
      const { s } = await setUp("conn-delete");
      await s.apply("Employee", "ada", person("CD-1", "ada"));
      await s.until("ada", "Active", (e) => e.status?.phase === "Active");
      await waitFor(
        async () =>
          !!(await connectorOrGone(s))?.metadata.finalizers?.includes(CONNECTOR_FINALIZER) &&
          !!(await secretOrGone(s, "ldap-bind"))?.metadata?.finalizers?.includes(SECRET_FINALIZER),
        30_000,
        () => "the Connector and its Secret did not get their finalizers",
      );

      await s.kube.custom.deleteNamespacedCustomObject({
        group: "roster.dev",
        version: "v1alpha1",
        namespace: s.namespace,
        plural: "connectors",
        name: s.connector,
      });
      await s.kube.core.deleteNamespacedSecret({ name: "ldap-bind", namespace: s.namespace });
      let seen: Connector | undefined;
      await waitFor(
        async () => {
          seen = await connectorOrGone(s);
          const deleting = seen?.status?.conditions?.find((c) => c.type === "Deleting");
          return deleting?.status === "True" && deleting.message.includes("(ada)");
        },
        30_000,
        () => `the Connector does not say it waits for ada: ${JSON.stringify(seen?.status?.conditions)}`,
      );
      // Deleted, but kept while the Connector needs it.
      const secret = await secretOrGone(s, "ldap-bind");
      expect(secret?.metadata?.deletionTimestamp).toBeDefined();

      // A joiner gets no account in a Connector on its way out.
      await s.apply("Employee", "bob", person("CD-2", "bob"));
      const bob = await s.until("bob", "Pending in the Connector being deleted", (e) =>
        (e.status?.accounts ?? []).some(
          (a) => a.state === "Pending" && /being deleted/.test(a.message ?? ""),
        ),
      );
      expect(readyCondition(bob)).toMatchObject({ status: "False", reason: "ConnectorDeleting" });
      expect(await s.ldap.person(s.usersDN, "CD-2")).toBeUndefined();

      // The leaver is deprovisioned with the deleted Secret's password, then everything goes.
      await deleteEmployee(s, "ada");
      await waitFor(
        () => employeeGone(s, "ada"),
        30_000,
        () => "ada was not deprovisioned and let go",
      );
      const ada = await s.ldap.person(s.usersDN, "CD-1");
      expect(isDisabled(ada)).toBe(true);
      expect(await s.ldap.groupsOf(s.groupsDN, ada!.dn)).toEqual([]);
      await waitFor(
        async () =>
          (await connectorOrGone(s)) === undefined && (await secretOrGone(s, "ldap-bind")) === undefined,
        30_000,
        () => "the Connector and its Secret did not go once nobody owned an account through it",
      );
    },
  );

  it(
    "deleteAfter deletes the account of an Employee that is gone, across a restart; a rehire keeps it",
    { timeout: 150_000 },
    async () => {
      const spec = { deprovisioning: { action: "Delete", deleteAfter: "25s" } };
      const set = await setUp("delete-after", spec);
      const s = set.s;
      let operator = set.operator;
      await s.apply("Employee", "carol", person("DA-1", "carol"));
      await s.apply("Employee", "dave", person("DA-2", "dave"));
      await s.until("carol", "Active", (e) => e.status?.phase === "Active");
      await s.until("dave", "Active", (e) => e.status?.phase === "Active");

      await Promise.all([deleteEmployee(s, "carol"), deleteEmployee(s, "dave")]);
      await waitFor(
        async () => (await employeeGone(s, "carol")) && (await employeeGone(s, "dave")),
        30_000,
        () => "the leavers were not disabled and let go",
      );
      // Disabled now, deleted later: the Connector holds the two deletions.
      expect(isDisabled(await s.ldap.person(s.usersDN, "DA-1"))).toBe(true);
      expect(isDisabled(await s.ldap.person(s.usersDN, "DA-2"))).toBe(true);
      const scheduled = (await connectorOrGone(s))?.status?.deprovisioning?.scheduled ?? [];
      expect(scheduled.map((d) => d.employeeId).sort()).toEqual(["DA-1", "DA-2"]);

      // A restart forgets nothing.
      await operator.stop();
      operator = await start(s);
      // Dave is rehired under the same employeeId before his deletion is due.
      await s.apply("Employee", "dave-again", person("DA-2", "dave"));
      await s.until("dave-again", "Active again", (e) => e.status?.phase === "Active");

      await waitFor(
        async () => (await s.ldap.person(s.usersDN, "DA-1")) === undefined,
        60_000,
        () => `carol's account was not deleted after deleteAfter:\n${operator.tail(20)}`,
        500,
      );
      await waitFor(
        async () => ((await connectorOrGone(s))?.status?.deprovisioning?.scheduled ?? []).length === 0,
        30_000,
        () => "the scheduled deletions were not all dealt with",
      );
      const dave = await s.ldap.person(s.usersDN, "DA-2");
      expect(dave).toBeDefined();
      expect(isDisabled(dave)).toBe(false);
      await s.eventsUntil(
        s.connector,
        "an Event for each outcome",
        (events) =>
          events.some((e) => e.reason === "AccountDeleted" && e.message.includes("DA-1")) &&
          events.some((e) => e.reason === "ScheduledDeletionDropped" && e.message.includes("DA-2")),
      );
    },
  );

  it(
    "a generated password whose setting failed after the create is set on the next try",
    { timeout: 90_000 },
    async () => {
      const proxy = await startLdapProxy(info.ldap.url);
      cleanups.push(() => proxy.close());
      proxy.fault = "drop-password-modify";
      const { s } = await setUp("password-retry", {
        ldap: { url: proxy.url },
        credentials: "GeneratedSecret",
      });
      await s.apply("Employee", "erin", person("PW-1", "erin"));
      // The entry is added, the password never reaches slapd.
      await waitFor(
        async () => proxy.hits > 0 && (await s.ldap.person(s.usersDN, "PW-1")) !== undefined,
        30_000,
        () => "the account was not created up to its password",
      );
      const secret = await secretOrGone(s, "erin-corp-ldap-credentials");
      expect(secret?.metadata?.annotations?.["roster.dev/password"]).toBe("pending");
      const password = Buffer.from(secret!.data!.password!, "base64").toString("utf8");
      const dn = (await s.ldap.person(s.usersDN, "PW-1"))!.dn;
      expect(await canBind(dn, password)).toBe(false);

      proxy.fault = "none";
      await s.until("erin", "Active", (e) => e.status?.phase === "Active", 60_000);
      expect(await canBind(dn, password)).toBe(true);
      expect(
        (await secretOrGone(s, "erin-corp-ldap-credentials"))?.metadata?.annotations?.["roster.dev/password"],
      ).toBe("set");
    },
  );
});
