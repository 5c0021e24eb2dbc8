// `roster plan` and the operator call the same planner, so what the plan prints for a directory
// is what the operator does once that directory is applied: every printed change happens, nothing
// unprinted happens, and the mass-change brake holds exactly as many deprovisions as the plan said
// it would, against the same limit. Real kube-apiserver, real slapd, `roster operator` as a process.
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { dump } from "js-yaml";
import type { Entry } from "ldapts";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector, Employee } from "../../src/api/types.ts";
import { takesAccess, type PlannedChange, type Preview } from "../../src/plan/preview.ts";
import { registerDirectory, waitFor } from "../harness/processes.ts";
import { getRoster } from "../support/kube.ts";
import {
  counterOrZero,
  requireMetric,
  startOperator,
  type OperatorProcess,
  employeeQueueIdle,
} from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const run = promisify(execFile);
const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
const kubectlBin = join(info.binDir, "kubectl");
let s: Scenario;
let operator: OperatorProcess;

/** Limit of the brake; the change below takes access from 3 people, so 1 is over it. */
const LIMIT = 2;

type Spec = Record<string, unknown>;
const names = Array.from({ length: 10 }, (_, i) => `p${String(i).padStart(2, "0")}`);
const spec = (name: string, extra: Spec = {}): Spec => {
  const sales = Number(name.slice(1)) % 2 === 1;
  return person(`A-${name}`, name, {
    department: sales ? "Sales" : "Engineering",
    title: sales ? "Rep" : "Engineer",
    ...extra,
  });
};

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectlBin, ["--kubeconfig", info.kubeconfigPath, "-n", s.namespace, ...args]);
  return stdout;
}

async function plan(dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [
      bin,
      "plan",
      dir,
      "--kubeconfig",
      info.kubeconfigPath,
      "-n",
      s.namespace,
      "-o",
      "json",
    ]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// --- what the directory holds, read straight from slapd ------------------------------------------

/** Attributes that record that an entry was written, not what it holds. */
const BOOKKEEPING = new Set(["modifytimestamp", "modifiersname", "entrycsn"]);

type Person = Record<string, string[]>;

function normalize(entry: Entry): Person {
  const out: Person = {};
  for (const [name, value] of Object.entries(entry)) {
    if (name === "dn") continue;
    out[name.toLowerCase()] = (Array.isArray(value) ? value : [value]).map(String).sort();
  }
  return out;
}

/** Every entry under usersDN, user and operational attributes, by lower-cased DN. */
async function people(): Promise<Map<string, Person>> {
  const { searchEntries } = await s.ldap.client.search(s.usersDN, {
    scope: "one",
    filter: "(objectClass=*)",
    attributes: ["*", "+"],
  });
  return new Map(searchEntries.map((e) => [e.dn.toLowerCase(), normalize(e)]));
}

/** Every group under groupsDN: cn -> member DNs (lower-cased). */
async function groups(): Promise<Map<string, Set<string>>> {
  const { searchEntries } = await s.ldap.client.search(s.groupsDN, {
    scope: "one",
    filter: "(objectClass=groupOfNames)",
    attributes: ["cn", "member"],
  });
  const values = (v: Entry[string] | undefined) =>
    v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String);
  return new Map(
    searchEntries.map((e) => [
      values(e.cn)[0]!.toLowerCase(),
      new Set(
        values(e.member)
          .filter((m) => m !== "")
          .map((m) => m.toLowerCase()),
      ),
    ]),
  );
}

/** Names of the attributes whose values differ (bookkeeping left out). */
function changedAttributes(before: Person, after: Person): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys]
    .filter((k) => !BOOKKEEPING.has(k))
    .filter((k) => JSON.stringify(before[k] ?? []) !== JSON.stringify(after[k] ?? []))
    .sort();
}

const dnOf = (username: string) => `uid=${username},${s.usersDN}`.toLowerCase();

// --- what the operator says ----------------------------------------------------------------------

const WRITES = [
  "createAccount",
  "updateAttributes",
  "setEnabled",
  "addToGroup",
  "removeFromGroup",
  "deleteAccount",
] as const;
const PLANNER_OPS = ["create", "update", "enable", "disable", "group_add", "group_remove", "delete"] as const;

