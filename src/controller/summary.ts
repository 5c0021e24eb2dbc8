// Status of AccessPolicies, GroupRules and Connectors: counts from the caches, and for a
// Connector whether its target is reachable with its credentials. Pure except for the check.
import type {
  AccessPolicy,
  AccessPolicyStatusT,
  Connector,
  ConnectorStatusT,
  Employee,
  GroupRule,
  GroupRuleStatusT,
} from "../api/types.ts";
import { setCondition } from "../api/conditions.ts";
import { CONNECTOR_FINALIZER } from "../api/schema.ts";
import type { ScanResult, UnmanagedGroup } from "../plan/scan.ts";
import { evaluateAccess, isPaused } from "../policy/evaluate.ts";
import { employeeMatches, requirementProblems } from "../policy/match.ts";

function readyFromProblems(problems: string[], generation: number, now: Date, previous: AccessPolicyStatusT) {
  return setCondition(
    previous.conditions,
    problems.length
      ? {
          type: "Ready",
          status: "False",
          reason: "InvalidMatch",
          message: problems.join("; "),
          observedGeneration: generation,
        }
      : { type: "Ready", status: "True", reason: "Valid", message: "", observedGeneration: generation },
    now,
  );
}

function withPaused<T extends { conditions?: AccessPolicyStatusT["conditions"] }>(
  status: T,
  paused: boolean,
  generation: number,
  now: Date,
): T {
  if (!paused) return { ...status, conditions: status.conditions?.filter((c) => c.type !== "Paused") };
  return {
    ...status,
    conditions: setCondition(
      status.conditions,
      {
        type: "Paused",
        status: "True",
        reason: "Paused",
        message: "changes are paused",
        observedGeneration: generation,
      },
      now,
    ),
  };
}

export function policyStatus(
  policy: AccessPolicy,
  employees: readonly Employee[],
  now: Date,
): AccessPolicyStatusT {
  const generation = policy.metadata.generation ?? 0;
  const previous = policy.status ?? {};
  const problems = requirementProblems(policy.spec.match);
  const matched = problems.length
    ? 0
    : employees.filter((e) => employeeMatches(e, policy.spec.selector, policy.spec.match)).length;
  return withPaused(
    {
      ...previous,
      observedGeneration: generation,
      matchedEmployees: matched,
      conditions: readyFromProblems(problems, generation, now, previous),
    },
    isPaused(policy),
    generation,
    now,
  );
}

export function groupRuleStatus(
  rule: GroupRule,
  employees: readonly Employee[],
  policies: readonly AccessPolicy[],
  rules: readonly GroupRule[],
  now: Date,
  /** The group's hand-added members in a connector, from its last full scan (none: not scanned). */
  unmanaged: (connector: string) => UnmanagedGroup | undefined = () => undefined,
): GroupRuleStatusT {
  const generation = rule.metadata.generation ?? 0;
  const previous = rule.status ?? {};
  const problems = requirementProblems(rule.spec.match);
  const source = `GroupRule/${rule.metadata.name}`;
  const members = problems.length
    ? 0
    : employees.filter((e) =>
        evaluateAccess(e, policies, rules, now).entitlements.some((x) => x.source === source),
      ).length;
  const unmanagedMembers = rule.spec.connectors.flatMap((connector) => {
    const found = unmanaged(connector);
    if (!found) return [];
    const { group: _group, ...summary } = unmanagedSummary(found);
    return [{ connector, ...summary }];
  });
  const { unmanagedMembers: _previousUnmanaged, ...rest } = previous;
  return withPaused(
    {
      ...rest,
      observedGeneration: generation,
      memberCount: members,
      ...(unmanagedMembers.length ? { unmanagedMembers } : {}),
      conditions: readyFromProblems(problems, generation, now, previous),
    },
    isPaused(rule),
    generation,
    now,
  );
}

/** A group's hand-added members as Connector and GroupRule status show them. */
export function unmanagedSummary(g: UnmanagedGroup) {
  return {
    group: g.group,
    action: g.remove ? ("Remove" as const) : ("Keep" as const),
    count: g.members.length,
    members: g.members.slice(0, 50).map((m) => m.username),
  };
}

/** States in which an account exists in the target and belongs to the Employee. */
const OWNED_STATES = new Set(["Active", "Disabled", "Held"]);

/**
 * The Employees that own an account through a connector, by their status: a Connector is not
 * removed while there are any. A failed or pending account with a recorded id may exist, so it
 * counts; a Conflict, Unlinked or Protected account is not the Employee's.
 */
export function accountOwners(connector: string, employees: readonly Employee[]): string[] {
  return employees
    .filter((e) =>
      e.status?.accounts?.some(
        (a) =>
          a.connector === connector &&
          (OWNED_STATES.has(a.state) || ((a.state === "Failed" || a.state === "Pending") && !!a.id)),
      ),
    )
    .map((e) => e.metadata.name)
    .sort();
}

/**
 * The Connector's status after a reachability check (`checkError` undefined when it passed; a
 * Connector that cannot work as written says ConfigurationError, not Unreachable);
 * `managed` is the brake's denominator (managedAccountCount), so `roster plan` reads the same.
 */
