// Trust in what the targets hold: drift found by the full scan (Correct puts it back, Report
// says so), orphans reported and left alone, the mass-change brake, and pause.
import { afterAll, describe, expect, inject, it } from "vitest";
import { Attribute, Change } from "ldapts";
import type { Connector } from "../../src/api/types.ts";
import { waitFor } from "../harness/processes.ts";
import { getRoster, type Kube } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import {
  COUNTS_WAIT_MS,
  counterOrZero,
  requireMetric,
  startOperator,
  type OperatorProcess,
  employeeQueueIdle,
} from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function setUp(
  prefix: string,
  connectorSpec: Record<string, unknown>,
): Promise<{ s: Scenario; operator: OperatorProcess }> {
  const s = await scenario(info, prefix, connectorSpec);
  cleanups.push(() => s.close());
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  const operator = await startOperator({
    namespace: s.namespace,
    leaderElection: false,
  });
  cleanups.push(() => operator.stop());
  return { s, operator };
}

const replace = (type: string, values: string[]) =>
  new Change({ operation: "replace", modification: new Attribute({ type, values }) });
const remove = (type: string, values: string[] = []) =>
  new Change({ operation: "delete", modification: new Attribute({ type, values }) });
const add = (type: string, values: string[]) =>
  new Change({ operation: "add", modification: new Attribute({ type, values }) });

async function connectorStatus(
  kube: Kube,
  namespace: string,
  name: string,
): Promise<NonNullable<Connector["status"]>> {
  return ((await getRoster(kube, namespace, "Connector", name)) as unknown as Connector).status ?? {};
}

/** Completed full scans (every Connector's scan is one reconcile of the "scan" queue). */
const scansDone = async (operator: OperatorProcess) =>
  requireMetric(await operator.metrics(), "controller_runtime_reconcile_total", { controller: "scan" });

