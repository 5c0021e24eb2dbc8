// `roster test`'s AccessTest documents (a file format, not a CRD) and their evaluation, as pure
// functions: the objects of a directory and a test in, pass or fail with a reason out. What a person
// holds comes from the operator's own evaluation (evaluateAccess, and the planner's rules on who
// acts for an employeeId and how a target compares group names), never from a parallel one.
import { Type, type Static } from "@sinclair/typebox";
import { EmployeeSpec, LabelSelector, MatchRequirement } from "../api/schema.ts";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../api/types.ts";
import { accountMapping, actingEmployee } from "../plan/employee.ts";
import { evaluateAccess, isPaused, parseDate, type Lifecycle } from "./evaluate.ts";
import { employeeMatches, explainMatch, requirementProblems } from "./match.ts";

export const ACCESS_TEST_KIND = "AccessTest";
const PAUSED_ANNOTATION = "roster.dev/paused";

const Name = Type.String({ minLength: 1, maxLength: 253 });
const Group = Type.String({ minLength: 1, maxLength: 256 });
const DATE = { pattern: (EmployeeSpec.properties.startDate as unknown as { pattern: string }).pattern };
const strict = { additionalProperties: false } as const;

const AccountExpectation = Type.Object(
  {
    connector: Name,
    groups: Type.Optional(Type.Array(Group, { description: "Groups the account must include." })),
    notGroups: Type.Optional(Type.Array(Group, { description: "Groups the account must not include." })),
    enabled: Type.Optional(
      Type.Boolean({ description: "true: the account is enabled; false: kept but disabled (OnLeave)." }),
    ),
  },
  strict,
);

const Expectation = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 256 })),
    employee: Type.Optional(Type.String({ description: "An Employee in the directory, by metadata.name." })),
    inlineEmployee: Type.Optional(
      Type.Object(
        {
          metadata: Type.Optional(
            Type.Object(
              {
                name: Type.Optional(Name),
                labels: Type.Optional(Type.Record(Type.String(), Type.String())),
                annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
              },
              strict,
            ),
          ),
          spec: EmployeeSpec,
        },
        strict,
      ),
    ),
    now: Type.Optional(Type.String(DATE)),
    accounts: Type.Optional(Type.Array(AccountExpectation, { description: "Connectors with an account." })),
    noAccounts: Type.Optional(Type.Array(Name, { description: "Connectors without an account." })),
  },
  strict,
);

const Invariant = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 256 })),
    separationOfDuties: Type.Optional(
      Type.Object({ connector: Name, groups: Type.Array(Group, { minItems: 2 }) }, strict),
    ),
    never: Type.Optional(
      Type.Object(
        {
          selector: Type.Optional(LabelSelector),
          match: Type.Optional(Type.Array(MatchRequirement)),
          connector: Name,
          groups: Type.Optional(Type.Array(Group, { minItems: 1 })),
        },
        strict,
      ),
    ),
    members: Type.Optional(
      Type.Object(
        {
          connector: Name,
          group: Group,
          atLeast: Type.Optional(Type.Integer({ minimum: 0 })),
          atMost: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        strict,
      ),
    ),
  },
  strict,
);

export const AccessTestSpec = Type.Object(
  {
    now: Type.Optional(Type.String(DATE)),
    expect: Type.Optional(Type.Array(Expectation)),
    invariants: Type.Optional(Type.Array(Invariant)),
  },
  strict,
);

export type AccessTestSpecT = Static<typeof AccessTestSpec>;
type ExpectationT = Static<typeof Expectation>;
type InvariantT = Static<typeof Invariant>;

/** The objects of the directory under test. */
export type TestObjects = {
  employees: readonly Employee[];
  policies: readonly AccessPolicy[];
  rules: readonly GroupRule[];
  connectors: readonly Connector[];
};

/** What the operator would give a person in one connector. */
export type Holding = {
  connector: string;
  enabled: boolean;
  /** Group name -> the sources that give it (AccessPolicy/<name>, GroupRule/<name>, Grant). */
  groups: Map<string, string[]>;
  sources: string[];
};

export type Holdings = {
  lifecycle: Lifecycle;
  reason: string;
  /** Another Employee with the same employeeId acts on the targets; this one holds nothing. */
  duplicateOf?: string;
  accounts: Map<string, Holding>;
};

/**
 * What a person would hold, connector by connector, as the operator would give it: the accounts
 * and groups evaluateAccess entitles them to (nothing while Scheduled or Terminated, disabled while
 * OnLeave), and nothing for an Employee that another one with its employeeId acts for. A paused
 * Connector, the brake or a target's contents only delay that; they do not change it.
 */
