// Which accounts and groups a person should have, and why: a pure function of the Employee,
// the policies, rules and connectors in its namespace, and the time.
import type { AccessPolicy, Employee, EntitlementT, GroupRule } from "../api/types.ts";
import { employeeMatches, requirementProblems } from "./match.ts";

export type Lifecycle = "Scheduled" | "Active" | "Suspended" | "Terminated";

export type DesiredConnectorAccess = {
  connector: string;
  /** Why the person has an account here (AccessPolicy/<name> or Grant). */
  sources: string[];
  /** Group name -> the sources granting it. */
  groups: Map<string, string[]>;
};

export type Access = {
  lifecycle: Lifecycle;
  /** Why the lifecycle is what it is, for status messages. */
  reason: string;
  /** Accounts the person should hold; empty when Scheduled or Terminated. */
  accounts: Map<string, DesiredConnectorAccess>;
  entitlements: EntitlementT[];
  /** The next moment the answer changes by itself (startDate, endDate, a grant's until). */
  nextChangeAt?: Date;
  /** Grants whose `until` has passed (for Events). */
  expiredGrants: { connector: string; groups: string[]; until: string }[];
};

/** Parses an api.md date: a date (midnight UTC) or an RFC 3339 date-time. */
export function parseDate(value: string): Date {
  return new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
}

export function lifecycleOf(
  employee: Employee,
  now: Date,
): { lifecycle: Lifecycle; reason: string; nextChangeAt?: Date } {
  const spec = employee.spec;
  const start = spec.startDate ? parseDate(spec.startDate) : undefined;
  const end = spec.endDate ? parseDate(spec.endDate) : undefined;
  if (employee.metadata.deletionTimestamp)
    return { lifecycle: "Terminated", reason: "the Employee is being deleted" };
  if (spec.employmentStatus === "Terminated")
    return { lifecycle: "Terminated", reason: "employmentStatus is Terminated" };
  if (end && end.getTime() <= now.getTime())
    return { lifecycle: "Terminated", reason: `endDate ${spec.endDate} has passed` };
  if (start && start.getTime() > now.getTime()) {
    return { lifecycle: "Scheduled", reason: `startDate ${spec.startDate} is ahead`, nextChangeAt: start };
  }
  const nextChangeAt = end;
  if (spec.employmentStatus === "OnLeave")
    return { lifecycle: "Suspended", reason: "employmentStatus is OnLeave", nextChangeAt };
  return { lifecycle: "Active", reason: "active", nextChangeAt };
}

function earliest(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() <= b.getTime() ? a : b;
}

/** Policies and rules whose match is malformed grant nothing; their own status reports why. */
function safeMatches(employee: Employee, object: AccessPolicy | GroupRule): boolean {
  if (requirementProblems(object.spec.match).length > 0) return false;
  return employeeMatches(employee, object.spec.selector, object.spec.match);
}

export function isPaused(object: { metadata: { annotations?: Record<string, string> } }): boolean {
  return object.metadata.annotations?.["roster.dev/paused"] === "true";
}

// localeCompare's order, with one collator: evaluateAccess runs for every Employee of a scan.
const compareNames = new Intl.Collator().compare;

/** The objects in order of name; the list itself when it is in order already (the usual case). */
function byName<T extends { metadata: { name: string } }>(objects: readonly T[]): readonly T[] {
  for (let i = 1; i < objects.length; i++)
    if (compareNames(objects[i - 1]!.metadata.name, objects[i]!.metadata.name) > 0)
      return [...objects].sort((a, b) => compareNames(a.metadata.name, b.metadata.name));
  return objects;
}