export function connectorStatus(
  connector: Connector,
  managed: number,
  checkError: { reason: string; message: string } | undefined,
  held: { count: number; limit: number },
  scan: ScanResult | undefined,
  now: Date,
  /** Set while the Connector is being deleted: who still owns accounts through it. */
  deletion?: { owners: readonly string[] },
): ConnectorStatusT {
  const generation = connector.metadata.generation ?? 0;
  const previous = connector.status ?? {};
  const name = connector.metadata.name;
  const status: ConnectorStatusT = {
    ...previous,
    observedGeneration: generation,
    managedAccounts: managed,
    conditions: setCondition(
      previous.conditions,
      checkError === undefined
        ? {
            type: "Ready",
            status: "True",
            reason: "Connected",
            message: "reachable and authenticated",
            observedGeneration: generation,
          }
        : {
            type: "Ready",
            status: "False",
            reason: checkError.reason === "ConfigurationError" ? "ConfigurationError" : "Unreachable",
            message: checkError.message,
            observedGeneration: generation,
          },
      now,
    ),
  };
  status.heldDeprovisions = held.count;
  if (scan) {
    status.orphanAccounts = { count: scan.orphans.length, ids: scan.orphans.slice(0, 50).map((o) => o.id) };
    status.driftedAccounts = scan.drift.length;
    if (scan.unmanaged.length) status.unmanagedMembers = scan.unmanaged.slice(0, 200).map(unmanagedSummary);
    else delete status.unmanagedMembers;
  }
  status.conditions = setCondition(
    status.conditions,
    held.count > 0
      ? {
          type: "DeprovisioningHeld",
          status: "True",
          reason: "MassChangeBrake",
          message:
            `${held.count} deprovisions held: more than ${held.limit} per hour. Review them, then release with ` +
            `kubectl annotate connector ${name} roster.dev/approve-deprovisioning=${held.count}`,
          observedGeneration: generation,
        }
      : {
          type: "DeprovisioningHeld",
          status: "False",
          reason: "WithinLimits",
          message: "",
          observedGeneration: generation,
        },
    now,
  );
  if (deletion) {
    const { owners } = deletion;
    const shown =
      owners.slice(0, 10).join(", ") + (owners.length > 10 ? `, and ${owners.length - 10} more` : "");
    status.conditions = setCondition(
      status.conditions,
      {
        type: "Deleting",
        status: "True",
        reason: "WaitingForAccounts",
        message:
          `waiting for ${owners.length} Employees that own accounts through this Connector (${shown}): ` +
          `delete them or take the access away, and the Connector goes once they are deprovisioned; ` +
          `to leave their accounts as they are, remove the finalizer ${CONNECTOR_FINALIZER}`,
        observedGeneration: generation,
      },
      now,
    );
  }
  const insecure = insecureTransport(connector);
  status.conditions = setCondition(
    status.conditions,
    insecure
      ? {
          type: "Insecure",
          status: "True",
          reason: "InsecureTransport",
          message: insecure,
          observedGeneration: generation,
        }
      : {
          type: "Insecure",
          status: "False",
          reason: "Verified",
          message: "",
          observedGeneration: generation,
        },
    now,
  );
  return withPaused(status, !!connector.spec.paused || isPaused(connector), generation, now);
}

/** Why credentials and people's data to this target may be read or altered in transit, if they may. */
export function insecureTransport(connector: Connector): string | undefined {
  const { ldap, scim } = connector.spec;
  if (ldap) {
    if (ldap.insecureSkipTLSVerify)
      return "insecureSkipTLSVerify is set: the server's certificate is not verified";
    if (ldap.url.toLowerCase().startsWith("ldap://") && !ldap.startTLS)
      return "ldap:// without startTLS: the bind password and every change travel in plain text";
  }
  if (scim) {
    if (scim.insecureSkipTLSVerify)
      return "insecureSkipTLSVerify is set: the server's certificate is not verified";
    if (scim.baseURL.toLowerCase().startsWith("http://"))
      return "http:// base URL: the bearer token and every change travel in plain text";
  }
  return undefined;
}

/**
 * The Connector's `DuplicateGroups` condition: group names the target holds more than once (SCIM
 * displayName is not unique). Roster adds to one of them and removes from all; someone should merge
 * them by hand. False once none is seen.
 */
export function withDuplicateGroups(
  status: ConnectorStatusT,
  duplicates: readonly string[],
  generation: number,
  now: Date,
): ConnectorStatusT {
  const shown = duplicates.slice(0, 20).map((n) => JSON.stringify(n));
  const more = duplicates.length > shown.length ? ` and ${duplicates.length - shown.length} more` : "";
  return {
    ...status,
    conditions: setCondition(
      status.conditions,
      duplicates.length > 0
        ? {
            type: "DuplicateGroups",
            status: "True",
            reason: "DuplicateGroupNames",
            message:
              `several groups share the name ${shown.join(", ")}${more}: Roster adds people to one ` +
              `of them (its own, else the one with the smallest id) and removes them from all; merge them by hand`,
            observedGeneration: generation,
          }
        : {
            type: "DuplicateGroups",
            status: "False",
            reason: "UniqueGroupNames",
            message: "",
            observedGeneration: generation,
          },
      now,
    ),
  };
}
