// What a leaver's reconcile sends, in what order and how much at once: the reconciler
// (src/controller/employee.ts) with the real planner, over the connector base
// (src/connectors/base/connector.ts) on primitives that record every request and can hold them.
// A leaver's brake writes go to every connector at once; the disable is confirmed (with its
// ownership read) before the group removals go out, and then all of them go out together, on the
// ownership that read proved, without reading the account again per group.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccessPolicy, Connector, Employee } from "../../src/api/types.ts";
import { createConnector } from "../../src/connectors/base/connector.ts";
import type { TargetPrimitives } from "../../src/connectors/base/primitives.ts";
import type { ActualAccount } from "../../src/connectors/types.ts";
import { NotOwnedError } from "../../src/connectors/types.ts";
import { reconcileEmployee, runSteps, type EmployeeReconcilerDeps } from "../../src/controller/employee.ts";
import type { Target } from "../../src/controller/targets.ts";
import { BrakeGate } from "../../src/controller/brake.ts";
import type { EventRecorder } from "../../src/controller/events.ts";
import type { CustomApi } from "../../src/kube/api.ts";
import type { EmployeeStatusT } from "../../src/api/types.ts";
import type { AuditRecord } from "../../src/plan/audit.ts";
import type { BrakeDecision } from "../../src/plan/brake.ts";
import type { Operation } from "../../src/plan/plan.ts";

const NS = "people";
const GROUPS = ["eng", "staff", "vpn"];

type Entry = { id: string; employeeId: string; locked: boolean };

/** A target over recording primitives; writes of the kinds in `holding` wait for `release()`. */
function recordingTarget(name: string, onRequest: (label: string) => void = () => {}) {
  const accounts = new Map<string, Entry>();
  const members = new Map<string, Set<string>>(GROUPS.map((g) => [g, new Set<string>()]));
  const requests: string[] = [];
  const inFlight = new Set<string>();
  let holding = new Set<string>();
  let gate: Promise<void> = Promise.resolve();
  let open = () => {};
  const hold = (kinds: string[]) => {
    holding = new Set(kinds);
    gate = new Promise<void>((resolve) => (open = resolve));
  };
  const release = () => {
    holding = new Set();
    open();
  };
  const failing = new Set<string>();
  async function request<T>(label: string, kind: string, fn: () => T): Promise<T> {
    requests.push(label);
    onRequest(label);
    inFlight.add(label);
    try {
      await Promise.resolve();
      if (holding.has(kind)) await gate;
      if (failing.has(label)) throw new Error(`${label} refused`);
      return fn();
    } finally {
      inFlight.delete(label);
    }
  }
  const primitives = {
    name,
    idLabel: "id",
    employeeIdAttribute: "key",
    accountsLabel: "accounts",
    describe: (id: string) => `account ${id}`,
    groupKey: (n: string) => n.toLowerCase(),
    idKey: (id: string) => id.toLowerCase(),
    isNotFound: () => false,
    isConflict: () => false,
    findsByUsername: false,
    idOf: (e: Entry) => e.id,
    employeeIdsOf: (e: Entry) => (e.employeeId ? [e.employeeId] : []),
    toAccount: (e: Entry, groups: string[]): ActualAccount => ({
      id: e.id,
      employeeId: e.employeeId,
      username: e.id,
      attributes: {},
      enabled: !e.locked,
      groups,
    }),
    readById: (id: string) => request(`read ${id}`, "read", () => accounts.get(id)),
    searchByEmployeeId: (employeeId: string) =>
      request(`search ${employeeId}`, "read", () =>
        [...accounts.values()].filter((e) => e.employeeId === employeeId),
      ),
    groupsOf: (id: string) =>
      request(`groupsOf ${id}`, "read", () => [...members].filter(([, m]) => m.has(id)).map(([g]) => g)),
    groupName: (g: string) => g,
    findGroups: async (g: string) => [g],
    setEnabled: (ref: { id: string }, _e: Entry, enabled: boolean) =>
      request(`setEnabled ${ref.id} ${enabled}`, "setEnabled", () => {
        accounts.get(ref.id)!.locked = !enabled;
      }),
    removeMember: (g: string, id: string) =>
      request(`removeMember ${g} ${id}`, "removeMember", () => void members.get(g)!.delete(id)),
    addMember: (g: string, id: string) =>
      request(`addMember ${g} ${id}`, "addMember", () => !!members.get(g)!.add(id)),
  };
  const client = createConnector(primitives as unknown as TargetPrimitives<Entry, string>);
  const target: Target = { client, desiredAttributes: () => ({}), managedAttributes: [] };
  return { accounts, members, requests, inFlight, hold, release, failing, target };
}