export function evaluateAccess(
  employee: Employee,
  policies: readonly AccessPolicy[],
  rules: readonly GroupRule[],
  now: Date,
): Access {
  const { lifecycle, reason, nextChangeAt: lifecycleChange } = lifecycleOf(employee, now);
  const accounts = new Map<string, DesiredConnectorAccess>();
  const expiredGrants: Access["expiredGrants"] = [];
  let nextChangeAt = lifecycleChange;

  const account = (connector: string) => {
    let entry = accounts.get(connector);
    if (!entry) {
      entry = { connector, sources: [], groups: new Map() };
      accounts.set(connector, entry);
    }
    return entry;
  };
  const addGroup = (entry: DesiredConnectorAccess, group: string, source: string) => {
    const sources = entry.groups.get(group) ?? [];
    if (!sources.includes(source)) sources.push(source);
    entry.groups.set(group, sources);
  };

  // A paused policy or rule changes nothing: the person keeps exactly what status records it gave.
  const frozen = (source: string, connectorsAllowed?: readonly string[]) => {
    for (const e of employee.status?.entitlements ?? []) {
      if (e.source !== source || (connectorsAllowed && !connectorsAllowed.includes(e.connector))) continue;
      if (e.group === undefined) {
        const entry = account(e.connector);
        if (!entry.sources.includes(source)) entry.sources.push(source);
      } else if (accounts.has(e.connector) || source.startsWith("AccessPolicy/")) {
        addGroup(account(e.connector), e.group, source);
      }
    }
  };

  for (const policy of byName(policies)) {
    const source = `AccessPolicy/${policy.metadata.name}`;
    if (isPaused(policy)) {
      frozen(source);
      continue;
    }
    if (!safeMatches(employee, policy)) continue;
    for (const grant of policy.spec.grants) {
      const entry = account(grant.connector);
      if (!entry.sources.includes(source)) entry.sources.push(source);
      for (const group of grant.groups ?? []) addGroup(entry, group, source);
    }
  }
  for (const grant of employee.spec.grants ?? []) {
    if (grant.until) {
      const until = parseDate(grant.until);
      if (until.getTime() <= now.getTime()) {
        expiredGrants.push({ connector: grant.connector, groups: grant.groups ?? [], until: grant.until });
        continue;
      }
      nextChangeAt = earliest(nextChangeAt, until);
    }
    const entry = account(grant.connector);
    if (!entry.sources.includes("Grant")) entry.sources.push("Grant");
    for (const group of grant.groups ?? []) addGroup(entry, group, "Grant");
  }
  // A GroupRule never creates accounts: it adds groups where the person already has one.
  for (const rule of byName(rules)) {
    if (isPaused(rule)) {
      frozen(`GroupRule/${rule.metadata.name}`, rule.spec.connectors);
      continue;
    }
    if (!safeMatches(employee, rule)) continue;
    for (const connector of rule.spec.connectors) {
      const entry = accounts.get(connector);
      if (entry) addGroup(entry, rule.spec.group, `GroupRule/${rule.metadata.name}`);
    }
  }

  const granted = lifecycle === "Active" || lifecycle === "Suspended";
  const entitlements: EntitlementT[] = [];
  if (granted) {
    for (const entry of [...accounts.values()].sort((a, b) => compareNames(a.connector, b.connector))) {
      for (const source of entry.sources) entitlements.push({ connector: entry.connector, source });
      for (const group of [...entry.groups.keys()].sort()) {
        for (const source of entry.groups.get(group)!)
          entitlements.push({ connector: entry.connector, group, source });
      }
    }
  }
  return {
    lifecycle,
    reason,
    accounts: granted ? accounts : new Map(),
    entitlements,
    ...(nextChangeAt && nextChangeAt.getTime() > now.getTime() ? { nextChangeAt } : {}),
    expiredGrants,
  };
}

/**
 * The groups Roster manages in a connector: every group its policies, Authoritative rules and
 * grants hand out. Additive rules' groups are managed only for the members Roster added (the
 * caller adds those from status).
 */
export function managedGroups(
  connector: string,
  policies: readonly AccessPolicy[],
  rules: readonly GroupRule[],
  employees: readonly Employee[],
): Set<string> {
  const groups = new Set<string>();
  for (const policy of policies)
    for (const grant of policy.spec.grants)
      if (grant.connector === connector) for (const g of grant.groups ?? []) groups.add(g);
  for (const rule of rules)
    if (rule.spec.connectors.includes(connector) && rule.spec.membership !== "Additive")
      groups.add(rule.spec.group);
  for (const employee of employees)
    for (const [grantedIn, group] of grantedGroups(employee)) if (grantedIn === connector) groups.add(group);
  return groups;
}

const NONE: readonly (readonly [string, string])[] = [];

/**
 * What an Employee adds to managedGroups: each group its grants hand out, with the connector
 * (expired grants too), once per grant. The operator keeps a count of these per connector
 * (NamespaceObjects.grantedGroups) instead of walking every Employee.
 */
export function grantedGroups(employee: Employee): readonly (readonly [connector: string, group: string])[] {
  const grants = employee.spec.grants;
  if (!grants?.length) return NONE;
  return grants.flatMap((grant) => (grant.groups ?? []).map((group) => [grant.connector, group] as const));
}
