// The audit trail without servers: the records built from an operation and its context
// (src/plan/audit.ts), the audit logger on the operator's stream (src/observe/audit.ts), the
// bounded history the planner keeps in status, the one Event a reconcile records, and
// `roster report --history`'s rendering.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { AccessPolicy, Connector, Employee, EmployeeStatusT } from "../../src/api/types.ts";
import { sameStatus } from "../../src/api/conditions.ts";
import type { ActualAccount } from "../../src/connectors/types.ts";
import { desiredAttributes } from "../../src/connectors/mapping.ts";
import { evaluateAccess } from "../../src/policy/evaluate.ts";
import {
  accountAfter,
  changeRecord,
  changeSummary,
  employeeChangeRecord,
  historyEntry,
  mergeHistory,
  type AccountChange,
  type EmployeeChangeContext,
} from "../../src/plan/audit.ts";
import { planEmployee, type AccountResult, type EmployeePlanInput } from "../../src/plan/employee.ts";
import type { Operation } from "../../src/plan/plan.ts";
import { createLogger } from "../../src/observe/logger.ts";
import { emitAudit } from "../../src/observe/audit.ts";
import { registry } from "../../src/observe/metrics.ts";
import { accountHistory, renderHistoryJson, renderHistoryText } from "../../src/cli/report.ts";

const NS = "people";
const NOW = new Date("2026-06-01T12:00:00.250Z");
const DN = "uid=ada,ou=people,dc=example,dc=com";

const corpLdap: Connector = {
  apiVersion: "roster.dev/v1alpha1",
  kind: "Connector",
  metadata: { name: "corp-ldap", namespace: NS, generation: 1 },
  spec: {
    ldap: {
      url: "ldaps://ldap.example.com",
      bindDN: "cn=roster,dc=example,dc=com",
      bindPasswordSecretRef: { name: "bind", key: "password" },
      usersDN: "ou=people,dc=example,dc=com",
      groupsDN: "ou=groups,dc=example,dc=com",
    },
  },
};

function policy(name: string, department: string | undefined, groups: string[]): AccessPolicy {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "AccessPolicy",
    metadata: { name, namespace: NS },
    spec: {
      ...(department
        ? { match: [{ key: "department", operator: "In" as const, values: [department] }] }
        : {}),
      grants: [{ connector: "corp-ldap", groups }],
    },
  };
}
const policies = [
  policy("everyone", undefined, ["staff"]),
  policy("engineering", "Engineering", ["engineering"]),
  policy("sales", "Sales", ["sales"]),
];