function ldapConnector(name: string): Connector {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Connector",
    metadata: { name, namespace: NS, generation: 1 },
    spec: {
      ldap: {
        url: "ldaps://ldap.example.com:636",
        bindDN: "cn=roster,ou=services,dc=example,dc=com",
        bindPasswordSecretRef: { name: "bind", key: "password" },
        usersDN: "ou=people,dc=example,dc=com",
        groupsDN: "ou=groups,dc=example,dc=com",
      },
    },
  };
}

const idIn = (connector: string) => `uid=ada,ou=${connector},dc=example,dc=com`;

function leaver(connectors: string[]): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: {
      name: "ada",
      namespace: NS,
      generation: 2,
      creationTimestamp: "2026-03-01T08:00:00Z",
      finalizers: ["roster.dev/deprovision"],
    },
    spec: {
      employeeId: "E1001",
      username: "ada",
      givenName: "Ada",
      familyName: "Lovelace",
      email: "ada@example.com",
      department: "Engineering",
      employmentStatus: "Terminated",
    },
    status: {
      observedGeneration: 1,
      phase: "Active",
      accounts: connectors.map((c) => ({
        connector: c,
        id: idIn(c),
        state: "Active" as const,
        groups: GROUPS,
        lastSyncTime: "2026-05-01T09:00:00Z",
      })),
    },
  };
}

/** The namespace, one recording target per connector, and the reconciler's dependencies. */
function world(connectorNames: string[]) {
  const connectors = connectorNames.map(ldapConnector);
  const policy: AccessPolicy = {
    apiVersion: "roster.dev/v1alpha1",
    kind: "AccessPolicy",
    metadata: { name: "everyone", namespace: NS, generation: 1 },
    spec: { grants: connectorNames.map((connector) => ({ connector, groups: GROUPS })) },
  };
  const employee = leaver(connectorNames);
  /** Everything in order: brake requests, and every target's requests as they are sent. */
  const timeline: string[] = [];
  const targets = new Map(
    connectorNames.map((c) => [c, recordingTarget(c, (label) => timeline.push(`${c}: ${label}`))]),
  );
  for (const [c, t] of targets) {
    const id = idIn(c);
    t.accounts.set(id, { id, employeeId: "E1001", locked: false });
    for (const g of GROUPS) t.members.get(g)!.add(id);
  }
  const audit: AuditRecord[] = [];
  const statuses: EmployeeStatusT[] = [];
  let brakeGate: Promise<void> = Promise.resolve();
  let openBrake = () => {};
  const brakeInFlight = new Set<string>();
  const deps: EmployeeReconcilerDeps = {
    getEmployee: () => employee,
    objects: () => ({ employees: [employee], policies: [policy], rules: [], connectors }),
    target: async (c) => targets.get(c.metadata.name)!.target,
    addFinalizer: async () => {},
    removeFinalizer: async () => {},
    writeStatus: async (_e, status) => void statuses.push(status),
    event: () => {},
    initialPassword: async () => "unused",
    passwordPending: async () => false,
    passwordSet: async () => {},
    async requestDeprovision(c): Promise<BrakeDecision> {
      timeline.push(`brake ${c.metadata.name}`);
      brakeInFlight.add(c.metadata.name);
      await brakeGate;
      brakeInFlight.delete(c.metadata.name);
      return { allowed: true };
    },
    withdrawDeprovision: async () => {},
    scheduleDeletion: async () => {},
    driftFor: () => undefined,
    clearDrift: () => {},
    confirmed: () => {},
    audit: (record) => void audit.push(record),
    now: () => new Date("2026-06-01T12:00:00Z"),
  };
  const holdBrake = () => (brakeGate = new Promise<void>((resolve) => (openBrake = resolve)));
  return { deps, targets, timeline, audit, statuses, brakeInFlight, holdBrake, openBrake: () => openBrake() };
}