export function holdingsOf(employee: Employee, objects: TestObjects, now: Date): Holdings {
  const access = evaluateAccess(employee, objects.policies, objects.rules, now);
  const actor = actingEmployee(employee, objects.employees, now);
  const base = { lifecycle: access.lifecycle, reason: access.reason };
  if (actor !== employee.metadata.name) return { ...base, duplicateOf: actor, accounts: new Map() };
  const accounts = new Map<string, Holding>();
  for (const [connector, wanted] of access.accounts)
    accounts.set(connector, {
      connector,
      enabled: access.lifecycle === "Active",
      groups: wanted.groups,
      sources: wanted.sources,
    });
  return { ...base, accounts };
}

/** How a connector's target compares group names (LDAP without regard to case), as the planner does. */
function groupKeyOf(objects: TestObjects, connector: string): (name: string) => string {
  const found = objects.connectors.find((c) => c.metadata.name === connector);
  return found ? accountMapping(found, objects).groupKey : (name) => name;
}

/** The sources that give a group (compared as the target compares names), or undefined. */
function groupSources(
  holding: Holding | undefined,
  group: string,
  key: (name: string) => string,
): { name: string; sources: string[] } | undefined {
  if (!holding) return undefined;
  for (const [name, sources] of holding.groups) if (key(name) === key(group)) return { name, sources };
  return undefined;
}

const from = (sources: readonly string[]) => `from ${sources.join(", ")}`;

/** Why a person holds no account: their lifecycle, a duplicate employeeId, or nothing grants one. */
function noAccountReason(holdings: Holdings): string {
  if (holdings.duplicateOf)
    return `Employee ${holdings.duplicateOf} has the same employeeId and acts on the targets`;
  if (holdings.lifecycle === "Scheduled" || holdings.lifecycle === "Terminated")
    return `${holdings.lifecycle}: ${holdings.reason}`;
  return "no AccessPolicy or grant gives one";
}

export type CaseResult = {
  name: string;
  kind: "expectation" | "separationOfDuties" | "never" | "members";
  passed: boolean;
  failures: string[];
};

/** An Employee an expectation is about: one of the directory's, or the inline one it gives. */
function subjectOf(expectation: ExpectationT, index: number, objects: TestObjects): Employee | undefined {
  if (expectation.employee !== undefined)
    return objects.employees.find((e) => e.metadata.name === expectation.employee);
  const inline = expectation.inlineEmployee!;
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name: `inline-${index + 1}`, ...inline.metadata } as Employee["metadata"],
    spec: inline.spec,
  };
}

/** The connectors a test may name: the directory's Connectors and those its policies, rules and grants name. */
function knownConnectors(objects: TestObjects): Set<string> {
  const names = new Set(objects.connectors.map((c) => c.metadata.name));
  for (const p of objects.policies) for (const g of p.spec.grants) names.add(g.connector);
  for (const r of objects.rules) for (const c of r.spec.connectors) names.add(c);
  for (const e of objects.employees) for (const g of e.spec.grants ?? []) names.add(g.connector);
  return names;
}

/**
 * What the schema cannot say about a test: each expectation names one Employee (that exists) or
 * gives one inline, each invariant is of one kind, names known connectors, and is satisfiable.
 * Each problem starts with the field it is about (spec.expect.0.employee, ...).
 */
export function accessTestProblems(spec: AccessTestSpecT, objects: TestObjects): string[] {
  const problems: string[] = [];
  const connectors = knownConnectors(objects);
  const connectorProblem = (field: string, name: string) => {
    if (!connectors.has(name))
      problems.push(`${field}: no Connector ${name} in the directory, and no policy, rule or grant names it`);
  };
  const dateProblem = (field: string, value: string | undefined) => {
    if (value !== undefined && Number.isNaN(parseDate(value).getTime()))
      problems.push(`${field}: ${JSON.stringify(value)} is not an RFC 3339 date or date-time`);
  };
  dateProblem("spec.now", spec.now);
  for (const [i, expectation] of (spec.expect ?? []).entries()) {
    const at = `spec.expect.${i}`;
    dateProblem(`${at}.now`, expectation.now);
    if ((expectation.employee === undefined) === (expectation.inlineEmployee === undefined))
      problems.push(`${at}: give exactly one of employee and inlineEmployee`);
    else if (
      expectation.employee !== undefined &&
      !objects.employees.some((e) => e.metadata.name === expectation.employee)
    )
      problems.push(`${at}.employee: no Employee named ${expectation.employee} in the directory`);
    if (!expectation.accounts?.length && !expectation.noAccounts?.length)
      problems.push(`${at}: expects nothing (give accounts or noAccounts)`);
    for (const [j, account] of (expectation.accounts ?? []).entries())
      connectorProblem(`${at}.accounts.${j}.connector`, account.connector);
    for (const [j, name] of (expectation.noAccounts ?? []).entries())
      connectorProblem(`${at}.noAccounts.${j}`, name);
  }
  for (const [i, invariant] of (spec.invariants ?? []).entries()) {
    const at = `spec.invariants.${i}`;
    const kinds = (["separationOfDuties", "never", "members"] as const).filter((k) => invariant[k]);
    if (kinds.length !== 1) {
      problems.push(`${at}: give exactly one of separationOfDuties, never and members`);
      continue;
    }
    const kind = kinds[0]!;
    connectorProblem(`${at}.${kind}.connector`, invariant[kind]!.connector);
    if (invariant.never)
      for (const problem of requirementProblems(invariant.never.match))
        problems.push(`${at}.never.${problem.replace(/^match\[(\d+)\]/, "match.$1")}`);
    const members = invariant.members;
    if (members && members.atLeast === undefined && members.atMost === undefined)
      problems.push(`${at}.members: give atLeast, atMost or both`);
    if (members?.atLeast !== undefined && members.atMost !== undefined && members.atLeast > members.atMost)
      problems.push(`${at}.members: atLeast ${members.atLeast} is more than atMost ${members.atMost}`);
  }
  return problems;
}