function employee(spec: Partial<Employee["spec"]> = {}, status?: EmployeeStatusT, generation = 1): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name: "ada", namespace: NS, generation, creationTimestamp: "2026-03-01T08:00:00Z" },
    spec: {
      employeeId: "E1001",
      username: "ada",
      givenName: "Ada",
      familyName: "Lovelace",
      email: "ada@example.com",
      department: "Engineering",
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

/** Ada as status records her after the joiner's reconcile. */
const joined = (history?: AccountChange[]): EmployeeStatusT => ({
  observedGeneration: 1,
  phase: "Active",
  accounts: [
    {
      connector: "corp-ldap",
      id: DN,
      state: "Active",
      groups: ["engineering", "staff"],
      lastSyncTime: "2026-05-01T09:00:00Z",
      ...(history ? { history } : {}),
    },
  ],
  entitlements: [
    { connector: "corp-ldap", source: "AccessPolicy/engineering" },
    { connector: "corp-ldap", source: "AccessPolicy/everyone" },
    { connector: "corp-ldap", group: "engineering", source: "AccessPolicy/engineering" },
    { connector: "corp-ldap", group: "staff", source: "AccessPolicy/everyone" },
  ],
});

function held(e: Employee, groups: string[], extra: Partial<ActualAccount> = {}): ActualAccount {
  return {
    id: DN,
    employeeId: e.spec.employeeId,
    username: e.spec.username,
    attributes: desiredAttributes(corpLdap, e.spec),
    enabled: true,
    groups,
    ...extra,
  };
}

function context(
  e: Employee,
  ops: Operation[],
  extra: Partial<EmployeeChangeContext> = {},
): EmployeeChangeContext {
  return {
    employee: e,
    access: evaluateAccess(e, policies, [], NOW),
    connector: "corp-ldap",
    ops,
    driftCorrected: false,
    ...extra,
  };
}

const record = (ctx: EmployeeChangeContext, op: Operation, before?: ActualAccount, changeId = "c-1") =>
  employeeChangeRecord(ctx, { changeId, time: NOW, op, before, id: before?.id ?? DN });

describe("the audit record of an Employee's change", () => {
  it("a joiner's create: who, where, what, every attribute and group after, the policies behind it", () => {
    const ada = employee();
    const create: Operation = {
      op: "create",
      account: {
        employeeId: "E1001",
        username: "ada",
        attributes: { ...desiredAttributes(corpLdap, ada.spec), userPassword: ["must-not-appear"] },
        enabled: true,
        groups: ["engineering", "staff"],
      },
    };
    const r = record(context(ada, [create]), create);
    expect(r).toMatchObject({
      changeId: "c-1",
      time: "2026-06-01T12:00:00.250Z",
      outcome: "succeeded",
      employee: { namespace: NS, name: "ada", employeeId: "E1001", username: "ada", generation: 1 },
      connector: "corp-ldap",
      operation: "create",
      target: DN,
      reason: "joiner",
      sources: ["AccessPolicy/engineering", "AccessPolicy/everyone"],
      detail: "created in groups engineering, staff",
    });
    expect(r.changes.mail).toEqual({ before: null, after: ["ada@example.com"] });
    expect(r.changes.groups).toEqual({ before: null, after: ["engineering", "staff"] });
    expect(r.changes.enabled).toEqual({ before: null, after: true });
    // A credential attribute a mapping might write is never part of a record.
    expect(r.changes).not.toHaveProperty("userPassword");
    expect(JSON.stringify(r)).not.toContain("must-not-appear");
    expect(r).not.toHaveProperty("error");
  });

  it("a mover: the attribute before and after, the group added for the new policy, the one removed for the old", () => {
    const mover = employee({ department: "Sales" }, joined(), 2);
    const before = held(employee(), ["engineering", "staff"]);
    const update: Operation = { op: "update", changes: { departmentNumber: ["Sales"] } };
    const add: Operation = { op: "group_add", group: "sales" };
    const remove: Operation = { op: "group_remove", group: "engineering" };
    const ctx = context(mover, [update, add, remove]);
    const updated = record(ctx, update, before);
    expect(updated).toMatchObject({
      operation: "update",
      reason: "employee change",
      employee: { generation: 2 },
      changes: { departmentNumber: { before: ["Engineering"], after: ["Sales"] } },
      sources: ["AccessPolicy/everyone", "AccessPolicy/sales"],
      detail: "updated departmentNumber",
    });
    const afterUpdate = accountAfter(update, before, before);
    expect(afterUpdate?.attributes.departmentNumber).toEqual(["Sales"]);
    const added = record(ctx, add, afterUpdate);
    expect(added).toMatchObject({
      operation: "group_add",
      sources: ["AccessPolicy/sales"],
      changes: { groups: { before: ["engineering", "staff"], after: ["engineering", "sales", "staff"] } },
      detail: "added to group sales",
    });
    const removed = record(ctx, remove, accountAfter(add, afterUpdate, afterUpdate));
    expect(removed).toMatchObject({
      operation: "group_remove",
      // What granted it before: the policy the person no longer matches.
      sources: ["AccessPolicy/engineering"],
      changes: { groups: { before: ["engineering", "sales", "staff"], after: ["sales", "staff"] } },
    });
  });

  it("says why: leaver, suspended, policy edit, start date, grant expired, drift correction, adoption link, resync", () => {
    const disable: Operation = { op: "disable" };
    const update: Operation = { op: "update", changes: { title: ["Engineer"] } };
    const reason = (e: Employee, ops: Operation[], extra: Partial<EmployeeChangeContext> = {}) =>
      record(context(e, ops, extra), ops[0]!).reason;
    expect(reason(employee({ employmentStatus: "Terminated" }, joined(), 2), [disable])).toBe("leaver");
    expect(reason(employee({ employmentStatus: "OnLeave" }, joined(), 2), [disable])).toBe("suspended");
    // Same generation, other entitlements: an AccessPolicy changed under the person.
    const edited = joined();
    edited.entitlements = edited.entitlements!.filter((e) => e.group !== "staff");
    expect(reason(employee({}, edited), [{ op: "group_add", group: "staff" }])).toBe("policy edit");
    expect(reason(employee({}, { ...joined(), phase: "Scheduled" }), [update])).toBe("start date");
    const withGrant = employee(
      { grants: [{ connector: "corp-ldap", groups: ["apollo"], until: "2026-05-31" }] },
      joined(),
    );
    expect(reason(withGrant, [{ op: "group_remove", group: "apollo" }])).toBe("grant expired");
    expect(reason(employee({}, joined()), [update], { driftCorrected: true })).toBe("drift correction");
    expect(reason(employee(), [{ op: "link", id: DN }, update])).toBe("adoption link");
    expect(reason(employee({}, joined()), [update])).toBe("resync");
    // A leaver's disable names what granted the account before.
    const leaver = employee({ employmentStatus: "Terminated" }, joined(), 2);
    expect(record(context(leaver, [disable]), disable, held(leaver, [])).sources).toEqual([
      "AccessPolicy/engineering",
      "AccessPolicy/everyone",
    ]);
  });

  it("a failed change: outcome failed, the error's class and reason, no message", () => {
    const ada = employee({}, joined());
    const ctx = context(ada, [{ op: "enable" }]);
    const r = employeeChangeRecord(ctx, {
      changeId: "c-9",
      time: NOW,
      op: { op: "enable" },
      before: held(ada, [], { enabled: false }),
      id: DN,
      failure: { class: "NotOwnedError", reason: "NotOwned" },
    });
    expect(r).toMatchObject({
      outcome: "failed",
      error: { class: "NotOwnedError", reason: "NotOwned" },
      changes: { enabled: { before: false, after: true } },
    });
  });

  it("set_password and changes without an Employee (orphans, scheduled deletions) carry no value", () => {
    const ada = employee({}, joined());
    const r = record(context(ada, [{ op: "set_password" }]), { op: "set_password" }, held(ada, []));
    expect(r.changes).toEqual({});
    expect(r.detail).toBe("set the generated password");
    const orphan = changeRecord({
      changeId: "c-2",
      time: NOW,
      op: { op: "disable" },
      before: held(ada, []),
      id: DN,
      employee: { namespace: NS, employeeId: "E-gone", username: "gone" },
      connector: "corp-ldap",
      reason: "orphan action",
    });
    expect(orphan).toMatchObject({
      employee: { namespace: NS, employeeId: "E-gone" },
      reason: "orphan action",
      sources: [],
      changes: { enabled: { before: true, after: false } },
    });
    expect(orphan.employee).not.toHaveProperty("name");
  });
});

describe("the audit logger", () => {
  function capture() {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split("\n").filter(Boolean));
        cb();
      },
    });
    return { lines, destination };
  }

  it("writes every record, whatever the operator's level, as roster.audit with audit: true, once named", async () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination, level: "error" });
    logger.info("not written at level error");
    const ada = employee({}, joined());
    const r = record(context(ada, [{ op: "disable" }]), { op: "disable" }, held(ada, []), "c-logged");
    const counted = async () =>
      (await registry.getSingleMetric("roster_changes_total")!.get()).values.find(
        (v) =>
          v.labels.connector === `${NS}/corp-ldap` &&
          v.labels.operation === "disable" &&
          v.labels.outcome === "succeeded",
      )?.value ?? 0;
    const before = await counted();
    emitAudit(logger, r);
    emitAudit(createLogger({ destination, level: "silent" }), { ...r, changeId: "c-silent" });
    expect(lines).toHaveLength(2);
    // One `name` key: a renamed child logger would write the parent's name too.
    expect(lines[0]!.match(/"name":"roster/g)).toEqual(['"name":"roster']);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: "info",
      name: "roster.audit",
      audit: true,
      changeId: "c-logged",
      time: "2026-06-01T12:00:00.250Z",
      operation: "disable",
      target: DN,
      employee: { namespace: NS, name: "ada", employeeId: "E1001", generation: 1 },
      msg: `corp-ldap ${DN}: disabled`,
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({ changeId: "c-silent", audit: true });
    expect((await counted()) - before).toBe(2);
  });

  it("redacts as the operator's logger does", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ destination });
    const ada = employee({}, joined());
    const r = record(context(ada, [{ op: "disable" }]), { op: "disable" }, held(ada, []));
    emitAudit(logger, { ...r, changes: { password: { before: ["p0"], after: ["p1"] } } } as typeof r);
    expect(lines[0]).not.toContain("p0");
    expect(lines[0]).not.toContain("p1");
  });
});

