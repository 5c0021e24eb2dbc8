// `roster test`: the AccessTest evaluation as a pure function (the command itself:
// test/packaging/cli-offline.test.ts), on deploy/samples plus test/fixtures/access-tests.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../../src/api/types.ts";
import {
  accessTestProblems,
  holdingsOf,
  runAccessTest,
  type AccessTestSpecT,
  type TestObjects,
} from "../../src/policy/access-test.ts";
import { loadManifests } from "../../src/cli/plan.ts";

const root = join(import.meta.dirname, "../..");
const fixtures = join(root, "test/fixtures/access-tests");
const samples = join(root, "deploy/samples");
const now = new Date("2026-03-01T00:00:00Z");

function objectsIn(...dirs: string[]): TestObjects {
  const loaded = dirs.flatMap((d) => loadManifests(d));
  const of = <T>(kind: string) => loaded.filter((o) => o.kind === kind).map((o) => o.object as unknown as T);
  return {
    employees: of<Employee>("Employee"),
    policies: of<AccessPolicy>("AccessPolicy"),
    rules: of<GroupRule>("GroupRule"),
    connectors: of<Connector>("Connector"),
  };
}

const employee = (
  name: string,
  spec: Partial<Employee["spec"]> = {},
  metadata: Partial<Employee["metadata"]> = {},
): Employee => ({
  apiVersion: "roster.dev/v1alpha1",
  kind: "Employee",
  metadata: { name, ...metadata },
  spec: {
    employeeId: `ID-${name}`,
    username: name,
    givenName: name,
    familyName: "Tester",
    email: `${name}@example.com`,
    ...spec,
  },
});
const policy = (name: string, spec: Partial<AccessPolicy["spec"]>, annotations?: Record<string, string>) =>
  ({
    apiVersion: "roster.dev/v1alpha1",
    kind: "AccessPolicy",
    metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: { grants: [], ...spec },
  }) as AccessPolicy;
const rule = (name: string, spec: Partial<GroupRule["spec"]>) =>
  ({
    apiVersion: "roster.dev/v1alpha1",
    kind: "GroupRule",
    metadata: { name },
    spec: { group: name, connectors: ["ldap"], ...spec },
  }) as GroupRule;
const ldapConnector = {
  apiVersion: "roster.dev/v1alpha1",
  kind: "Connector",
  metadata: { name: "ldap" },
  spec: {
    ldap: {
      url: "ldap://x",
      bindDN: "cn=a",
      bindPasswordSecretRef: { name: "s", key: "k" },
      usersDN: "ou=p",
      groupsDN: "ou=g",
    },
  },
} as Connector;

/** Finance: approvers by title, payers by department; Pat is both. */
const finance = (): TestObjects => ({
  employees: [
    employee("pat", { department: "Finance", title: "Payments Approver" }),
    employee("sam", { department: "Finance", title: "Clerk" }),
    employee("kim", { department: "Sales", title: "Approver", employmentType: "Contractor" }),
    employee("old", { department: "Finance", employmentStatus: "Terminated" }),
  ],
  policies: [
    policy("everyone", { grants: [{ connector: "ldap", groups: ["staff"] }] }),
    policy("finance", {
      match: [{ key: "department", operator: "In", values: ["Finance"] }],
      grants: [{ connector: "ldap", groups: ["Payments-Execute"] }],
    }),
  ],
  rules: [rule("payments-approve", { match: [{ key: "title", operator: "Matches", values: ["Approver"] }] })],
  connectors: [ldapConnector],
});