function expectationName(expectation: ExpectationT, subject: Employee): string {
  if (expectation.name) return expectation.name;
  const parts = [
    ...(expectation.accounts ?? []).map((a) => {
      const groups = [
        a.groups?.length ? `in: ${a.groups.join(", ")}` : "",
        a.notGroups?.length ? `not in: ${a.notGroups.join(", ")}` : "",
      ].filter(Boolean);
      return `an account in ${a.connector}${groups.length ? ` (${groups.join("; ")})` : ""}`;
    }),
    ...(expectation.noAccounts?.length ? [`no account in ${expectation.noAccounts.join(", ")}`] : []),
  ];
  return `${subject.metadata.name}: ${parts.join("; ")}`;
}

function checkExpectation(
  expectation: ExpectationT,
  index: number,
  objects: TestObjects,
  now: Date,
): CaseResult {
  const subject = subjectOf(expectation, index, objects)!;
  const holdings = holdingsOf(subject, objects, expectation.now ? parseDate(expectation.now) : now);
  const who = subject.metadata.name;
  const failures: string[] = [];
  for (const wanted of expectation.accounts ?? []) {
    const c = wanted.connector;
    const holding = holdings.accounts.get(c);
    if (!holding) {
      failures.push(`${who}: expected an account in ${c}, but has none (${noAccountReason(holdings)})`);
      continue;
    }
    if (wanted.enabled !== undefined && wanted.enabled !== holding.enabled)
      failures.push(
        `${who}: expected the account in ${c} to be ${wanted.enabled ? "enabled" : "disabled"}, but it is ` +
          `${holding.enabled ? "enabled" : `disabled (${holdings.reason})`}`,
      );
    const key = groupKeyOf(objects, c);
    for (const group of wanted.groups ?? [])
      if (!groupSources(holding, group, key))
        failures.push(
          `${who}: expected group ${group} in ${c}, but no AccessPolicy, GroupRule or grant gives it`,
        );
    for (const group of wanted.notGroups ?? []) {
      const found = groupSources(holding, group, key);
      if (found)
        failures.push(
          `${who}: expected not to be in group ${group} in ${c}, but is (${from(found.sources)})`,
        );
    }
  }
  for (const c of expectation.noAccounts ?? []) {
    const holding = holdings.accounts.get(c);
    if (holding) failures.push(`${who}: expected no account in ${c}, but has one (${from(holding.sources)})`);
  }
  return {
    name: expectationName(expectation, subject),
    kind: "expectation",
    passed: !failures.length,
    failures,
  };
}

function invariantName(invariant: InvariantT): string {
  if (invariant.name) return invariant.name;
  if (invariant.separationOfDuties) {
    const { connector, groups } = invariant.separationOfDuties;
    return `separation of duties in ${connector}: ${groups.join(", ")}`;
  }
  if (invariant.never) {
    const { connector, groups } = invariant.never;
    const who = explainWho(invariant.never);
    return groups?.length
      ? `never: ${who} in ${groups.join(", ")} of ${connector}`
      : `never: ${who} with an account in ${connector}`;
  }
  const { connector, group, atLeast, atMost } = invariant.members!;
  const bounds = [
    atLeast !== undefined ? `at least ${atLeast}` : "",
    atMost !== undefined ? `at most ${atMost}` : "",
  ];
  return `members of ${group} in ${connector}: ${bounds.filter(Boolean).join(" and ")}`;
}