describe("history in status", () => {
  const entry = (n: number): AccountChange => ({
    time: `2026-05-0${n}T09:00:00.000Z`,
    operation: "group_add",
    detail: `added to group g${n}`,
    reason: "policy edit",
    source: "AccessPolicy/everyone",
    changeId: `old-${n}`,
  });

  it("keeps the last 10, newest first", () => {
    const recorded = [9, 8, 7, 6, 5, 4, 3, 2, 1].map(entry);
    const merged = mergeHistory(recorded, [
      { ...entry(1), changeId: "new-a" },
      { ...entry(2), changeId: "new-b" },
    ]);
    expect(merged.map((h) => h.changeId)).toEqual([
      "new-b",
      "new-a",
      "old-9",
      "old-8",
      "old-7",
      "old-6",
      "old-5",
      "old-4",
      "old-3",
      "old-2",
    ]);
  });

  function plan(e: Employee, actual: ActualAccount, results?: Map<string, AccountResult>) {
    const input: EmployeePlanInput = {
      employee: e,
      objects: { employees: [e], policies, rules: [], connectors: [corpLdap] },
      targets: new Map([["corp-ldap", { status: "read", actual }]]),
      now: NOW,
      ...(results ? { results } : {}),
    };
    return planEmployee(input);
  }

  it("the planner adds what the operations did and keeps it through a reconcile that changes nothing", () => {
    const previous = [entry(1)];
    const mover = employee({ department: "Sales" }, joined(previous), 2);
    const actual = held(employee(), ["engineering", "staff"]);
    const planned = plan(mover, actual);
    const ops = planned.accounts[0]!.ops;
    expect(ops.map((o) => o.op)).toEqual(["update", "group_add", "group_remove"]);
    const ctx = context(mover, ops);
    let seen: ActualAccount | undefined = actual;
    const changes = ops.map((op, i) => {
      const r = record(ctx, op, seen, `new-${i}`);
      seen = accountAfter(op, seen, seen);
      return historyEntry(r);
    });
    const final = plan(mover, actual, new Map([["corp-ldap", { applied: ops, current: actual, changes }]]));
    const history = final.status.accounts![0]!.history!;
    expect(history.map((h) => [h.operation, h.detail, h.reason, h.source ?? "", h.changeId])).toEqual([
      [
        "group_remove",
        "removed from group engineering",
        "employee change",
        "AccessPolicy/engineering",
        "new-2",
      ],
      ["group_add", "added to group sales", "employee change", "AccessPolicy/sales", "new-1"],
      [
        "update",
        "updated departmentNumber",
        "employee change",
        "AccessPolicy/everyone, AccessPolicy/sales",
        "new-0",
      ],
      ["group_add", "added to group g1", "policy edit", "AccessPolicy/everyone", "old-1"],
    ]);
    expect(final.events).toEqual([
      {
        type: "Normal",
        reason: "AccountUpdated",
        message: `corp-ldap ${DN}: updated departmentNumber; added to sales; removed from engineering`,
      },
    ]);

    // The next reconcile finds the target as wanted: no operation, the same status (no write).
    const after = { ...mover, status: final.status };
    const idle = plan(after, held(mover, ["sales", "staff"]));
    expect(idle.accounts[0]!.ops).toEqual([]);
    expect(idle.events).toEqual([]);
    expect(sameStatus(idle.status, final.status)).toBe(true);
  });
});

