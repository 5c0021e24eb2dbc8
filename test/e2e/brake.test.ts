// The mass-change brake across processes (issue 12): two operator replicas on one Lease, the
// brake tripped, then both replicas SIGKILLed and replaced, twice; approvals, wrong and exact;
// and an approval annotation already present when the replicas start. api.md: once tripped the
// brake latches, a restart or a failover neither releases nor forgets what it holds (its state is
// in the Connector's status), the approval must equal the held count and gives no credit for
// later deprovisions, and only the leader acts on approvals.
//
// The tests run in order on one namespace: each starts from the state the previous one left.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CoordinationV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Connector, Employee } from "../../src/api/types.ts";
import { waitFor } from "../harness/processes.ts";
import { getRoster, listRoster } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import { metricValue, requireMetric, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const APPROVE = "roster.dev/approve-deprovisioning";
const LIMIT = 3;
const PEOPLE = 12;
const LEAVERS = 10;
const names = Array.from({ length: PEOPLE }, (_, i) => `b${String(i).padStart(2, "0")}`);
const idOf = (name: string) => `BR-${name}`;
/** b00..b09 leave in the first test, b10 after the approval, b11 stays throughout. */
const firstLeavers = names.slice(0, LEAVERS);
const lateLeaver = names[LEAVERS]!;

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

let s: Scenario;
let leaseName: string;
let replicas: OperatorProcess[] = [];
let leader: OperatorProcess;
let standby: OperatorProcess;
/** employeeIds of the accounts the brake let through in the first test. */
let firstDisabled: string[] = [];

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

async function patch(plural: string, name: string, body: Record<string, unknown>): Promise<void> {
  await s.kube.custom.patchNamespacedCustomObject(
    { group: "roster.dev", version: "v1alpha1", namespace: s.namespace, plural, name, body },
    mergePatch,
  );
}

const terminate = (name: string) => patch("employees", name, { spec: { employmentStatus: "Terminated" } });
const annotateApproval = (value: string) =>
  patch("connectors", s.connector, { metadata: { annotations: { [APPROVE]: value } } });

async function connector(): Promise<Connector> {
  return (await getRoster(s.kube, s.namespace, "Connector", s.connector)) as unknown as Connector;
}

const heldCondition = (c: Connector) => c.status?.conditions?.find((x) => x.type === "DeprovisioningHeld");

const employees = () => listRoster<Employee>(s.kube, s.namespace, "Employee");

const current = (e: Employee) => e.status?.observedGeneration === e.metadata.generation;
const isHeld = (e: Employee) =>
  current(e) &&
  readyCondition(e)?.status === "False" &&
  readyCondition(e)?.reason === "DeprovisioningHeld" &&
  e.status?.accounts?.some((a) => a.connector === s.connector && a.state === "Held") === true;
const isDeprovisioned = (e: Employee) =>
  current(e) &&
  readyCondition(e)?.status === "True" &&
  readyCondition(e)?.reason === "Deprovisioned" &&
  e.status?.accounts?.some((a) => a.connector === s.connector && a.state === "Disabled") === true;

/** employeeIds of the accounts under this file's usersDN that are disabled in slapd, sorted. */
async function disabledIds(): Promise<string[]> {
  const { searchEntries } = await s.ldap.client.search(s.usersDN, {
    scope: "one",
    filter: "(&(employeeNumber=*)(pwdAccountLockedTime=*))",
    attributes: ["employeeNumber"],
  });
  return searchEntries.map((e) => attr(e, "employeeNumber")[0]!).sort();
}

async function startReplica(): Promise<OperatorProcess> {
  const o = await startOperator({ namespace: s.namespace, leaseName });
  cleanups.push(() => o.stop());
  return o;
}

const alive = (o: OperatorProcess) => o.child.exitCode === null && o.child.signalCode === null;
const isLeader = async (o: OperatorProcess) =>
  metricValue(await o.metrics(), "leader_election_master_status") === 1;

async function leaseHolder(): Promise<string> {
  const leases = s.kube.kc.makeApiClient(CoordinationV1Api);
  const lease = await leases.readNamespacedLease({
    name: leaseName,
    namespace: info.operator.leaseNamespace,
  });
  return lease.spec?.holderIdentity ?? "";
}

/**
 * Starts two replicas on the Lease and waits until one of them leads (its gauge says so, the
 * other's says it does not, and the Lease has a holder other than `previousHolder`).
 */
async function startPair(previousHolder = ""): Promise<void> {
  replicas = [await startReplica(), await startReplica()];
  let seen = "";
  await waitFor(
    async () => {
      const holder = await leaseHolder();
      const gauges = await Promise.all(
        replicas.map(async (o) => metricValue(await o.metrics(), "leader_election_master_status")),
      );
      seen = `holder ${JSON.stringify(holder)}, gauges ${JSON.stringify(gauges)}`;
      return (
        holder !== "" &&
        holder !== previousHolder &&
        gauges.filter((g) => g === 1).length === 1 &&
        gauges.includes(0)
      );
    },
    45_000,
    () =>
      `no new leader among the two replicas: ${seen}\n${replicas.map((o, i) => `replica ${i}:\n${o.tail(15)}`).join("\n")}`,
    250,
  );
  const leading = await Promise.all(replicas.map(isLeader));
  [leader, standby] = leading[0] ? [replicas[0]!, replicas[1]!] : [replicas[1]!, replicas[0]!];
}

/**
 * The leader's Employee queue is empty and no Employee reconcile is running, in one scrape, after
 * it has completed at least `minReconciles` Employee reconciles since it started.
 */
async function leaderIdle(minReconciles = 0, timeoutMs = 30_000): Promise<void> {
  let last = "";
  await waitFor(
    async () => {
      const metrics = await leader.metrics();
      const done = requireMetric(metrics, "controller_runtime_reconcile_total", { controller: "employee" });
      const depth = requireMetric(metrics, "workqueue_depth", { name: "employee" });
      const active = requireMetric(metrics, "controller_runtime_active_workers", { controller: "employee" });
      last = `${done} reconciles (want >= ${minReconciles}), depth ${depth}, active workers ${active}`;
      return done >= minReconciles && depth === 0 && active === 0;
    },
    timeoutMs,
    () => `the leader's Employee queue did not go idle: ${last}\n${leader.tail(15)}`,
    200,
  );
}

const employeeReconciles = async (o: OperatorProcess) =>
  metricValue(await o.metrics(), "controller_runtime_reconcile_total", { controller: "employee" }) ?? 0;

/**
 * Waits until the brake and every leaver have settled at `deprovisioned` disabled and `held` held
 * people (Connector status, the DeprovisioningHeld condition, each leaver's status for its current
 * generation) and the leader has nothing in flight; returns the deprovisioned people's employeeIds.
 */
async function settled(leavers: string[], deprovisioned: number, held: number): Promise<string[]> {
  let seen = "";
  let done: string[] = [];
  await waitFor(
    async () => {
      const c = await connector();
      const all = await employees();
      const mine = all.filter((e) => leavers.includes(e.metadata.name));
      done = mine.filter(isDeprovisioned).map((e) => e.spec.employeeId);
      const heldNow = mine.filter(isHeld).length;
      seen =
        `heldDeprovisions ${c.status?.heldDeprovisions}, DeprovisioningHeld ${heldCondition(c)?.status}, ` +
        `${done.length} leavers Deprovisioned, ${heldNow} held`;
      return (
        c.status?.heldDeprovisions === held &&
        heldCondition(c)?.status === (held > 0 ? "True" : "False") &&
        done.length === deprovisioned &&
        heldNow === held
      );
    },
    60_000,
    () => `the brake did not settle at ${deprovisioned} disabled and ${held} held: ${seen}`,
    250,
  );
  return done.sort();
}

/** What must hold after every restart and refusal: the same 3 disabled, the other 7 held. */
async function expectStillHeld(): Promise<void> {
  expect(await disabledIds()).toEqual(firstDisabled);
  const c = await connector();
  expect(c.status?.heldDeprovisions).toBe(LEAVERS - LIMIT);
  expect(heldCondition(c)).toMatchObject({ status: "True", reason: "MassChangeBrake" });
  const held = (await employees()).filter(isHeld).map((e) => e.spec.employeeId);
  expect(held).toHaveLength(LEAVERS - LIMIT);
  expect(held.some((id) => firstDisabled.includes(id))).toBe(false);
  // Where the state survives a restart: the Connector's status.
  expect(c.status?.deprovisioning?.held).toHaveLength(LEAVERS - LIMIT);
}

async function connectorEvents(): Promise<{ reason: string; type: string; message: string }[]> {
  const list = await s.kube.core.listNamespacedEvent({
    namespace: s.namespace,
    fieldSelector: `involvedObject.kind=Connector,involvedObject.name=${s.connector}`,
  });
  return list.items.map((e) => ({ reason: e.reason ?? "", type: e.type ?? "", message: e.message ?? "" }));
}

const approvalAnnotation = async () => (await connector()).metadata.annotations?.[APPROVE];

beforeAll(async () => {
  s = await scenario(info, "brake", {
    safety: { maxDeprovisionsPerHour: LIMIT, maxDeprovisionPercent: 100 },
  });
  cleanups.push(() => s.close());
  leaseName = `brake-${s.namespace}`;
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await startPair();
  await Promise.all(names.map((n) => s.apply("Employee", n, person(idOf(n), n))));
  let active = 0;
  await waitFor(
    async () => {
      active = (await employees()).filter((e) => current(e) && e.status?.phase === "Active").length;
      return active === PEOPLE;
    },
    60_000,
    () => `only ${active} of ${PEOPLE} Employees became Active`,
    250,
  );
  expect(await disabledIds()).toEqual([]);
});

describe("the mass-change brake across restarts, failovers and approvals", () => {
  it("the brake holds across restarts", { timeout: 200_000 }, async () => {
    await Promise.all(firstLeavers.map(terminate));
    firstDisabled = await settled(firstLeavers, LIMIT, LEAVERS - LIMIT);
    await leaderIdle();
    expect(firstDisabled).toHaveLength(LIMIT);
    expect(await disabledIds()).toEqual(firstDisabled);
    await expectStillHeld();

    for (const round of [1, 2]) {
      const holder = await leaseHolder();
      await Promise.all(replicas.map((o) => o.kill()));
      expect(replicas.some(alive)).toBe(false);
      await startPair(holder);

      // Positive signals that the new leader has done its work: it reconciled every Employee (it
      // enqueues them all when it starts leading), a held leaver changed after the restart has
      // status for its new generation and is still held, and nothing is in flight.
      const heldOnes = (await employees())
        .filter(isHeld)
        .map((e) => e.metadata.name)
        .sort();
      const changed = heldOnes[round - 1]!;
      await patch("employees", changed, { spec: { title: `Changed after restart ${round}` } });
      await s.until(changed, `still held under the new leader (round ${round})`, isHeld, 60_000);
      await leaderIdle(PEOPLE);
      expect(await employeeReconciles(standby)).toBe(0);
      await expectStillHeld();
    }
  });

  it("a wrong approval is refused", async () => {
    const before = await employeeReconciles(leader);
    await annotateApproval("1000");
    let events: Awaited<ReturnType<typeof connectorEvents>> = [];
    await waitFor(
      async () => {
        events = await connectorEvents();
        return events.some(
          (e) => e.type === "Warning" && e.reason === "ApprovalRefused" && e.message.includes('"1000"'),
        );
      },
      30_000,
      () => `no ApprovalRefused Event; the Connector's Events: ${JSON.stringify(events)}`,
    );
    await waitFor(
      async () => (await approvalAnnotation()) === undefined,
      30_000,
      () => "the refused approval annotation was not removed",
    );
    // The annotation edit requeues every Employee; they have all been reconciled since, and
    // nothing is in flight.
    await leaderIdle(before + PEOPLE);
    expect((await connectorEvents()).some((e) => e.reason === "DeprovisioningApproved")).toBe(false);
    await expectStillHeld();
  });

  it("an exact approval releases exactly the held ones and gives no credit", async () => {
    await annotateApproval(String(LEAVERS - LIMIT));
    const all = await settled(firstLeavers, LEAVERS, 0);
    expect(all).toEqual(firstLeavers.map(idOf).sort());
    await waitFor(
      async () => (await approvalAnnotation()) === undefined,
      30_000,
      () => "the approval annotation was not removed",
    );
    await leaderIdle();
    expect(await disabledIds()).toEqual(firstLeavers.map(idOf).sort());
    const released = await connector();
    expect(released.status?.heldDeprovisions).toBe(0);
    expect(heldCondition(released)?.status).toBe("False");
    expect(
      (await connectorEvents()).some((e) => e.type === "Normal" && e.reason === "DeprovisioningApproved"),
    ).toBe(true);

    // One more leaver after the approval: the brake is still over its limit for this hour and the
    // approval gave no credit, so this one is held and the account stays enabled.
    await terminate(lateLeaver);
    await s.until(lateLeaver, "held after the approval", isHeld, 30_000);
    await waitFor(
      async () => {
        const c = await connector();
        return c.status?.heldDeprovisions === 1 && heldCondition(c)?.status === "True";
      },
      30_000,
      () => "the Connector does not show 1 held deprovision",
    );
    await leaderIdle();
    expect(await disabledIds()).toEqual(firstLeavers.map(idOf).sort());
    expect(attr(await s.ldap.person(s.usersDN, idOf(lateLeaver)), "pwdAccountLockedTime")).toEqual([]);
    expect((await connector()).status?.deprovisioning?.held?.length).toBe(1);
  });

  it("an approval present when replicas start does not kill the standby", { timeout: 120_000 }, async () => {
    // Down with the Lease released, then a (wrong) approval put on while nobody runs.
    await Promise.all(replicas.map((o) => o.stop()));
    await annotateApproval("999");
    expect(await approvalAnnotation()).toBe("999");

    await startPair();
    const exits = replicas.map((o, i) => o.exited.then((code) => ({ replica: i, code })));
    await waitFor(
      async () => (await approvalAnnotation()) === undefined,
      30_000,
      () => `the leader did not act on the approval present at start:\n${leader.tail(15)}`,
    );
    await waitFor(
      async () =>
        (await connectorEvents()).some(
          (e) => e.type === "Warning" && e.reason === "ApprovalRefused" && e.message.includes('"999"'),
        ),
      30_000,
      () => "no ApprovalRefused Event for the approval present at start",
    );

    // Staying alive is the absence of an exit over a while: 20 s after the leader acted.
    const outcome = await Promise.race([
      ...exits,
      new Promise<"both alive">((r) => setTimeout(() => r("both alive"), 20_000)),
    ]);
    expect(
      outcome,
      `a replica exited:\n${replicas.map((o, i) => `replica ${i}:\n${o.tail(20)}`).join("\n")}`,
    ).toBe("both alive");
    expect(replicas.every(alive)).toBe(true);
    expect((await fetch(`${standby.healthUrl}/healthz`)).ok).toBe(true);
    expect(requireMetric(await standby.metrics(), "leader_election_master_status")).toBe(0);
    expect(requireMetric(await leader.metrics(), "leader_election_master_status")).toBe(1);
    expect(standby.tail(1000)).not.toContain("lost leadership");

    // And the refusal changed nothing.
    await leaderIdle(PEOPLE);
    expect(await disabledIds()).toEqual(firstLeavers.map(idOf).sort());
    expect((await connector()).status?.heldDeprovisions).toBe(1);
  });
});

describe("the brake when the whole namespace is deleted", () => {
  const namespaceGone = async () => {
    try {
      await s.kube.core.readNamespace({ name: s.namespace });
      return false;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return true;
      throw error;
    }
  };

  it(
    "a namespace deletion is braked too, across a SIGKILL of both replicas, until the exact approval",
    { timeout: 200_000 },
    async () => {
      // Left by the tests above: b00..b09 disabled and approved, b10 held, b11 active.
      const remaining = [lateLeaver, names[LEAVERS + 1]!];
      await s.kube.core.deleteNamespace({ name: s.namespace });

      // Deleting everyone at once is one more mass deprovisioning: the brake is latched, so the
      // one person still active waits with the one already held, and nobody else loses access.
      const heldAfterDeletion = async () => {
        let seen = "";
        await waitFor(
          async () => {
            const c = await connector();
            const all = await employees();
            const held = all
              .filter(isHeld)
              .map((e) => e.metadata.name)
              .sort();
            const left = all.map((e) => e.metadata.name).sort();
            const deleting = c.status?.conditions?.find((x) => x.type === "Deleting");
            // The namespace controller marks the Secret in its own time, after or before the rest.
            const secret = await s.kube.core.readNamespacedSecret({
              name: "ldap-bind",
              namespace: s.namespace,
            });
            const secretDeleting = secret.metadata?.deletionTimestamp !== undefined;
            seen = `Employees left ${JSON.stringify(left)}, held ${JSON.stringify(held)}, heldDeprovisions ${c.status?.heldDeprovisions}, Deleting ${JSON.stringify(deleting)}, Secret being deleted ${secretDeleting}`;
            // The Employees already deprovisioned go; the two held ones wait; so do the Connector
            // and its Secret.
            return (
              JSON.stringify(left) === JSON.stringify(remaining) &&
              JSON.stringify(held) === JSON.stringify(remaining) &&
              c.status?.heldDeprovisions === 2 &&
              deleting?.status === "True" &&
              secretDeleting
            );
          },
          60_000,
          () => `the namespace deletion was not held: ${seen}`,
          250,
        );
        await leaderIdle();
        expect(await disabledIds()).toEqual(firstLeavers.map(idOf).sort());
        // The Secret is still there (its finalizer holds it) and so is the namespace.
        const secret = await s.kube.core.readNamespacedSecret({ name: "ldap-bind", namespace: s.namespace });
        expect(secret.metadata?.finalizers).toContain("roster.dev/connector-credentials");
        expect(await namespaceGone()).toBe(false);
      };
      await heldAfterDeletion();

      const holder = await leaseHolder();
      await Promise.all(replicas.map((o) => o.kill()));
      await startPair(holder);
      await leaderIdle(remaining.length);
      await heldAfterDeletion();

      // A wrong approval releases nothing (in a terminating namespace even its Event may be refused).
      await annotateApproval("1");
      await waitFor(
        async () => (await approvalAnnotation()) === undefined,
        30_000,
        () => "the wrong approval was not acted on",
      );
      await heldAfterDeletion();

      await annotateApproval("2");
      await waitFor(
        namespaceGone,
        90_000,
        () => `the namespace did not go after the approval:\n${leader.tail(20)}`,
        500,
      );
      expect(await disabledIds()).toEqual(names.map(idOf).sort());
    },
  );
});
