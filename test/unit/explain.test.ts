// `roster explain`: the explanation as a pure function (it must agree with evaluateAccess, the
// operator's answer) and the per-entry match results it is built on (the command offline:
// test/packaging/cli-offline.test.ts).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../../src/api/types.ts";
import { loadManifests } from "../../src/cli/plan.ts";
import { evaluateAccess } from "../../src/policy/evaluate.ts";
import { explainAccess, type ExplainObjects } from "../../src/policy/explain.ts";
import { employeeMatches, explainMatch } from "../../src/policy/match.ts";

const root = join(import.meta.dirname, "../..");
const now = new Date("2026-03-01T00:00:00Z");

function objectsIn(...dirs: string[]): ExplainObjects {
  const loaded = dirs.flatMap((d) => loadManifests(join(root, d)));
  const of = <T>(kind: string) => loaded.filter((o) => o.kind === kind).map((o) => o.object as unknown as T);
  return {
    employees: of<Employee>("Employee"),
    policies: of<AccessPolicy>("AccessPolicy"),
    rules: of<GroupRule>("GroupRule"),
    connectors: of<Connector>("Connector"),
  };
}
const samples = () => objectsIn("deploy/samples", "test/fixtures/access-tests/explain");
const named = (objects: ExplainObjects, name: string) =>
  objects.employees.find((e) => e.metadata.name === name)!;

describe("explainMatch", () => {
  const employee: Employee = {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name: "ada", labels: { team: "platform" } },
    spec: {
      employeeId: "E1",
      username: "ada",
      givenName: "Ada",
      familyName: "L",
      email: "a@example.com",
      department: "Engineering",
      attributes: { clearance: "secret" },
    },
  };

  it("evaluates every entry, with the value it saw, by the same rules as employeeMatches", () => {
    const selector = {
      matchLabels: { team: "data" },
      matchExpressions: [{ key: "site", operator: "DoesNotExist" as const }],
    };
    const match = [
      { key: "department", operator: "In" as const, values: ["Engineering"] },
      { key: "location", operator: "Exists" as const },
      { key: "attributes.clearance", operator: "Matches" as const, values: ["^top"] },
      { key: "employmentType", operator: "NotIn" as const, values: ["Vendor"] },
    ];
    const results = explainMatch(employee, selector, match);
    expect(results.map((r) => [r.entry, r.key, r.seen, r.holds])).toEqual([
      ["selector.matchLabels", "team", "platform", false],
      ["selector.matchExpressions[0]", "site", undefined, true],
      ["match[0]", "department", "Engineering", true],
      ["match[1]", "location", undefined, false],
      ["match[2]", "attributes.clearance", "secret", false],
      ["match[3]", "employmentType", "Employee", true],
    ]);
    // Entry by entry, the same answer as the boolean the evaluator uses.
    for (const [i, requirement] of match.entries())
      expect(employeeMatches(employee, undefined, [requirement])).toBe(results[i + 2]!.holds);
    expect(employeeMatches(employee, { matchLabels: selector.matchLabels }, [])).toBe(results[0]!.holds);
    expect(employeeMatches(employee, selector, match)).toBe(results.every((r) => r.holds));
  });

  it("sees no label or attribute in the members every plain object inherits", () => {
    const results = explainMatch(
      employee,
      { matchExpressions: [{ key: "constructor", operator: "Exists" }], matchLabels: { toString: "x" } },
      [{ key: "attributes.hasOwnProperty", operator: "Exists" }],
    );
    expect(results.map((r) => [r.key, r.seen, r.holds])).toEqual([
      ["toString", undefined, false],
      ["constructor", undefined, false],
      ["attributes.hasOwnProperty", undefined, false],
    ]);
  });
});