async function setPaused(kube: Kube, namespace: string, connector: string, paused: boolean): Promise<void> {
  const k8s = await import("@kubernetes/client-node");
  await kube.custom.patchNamespacedCustomObject(
    {
      group: "roster.dev",
      version: "v1alpha1",
      namespace,
      plural: "connectors",
      name: connector,
      body: { spec: { paused } },
    },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}

const drifted = (e: { status?: { conditions?: { type: string; status: string; reason: string }[] } }) =>
  e.status?.conditions?.find((c) => c.type === "Drifted");

describe("drift", () => {
  it("Correct: attributes, membership, the disabled state and a deleted account changed by hand are put back within one resync", async () => {
    const { s, operator } = await setUp("drift-correct", {
      drift: { policy: "Correct", resyncInterval: "2s" },
    });
    await s.apply("Employee", "ann", person("D1", "ann", { title: "Engineer" }));
    await s.apply("Employee", "leo", person("D2", "leo", { employmentStatus: "Terminated" }));
    await s.apply("Employee", "kim", person("D3", "kim"));
    await s.until("ann", "Active", (e) => e.status?.phase === "Active");
    await s.until("kim", "Active", (e) => e.status?.phase === "Active");
    await s.until("leo", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    const ann = (await s.ldap.person(s.usersDN, "D1"))!;
    const kim = (await s.ldap.person(s.usersDN, "D3"))!;

    // By hand: ann's title and group, kim deleted; leo was never provisioned, so make him by hand as ours and enabled.
    await s.ldap.client.modify(ann.dn, [
      replace("title", ["Chief Everything"]),
      replace("mail", ["evil@example.com"]),
    ]);
    await s.ldap.client.modify(`cn=staff,${s.groupsDN}`, [remove("member", [ann.dn])]);
    await s.ldap.client.del(`cn=staff,${s.groupsDN}`).catch(() => {});
    await s.ldap.client.del(kim.dn);

    const fixed = await s.until(
      "ann",
      "drift corrected",
      (e) => drifted(e)?.reason === "DriftCorrected",
      30_000,
    );
    expect(drifted(fixed)?.status).toBe("False");
    const annAfter = await s.ldap.person(s.usersDN, "D1");
    expect(attr(annAfter, "title")).toEqual(["Engineer"]);
    expect(attr(annAfter, "mail")).toEqual(["ann@example.com"]);
    expect(await s.ldap.groupsOf(s.groupsDN, ann.dn)).toContain("staff");
    await waitFor(
      async () => (await s.ldap.people(s.usersDN, "D3")).length === 1,
      30_000,
      () => "kim was not recreated",
    );
    expect((await s.events("ann")).map((e) => e.reason)).toEqual(
      expect.arrayContaining(["DriftDetected", "DriftCorrected"]),
    );
    const metrics = await operator.metrics();
    expect(
      requireMetric(metrics, "roster_drift_detected_total", { kind: "attributes" }),
    ).toBeGreaterThanOrEqual(1);
    expect(requireMetric(metrics, "roster_drift_detected_total", { kind: "deleted" })).toBeGreaterThanOrEqual(
      1,
    );
    // The scan that found it was timed.
    const scans = { connector: `${s.namespace}/${s.connector}` };
    expect(requireMetric(metrics, "roster_drift_scan_duration_seconds_count", scans)).toBeGreaterThanOrEqual(
      1,
    );
    expect(requireMetric(metrics, "roster_drift_scan_duration_seconds_sum", scans)).toBeGreaterThan(0);
  });

  it("Correct: a leaver's account re-enabled by hand is disabled again", async () => {
    const { s } = await setUp("drift-leaver", { drift: { policy: "Correct", resyncInterval: "2s" } });
    await s.apply("Employee", "lea", person("L1", "lea"));
    await s.until("lea", "Active", (e) => e.status?.phase === "Active");
    await s.apply("Employee", "lea", person("L1", "lea", { employmentStatus: "Terminated" }));
    await s.until("lea", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    const dn = (await s.ldap.person(s.usersDN, "L1"))!.dn;
    await s.ldap.client.modify(dn, [remove("pwdAccountLockedTime")]);
    await waitFor(
      async () => attr(await s.ldap.person(s.usersDN, "L1"), "pwdAccountLockedTime").length === 1,
      30_000,
      () => "the re-enabled leaver was not disabled again",
    );
  });

  it("Report: leaves the change in place and says so on the Employee and the Connector", async () => {
    const { s, operator } = await setUp("drift-report", {
      drift: { policy: "Report", resyncInterval: "2s" },
    });
    await s.apply("Employee", "ray", person("R1", "ray", { title: "Engineer" }));
    await s.until("ray", "Active", (e) => e.status?.phase === "Active");
    const dn = (await s.ldap.person(s.usersDN, "R1"))!.dn;
    await s.ldap.client.modify(dn, [replace("title", ["Changed By Hand"])]);
    await s.ldap.client
      .modify(`cn=staff,${s.groupsDN}`, [add("member", [`uid=nobody,${s.usersDN}`])])
      .catch(() => {});
    const reported = await s.until("ray", "drift reported", (e) => drifted(e)?.status === "True", 30_000);
    expect(drifted(reported)).toMatchObject({ reason: "DriftReported" });
    expect(JSON.stringify(drifted(reported))).toContain("title");
    // The operator must look again and still leave it: two more full scans complete (the first may
    // have been under way before the report), each of which sees the drift, and whatever Employee
    // reconcile they caused has finished.
    const scansAtReport = await scansDone(operator);
    await waitFor(
      async () => (await scansDone(operator)) >= scansAtReport + 2,
      20_000,
      () => "no full scan ran after the drift was reported",
    );
    await employeeQueueIdle(operator);
    expect(attr(await s.ldap.person(s.usersDN, "R1"), "title")).toEqual(["Changed By Hand"]);
    expect(drifted(await s.employee("ray"))).toMatchObject({ status: "True", reason: "DriftReported" });
    await waitFor(
      async () => (await connectorStatus(s.kube, s.namespace, s.connector)).driftedAccounts === 1,
      15_000,
      () => "driftedAccounts is not 1",
    );
    expect(requireMetric(await operator.metrics(), "roster_drift_accounts", { kind: "attributes" })).toBe(1);
  });
});

describe("orphans", () => {
  it("an entry created by hand under usersDN is listed as an orphan and left alone", async () => {
    const { s, operator } = await setUp("orphans", { drift: { resyncInterval: "2s" } });
    await s.apply("Employee", "ola", person("O1", "ola"));
    await s.until("ola", "Active", (e) => e.status?.phase === "Active");
    const dn = `uid=handmade,${s.usersDN}`;
    await s.ldap.client.add(dn, {
      objectClass: ["inetOrgPerson"],
      uid: "handmade",
      cn: "Hand Made",
      sn: "Made",
    });
    await waitFor(
      async () => (await connectorStatus(s.kube, s.namespace, s.connector)).orphanAccounts?.count === 1,
      20_000,
      () => "the orphan was not reported",
    );
    const status = await connectorStatus(s.kube, s.namespace, s.connector);
    expect(status.orphanAccounts?.ids).toEqual([dn]);
    expect(requireMetric(await operator.metrics(), "roster_orphan_accounts")).toBe(1);
    const { searchEntries } = await s.ldap.client.search(dn, { scope: "base", attributes: ["*", "+"] });
    expect(attr(searchEntries[0], "cn")).toEqual(["Hand Made"]);
    expect(attr(searchEntries[0], "pwdAccountLockedTime")).toEqual([]);
    expect(attr(searchEntries[0], "modifiersName")).toEqual(attr(searchEntries[0], "creatorsName"));
  });
});

describe("the mass-change brake", () => {
  it("with 60 Employees, deleting 50 deprovisions at most the limit, holds the rest, and the approval releases them", async () => {
    const { s, operator } = await setUp("brake", {});
    const names = Array.from({ length: 60 }, (_, i) => `m${String(i).padStart(2, "0")}`);
    for (let i = 0; i < 60; i += 20)
      await Promise.all(names.slice(i, i + 20).map((n, j) => s.apply("Employee", n, person(`M${i + j}`, n))));
    const list = async () =>
      (
        (await s.kube.custom.listNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "employees",
        })) as {
          items: {
            metadata: { name: string; generation?: number; deletionTimestamp?: string };
            status?: {
              phase?: string;
              observedGeneration?: number;
              conditions?: { type: string; status: string; reason: string }[];
            };
          }[];
        }
      ).items;
    await waitFor(
      async () => (await list()).filter((e) => e.status?.phase === "Active").length === 60,
      90_000,
      () => "not all Active",
      500,
    );
    await waitFor(
      async () => (await connectorStatus(s.kube, s.namespace, s.connector)).managedAccounts === 60,
      COUNTS_WAIT_MS,
      () => "managedAccounts not 60",
    );

    const doomed = names.slice(0, 50);
    await Promise.all(
      doomed.map((name) =>
        s.kube.custom.deleteNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "employees",
          name,
        }),
      ),
    );
    const limit = 6; // min(20 per hour, 10% of 60)
    const disabledCount = async () => {
      const { searchEntries } = await s.ldap.client.search(s.usersDN, {
        scope: "one",
        filter: "(pwdAccountLockedTime=*)",
        attributes: ["uid"],
      });
      return searchEntries.length;
    };
    await waitFor(
      async () => (await connectorStatus(s.kube, s.namespace, s.connector)).heldDeprovisions === 50 - limit,
      30_000,
      () => "held deprovisions not reported",
    );
    // Every deleted Employee has been dealt with before we count: the allowed ones are gone (their
    // finalizer comes off only after the disable), each held one has reconciled its deletion
    // (status for the current generation) and says it is held, and no reconcile is in flight.
    const heldEmployees = async () =>
      (await list()).filter(
        (e) =>
          e.metadata.deletionTimestamp !== undefined &&
          e.status?.observedGeneration === e.metadata.generation &&
          e.status?.conditions?.some(
            (c) => c.type === "Ready" && c.status === "False" && c.reason === "DeprovisioningHeld",
          ),
      ).length;
    let seen = "";
    await waitFor(
      async () => {
        const [remaining, held] = [(await list()).length, await heldEmployees()];
        seen = `${remaining} Employees left, ${held} held`;
        return remaining === 60 - limit && held === 50 - limit;
      },
      30_000,
      () => `the deletions were not all processed: ${seen}`,
      500,
    );
    await employeeQueueIdle(operator);
    expect(await disabledCount()).toBe(limit);
    const status = await connectorStatus(s.kube, s.namespace, s.connector);
    expect(status.conditions?.find((c) => c.type === "DeprovisioningHeld")).toMatchObject({
      status: "True",
      reason: "MassChangeBrake",
    });
    // The held Employees are still there, Terminating, with their accounts intact.
    expect((await list()).length).toBe(60 - limit);
    expect(
      (
        await s.kube.core.listNamespacedEvent({
          namespace: s.namespace,
          fieldSelector: `involvedObject.name=${s.connector}`,
        })
      ).items.map((e) => e.reason),
    ).toContain("DeprovisioningHeld");

    await s.kube.custom.patchNamespacedCustomObject(
      {
        group: "roster.dev",
        version: "v1alpha1",
        namespace: s.namespace,
        plural: "connectors",
        name: s.connector,
        body: { metadata: { annotations: { "roster.dev/approve-deprovisioning": String(50 - limit) } } },
      },
      (await import("@kubernetes/client-node")).setHeaderOptions(
        "Content-Type",
        (await import("@kubernetes/client-node")).PatchStrategy.MergePatch,
      ),
    );
    await waitFor(
      async () => (await disabledCount()) === 50,
      60_000,
      () => "approval did not release the held deprovisions",
      500,
    );
    await waitFor(
      async () => (await list()).length === 10,
      60_000,
      () => "deleted Employees did not go away",
      500,
    );
    await waitFor(
      async () =>
        (await connectorStatus(s.kube, s.namespace, s.connector)).conditions?.find(
          (c) => c.type === "DeprovisioningHeld",
        )?.status === "False",
      20_000,
      () => "DeprovisioningHeld did not clear",
    );
    const annotations =
      (
        (await getRoster(s.kube, s.namespace, "Connector", s.connector)).metadata as {
          annotations?: Record<string, string>;
        }
      ).annotations ?? {};
    expect(annotations["roster.dev/approve-deprovisioning"]).toBeUndefined();
  });
});