describe("runAccessTest", () => {
  it("fails separation of duties naming the person and both groups with their sources", () => {
    const spec: AccessTestSpecT = {
      invariants: [
        { separationOfDuties: { connector: "ldap", groups: ["payments-execute", "payments-approve"] } },
      ],
    };
    const { cases } = runAccessTest(spec, finance(), now);
    expect(cases).toEqual([
      {
        name: "separation of duties in ldap: payments-execute, payments-approve",
        kind: "separationOfDuties",
        passed: false,
        failures: [
          // LDAP compares group names without regard to case, as the target does.
          "pat (employeeId ID-pat) is in both payments-execute (from AccessPolicy/finance) and payments-approve (from GroupRule/payments-approve) in ldap",
        ],
      },
    ]);
  });

  it("judges a Terminated person as holding nothing, and a person before startDate too", () => {
    const objects = finance();
    objects.employees = [
      ...objects.employees,
      employee("new", { department: "Finance", title: "Approver", startDate: "2026-04-01" }),
    ];
    const spec: AccessTestSpecT = {
      invariants: [
        { separationOfDuties: { connector: "ldap", groups: ["payments-execute", "payments-approve"] } },
      ],
    };
    expect(runAccessTest(spec, objects, now).cases[0]!.failures).toHaveLength(1);
    // After startDate the new hire breaks it too; the file's now wins over the command's.
    const later = runAccessTest({ ...spec, now: "2026-04-02" }, objects, now);
    expect(later.at.toISOString()).toBe("2026-04-02T00:00:00.000Z");
    expect(later.cases[0]!.failures.map((f) => f.split(" ")[0])).toEqual(["pat", "new"]);
  });

  it("checks named and inline Employees' accounts and groups, with lifecycle and an expectation's own now", () => {
    const spec: AccessTestSpecT = {
      expect: [
        {
          employee: "sam",
          accounts: [{ connector: "ldap", groups: ["staff", "payments-execute"], enabled: true }],
        },
        { employee: "sam", accounts: [{ connector: "ldap", notGroups: ["staff"] }] },
        { employee: "old", noAccounts: ["ldap"] },
        { employee: "old", accounts: [{ connector: "ldap" }] },
        {
          name: "on leave keeps a disabled account",
          inlineEmployee: { spec: employee("x", { employmentStatus: "OnLeave" }).spec },
          accounts: [{ connector: "ldap", enabled: true }],
        },
        {
          inlineEmployee: {
            metadata: { name: "leaver" },
            spec: employee("y", { endDate: "2026-06-30" }).spec,
          },
          now: "2026-07-01",
          noAccounts: ["ldap"],
        },
      ],
    };
    const { cases } = runAccessTest(spec, finance(), now);
    expect(cases.map((c) => [c.name, c.passed, c.failures])).toEqual([
      ["sam: an account in ldap (in: staff, payments-execute)", true, []],
      [
        "sam: an account in ldap (not in: staff)",
        false,
        ["sam: expected not to be in group staff in ldap, but is (from AccessPolicy/everyone)"],
      ],
      ["old: no account in ldap", true, []],
      [
        "old: an account in ldap",
        false,
        ["old: expected an account in ldap, but has none (Terminated: employmentStatus is Terminated)"],
      ],
      [
        "on leave keeps a disabled account",
        false,
        [
          "inline-5: expected the account in ldap to be enabled, but it is disabled (employmentStatus is OnLeave)",
        ],
      ],
      ["leaver: no account in ldap", true, []],
    ]);
  });

  it("never: nobody matching gets the group, with the values it matched on", () => {
    const spec: AccessTestSpecT = {
      invariants: [
        {
          never: {
            match: [{ key: "employmentType", operator: "In", values: ["Contractor"] }],
            connector: "ldap",
            groups: ["payments-approve"],
          },
        },
        { never: { match: [{ key: "department", operator: "In", values: ["Sales"] }], connector: "ldap" } },
      ],
    };
    const { cases } = runAccessTest(spec, finance(), now);
    expect(cases.map((c) => c.failures)).toEqual([
      [
        'kim (employeeId ID-kim, employmentType "Contractor") is in payments-approve in ldap (from GroupRule/payments-approve)',
      ],
      ['kim (employeeId ID-kim, department "Sales") has an account in ldap (from AccessPolicy/everyone)'],
    ]);
    expect(cases.map((c) => c.name)).toEqual([
      "never: employmentType In [Contractor] in payments-approve of ldap",
      "never: department In [Sales] with an account in ldap",
    ]);
  });

  it("members: at least and at most, listing who", () => {
    const spec: AccessTestSpecT = {
      invariants: [
        { members: { connector: "ldap", group: "payments-execute", atMost: 1 } },
        { members: { connector: "ldap", group: "auditors", atLeast: 1 } },
        { name: "staffed", members: { connector: "ldap", group: "staff", atLeast: 3, atMost: 3 } },
      ],
    };
    const { cases } = runAccessTest(spec, finance(), now);
    expect(cases.map((c) => [c.name, c.failures])).toEqual([
      [
        "members of payments-execute in ldap: at most 1",
        ["payments-execute in ldap has 2 members: pat, sam; at most 1 allowed"],
      ],
      ["members of auditors in ldap: at least 1", ["auditors in ldap has 0 members; at least 1 required"]],
      ["staffed", []],
    ]);
  });

  it("a pause only delays: a paused policy's grants count; a duplicate employeeId holds nothing", () => {
    const objects = finance();
    objects.policies = objects.policies.map((p) =>
      p.metadata.name === "finance"
        ? { ...p, metadata: { ...p.metadata, annotations: { "roster.dev/paused": "true" } } }
        : p,
    );
    const spec: AccessTestSpecT = {
      expect: [{ employee: "sam", accounts: [{ connector: "ldap", groups: ["payments-execute"] }] }],
    };
    expect(runAccessTest(spec, objects, now).cases[0]!.passed).toBe(true);

    // Two Employees with one employeeId: the one that is not Terminated acts (the planner's rule).
    const rehire = employee("old-rehired", { employeeId: "ID-old", department: "Finance" });
    const withRehire = { ...objects, employees: [...objects.employees, rehire] };
    const old = objects.employees.find((e) => e.metadata.name === "old")!;
    expect(holdingsOf(old, withRehire, now).accounts.size).toBe(0);
    const dup = employee("twin", { employeeId: "ID-sam" }, { creationTimestamp: "2030-01-01T00:00:00Z" });
    const twins = { ...objects, employees: [...objects.employees, dup] };
    expect(holdingsOf(dup, twins, now)).toMatchObject({ duplicateOf: "sam", accounts: new Map() });
  });
});