afterEach(() => vi.restoreAllMocks());

describe("a leaver's requests", () => {
  it("LDAP-like target: disable with one ownership read, then the three group removals all in flight at once", async () => {
    const w = world(["corp-ldap"]);
    const t = w.targets.get("corp-ldap")!;
    const id = idIn("corp-ldap");
    t.hold(["removeMember"]);
    const done = reconcileEmployee(w.deps, NS, "ada");
    // All three are sent before any is answered: one after another, the second would never start.
    await vi.waitFor(() => expect(t.inFlight.size).toBe(3));
    expect(t.requests).toEqual([
      // findAccount: the recorded account's groups are read alongside the look-up.
      `groupsOf ${id}`,
      "search E1001",
      // The disable reads the entry it changes, then writes it.
      `read ${id}`,
      `setEnabled ${id} false`,
      ...GROUPS.map((g) => `removeMember ${g} ${id}`),
    ]);
    t.release();
    await done;
    expect(t.requests.filter((r) => r.startsWith("read"))).toHaveLength(1);
    expect(t.accounts.get(id)!.locked).toBe(true);
    for (const g of GROUPS) expect([...t.members.get(g)!]).toEqual([]);

    const account = w.statuses.at(-1)!.accounts!.find((a) => a.connector === "corp-ldap")!;
    expect(w.statuses.at(-1)!.phase).toBe("Deprovisioned");
    expect(account).toMatchObject({ state: "Disabled", groups: [] });
    // History and audit in plan order, each removal starting from what the one before left.
    expect(account.history!.map((h) => h.detail)).toEqual([
      "removed from group vpn",
      "removed from group staff",
      "removed from group eng",
      "disabled",
    ]);
    expect(w.audit.map((r) => [r.operation, r.outcome, r.changes.groups ?? r.changes.enabled])).toEqual([
      ["disable", "succeeded", { before: true, after: false }],
      ["group_remove", "succeeded", { before: ["eng", "staff", "vpn"], after: ["staff", "vpn"] }],
      ["group_remove", "succeeded", { before: ["staff", "vpn"], after: ["vpn"] }],
      ["group_remove", "succeeded", { before: ["vpn"], after: [] }],
    ]);
  });

  it("no removal is sent before the disable is confirmed", async () => {
    const w = world(["corp-ldap"]);
    const t = w.targets.get("corp-ldap")!;
    t.hold(["setEnabled"]);
    const done = reconcileEmployee(w.deps, NS, "ada");
    await vi.waitFor(() => expect(t.requests.at(-1)).toMatch(/^setEnabled /));
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(t.requests.at(-1)).toMatch(/^setEnabled /);
    expect(t.requests.filter((r) => r.startsWith("removeMember"))).toEqual([]);
    t.release();
    await done;
    expect(t.requests.filter((r) => r.startsWith("removeMember"))).toHaveLength(3);
  });

  it("the brake is asked for every connector at once, and no target is written before both answered", async () => {
    const w = world(["corp-ldap", "lab-ldap"]);
    w.holdBrake();
    const done = reconcileEmployee(w.deps, NS, "ada");
    await vi.waitFor(() => expect(w.brakeInFlight.size).toBe(2));
    const writes = () => w.timeline.filter((e) => /setEnabled|removeMember/.test(e));
    expect(writes()).toEqual([]);
    w.openBrake();
    await done;
    expect(writes()).toHaveLength(8);
    const lastBrake = Math.max(w.timeline.indexOf("brake corp-ldap"), w.timeline.indexOf("brake lab-ldap"));
    expect(w.timeline.findIndex((e) => /setEnabled|removeMember/.test(e))).toBeGreaterThan(lastBrake);
  });

  it("one refused removal: the others still go through; the failure and the records are in plan order", async () => {
    const w = world(["corp-ldap"]);
    const t = w.targets.get("corp-ldap")!;
    const id = idIn("corp-ldap");
    t.failing.add(`removeMember eng ${id}`);
    await expect(reconcileEmployee(w.deps, NS, "ada")).rejects.toThrow(/eng/);
    expect([...t.members.get("eng")!]).toEqual([id]);
    expect([...t.members.get("staff")!]).toEqual([]);
    expect([...t.members.get("vpn")!]).toEqual([]);
    expect(w.audit.map((r) => [r.operation, r.outcome, r.changes.groups?.before])).toEqual([
      ["disable", "succeeded", undefined],
      ["group_remove", "failed", ["eng", "staff", "vpn"]],
      ["group_remove", "succeeded", ["eng", "staff", "vpn"]],
      ["group_remove", "succeeded", ["eng", "vpn"]],
    ]);
    const account = w.statuses.at(-1)!.accounts!.find((a) => a.connector === "corp-ldap")!;
    expect(account.state).toBe("Failed");
    expect(account.message).toMatch(/eng/);
    expect(account.history!.map((h) => h.detail)).toEqual([
      "removed from group vpn",
      "removed from group staff",
      "disabled",
    ]);
  });
});