describe("the one Event of a reconcile", () => {
  it("is none when nothing changed, else names the weightiest change and tells all of them", () => {
    expect(changeSummary([{ connector: "corp-ldap", id: DN, applied: [] }])).toBeUndefined();
    expect(
      changeSummary([
        {
          connector: "corp-ldap",
          id: DN,
          applied: [
            {
              op: "create",
              account: {
                employeeId: "E1",
                username: "ada",
                attributes: {},
                enabled: true,
                groups: ["developers", "staff"],
              },
            },
          ],
        },
        {
          connector: "apps-scim",
          id: "2819c223",
          applied: [
            {
              op: "create",
              account: { employeeId: "E1", username: "ada", attributes: {}, enabled: true, groups: [] },
            },
          ],
        },
      ]),
    ).toEqual({
      reason: "AccountCreated",
      message: `corp-ldap: created ${DN}; added to developers, staff; apps-scim: created 2819c223`,
    });
    expect(
      changeSummary(
        [{ connector: "wiki", id: "w-1", applied: [{ op: "group_remove", group: "apollo" }] }],
        [{ reason: "GrantExpired", message: "grant on wiki expired at 2026-05-31" }],
      ),
    ).toEqual({
      reason: "GrantExpired",
      message: "grant on wiki expired at 2026-05-31; wiki w-1: removed from apollo",
    });
    expect(
      changeSummary([
        {
          connector: "corp-ldap",
          id: DN,
          applied: [{ op: "group_remove", group: "staff" }, { op: "disable" }],
        },
      ])?.reason,
    ).toBe("AccountDisabled");
  });
});