type Counters = {
  requests: Record<string, number>;
  errors: Record<string, number>;
  confirmed: Record<string, number>;
};

/**
 * The operator's counters for the Connector: target requests by operation (successful and
 * failed) and operations it confirmed (the provisioning histogram's _count). A labelled counter
 * has no series until its first inc(), so absence is 0 here; the assertions below ask for the
 * exact delta, and the create this change makes shows the series do get exported.
 */
async function counters(): Promise<Counters> {
  const text = await operator.metrics();
  const connector = `${s.namespace}/${s.connector}`;
  const out: Counters = { requests: {}, errors: {}, confirmed: {} };
  for (const operation of WRITES) {
    out.requests[operation] = counterOrZero(text, "roster_connector_requests_total", {
      connector,
      operation,
      result: "success",
    });
    out.errors[operation] = counterOrZero(text, "roster_connector_requests_total", {
      connector,
      operation,
      result: "error",
    });
  }
  for (const operation of PLANNER_OPS)
    out.confirmed[operation] = counterOrZero(text, "roster_provisioning_latency_seconds_count", {
      connector: s.connector,
      operation,
    });
  return out;
}

const minus = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k]! - (b[k] ?? 0)]));

async function connectorStatus(): Promise<NonNullable<Connector["status"]>> {
  return (
    ((await getRoster(s.kube, s.namespace, "Connector", s.connector)) as unknown as Connector).status ?? {}
  );
}

/** gone: deleted (finalizer released); ready / held: reconciled for its generation, Ready True / held by the brake. */
async function outcome(name: string): Promise<"gone" | "ready" | "held" | "pending"> {
  let e: Employee;
  try {
    e = await s.employee(name);
  } catch (error) {
    if ((error as { code?: number }).code === 404) return "gone";
    throw error;
  }
  if (e.status?.observedGeneration !== e.metadata.generation) return "pending";
  const ready = readyCondition(e);
  if (ready?.status === "False" && ready.reason === "DeprovisioningHeld") return "held";
  // A deleted Employee's old status can still say Ready: only its removal or a hold is an outcome.
  if (e.metadata.deletionTimestamp) return "pending";
  return ready?.status === "True" ? "ready" : "pending";
}

beforeAll(async () => {
  s = await scenario(info, "agree", { safety: { maxDeprovisionsPerHour: LIMIT } });
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [{ connector: s.connector, groups: ["engineering"] }],
  });
  await s.apply("AccessPolicy", "sales", {
    match: [{ key: "department", operator: "In", values: ["Sales"] }],
    grants: [{ connector: s.connector, groups: ["sales"] }],
  });
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  await Promise.all(names.map((n) => s.apply("Employee", n, spec(n))));
  for (const n of names)
    await s.until(
      n,
      "Active and Ready",
      (e) => e.status?.phase === "Active" && readyCondition(e)?.status === "True",
    );
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