describe("the brake gate asked at once", () => {
  /** A Kubernetes API that records each Connector status patch and holds it until `answer()`. */
  function api() {
    type Stored = { counted: { account: string }[]; held: unknown[]; reserved?: { count: number }[] };
    const patches: { name: string; status: { deprovisioning: Stored } }[] = [];
    const open = new Map<string, number>();
    let maxOpenPerConnector = 0;
    const waiting: (() => void)[] = [];
    const custom = {
      async patchNamespacedCustomObjectStatus(req: { name: string; body: { status: never } }) {
        patches.push({ name: req.name, status: req.body.status });
        open.set(req.name, (open.get(req.name) ?? 0) + 1);
        maxOpenPerConnector = Math.max(maxOpenPerConnector, open.get(req.name)!);
        await new Promise<void>((resolve) => waiting.push(resolve));
        open.set(req.name, open.get(req.name)! - 1);
        return {};
      },
    } as unknown as CustomApi;
    const answer = () => waiting.splice(0).forEach((resolve) => resolve());
    return { custom, patches, open, answer, maxOpen: () => maxOpenPerConnector };
  }
  const gate = (custom: CustomApi) =>
    new BrakeGate({
      custom,
      managed: () => 100,
      events: { record: async () => {} } as unknown as EventRecorder,
      changed: () => {},
    });
  const withLimit = (name: string, maxDeprovisionsPerHour: number): Connector => ({
    ...ldapConnector(name),
    spec: { ...ldapConnector(name).spec, safety: { maxDeprovisionsPerHour, maxDeprovisionPercent: 100 } },
  });

  it("two connectors' writes are in flight together; one connector's one after another, each deciding on the last", async () => {
    const k = api();
    const brake = gate(k.custom);
    const [a, b] = [withLimit("corp-ldap", 1), withLimit("lab-ldap", 1)];
    const decisions = Promise.all([
      brake.request(a, "people/E1"),
      brake.request(b, "people/E1"),
      brake.request(a, "people/E2"),
    ]);
    await vi.waitFor(() => expect(k.patches.map((p) => p.name)).toEqual(["corp-ldap", "lab-ldap"]));
    // The second request for corp-ldap waits for the first one's write: it decides on its result.
    k.answer();
    await vi.waitFor(() => expect(k.patches).toHaveLength(3));
    k.answer();
    expect(await decisions).toEqual([
      { allowed: true },
      { allowed: true },
      { allowed: false, held: 1, limit: 1 },
    ]);
    expect(k.maxOpen()).toBe(1);
    expect(k.patches[2]!.status.deprovisioning).toMatchObject({
      counted: [{ account: "people/E1" }],
      held: [{ account: "people/E2" }],
    });
  });

  it("counts taken ahead: the next leavers go without a write first, and one write later stores them", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const k = api();
      const brake = gate(k.custom);
      const c = withLimit("corp-ldap", 100); // 5 slots ahead (5% of the limit)
      const first = brake.request(c, "people/E1");
      await vi.waitFor(() => expect(k.patches).toHaveLength(1));
      expect(k.patches[0]!.status.deprovisioning).toMatchObject({
        counted: [{ account: "people/E1" }],
        reserved: [{ count: 5 }],
      });
      k.answer();
      expect(await first).toEqual({ allowed: true });
      // Two more, answered with no write in flight or sent.
      for (const n of [2, 3]) expect(await brake.request(c, `people/E${n}`)).toEqual({ allowed: true });
      expect(k.patches).toHaveLength(1);
      // Within a second, one write stores both, with the slots left.
      await vi.advanceTimersByTimeAsync(1_000);
      expect(k.patches).toHaveLength(2);
      const stored = k.patches[1]!.status.deprovisioning as {
        counted: { account: string }[];
        reserved?: { count: number }[];
      };
      expect(stored.counted.map((e) => e.account)).toEqual([1, 2, 3].map((n) => `people/E${n}`));
      expect(stored.reserved).toMatchObject([{ count: 3 }]);
      k.answer();
    } finally {
      vi.useRealTimers();
    }
  });

  it("a steady stream never waits for a write: half the slots filled, more are taken in the background", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const k = api();
      const brake = gate(k.custom);
      const c = withLimit("corp-ldap", 100); // 5 slots ahead
      const first = brake.request(c, "people/E1");
      await vi.waitFor(() => expect(k.patches).toHaveLength(1));
      k.answer();
      await first;
      // E2..E4 fill slots; with two left, a top-up goes out (and is not answered yet).
      for (const n of [2, 3, 4]) expect(await brake.request(c, `people/E${n}`)).toEqual({ allowed: true });
      await vi.waitFor(() => expect(k.patches).toHaveLength(2));
      const topUp = k.patches[1]!.status.deprovisioning;
      expect(topUp.counted.map((e) => e.account)).toEqual([1, 2, 3, 4].map((n) => `people/E${n}`));
      expect(topUp.reserved?.map((r) => r.count)).toEqual([2, 3]);
      // Its write in flight, E5 and E6 still go at once, on the two slots stored before.
      for (const n of [5, 6]) expect(await brake.request(c, `people/E${n}`)).toEqual({ allowed: true });
      // E7 has no stored slot left: it waits for the top-up, then fills one of the new ones.
      let seventh: unknown;
      void brake.request(c, "people/E7").then((d) => (seventh = d));
      await vi.advanceTimersByTimeAsync(0);
      expect(seventh).toBeUndefined();
      k.answer();
      await vi.waitFor(() => expect(seventh).toEqual({ allowed: true }));
      // Two new slots left after E7: the next top-up brings them back to five.
      await vi.waitFor(() => expect(k.patches).toHaveLength(3));
      const next = k.patches[2]!.status.deprovisioning;
      expect(next.counted.map((e) => e.account)).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `people/E${n}`));
      expect(next.reserved?.map((r) => r.count)).toEqual([2, 3]);
      k.answer();
      // Everything is stored: the flush due now has nothing to write.
      await vi.advanceTimersByTimeAsync(1_000);
      expect(k.patches).toHaveLength(3);
      expect(k.maxOpen()).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("on shutdown it stores what was filled and gives back the slots it did not fill", async () => {
    const k = api();
    const brake = gate(k.custom);
    const c = withLimit("corp-ldap", 100);
    const first = brake.request(c, "people/E1");
    await vi.waitFor(() => expect(k.patches).toHaveLength(1));
    k.answer();
    await first;
    expect(await brake.request(c, "people/E2")).toEqual({ allowed: true });
    const settled = brake.settle();
    await vi.waitFor(() => expect(k.patches).toHaveLength(2));
    const stored = k.patches[1]!.status.deprovisioning as {
      counted: { account: string }[];
      reserved?: unknown;
    };
    expect(stored.counted.map((e) => e.account)).toEqual(["people/E1", "people/E2"]);
    expect(stored.reserved).toBeUndefined();
    k.answer();
    await settled;
  });
});

