// What a full scan of one connector means: compare every account the target holds with what
// every Employee should have, to find drift (changed outside Roster) and orphans. Pure.
import type { AccessPolicy, Employee, GroupRule } from "../api/types.ts";
import type { ActualAccount } from "../connectors/types.ts";
import { evaluateAccess, managedGroups } from "../policy/evaluate.ts";
import { planAccount } from "./plan.ts";

export type DriftKind = "attributes" | "enabled" | "membership" | "deleted";

export type Drift = { employee: string; employeeId: string; kinds: DriftKind[]; detail: string };

export type ScanInput = {
  connector: string;
  employees: readonly Employee[];
  policies: readonly AccessPolicy[];
  rules: readonly GroupRule[];
  accounts: readonly ActualAccount[];
  desiredAttributes(employee: Employee["spec"]): Record<string, string[]>;
  managedAttributes: readonly string[];
  groupKey(name: string): string;
  now: Date;
};

export type ScanResult = {
  /** Accounts owned by an Employee of the namespace, by state. */
  managed: { Active: number; Disabled: number };
  drift: Drift[];
  /** Accounts in scope that no Employee owns: `owned` carry an employeeId Roster could act on. */
  orphans: { id: string; employeeId: string }[];
};

/**
 * Only people the operator believes are in sync are judged: status Ready for the current
 * generation with an account here. Anyone with a change in flight is the reconciler's business.
 */
function believedInSync(employee: Employee, connector: string) {
  const ready = employee.status?.conditions?.find((c) => c.type === "Ready");
  const account = employee.status?.accounts?.find((a) => a.connector === connector);
  return (
    ready?.status === "True" &&
    employee.status?.observedGeneration === employee.metadata.generation &&
    !employee.metadata.deletionTimestamp &&
    account !== undefined &&
    (account.state === "Active" || account.state === "Disabled")
  );
}

export function compareScan(input: ScanInput): ScanResult {
  const byEmployeeId = new Map<string, ActualAccount>();
  for (const account of input.accounts) if (account.employeeId) byEmployeeId.set(account.employeeId, account);
  const known = new Set(input.employees.map((e) => e.spec.employeeId));
  const result: ScanResult = { managed: { Active: 0, Disabled: 0 }, drift: [], orphans: [] };

  for (const account of input.accounts) {
    if (!account.employeeId || !known.has(account.employeeId))
      result.orphans.push({ id: account.id, employeeId: account.employeeId });
    else result.managed[account.enabled ? "Active" : "Disabled"]++;
  }

  for (const employee of input.employees) {
    if (!believedInSync(employee, input.connector)) continue;
    const actual = byEmployeeId.get(employee.spec.employeeId);
    const access = evaluateAccess(employee, input.policies, input.rules, input.now);
    const wanted = access.accounts.get(input.connector);
    const recorded = employee.status?.accounts?.find((a) => a.connector === input.connector);
    const groups = managedGroups(input.connector, input.policies, input.rules, input.employees);
    for (const g of recorded?.groups ?? []) groups.add(g);
    const ops = planAccount({
      desired: wanted && {
        employeeId: employee.spec.employeeId,
        username: employee.spec.username,
        attributes: input.desiredAttributes(employee.spec),
        enabled: access.lifecycle === "Active",
        groups: [...wanted.groups.keys()],
      },
      actual,
      managedAttributes: input.managedAttributes,
      managedGroups: groups,
      deleteNow: false,
      groupKey: input.groupKey,
    });
    if (ops.length === 0) continue;
    const kinds = new Set<DriftKind>();
    const details: string[] = [];
    for (const op of ops) {
      if (op.op === "create") {
        kinds.add("deleted");
        details.push("account deleted outside Roster");
      } else if (op.op === "update") {
        kinds.add("attributes");
        details.push(`attributes changed: ${Object.keys(op.changes).sort().join(", ")}`);
      } else if (op.op === "enable" || op.op === "disable") {
        kinds.add("enabled");
        details.push(
          op.op === "enable" ? "account disabled outside Roster" : "account re-enabled outside Roster",
        );
      } else if (op.op === "group_add" || op.op === "group_remove") {
        kinds.add("membership");
        details.push(op.op === "group_add" ? `removed from ${op.group}` : `added to ${op.group}`);
      }
    }
    result.drift.push({
      employee: employee.metadata.name,
      employeeId: employee.spec.employeeId,
      kinds: [...kinds].sort(),
      detail: details.join("; "),
    });
  }
  return result;
}
