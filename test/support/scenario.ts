// A test namespace with an LDAP Connector on its own subtree of the shared slapd, and helpers to
// apply Employees and wait for what a user would look at.
import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import type { HarnessInfo } from "../harness/info.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, freshNamespace, getRoster, kubeFrom, PLURALS, type Kube } from "./kube.ts";
import { ensureOUs, ldapLook, type LdapLook } from "./ldap.ts";

export type ScenarioEvent = { reason: string; message: string; type: string };

export type Scenario = {
  kube: Kube;
  namespace: string;
  ldap: LdapLook;
  usersDN: string;
  groupsDN: string;
  connector: string;
  apply(
    kind: string,
    name: string,
    spec: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ): Promise<void>;
  employee(name: string): Promise<Employee>;
  /** Waits until the Employee's status satisfies `check` (for the current generation). */
  until(name: string, what: string, check: (e: Employee) => boolean, timeoutMs?: number): Promise<Employee>;
  events(name: string): Promise<ScenarioEvent[]>;
  /**
   * Waits until the object's Events satisfy `check` and returns them. Events are written after the
   * change they tell of (and after its status), so a test that just saw the status waits for them.
   */
  eventsUntil(
    name: string,
    what: string,
    check: (events: ScenarioEvent[]) => boolean,
  ): Promise<ScenarioEvent[]>;
  close(): Promise<void>;
};

export function person(
  id: string,
  username: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    employeeId: id,
    username,
    givenName: username.charAt(0).toUpperCase() + username.slice(1),
    familyName: "Tester",
    email: `${username}@example.com`,
    ...extra,
  };
}

export async function scenario(
  info: HarnessInfo,
  prefix: string,
  connectorSpec: Record<string, unknown> = {},
  ldapInfo: HarnessInfo["ldap"] = info.ldap,
): Promise<Scenario> {
  const kube = kubeFrom(info);
  const namespace = await freshNamespace(kube, prefix);
  const ldap = await ldapLook(ldapInfo);
  const ou = `${prefix}-${randomBytes(3).toString("hex")}`;
  const [usersDN, groupsDN] = await ensureOUs(ldap.client, ou, [ldapInfo.usersDN, ldapInfo.groupsDN]);
  await kube.core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: "ldap-bind" },
      type: "Opaque",
      stringData: { password: ldapInfo.adminPassword },
    },
  });
  const connector = "corp-ldap";
  const ldapSpec = (connectorSpec.ldap as Record<string, unknown> | undefined) ?? {};
  await createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: connector },
    spec: {
      ...connectorSpec,
      ldap: {
        url: ldapInfo.url,
        bindDN: ldapInfo.adminDN,
        bindPasswordSecretRef: { name: "ldap-bind", key: "password" },
        usersDN,
        groupsDN,
        ...ldapSpec,
      },
    },
  });

  const s: Scenario = {
    kube,
    namespace,
    ldap,
    usersDN: usersDN!,
    groupsDN: groupsDN!,
    connector,
    async apply(kind, name, spec, metadata = {}) {
      const body = { apiVersion: API_VERSION, kind, metadata: { name, ...metadata }, spec };
      try {
        const existing = await getRoster(kube, namespace, kind, name);
        await kube.custom.replaceNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace,
          plural: PLURALS[kind]!,
          name,
          body: {
            ...body,
            metadata: { ...(existing.metadata as object), ...body.metadata },
          },
        });
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error;
        await createRoster(kube, namespace, body);
      }
    },
    async employee(name) {
      return (await getRoster(kube, namespace, "Employee", name)) as unknown as Employee;
    },
    async until(name, what, check, timeoutMs = 30_000) {
      let last: Employee | undefined;
      await waitFor(
        async () => {
          last = await s.employee(name);
          return last.status?.observedGeneration === last.metadata.generation && check(last);
        },
        timeoutMs,
        () => `${name}: ${what}; last status: ${JSON.stringify(last?.status)}`,
        150,
      );
      return last!;
    },
    async events(name) {
      const list = await kube.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${name}`,
      });
      return list.items.map((e) => ({
        reason: e.reason ?? "",
        message: e.message ?? "",
        type: e.type ?? "",
      }));
    },
    async eventsUntil(name, what, check) {
      let events: ScenarioEvent[] = [];
      await waitFor(
        async () => check((events = await s.events(name))),
        10_000,
        () => `${name}: ${what}; its Events: ${JSON.stringify(events)}`,
        150,
      );
      return events;
    },
    async close() {
      await ldap.close();
    },
  };
  return s;
}

export function readyCondition(e: Employee) {
  return e.status?.conditions?.find((c) => c.type === "Ready");
}

export function expectReady(e: Employee, phase: string) {
  expect(e.status?.phase).toBe(phase);
  expect(readyCondition(e)?.status).toBe("True");
}
