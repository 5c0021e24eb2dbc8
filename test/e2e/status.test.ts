// Status as tools read it: Argo CD's health checks (Lua 5.1) on objects captured live from this
// run, a policy whose expression only JavaScript rejects, and deletion after deleteAfter.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import { waitFor } from "../harness/processes.ts";
import { health, type Kind } from "../support/argocd.ts";
import { createRoster, getRoster } from "../support/kube.ts";
import { COUNTS_WAIT_MS, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let operator: OperatorProcess;

beforeAll(async () => {
  // No deprovision without approval, and deletion 3 s after disabling: both seen below.
  s = await scenario(info, "status", {
    safety: { maxDeprovisionsPerHour: 0 },
    deprovisioning: { action: "Delete", deleteAfter: "3s" },
  });
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await s.apply("GroupRule", "leads", {
    group: "leads",
    match: [{ key: "title", operator: "Exists" }],
    connectors: [s.connector],
  });
  const ldap = (await getRoster(s.kube, s.namespace, "Connector", s.connector)).spec as Record<
    string,
    unknown
  >;
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: "frozen" },
    spec: { ...ldap, paused: true },
  });
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

async function live(kind: Kind, name: string): Promise<{ kind: Kind }> {
  return { ...(await getRoster(s.kube, s.namespace, kind, name)), kind } as { kind: Kind };
}

async function healthOf(kind: Kind, name: string, status: string): Promise<string> {
  let last = "";
  await waitFor(
    async () => {
      const h = health(await live(kind, name));
      last = `${h.status}: ${h.message}`;
      return h.status === status;
    },
    20_000,
    () => `${kind}/${name} is ${last}, not ${status}`,
  );
  return last;
}

describe("Argo CD health on live objects", () => {
  it("Healthy, Progressing, Degraded and Suspended as the operator reports them", async () => {
    await s.apply("Employee", "hal", person("H1", "hal", { title: "Lead" }));
    await s.until("hal", "Active", (e) => e.status?.phase === "Active");
    await healthOf("Employee", "hal", "Healthy");
    await healthOf("AccessPolicy", "everyone", "Healthy");
    await healthOf("GroupRule", "leads", "Healthy");
    await healthOf("Connector", s.connector, "Healthy");
    await healthOf("Connector", "frozen", "Suspended");

    // A grant on a Connector that does not exist: the Employee is Degraded.
    await s.apply("Employee", "ivy", person("H2", "ivy", { grants: [{ connector: "nowhere" }] }));
    expect(await healthOf("Employee", "ivy", "Degraded")).toContain("nowhere");

    // Paused by annotation: Suspended.
    await s.apply("Employee", "jo", person("H3", "jo"), { annotations: { "roster.dev/paused": "true" } });
    await healthOf("Employee", "jo", "Suspended");

    // A leaver held by the brake (limit 0): the Connector is Degraded until approved.
    await s.apply("Employee", "hal", person("H1", "hal", { title: "Lead", employmentStatus: "Terminated" }));
    expect(await healthOf("Connector", s.connector, "Degraded")).toMatch(/held/i);
    const hal = await s.until(
      "hal",
      "held",
      (e) => e.status?.conditions?.some((c) => c.reason === "DeprovisioningHeld") === true,
    );
    expect(hal.status?.accounts?.[0]?.state).toBe("Held");
  });

  it("deletes a leaver's account deleteAfter after it was disabled, once approved", async () => {
    const { setHeaderOptions, PatchStrategy } = await import("@kubernetes/client-node");
    await s.kube.custom.patchNamespacedCustomObject(
      {
        group: "roster.dev",
        version: "v1alpha1",
        namespace: s.namespace,
        plural: "connectors",
        name: s.connector,
        body: { metadata: { annotations: { "roster.dev/approve-deprovisioning": "1" } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const disabled = await s.until(
      "hal",
      "disabled",
      (e) => e.status?.accounts?.[0]?.state === "Disabled",
      30_000,
    );
    expect(await s.ldap.person(s.usersDN, "H1")).toBeDefined();
    const gone = await s.until("hal", "deleted", (e) => e.status?.accounts?.[0]?.state === "Deleted", 30_000);
    expect(await s.ldap.person(s.usersDN, "H1")).toBeUndefined();
    const disabledAt = new Date(gone.status!.deprovisionedAt!).getTime();
    expect(new Date(gone.status!.accounts![0]!.lastSyncTime!).getTime() - disabledAt).toBeGreaterThanOrEqual(
      2000,
    );
    expect(disabled.status?.phase).toBe("Deprovisioned");
    expect((await s.events("hal")).map((e) => e.reason)).toContain("AccountDeleted");
  });
});

describe("policy status", () => {
  // Admission checks patterns with RE2 (CEL), and the operator evaluates them with RE2 too, so RE2
  // syntax JavaScript's RegExp lacks (a named group written (?P<...>)) works as accepted.
  it("evaluates an expression only RE2 understands the way admission accepted it", async () => {
    await s.apply("AccessPolicy", "named-groups", {
      match: [{ key: "title", operator: "Matches", values: ["^(?P<role>Principal) "] }],
      grants: [{ connector: s.connector, groups: ["named"] }],
    });
    await s.apply("Employee", "pia", person("H9", "pia", { title: "Principal Engineer" }));
    await s.apply("Employee", "pam", person("H10", "pam", { title: "Engineer, Principal" }));
    await waitFor(
      async () => {
        const status = (await getRoster(s.kube, s.namespace, "AccessPolicy", "named-groups")).status as {
          matchedEmployees?: number;
          conditions?: { type: string; status: string; reason: string }[];
        };
        const ready = status?.conditions?.find((c) => c.type === "Ready");
        return ready?.status === "True" && ready.reason === "Valid" && status.matchedEmployees === 1;
      },
      COUNTS_WAIT_MS,
      () => "the RE2 expression is not evaluated as valid, matching one person",
    );
    const pia = await s.until("pia", "granted", (e) =>
      (e.status?.entitlements ?? []).some((x) => x.group === "named"),
    );
    expect(pia.status?.entitlements).toContainEqual({
      connector: s.connector,
      group: "named",
      source: "AccessPolicy/named-groups",
    });
    const pam = await s.until(
      "pam",
      "reconciled",
      (e) => e.status?.observedGeneration === e.metadata.generation,
    );
    expect((pam.status?.entitlements ?? []).some((x) => x.group === "named")).toBe(false);
    expect(health(await live("AccessPolicy", "named-groups")).status).toBe("Healthy");
  });
});