describe("proofs of ownership (connector base)", () => {
  const id = idIn("corp-ldap");
  const ref = { id, employeeId: "E1001" };
  function setup() {
    const t = recordingTarget("mem");
    t.accounts.set(id, { id, employeeId: "E1001", locked: false });
    const reads = () => t.requests.filter((r) => r.startsWith("read ")).length;
    return { t, c: t.target.client, reads };
  }

  it("a membership write right after a read of the account reads nothing; an entry write always reads", async () => {
    const { c, reads } = setup();
    await c.findAccount("E1001", "ada");
    await c.removeFromGroup("eng", ref);
    await c.addToGroup("staff", ref);
    expect(reads()).toBe(0);
    await c.setEnabled(ref, false);
    await c.setEnabled(ref, true);
    expect(reads()).toBe(2);
  });

  it("a proof is another employee's for nobody, and goes with a failed write or after a second", async () => {
    const { t, c, reads } = setup();
    await c.findAccount("E1001", "ada");
    await expect(c.removeFromGroup("eng", { id, employeeId: "E2002" })).rejects.toBeInstanceOf(NotOwnedError);
    expect(reads()).toBe(1);
    // The refusal dropped the proof: the next write reads again.
    await c.removeFromGroup("eng", ref);
    expect(reads()).toBe(2);
    t.failing.add(`addMember staff ${id}`);
    await expect(c.addToGroup("staff", ref)).rejects.toThrow(/refused/);
    t.failing.clear();
    await c.addToGroup("staff", ref);
    expect(reads()).toBe(3);
    const now = performance.now();
    vi.spyOn(performance, "now").mockReturnValue(now + 1_001);
    await c.addToGroup("vpn", ref);
    expect(reads()).toBe(4);
  });

  it("an account that changed hands after the proof went stale is refused", async () => {
    const { t, c } = setup();
    await c.findAccount("E1001", "ada");
    t.accounts.get(id)!.employeeId = "E2002";
    const now = performance.now();
    vi.spyOn(performance, "now").mockReturnValue(now + 1_001);
    await expect(c.removeFromGroup("eng", ref)).rejects.toBeInstanceOf(NotOwnedError);
    expect(t.members.get("eng")!.has(id)).toBe(false); // never a member here: nothing was sent
    expect(t.requests.filter((r) => r.startsWith("removeMember"))).toEqual([]);
  });
});

describe("runSteps", () => {
  const ops = (...names: string[]): Operation[] =>
    names.map((n) => {
      const [op, group] = n.split(" ") as [Operation["op"], string | undefined];
      return (group ? { op, group } : { op }) as Operation;
    });
  const show = (steps: Operation[][]) =>
    steps.map((s) => s.map((o) => ("group" in o ? `${o.op} ${o.group}` : o.op)));
  const key = (n: string) => n.toLowerCase();

  it("entry operations alone and in order; the membership changes between them together", () => {
    expect(
      show(runSteps(ops("enable", "group_add a", "group_add b", "group_remove c", "disable"), key)),
    ).toEqual([["enable"], ["group_add a", "group_add b", "group_remove c"], ["disable"]]);
    expect(show(runSteps(ops("disable", "group_remove a", "group_remove b", "delete"), key))).toEqual([
      ["disable"],
      ["group_remove a", "group_remove b"],
      ["delete"],
    ]);
  });

  it("two changes to the same group (as the target compares names) are never sent together", () => {
    expect(show(runSteps(ops("group_add Staff", "group_remove staff", "group_add x"), key))).toEqual([
      ["group_add Staff"],
      ["group_remove staff", "group_add x"],
    ]);
  });
});