describe("accessTestProblems", () => {
  it("names the field: unknown Employees and Connectors, invariants of no or two kinds, empty expectations", () => {
    const spec = {
      now: "yesterday",
      expect: [
        { employee: "nobody", accounts: [{ connector: "ldap" }] },
        { employee: "sam", noAccounts: ["ldpa"] },
        { employee: "sam" },
        { employee: "sam", inlineEmployee: { spec: employee("z").spec }, noAccounts: ["ldap"] },
      ],
      invariants: [
        {},
        {
          separationOfDuties: { connector: "ldap", groups: ["a", "b"] },
          members: { connector: "ldap", group: "a", atLeast: 1 },
        },
        { members: { connector: "ldap", group: "a" } },
        { members: { connector: "ldap", group: "a", atLeast: 3, atMost: 1 } },
        { never: { connector: "ldap", match: [{ key: "title", operator: "Matches", values: ["("] }] } },
      ],
    } as AccessTestSpecT;
    expect(accessTestProblems(spec, finance())).toEqual([
      'spec.now: "yesterday" is not an RFC 3339 date or date-time',
      "spec.expect.0.employee: no Employee named nobody in the directory",
      "spec.expect.1.noAccounts.0: no Connector ldpa in the directory, and no policy, rule or grant names it",
      "spec.expect.2: expects nothing (give accounts or noAccounts)",
      "spec.expect.3: give exactly one of employee and inlineEmployee",
      "spec.invariants.0: give exactly one of separationOfDuties, never and members",
      "spec.invariants.1: give exactly one of separationOfDuties, never and members",
      "spec.invariants.2.members: give atLeast, atMost or both",
      "spec.invariants.3.members: atLeast 3 is more than atMost 1",
      expect.stringMatching(/^spec\.invariants\.4\.never\.match\.0: invalid regular expression/),
    ]);
  });
});

describe("the fixtures on deploy/samples", () => {
  it("the violation fails only separation of duties; the fixed one passes", () => {
    const test = loadManifests(join(fixtures, "common")).find((o) => o.kind === "AccessTest")!.object
      .spec as AccessTestSpecT;
    const broken = runAccessTest(
      test,
      objectsIn(samples, join(fixtures, "common"), join(fixtures, "violation")),
      new Date(),
    );
    expect(broken.cases.filter((c) => !c.passed).map((c) => [c.name, c.failures])).toEqual([
      [
        "nobody deploys what they approve",
        [
          "ada (employeeId E1001) is in both prod-deploy (from AccessPolicy/platform-deploy) and release-approvers (from GroupRule/release-approvers) in corp-ldap",
        ],
      ],
    ]);
    const fixed = runAccessTest(
      test,
      objectsIn(samples, join(fixtures, "common"), join(fixtures, "fixed")),
      new Date(),
    );
    expect(fixed.cases.every((c) => c.passed)).toBe(true);
    expect(fixed.cases).toHaveLength(broken.cases.length);
  });
});
