// The brake's counts taken ahead (src/plan/brake.ts `Reserve`), broken on purpose: the operator
// is SIGKILLed right after leavers went through on slots it had stored ahead, before it wrote
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

      // Ten leavers one after another (each one waited for in slapd), then two at once: those two
      // go through on the slots the tenth one's write stored, and the operator dies before a second
      // has passed, so before it writes whose they were.
      const wave = names.slice(0, 12);
      for (const name of wave.slice(0, 10)) {
        await terminate(name);
        await waitFor(
          async () => (await disabled()).has(idOf(name)),
          30_000,
          () => `${name} was not disabled`,
          20,
        );
      }
      await Promise.all(wave.slice(10).map(terminate));
      await waitFor(
        async () => {
          const locked = await disabled();
          return wave.slice(10).every((n) => locked.has(idOf(n)));
        },
        30_000,
        () => "the last two leavers were not disabled",
        10,
      );
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
      // The window was hit: some of the disabled are covered only by slots, not by their own entry.
      expect(state.counted.length).toBeLessThan(lockedAtKill.size);
      expect(countedInHour(state)).toBeGreaterThanOrEqual(lockedAtKill.size);

      // Started again: everyone else leaves at once. No more than the limit is disabled in the hour,
      // the rest are held, and the over-count is at most the slots taken ahead.
      await operator();
      await Promise.all(names.slice(12).map(terminate));
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