describe("pause", () => {
  it("a paused Connector makes no request that changes anything, and shows Paused", async () => {
    const { s, operator } = await setUp("pause", { paused: true });
    await s.apply("Employee", "pat", person("P1", "pat"));
    await waitFor(
      async () =>
        (await connectorStatus(s.kube, s.namespace, s.connector)).conditions?.some(
          (c) => c.type === "Paused" && c.status === "True",
        ) === true,
      20_000,
      () => "Connector does not show Paused",
    );
    // The operator has processed pat against the paused Connector (status for the current
    // generation, account Pending), a full scan of the Connector has run, and nothing is in flight.
    const pat = await s.until(
      "pat",
      "reconciled against the paused Connector",
      (e) => e.status?.accounts?.some((a) => a.connector === s.connector && a.state === "Pending") === true,
    );
    expect(pat.status?.accounts).toEqual([
      expect.objectContaining({ connector: s.connector, state: "Pending" }),
    ]);
    await waitFor(
      async () => (await scansDone(operator)) >= 1,
      20_000,
      () => "no full scan of the paused Connector ran",
    );
    await employeeQueueIdle(operator);
    expect(await s.ldap.person(s.usersDN, "P1")).toBeUndefined();
    const writes = [
      "createAccount",
      "updateAttributes",
      "setEnabled",
      "addToGroup",
      "removeFromGroup",
      "deleteAccount",
    ];
    const metrics = await operator.metrics();
    // Absent is the expected state, counted as 0: prom-client exports a labelled counter's series
    // only from its first inc(), so no series means no such request was ever made. That absence is
    // only evidence if requests are counted at all, which the unpause below checks.
    for (const operation of writes)
      expect(counterOrZero(metrics, "roster_connector_requests_total", { operation }), operation).toBe(0);

    // Control: unpaused, the same process creates pat's account and counts the request.
    await setPaused(s.kube, s.namespace, s.connector, false);
    await s.until(
      "pat",
      "Active once the Connector is unpaused",
      (e) => e.status?.accounts?.some((a) => a.connector === s.connector && a.state === "Active") === true,
    );
    expect(await s.ldap.person(s.usersDN, "P1")).toBeDefined();
    expect(
      requireMetric(await operator.metrics(), "roster_connector_requests_total", {
        operation: "createAccount",
        result: "success",
      }),
    ).toBeGreaterThanOrEqual(1);
  });

  it("roster.dev/paused on an Employee stops its changes and shows Paused", async () => {
    const { s, operator } = await setUp("pause-emp", {});
    await s.apply("Employee", "pia", person("P2", "pia"));
    await s.until("pia", "Active", (e) => e.status?.phase === "Active");
    await s.apply("Employee", "pia", person("P2", "pia", { employmentStatus: "Terminated" }), {
      annotations: { "roster.dev/paused": "true" },
    });
    await s.until(
      "pia",
      "Paused",
      (e) => e.status?.conditions?.some((c) => c.type === "Paused" && c.status === "True") === true,
    );
    // The Paused condition for the current generation is written by the reconcile that saw the
    // change; once the queue is idle that reconcile has finished, and nothing else is pending.
    await employeeQueueIdle(operator);
    expect(attr(await s.ldap.person(s.usersDN, "P2"), "pwdAccountLockedTime")).toEqual([]);
    expect((await s.employee("pia")).status?.phase).toBe("Active");

    // Control: the held-back change is real; with the annotation gone the leaver is disabled.
    await s.apply("Employee", "pia", person("P2", "pia", { employmentStatus: "Terminated" }), {
      annotations: {},
    });
    await s.until(
      "pia",
      "Deprovisioned once unpaused",
      (e) => e.status?.phase === "Deprovisioned" && !e.status.conditions?.some((c) => c.type === "Paused"),
    );
    expect(attr(await s.ldap.person(s.usersDN, "P2"), "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
  });
});