describe("roster plan and the operator agree", () => {
  it("every change the plan prints happens, nothing else does, and the brake holds what the plan said", async () => {
    // The pull request: a mover (Engineering -> Sales), a new title, a joiner, two leavers gone.
    const proposed = new Map<string, Spec>(names.map((n) => [n, spec(n)]));
    proposed.set("p02", spec("p02", { department: "Sales" }));
    proposed.set("p03", spec("p03", { title: "Senior Rep" }));
    proposed.set("p10", spec("p10"));
    const leavers = ["p08", "p09"];
    for (const n of leavers) proposed.delete(n);
    const dir = mkdtempSync(join(tmpdir(), "roster-agree-"));
    registerDirectory(dir);
    mkdirSync(join(dir, "people"));
    for (const [name, body] of proposed)
      writeFileSync(
        join(dir, "people", `${name}.yaml`),
        dump({ apiVersion: API_VERSION, kind: "Employee", metadata: { name }, spec: body }),
      );

    // --- the plan -------------------------------------------------------------------------------
    const result = await plan(dir);
    // Exit 3: the plan says the brake trips. Anything else (0, 1) is not the plan we set up.
    expect(result.code, `roster plan exited ${result.code}: ${result.stderr}`).toBe(3);
    const preview = JSON.parse(result.stdout) as Preview;
    // The directory is the change we meant; if the plan printed less, agreeing with it would be easy.
    expect(
      preview.changes.map((c) => [
        c.employee,
        c.connector,
        c.action,
        c.attributes,
        c.groupsAdded,
        c.groupsRemoved,
      ]),
    ).toEqual([
      ["p02", s.connector, "update", ["departmentNumber"], ["sales"], ["engineering"]],
      ["p03", s.connector, "update", ["title"], [], []],
      ["p08", s.connector, "disable", [], [], ["engineering", "staff"]],
      ["p09", s.connector, "disable", [], [], ["sales", "staff"]],
      ["p10", s.connector, "create", [], ["engineering", "staff"], []],
    ]);
    expect(preview.brake).toEqual([
      { connector: s.connector, deprovisions: 3, limit: LIMIT, managed: 10, trips: true },
    ]);
    expect(preview.tripsBrake).toBe(true);
    const brake = preview.brake[0]!;
    const over = brake.deprovisions - brake.limit;

    // --- before: the directory and the counters, once nothing is in flight ----------------------
    await employeeQueueIdle(operator);
    const peopleBefore = await people();
    const groupsBefore = await groups();
    const countersBefore = await counters();

    // --- apply it as kubectl would, and wait for the operator ----------------------------------
    await kubectl("apply", "--server-side", "--force-conflicts", "-R", "-f", dir);
    await kubectl("delete", "employees.roster.dev", ...leavers, "--wait=false");

    const outcomes = new Map<string, string>();
    await waitFor(
      async () => {
        for (const c of preview.changes) outcomes.set(c.employee, await outcome(c.employee));
        return [...outcomes.values()].every((o) => o !== "pending");
      },
      60_000,
      () => `the operator did not finish the change: ${JSON.stringify(Object.fromEntries(outcomes))}`,
      250,
    );
    await waitFor(
      async () =>
        (await connectorStatus()).heldDeprovisions ===
        [...outcomes.values()].filter((o) => o === "held").length,
      20_000,
      () => "the Connector's heldDeprovisions does not match the held Employees",
    );
    await employeeQueueIdle(operator);

    // --- the brake decided as the plan said -----------------------------------------------------
    const held = preview.changes.filter((c) => outcomes.get(c.employee) === "held");
    expect(held.length, `held: ${held.map((c) => c.employee).join(", ") || "none"}`).toBe(over);
    // Only what takes access away is held, and what is not held went through: the limit's worth.
    for (const c of held) expect(takesAccess(c), `${c.employee} held but takes nothing away`).toBe(true);
    expect(preview.changes.filter((c) => takesAccess(c) && !held.includes(c)).length).toBe(brake.limit);
    for (const c of preview.changes) {
      if (held.includes(c)) continue;
      const expected = leavers.includes(c.employee) ? "gone" : "ready";
      expect(outcomes.get(c.employee), c.employee).toBe(expected);
    }
    const connector = await connectorStatus();
    expect(connector.heldDeprovisions).toBe(over);
    const heldCondition = connector.conditions?.find((c) => c.type === "DeprovisioningHeld");
    expect(heldCondition).toMatchObject({ status: "True", reason: "MassChangeBrake" });
    expect(Number(/more than (\d+) per hour/.exec(heldCondition?.message ?? "")?.[1])).toBe(brake.limit);
    expect(
      requireMetric(await operator.metrics(), "roster_deprovisions_held", {
        connector: `${s.namespace}/${s.connector}`,
      }),
    ).toBe(over);
    for (const c of held)
      expect(readyCondition(await s.employee(c.employee))?.message).toContain(
        `limit ${brake.limit} per hour`,
      );

    // --- every change the plan printed happened (the deprovisioning part of a held one did not) --
    const peopleAfter = await people();
    const groupsAfter = await groups();
    const expectedGroups = new Map([...groupsBefore].map(([g, m]) => [g, new Set(m)]));
    for (const c of preview.changes) {
      const isHeld = held.includes(c);
      const dn = dnOf(c.username);
      const before = peopleBefore.get(dn);
      const after = peopleAfter.get(dn);
      const target = proposed.get(c.employee);
      const removed = isHeld ? [] : c.groupsRemoved;
      for (const g of c.groupsAdded) {
        if (!expectedGroups.has(g)) expectedGroups.set(g, new Set());
        expectedGroups.get(g)!.add(dn);
      }
      for (const g of removed) expectedGroups.get(g)?.delete(dn);

      expect(after, `${c.employee}: no entry ${dn} after the change`).toBeDefined();
      if (c.action === "create") {
        expect(before, `${c.employee}: ${dn} existed before its create`).toBeUndefined();
        expect(after!.employeenumber).toEqual([target!.employeeId]);
        expect(after!.pwdaccountlockedtime, `${c.employee} created disabled`).toBeUndefined();
        continue;
      }
      expect(before, `${c.employee}: no entry ${dn} before the change`).toBeDefined();
      // What changed on the entry is exactly what the plan printed for it.
      const wanted = new Set(c.attributes.map((a) => a.toLowerCase()));
      if (c.groupsAdded.length > 0 || removed.length > 0) wanted.add("memberof");
      if ((c.action === "disable" && !isHeld) || c.action === "enable") wanted.add("pwdaccountlockedtime");
      expect(changedAttributes(before!, after!), `${c.employee}: attributes changed on ${dn}`).toEqual(
        [...wanted].sort(),
      );
      // Nothing to do (a held leaver): not even written to.
      if (wanted.size === 0) expect(after, `${c.employee}: ${dn} was written to`).toEqual(before);
      if (c.attributes.includes("title")) expect(after!.title).toEqual([target!.title]);
      if (c.attributes.includes("departmentNumber"))
        expect(after!.departmentnumber).toEqual([target!.department]);
      if (c.action === "disable")
        expect(after!.pwdaccountlockedtime, `${c.employee} disabled?`).toEqual(
          isHeld ? undefined : ["000001010000Z"],
        );
    }

    // --- and nothing the plan did not print ----------------------------------------------------
    const changedDNs = new Set(preview.changes.map((c) => dnOf(c.username)));
    expect([...peopleAfter.keys()].sort()).toEqual(
      [...new Set([...peopleBefore.keys(), ...changedDNs])].sort(),
    );
    for (const [dn, before] of peopleBefore) {
      if (changedDNs.has(dn)) continue;
      // Not even written to: modifyTimestamp and entryCSN are as they were.
      expect(peopleAfter.get(dn), `${dn} changed though the plan did not list it`).toEqual(before);
    }
    const asSorted = (m: Map<string, Set<string>>) =>
      Object.fromEntries([...m].map(([g, members]) => [g, [...members].sort()]).sort());
    expect(asSorted(groupsAfter)).toEqual(asSorted(expectedGroups));

    // --- the operator's counters: one target write per operation the plan implies --------------
    const countersAfter = await counters();
    const notHeld = preview.changes.filter((c) => !held.includes(c));
    const existing = preview.changes.filter((c) => c.action !== "create");
    const count = (list: PlannedChange[], f: (c: PlannedChange) => number) =>
      list.reduce((n, c) => n + f(c), 0);
    const expectedRequests = {
      createAccount: count(preview.changes, (c) => Number(c.action === "create")),
      updateAttributes: count(existing, (c) => Number(c.attributes.length > 0)),
      setEnabled: count(notHeld, (c) => Number(c.action === "disable" || c.action === "enable")),
      addToGroup: count(existing, (c) => c.groupsAdded.length),
      removeFromGroup: count(
        notHeld.filter((c) => c.action !== "create"),
        (c) => c.groupsRemoved.length,
      ),
      deleteAccount: count(notHeld, (c) => Number(c.action === "delete")),
    };
    expect(minus(countersAfter.requests, countersBefore.requests)).toEqual(expectedRequests);
    expect(minus(countersAfter.errors, countersBefore.errors)).toEqual(
      Object.fromEntries(WRITES.map((w) => [w, 0])),
    );
    expect(minus(countersAfter.confirmed, countersBefore.confirmed)).toEqual({
      create: expectedRequests.createAccount,
      update: expectedRequests.updateAttributes,
      enable: count(notHeld, (c) => Number(c.action === "enable")),
      disable: count(notHeld, (c) => Number(c.action === "disable")),
      group_add: expectedRequests.addToGroup,
      group_remove: expectedRequests.removeFromGroup,
      delete: expectedRequests.deleteAccount,
    });
  });
});
