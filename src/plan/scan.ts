// What a full scan of one connector means: compare every account the target holds with what
// every Employee should have, to find drift (changed outside Roster) and orphans. Pure.
import type { Connector, Employee } from "../api/types.ts";
import type { ActualAccount } from "../connectors/types.ts";
import { evaluateAccess, isPaused, managedGroups } from "../policy/evaluate.ts";
import { requirementProblems } from "../policy/match.ts";
import { accountMapping, accountOperations, protectedBy, type NamespaceObjects } from "./employee.ts";
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
  /** Hand-added members of the groups Roster hands out, per group (sorted by group). */
  unmanaged: UnmanagedGroup[];
};

export type UnmanagedMember = { id: string; username: string };

/**
 * Members of a group Roster hands out that Roster did not add: accounts in the managed scope
 * without an ownership key. `remove`: an active Authoritative GroupRule names the group, so they
 * are removed (through the brake); otherwise they are kept and only shown.
 */
export type UnmanagedGroup = { group: string; remove: boolean; rules: string[]; members: UnmanagedMember[] };

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
  const comparison = scanComparison(input);
  comparison.page(input.accounts);
  return comparison.result();
}

/**
 * A full scan compared page by page, as the pages arrive: between pages it keeps only what the
 * result holds (counts, drift, orphan ids, hand-added members) and the in-sync Employees whose
 * account it has not met yet, so a large directory is never held whole. An Employee whose account
 * no page had is judged at the end (its account was deleted outside Roster).
 */
export function scanComparison(input: Omit<ScanInput, "accounts">) {
  const name = input.connector.metadata.name;
  const mapping = accountMapping(input.connector, input.objects);
  const known = new Set(input.objects.employees.map((e) => e.spec.employeeId));
  const order = new Map(input.objects.employees.map((e, i) => [e, i]));
  /** employeeId -> the Employees believed in sync whose account no page has had yet. */
  const waiting = new Map<string, Employee[]>();
  for (const employee of input.objects.employees) {
    if (!believedInSync(employee, name)) continue;
    const id = employee.spec.employeeId;
    waiting.set(id, [...(waiting.get(id) ?? []), employee]);
  }
  const drifted: { employee: Employee; drift: Drift }[] = [];
  const managed = { Active: 0, Disabled: 0 };
  const orphans: ScanResult["orphans"] = [];
  const members = unmanagedCollector(input);

  const judge = (employee: Employee, actual: ActualAccount | undefined) => {
    const { ops } = accountOperations({
      employee,
      access: evaluateAccess(employee, input.objects.policies, input.objects.rules, input.now),
      connector: input.connector,
      mapping,
      actual,
      objects: input.objects,
      now: input.now,
    });
    const drift = describeDrift(ops);
    if (drift)
      drifted.push({
        employee,
        drift: { employee: employee.metadata.name, employeeId: employee.spec.employeeId, ...drift },
      });
  };

  return {
    page(accounts: readonly ActualAccount[]): void {
      for (const account of accounts) {
        members.add(account);
        if (!account.employeeId || !known.has(account.employeeId)) {
          orphans.push({ id: account.id, employeeId: account.employeeId });
          continue;
        }
        managed[account.enabled ? "Active" : "Disabled"]++;
        const employees = waiting.get(account.employeeId);
        if (!employees) continue;
        waiting.delete(account.employeeId);
        for (const employee of employees) judge(employee, account);
      }
    },
    result(): ScanResult {
      for (const employees of waiting.values()) for (const employee of employees) judge(employee, undefined);
      waiting.clear();
      drifted.sort((a, b) => order.get(a.employee)! - order.get(b.employee)!);
      return { managed, drift: drifted.map((d) => d.drift), orphans, unmanaged: members.groups() };
    },
  };
}

/**
 * The hand-added members of every group a policy, rule or grant of this connector names (api.md:
 * an Authoritative rule removes members who do not match). Left out, because other rules own
 * them: accounts with an ownership key (an Employee's reconcile, or the orphans setting),
 * protected accounts, and accounts whose username or email is an Employee's (they wait to be
 * linked, and linking's corrections go through the brake and `roster plan`).
 */
export function unmanagedMembers(input: ScanInput): UnmanagedGroup[] {
  const collector = unmanagedCollector(input);
  for (const account of input.accounts) collector.add(account);
  return collector.groups();
}

/**
 * The groups whose hand-added members the scan judges: every group a policy, GroupRule or grant of
 * the connector names. The scan asks the target for all their members (listAccounts membersOf).
 */
export function scannedGroups(
  connector: Connector,
  objects: Pick<NamespaceObjects, "employees" | "policies" | "rules">,
): string[] {
  const name = connector.metadata.name;
  const groups = managedGroups(name, objects.policies, [], objects.employees);
  for (const rule of objects.rules) if (rule.spec.connectors.includes(name)) groups.add(rule.spec.group);
  return [...groups];
}

function unmanagedCollector(input: Omit<ScanInput, "accounts">) {
  const connector = input.connector;
  const name = connector.metadata.name;
  const { groupKey } = accountMapping(connector, { employees: [] });
  const named = new Map<string, UnmanagedGroup>();
  const group = (g: string) => {
    const key = groupKey(g);
    let entry = named.get(key);
    if (!entry) named.set(key, (entry = { group: g, remove: false, rules: [], members: [] }));
    return entry;
  };
  for (const g of scannedGroups(connector, input.objects)) group(g);
  for (const rule of input.objects.rules) {
    if (!rule.spec.connectors.includes(name)) continue;
    const entry = group(rule.spec.group);
    // A paused rule or one whose match is malformed removes nobody.
    if (rule.spec.membership === "Additive" || isPaused(rule) || requirementProblems(rule.spec.match).length)
      continue;
    entry.remove = true;
    entry.rules.push(`GroupRule/${rule.metadata.name}`);
  }
  const people = new Set<string>();
  if (named.size)
    for (const e of input.objects.employees) {
      people.add(e.spec.username.toLowerCase());
      people.add(e.spec.email.toLowerCase());
    }
  // LDAP mail; SCIM emails, also one element of it (emails[type eq "work"].value).
  const emails = (a: ActualAccount) =>
    Object.entries(a.attributes).flatMap(([attribute, values]) =>
      /^(mail|emails)$|^emails[[.]/i.test(attribute) ? values : [],
    );
  return {
    add(account: ActualAccount): void {
      if (!named.size || account.employeeId || !account.groups.length) return;
      if (protectedBy(connector, account, groupKey)) return;
      if (
        people.has(account.username.toLowerCase()) ||
        emails(account).some((m) => people.has(m.toLowerCase()))
      )
        return;
      for (const g of account.groups)
        named.get(groupKey(g))?.members.push({ id: account.id, username: account.username });
    },
    groups(): UnmanagedGroup[] {
      return [...named.values()]
        .filter((g) => g.members.length)
        .map((g) => ({ ...g, members: g.members.sort((a, b) => a.username.localeCompare(b.username)) }))
        .sort((a, b) => a.group.localeCompare(b.group));
    },
  };
}