/** A never rule's selector and match in words (department In [Sales], team=platform). */
function explainWho(never: NonNullable<InvariantT["never"]>): string {
  const parts = [
    ...Object.entries(never.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(never.selector?.matchExpressions ?? []).map(
      (e) => `${e.key} ${e.operator}${e.values ? ` [${e.values.join(", ")}]` : ""}`,
    ),
    ...(never.match ?? []).map((m) => `${m.key} ${m.operator}${m.values ? ` [${m.values.join(", ")}]` : ""}`),
  ];
  return parts.length ? parts.join(", ") : "anyone";
}

/** A person as failure messages name them: metadata.name and employeeId (and what a rule saw). */
const person = (e: Employee, ...seen: string[]) =>
  `${e.metadata.name} (${[`employeeId ${e.spec.employeeId}`, ...seen].join(", ")})`;

function checkInvariant(
  invariant: InvariantT,
  objects: TestObjects,
  holdings: ReadonlyMap<Employee, Holdings>,
): CaseResult {
  const failures: string[] = [];
  let kind: CaseResult["kind"];
  if (invariant.separationOfDuties) {
    kind = "separationOfDuties";
    const { connector, groups } = invariant.separationOfDuties;
    const key = groupKeyOf(objects, connector);
    for (const [employee, held] of holdings) {
      const holding = held.accounts.get(connector);
      const found = groups.flatMap((g) => {
        const sources = groupSources(holding, g, key);
        return sources ? [`${g} (${from(sources.sources)})`] : [];
      });
      if (found.length >= 2)
        failures.push(
          `${person(employee)} is in ${found.length === 2 ? "both " : ""}${found.slice(0, -1).join(", ")} and ${found.at(-1)} in ${connector}`,
        );
    }
  } else if (invariant.never) {
    kind = "never";
    const { connector, groups, selector, match } = invariant.never;
    const key = groupKeyOf(objects, connector);
    for (const [employee, held] of holdings) {
      if (!employeeMatches(employee, selector, match)) continue;
      const holding = held.accounts.get(connector);
      if (!holding) continue;
      const who = person(
        employee,
        ...explainMatch(employee, selector, match).map(
          (r) => `${r.key} ${r.seen === undefined ? "absent" : JSON.stringify(r.seen)}`,
        ),
      );
      if (!groups?.length) {
        failures.push(`${who} has an account in ${connector} (${from(holding.sources)})`);
        continue;
      }
      for (const g of groups) {
        const found = groupSources(holding, g, key);
        if (found) failures.push(`${who} is in ${g} in ${connector} (${from(found.sources)})`);
      }
    }
  } else {
    kind = "members";
    const { connector, group, atLeast, atMost } = invariant.members!;
    const key = groupKeyOf(objects, connector);
    const members = [...holdings]
      .filter(([, held]) => groupSources(held.accounts.get(connector), group, key))
      .map(([e]) => e.metadata.name)
      .sort();
    const list = members.length ? `: ${members.join(", ")}` : "";
    if (atLeast !== undefined && members.length < atLeast)
      failures.push(
        `${group} in ${connector} has ${members.length} members${list}; at least ${atLeast} required`,
      );
    if (atMost !== undefined && members.length > atMost)
      failures.push(
        `${group} in ${connector} has ${members.length} members${list}; at most ${atMost} allowed`,
      );
  }
  return { name: invariantName(invariant), kind, passed: !failures.length, failures };
}

/**
 * The objects with their roster.dev/paused annotations taken off: a pause only delays a change
 * (a paused policy keeps what status says it gave, and files have no status), so a test checks
 * where the policies lead.
 */
function unpaused(objects: TestObjects): TestObjects {
  const resume = <T extends AccessPolicy | GroupRule>(o: T): T => {
    if (!isPaused(o)) return o;
    const annotations = { ...o.metadata.annotations };
    delete annotations[PAUSED_ANNOTATION];
    return { ...o, metadata: { ...o.metadata, annotations } };
  };
  return { ...objects, policies: objects.policies.map(resume), rules: objects.rules.map(resume) };
}

/**
 * Runs one AccessTest against the directory's objects at `now` (the test's spec.now wins; an
 * expectation's own now wins for it). Expectations first, then invariants, in file order.
 * Call accessTestProblems first: this assumes a test without problems. Returns the moment used.
 */
export function runAccessTest(
  spec: AccessTestSpecT,
  directory: TestObjects,
  now: Date,
): { at: Date; cases: CaseResult[] } {
  const at = spec.now ? parseDate(spec.now) : now;
  const objects = unpaused(directory);
  const cases = (spec.expect ?? []).map((e, i) => checkExpectation(e, i, objects, at));
  if (spec.invariants?.length) {
    const holdings = new Map(objects.employees.map((e) => [e, holdingsOf(e, objects, at)] as const));
    for (const invariant of spec.invariants) cases.push(checkInvariant(invariant, objects, holdings));
  }
  return { at, cases };
}