describe("explainAccess", () => {
  it("names the one failing match entry that excludes a person, and the value it saw", () => {
    const objects = samples();
    const x = explainAccess(named(objects, "vic"), objects, now);
    const wiki = x.connectors.find((c) => c.connector === "wiki")!;
    expect(wiki.account).toBe("None");
    expect(wiki.why).toBe(
      "AccessPolicy/engineering, the only AccessPolicy or grant that names wiki, does not hold",
    );
    const engineering = wiki.considered.find((c) => c.source === "AccessPolicy/engineering")!;
    expect(engineering.holds).toBe(false);
    expect(engineering.entries.filter((e) => !e.holds)).toEqual([
      {
        entry: "match[1]",
        key: "employmentType",
        operator: "NotIn",
        values: ["Vendor"],
        seen: "Vendor",
        holds: false,
      },
    ]);
    expect(engineering.why).toBe(
      'does not hold: fails on match[1] employmentType NotIn [Vendor]: saw "Vendor"',
    );
    // corp-ldap: an account from AccessPolicy/everyone, but not the groups of engineering.
    const ldap = x.connectors.find((c) => c.connector === "corp-ldap")!;
    expect(ldap).toMatchObject({ account: "Active", why: "from AccessPolicy/everyone" });
    expect(ldap.groups.map((g) => [g.group, g.has, g.why])).toEqual([
      ["engineering", false, "AccessPolicy/engineering does not hold"],
      [
        "people-managers",
        false,
        'GroupRule/managers does not hold: fails on match[0] title Matches [[Mm]anager]: saw "Consultant"',
      ],
      ["staff", true, "from AccessPolicy/everyone"],
      ["vpn-users", false, "AccessPolicy/engineering does not hold"],
    ]);
  });

  it("agrees with evaluateAccess for every sample person at every lifecycle moment", () => {
    const objects = samples();
    for (const at of ["2026-01-01", "2026-01-20", "2026-03-01", "2027-01-01", "2027-07-01"]) {
      const moment = new Date(`${at}T00:00:00Z`);
      for (const employee of objects.employees) {
        const access = evaluateAccess(employee, objects.policies, objects.rules, moment);
        const x = explainAccess(employee, objects, moment);
        expect(x.lifecycle).toBe(access.lifecycle);
        for (const c of x.connectors) {
          const wanted = access.accounts.get(c.connector);
          expect(c.account !== "None", `${employee.metadata.name} ${c.connector} ${at}`).toBe(!!wanted);
          for (const g of c.groups) expect(g.has).toBe(!!wanted?.groups.has(g.group));
          // What holds is what gives: every source of the account is a check that holds.
          for (const source of wanted?.sources ?? [])
            expect(c.considered.some((s) => s.source === source && s.holds)).toBe(true);
        }
      }
    }
  });

  it("explains the dates: before startDate, after endDate, and a grant's until", () => {
    const objects = samples();
    const grace = named(objects, "grace");
    const before = explainAccess(grace, objects, new Date("2026-01-15T00:00:00Z"));
    expect(before).toMatchObject({ lifecycle: "Scheduled", nextChangeAt: "2026-02-01T09:00:00.000Z" });
    expect(before.connectors.find((c) => c.connector === "corp-ldap")!.why).toBe(
      "not yet: startDate 2026-02-01T09:00:00Z is ahead; then AccessPolicy/everyone gives one",
    );
    const after = explainAccess(grace, objects, new Date("2027-01-01T00:00:00Z"));
    expect(after.connectors.find((c) => c.connector === "corp-ldap")!.why).toBe(
      "endDate 2026-12-31 has passed; AccessPolicy/everyone would give one otherwise; " +
        "an existing account is disabled at once and deleted after 720h (Connector deprovisioning: Delete)",
    );
    const ada = named(objects, "ada");
    const expired = explainAccess(ada, objects, new Date("2027-07-01T00:00:00Z"));
    const wiki = expired.connectors.find((c) => c.connector === "wiki")!;
    expect(wiki.considered.find((c) => c.source === "Grant")).toMatchObject({
      holds: false,
      why: "does not hold: its until 2027-06-30T00:00:00Z has passed",
    });
    expect(wiki.groups.find((g) => g.group === "project-apollo")).toMatchObject({
      has: false,
      why: "Grant does not hold",
    });
    expect(expired.notes).toContain("a grant on wiki (project-apollo) expired at 2027-06-30T00:00:00Z");
  });

  it("says what a paused Connector, the brake, a paused Employee, OnLeave and a rule's mode do", () => {
    const objects = samples();
    const ada = named(objects, "ada");
    const onLeave: Employee = {
      ...ada,
      metadata: { ...ada.metadata, namespace: "hr", annotations: { "roster.dev/paused": "true" } },
      spec: { ...ada.spec, employmentStatus: "OnLeave" },
      status: {
        accounts: [
          { connector: "corp-ldap", id: "uid=ada", state: "Active", groups: ["staff", "old-team"] },
          { connector: "wiki", id: "7", state: "Active", groups: [] },
        ],
      },
    };
    const connectors = objects.connectors.map((c): Connector => {
      if (c.metadata.name === "wiki") return { ...c, spec: { ...c.spec, paused: true } };
      return {
        ...c,
        status: {
          heldDeprovisions: 3,
          deprovisioning: {
            counted: [],
            held: [{ account: "hr/E1001", at: "2026-03-01T00:00:00Z" }],
            released: [],
          },
        },
      };
    });
    const additive: GroupRule = {
      apiVersion: "roster.dev/v1alpha1",
      kind: "GroupRule",
      metadata: { name: "old-team" },
      spec: {
        group: "old-team",
        connectors: ["corp-ldap"],
        membership: "Additive",
        match: [{ key: "department", operator: "In", values: ["Sales"] }],
      },
    };
    const x = explainAccess(onLeave, { ...objects, connectors, rules: [...objects.rules, additive] }, now);
    expect(x.lifecycle).toBe("Suspended");
    expect(x.notes[0]).toMatch(
      /^the Employee is paused \(roster.dev\/paused: "true"\): Roster makes no change/,
    );
    const ldap = x.connectors.find((c) => c.connector === "corp-ldap")!;
    expect(ldap.account).toBe("Disabled");
    expect(ldap.why).toMatch(/; disabled while employmentStatus is OnLeave \(groups are kept\)$/);
    expect(ldap.notes).toEqual([
      "this person's deprovisioning here is held by the mass-change brake (3 held); it goes ahead once approved: " +
        "kubectl annotate connector corp-ldap roster.dev/approve-deprovisioning=3",
    ]);
    expect(ldap.groups.find((g) => g.group === "old-team")).toMatchObject({
      has: false,
      recorded: true,
      change: "remove",
      membership: expect.stringMatching(
        /^Additive rule: Roster adds people who match and removes only members it added/,
      ),
    });
    expect(ldap.groups.find((g) => g.group === "engineering")).toMatchObject({ has: true, change: "add" });
    const wiki = x.connectors.find((c) => c.connector === "wiki")!;
    expect(wiki.notes[0]).toMatch(
      /^the Connector is paused \(spec.paused\): Roster reads and writes nothing here/,
    );
    expect(wiki.recorded).toEqual({ state: "Active", id: "7", groups: [] });
  });

  it("an Employee another one acts for (same employeeId) holds nothing, and says who acts", () => {
    const objects = samples();
    const ada = named(objects, "ada");
    const twin: Employee = {
      ...ada,
      metadata: { ...ada.metadata, name: "ada-again", creationTimestamp: "2030-01-01T00:00:00Z" },
    };
    const x = explainAccess(twin, { ...objects, employees: [...objects.employees, twin] }, now);
    expect(x.notes).toContain(
      "Employee ada has the same employeeId (E1001) and acts on the targets: this one changes nothing",
    );
    expect(x.connectors.map((c) => [c.connector, c.account, c.why])).toEqual([
      ["corp-ldap", "None", "Employee ada has the same employeeId and acts on the targets"],
      ["wiki", "None", "Employee ada has the same employeeId and acts on the targets"],
    ]);
  });

  it("a paused policy keeps what status records it gave, and only that", () => {
    const objects = samples();
    const ada = named(objects, "ada");
    const policies = objects.policies.map((p) =>
      p.metadata.name === "engineering"
        ? { ...p, metadata: { ...p.metadata, annotations: { "roster.dev/paused": "true" } } }
        : p,
    );
    const recorded: Employee = {
      ...ada,
      status: {
        entitlements: [
          { connector: "corp-ldap", source: "AccessPolicy/engineering" },
          { connector: "corp-ldap", group: "engineering", source: "AccessPolicy/engineering" },
        ],
      },
    };
    const x = explainAccess(recorded, { ...objects, policies }, now);
    const ldap = x.connectors.find((c) => c.connector === "corp-ldap")!;
    expect(ldap.considered.find((c) => c.source === "AccessPolicy/engineering")).toMatchObject({
      holds: true,
      paused: true,
      why: expect.stringMatching(
        /^paused \(roster.dev\/paused\): it keeps what it gave and grants nothing new; status records that it gave this/,
      ),
    });
    expect(ldap.groups.find((g) => g.group === "engineering")!.has).toBe(true);
    expect(ldap.groups.find((g) => g.group === "vpn-users")).toMatchObject({
      has: false,
      why: "AccessPolicy/engineering is paused and status records no such group, so it grants it no more",
    });
    const wiki = x.connectors.find((c) => c.connector === "wiki")!;
    expect(wiki.considered.find((c) => c.source === "AccessPolicy/engineering")!.holds).toBe(false);
    expect(wiki.why).toBe("from Grant");
  });
});
