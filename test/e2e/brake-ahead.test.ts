// The brake's counts taken ahead (src/plan/brake.ts `Reserve`, `topUp`), broken on purpose: the
// API server refuses every write of the Connector's status (a ValidatingAdmissionPolicy), leavers
// still go through on the slots stored ahead, and the operator is SIGKILLed before it could write
// whose they were. What was stored must still count every account disabled, and the operator
// started again must not let the hour's total pass the limit: it may count too many (slots it
// cannot know were filled), never too few.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Connector, Employee } from "../../src/api/types.ts";
import { countedInHour, reserveSlots } from "../../src/plan/brake.ts";
import { waitFor } from "../harness/processes.ts";
import { getRoster, listRoster } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const LIMIT = 40; // 2 slots ahead
const PEOPLE = 48;
const names = Array.from({ length: PEOPLE }, (_, i) => `ra${String(i).padStart(2, "0")}`);
const idOf = (name: string) => `RA-${name}`;

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

let s: Scenario;
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const terminate = (name: string) =>
  s.kube.custom.patchNamespacedCustomObject(
    {
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: "employees",
      name,
      body: { spec: { employmentStatus: "Terminated" } },
    },
    mergePatch,
  );

const employees = () => listRoster<Employee>(s.kube, s.namespace, "Employee");

const connector = async () =>
  (await getRoster(s.kube, s.namespace, "Connector", s.connector)) as unknown as Connector;

const refusal = () => `refuse-connector-status-${s.namespace}`;
/** Whether the API server takes a write of the Connector's status now (a dry run, nothing kept). */
async function statusWritable(): Promise<boolean> {
  try {
    await s.kube.custom.patchNamespacedCustomObjectStatus(
      {
        group: "roster.dev",
        version: "v1alpha1",
        namespace: s.namespace,
        plural: "connectors",
        name: s.connector,
        body: { status: { heldDeprovisions: 0 } },
        dryRun: "All",
      },
      mergePatch,
    );
    return true;
  } catch {
    return false;
  }
}

/** From now on the API server refuses every write of this namespace's Connector status. */
async function refuseStatusWrites(): Promise<void> {
  const metadata = { name: refusal() };
  await s.kube.objects.create({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata,
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: ["roster.dev"],
            apiVersions: ["v1alpha1"],
            operations: ["UPDATE"],
            resources: ["connectors/status"],
          },
        ],
      },
      validations: [{ expression: "false", message: "Connector status writes refused by the test" }],
    },
  } as never);
  await s.kube.objects.create({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata,
    spec: {
      policyName: refusal(),
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": s.namespace } } },
    },
  } as never);
  cleanups.push(allowStatusWrites);
  await waitFor(
    async () => !(await statusWritable()),
    30_000,
    () => "the refusal did not take effect",
    100,
  );
}

async function allowStatusWrites(): Promise<void> {
  for (const kind of ["ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"])
    await s.kube.objects
      .delete({ apiVersion: "admissionregistration.k8s.io/v1", kind, metadata: { name: refusal() } } as never)
      .catch(() => {});
  await waitFor(statusWritable, 30_000, () => "the refusal was not lifted", 100);
}

/** employeeIds of the accounts under this file's usersDN that slapd has locked. */
async function disabled(): Promise<Set<string>> {
  const { searchEntries } = await s.ldap.client.search(s.usersDN, {
    scope: "one",
    filter: "(&(employeeNumber=*)(pwdAccountLockedTime=*))",
    attributes: ["employeeNumber"],
  });
  return new Set(searchEntries.map((e) => String(e.employeeNumber)));
}

async function operator(): Promise<OperatorProcess> {
  const o = await startOperator({ namespace: s.namespace, leaseName: `brake-ahead-${s.namespace}` });
  cleanups.push(() => o.stop());
  return o;
}

beforeAll(async () => {
  s = await scenario(info, "brake-ahead", {
    safety: { maxDeprovisionsPerHour: LIMIT, maxDeprovisionPercent: 100 },
  });
  cleanups.push(() => s.close());
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await Promise.all(names.map((n) => s.apply("Employee", n, person(idOf(n), n))));
});

