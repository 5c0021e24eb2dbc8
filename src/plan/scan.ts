// What a full scan of one connector means: compare every account the target holds with what
// every Employee should have, to find drift (changed outside Roster) and orphans. Pure.
import type { Connector, Employee } from "../api/types.ts";
import type { ActualAccount } from "../connectors/types.ts";
import { evaluateAccess } from "../policy/evaluate.ts";
import { accountMapping, accountOperations, type NamespaceObjects } from "./employee.ts";
import type { Operation } from "./plan.ts";

export type DriftKind = "attributes" | "enabled" | "membership" | "deleted";

export type Drift = { employee: string; employeeId: string; kinds: DriftKind[]; detail: string };

export type ScanInput = {
  connector: Connector;
  objects: NamespaceObjects;
  accounts: readonly ActualAccount[];
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

/** What the planner would change, in the words of drift (a delete is the plan's own, not drift). */
function describeDrift(ops: readonly Operation[]): { kinds: DriftKind[]; detail: string } | undefined {
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
  return details.length ? { kinds: [...kinds].sort(), detail: details.join("; ") } : undefined;
}

export function compareScan(input: ScanInput): ScanResult {
  const name = input.connector.metadata.name;
  const mapping = accountMapping(input.connector, input.objects);
  const byEmployeeId = new Map<string, ActualAccount>();
  for (const account of input.accounts) if (account.employeeId) byEmployeeId.set(account.employeeId, account);
  const known = new Set(input.objects.employees.map((e) => e.spec.employeeId));
  const result: ScanResult = { managed: { Active: 0, Disabled: 0 }, drift: [], orphans: [] };

  for (const account of input.accounts) {
    if (!account.employeeId || !known.has(account.employeeId))
      result.orphans.push({ id: account.id, employeeId: account.employeeId });
    else result.managed[account.enabled ? "Active" : "Disabled"]++;
  }

  for (const employee of input.objects.employees) {
    if (!believedInSync(employee, name)) continue;
    const { ops } = accountOperations({
      employee,
      access: evaluateAccess(employee, input.objects.policies, input.objects.rules, input.now),
      connector: input.connector,
      mapping,
      actual: byEmployeeId.get(employee.spec.employeeId),
      objects: input.objects,
      now: input.now,
    });
    const drift = describeDrift(ops);
    if (drift)
      result.drift.push({ employee: employee.metadata.name, employeeId: employee.spec.employeeId, ...drift });
  }
  return result;
}