describe("roster report --history", () => {
  const people = [
    employee(
      {},
      joined([
        {
          time: "2026-06-01T12:00:00.250Z",
          operation: "create",
          detail: "created in groups engineering, staff",
          reason: "joiner",
          source: "AccessPolicy/engineering, AccessPolicy/everyone",
          changeId: "c-1",
        },
      ]),
    ),
    {
      ...employee({ username: "bob", employeeId: "E2" }, joined()),
      metadata: { name: "bob", namespace: NS },
    },
  ];

  it("lists per person and connector what changed, when and why, with the change id", () => {
    const history = accountHistory(people);
    expect(history).toHaveLength(1);
    const text = renderHistoryText(`namespace ${NS}`, history);
    expect(text).toContain(`people/ada (ada, employeeId E1001)  corp-ldap  ${DN}  Active`);
    expect(text).toMatch(
      /2026-06-01T12:00:00\.250Z {2}create {8}created in groups engineering, staff {2}\(joiner: AccessPolicy\/engineering, AccessPolicy\/everyone\) {2}change c-1/,
    );
    expect(text).not.toContain("bob");
    const json = JSON.parse(renderHistoryJson(`namespace ${NS}`, history)) as {
      accounts: { employee: string; connector: string; changes: AccountChange[] }[];
    };
    expect(json.accounts[0]).toMatchObject({ employee: "ada", connector: "corp-ldap", id: DN });
    expect(json.accounts[0]!.changes[0]!.changeId).toBe("c-1");
    expect(renderHistoryText("namespace empty", [])).toContain("No account has recorded changes.");
  });
});