describe("the brake's counts taken ahead, with the operator SIGKILLed", () => {
  it(
    "what was stored counts every account disabled, and the limit holds across the restart",
    { timeout: 180_000 },
    async () => {
      expect(reserveSlots(LIMIT)).toBe(2);
      const first = await operator();
      let active = 0;
      await waitFor(
        async () => {
          active = (await employees()).filter(
            (e) => e.status?.observedGeneration === e.metadata.generation && e.status?.phase === "Active",
          ).length;
          return active === PEOPLE;
        },
        90_000,
        () => `only ${active} of ${PEOPLE} Employees were provisioned`,
        250,
      );

      // Ten leavers one after another (each one waited for in slapd). Once their counts and two
      // slots ahead are stored, the API server refuses the Connector's status from then on; of
      // three more leavers at once, two still go through, on those slots, the third waits for a
      // write that cannot happen, and the operator dies before it could write whose they were.
      const wave = names.slice(0, 13);
      for (const name of wave.slice(0, 10)) {
        await terminate(name);
        await waitFor(
          async () => (await disabled()).has(idOf(name)),
          30_000,
          () => `${name} was not disabled`,
          20,
        );
      }
      let stored10 = "";
      await waitFor(
        async () => {
          const d = (await connector()).status?.deprovisioning;
          const ahead = (d?.reserved ?? []).reduce((n, r) => n + r.count, 0);
          stored10 = `${d?.counted?.length ?? 0} counted, ${ahead} ahead`;
          return d?.counted?.length === 10 && ahead === reserveSlots(LIMIT);
        },
        30_000,
        () => `the ten leavers and the slots ahead were not stored: ${stored10}`,
        50,
      );
      await refuseStatusWrites();
      await Promise.all(wave.slice(10).map(terminate));
      const lockedOfLast = async () => {
        const locked = await disabled();
        return wave.slice(10).filter((n) => locked.has(idOf(n))).length;
      };
      await waitFor(
        async () => (await lockedOfLast()) >= 2,
        30_000,
        () => "two of the last three were not disabled",
        10,
      );
      // The third has no slot stored for it: it is not let through while the writes are refused.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await first.kill();

      const lockedAtKill = await disabled();
      const stored = (await connector()).status?.deprovisioning;
      expect(stored).toBeDefined();
      const state = {
        counted: stored!.counted ?? [],
        held: stored!.held ?? [],
        released: stored!.released ?? [],
        ...(stored!.reserved ? { reserved: stored!.reserved } : {}),
      };
      // The two are covered only by the slots stored before the refusal, not by their own entry.
      expect(await lockedOfLast()).toBe(2);
      expect(lockedAtKill.size).toBe(12);
      expect(state.counted).toHaveLength(10);
      expect(countedInHour(state)).toBeGreaterThanOrEqual(lockedAtKill.size);
      await allowStatusWrites();

      // Started again (the third of the wave goes through now): everyone else leaves at once. No
      // more than the limit is disabled in the hour, the rest are held, and the over-count is at
      // most the slots taken ahead.
      await operator();
      await Promise.all(names.slice(13).map(terminate));
      let last = "";
      await waitFor(
        async () => {
          const c = await connector();
          const locked = (await disabled()).size;
          last = `${locked} disabled, heldDeprovisions ${c.status?.heldDeprovisions}`;
          return (
            locked + (c.status?.heldDeprovisions ?? 0) === PEOPLE && locked >= LIMIT - reserveSlots(LIMIT)
          );
        },
        90_000,
        () => `the brake did not settle: ${last}`,
        250,
      );
      // Settled: nothing more goes through afterwards.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const locked = await disabled();
      expect(locked.size).toBeLessThanOrEqual(LIMIT);
      expect(locked.size).toBeGreaterThanOrEqual(LIMIT - reserveSlots(LIMIT));
      expect((await connector()).status?.heldDeprovisions).toBe(PEOPLE - locked.size);
      for (const id of lockedAtKill) expect(locked.has(id)).toBe(true);
    },
  );
});
