// What Roster changed in a target, told three ways from one source: the audit record (one per
// operation, on the log stream: src/observe/audit.ts emits it), the bounded history each account
// keeps in the Employee's status (a projection of the records), and the one Event a reconcile
// that changed something records (a summary of its operations). Pure.
//
// No secret value is ever part of a record: a password is set (set_password, or with a create)
// but never described, and attributes whose names say they hold a credential are left out.
import { ACCOUNT_HISTORY_LIMIT } from "../api/schema.ts";
import type { AccountStatusT, Employee } from "../api/types.ts";
import type { ActualAccount } from "../connectors/types.ts";
import type { Access } from "../policy/evaluate.ts";
import type { Operation } from "./plan.ts";

export type AccountChange = NonNullable<AccountStatusT["history"]>[number];

/**
 * Why a change was made. For Employees: joiner (a first account), employee change (the Employee's
 * spec changed: a mover, a rehire), start date, leaver, suspended (OnLeave), policy edit (an
 * AccessPolicy or GroupRule edit changed the person's entitlements), grant expired, drift
 * correction (the scan found a change made outside Roster), adoption link, resync (the target
 * differed for another reason: a Connector's mapping edited, a manager's account appeared). For
 * accounts without an Employee: orphan action, scheduled deletion, unmanaged member (a member
 * Roster did not add, removed by an Authoritative GroupRule).
 */
export type ChangeReason =
  | "joiner"
  | "employee change"
  | "start date"
  | "leaver"
  | "suspended"
  | "policy edit"
  | "grant expired"
  | "drift correction"
  | "adoption link"
  | "resync"
  | "orphan action"
  | "scheduled deletion"
  | "unmanaged member";

export type AuditValue = string[] | boolean | null;

export type AuditRecord = {
  changeId: string;
  /** When the target confirmed the change (or refused it), ISO 8601 with milliseconds. */
  time: string;
  outcome: "succeeded" | "failed";
  /** The Employee; without name when it is gone (a scheduled deletion, an orphan). */
  employee: { namespace: string; name?: string; employeeId: string; username?: string; generation?: number };
  connector: string;
  operation: Operation["op"];
  /** The account's id in the target (LDAP DN, SCIM id); unknown for a create that failed. */
  target?: string;
  /** Attribute (or `enabled`, `groups`, `employeeId`) -> its value before and after. */
  changes: Record<string, { before: AuditValue; after: AuditValue }>;
  reason: ChangeReason;
  /** The entitlement sources behind the change (AccessPolicy/<name>, GroupRule/<name>, Grant). */
  sources: string[];
  /** One line for people: "added to group sales". */
  detail: string;
  /** A failed change: the error's class and Roster's reason for it (never its text). */
  error?: { class: string; reason: string };
};

/** Attribute names that hold credentials: never part of a record, whatever a mapping writes. */
const CREDENTIAL = /pass(word)?|pwd|secret|token|credential|private/i;

/** What a reconcile knows about one account when it changes it. */
export type EmployeeChangeContext = {
  employee: Employee;
  access: Access;
  connector: string;
  /** Every operation the reconcile runs on this account (a link colours the rest). */
  ops: readonly Operation[];
  /** The scan found drift here and these operations put it back. */
  driftCorrected: boolean;
};

const sorted = (values: Iterable<string>) => [...new Set(values)].sort();

/** Why the reconcile changes this account (the same for all its operations). */
export function changeReason(ctx: EmployeeChangeContext): ChangeReason {
  const { employee, access, connector } = ctx;
  const previous = employee.status;
  if (ctx.ops.some((o) => o.op === "link")) return "adoption link";
  if (ctx.driftCorrected) return "drift correction";
  if (access.lifecycle === "Terminated") return "leaver";
  if (access.lifecycle === "Suspended") return "suspended";
  const before = previous?.accounts?.find((a) => a.connector === connector);
  const first = !before || before.state === "Pending" || before.state === "Deleted";
  if (first && ctx.ops.some((o) => o.op === "create")) return "joiner";
  if (previous?.observedGeneration !== employee.metadata.generation) return "employee change";
  if (previous?.phase === "Scheduled") return "start date";
  if (access.expiredGrants.some((g) => g.connector === connector)) return "grant expired";
  const recorded = JSON.stringify((previous?.entitlements ?? []).filter((e) => e.connector === connector));
  const now = JSON.stringify(access.entitlements.filter((e) => e.connector === connector));
  return recorded !== now ? "policy edit" : "resync";
}

/**
 * The entitlement sources behind one operation: what grants it now, for a change that gives or
 * keeps access; what granted it before, for one that takes access away.
 */
export function changeSources(ctx: EmployeeChangeContext, op: Operation): string[] {
  const wanted = ctx.access.accounts.get(ctx.connector);
  const recorded = (ctx.employee.status?.entitlements ?? []).filter((e) => e.connector === ctx.connector);
  const accountSources =
    wanted?.sources ?? recorded.filter((e) => e.group === undefined).map((e) => e.source);
  switch (op.op) {
    case "create":
      return sorted([...(wanted?.sources ?? []), ...[...(wanted?.groups.values() ?? [])].flat()]);
    case "group_add":
      return sorted(wanted?.groups.get(op.group) ?? []);
    case "group_remove":
      return sorted(recorded.filter((e) => e.group === op.group).map((e) => e.source));
    default:
      return sorted(accountSources);
  }
}

/** The account as it is after `op`: what the next operation's record starts from. */
export function accountAfter(
  op: Operation,
  before: ActualAccount | undefined,
  returned: ActualAccount | undefined,
): ActualAccount | undefined {
  if (op.op === "create" || op.op === "link") return returned;
  if (op.op === "delete" || !before) return undefined;
  switch (op.op) {
    case "update": {
      const attributes = { ...before.attributes };
      for (const [name, values] of Object.entries(op.changes))
        if (values === null) delete attributes[name];
        else attributes[name] = values;
      return { ...before, attributes };
    }
    case "enable":
    case "disable":
      return { ...before, enabled: op.op === "enable" };
    case "group_add":
      return { ...before, groups: sorted([...before.groups, op.group]) };
    case "group_remove":
      return { ...before, groups: before.groups.filter((g) => g !== op.group) };
    default:
      return before;
  }
}

/**
 * One line for people, as history and logs show it. The account's id is not repeated: it is the
 * record's `target` and stands next to the history in status (every Employee's history sits in
 * the operator's cache, so each entry is kept short).
 */
export function describeChange(op: Operation): string {
  switch (op.op) {
    case "create":
      return op.account.groups.length > 0 ? `created in groups ${op.account.groups.join(", ")}` : "created";
    case "update":
      return `updated ${Object.keys(op.changes).sort().join(", ")}`;
    case "set_password":
      return "set the generated password";
    case "link":
      return "linked the existing account";
    case "enable":
      return "enabled";
    case "disable":
      return "disabled";
    case "group_add":
      return `added to group ${op.group}`;
    case "group_remove":
      return `removed from group ${op.group}`;
    case "delete":
      return "deleted";
  }
}

const list = (values: readonly string[] | undefined): string[] => [...(values ?? [])];

/** Before and after of what one operation changes; credentials never. */
export function operationChanges(
  op: Operation,
  before: ActualAccount | undefined,
  employeeId: string,
): AuditRecord["changes"] {
  const changes: AuditRecord["changes"] = {};
  switch (op.op) {
    case "create":
      for (const [name, values] of Object.entries(op.account.attributes))
        changes[name] = { before: null, after: list(values) };
      changes.enabled = { before: null, after: op.account.enabled };
      changes.groups = { before: null, after: list(op.account.groups) };
      break;
    case "update":
      for (const [name, values] of Object.entries(op.changes))
        changes[name] = {
          before: before?.attributes[name] ? list(before.attributes[name]) : null,
          after: values,
        };
      break;
    case "link":
      changes.employeeId = { before: before?.employeeId ? [before.employeeId] : null, after: [employeeId] };
      break;
    case "enable":
    case "disable":
      changes.enabled = { before: before?.enabled ?? null, after: op.op === "enable" };
      break;
    case "group_add":
    case "group_remove": {
      const groups = list(before?.groups);
      const after =
        op.op === "group_add" ? sorted([...groups, op.group]) : groups.filter((g) => g !== op.group);
      changes.groups = { before: groups, after };
      break;
    }
    case "delete":
      changes.exists = { before: true, after: false };
      break;
    case "set_password":
      break;
  }
  for (const name of Object.keys(changes)) if (CREDENTIAL.test(name)) delete changes[name];
  return changes;
}

/** The error's class for a record: its name, never its text. */
export function errorClass(error: unknown): string {
  return error instanceof Error ? error.name || error.constructor.name : typeof error;
}

export type RecordInput = {
  changeId: string;
  time: Date;
  op: Operation;
  /** The account before the operation (undefined before a create, or for a link the candidate). */
  before: ActualAccount | undefined;
  /** The account's id (a create's: the one it got). */
  id: string | undefined;
  failure?: { class: string; reason: string };
};

/** The audit record of one operation an Employee's reconcile ran (or tried). */
export function employeeChangeRecord(ctx: EmployeeChangeContext, input: RecordInput): AuditRecord {
  const { employee } = ctx;
  const generation = employee.metadata.generation;
  return changeRecord({
    ...input,
    employee: {
      namespace: employee.metadata.namespace ?? "default",
      name: employee.metadata.name,
      employeeId: employee.spec.employeeId,
      username: employee.spec.username,
      ...(generation !== undefined ? { generation } : {}),
    },
    connector: ctx.connector,
    reason: changeReason(ctx),
    sources: changeSources(ctx, input.op),
  });
}

/** An audit record from its parts (also for changes made without an Employee: orphans, scheduled deletions). */
export function changeRecord(
  input: RecordInput & {
    employee: AuditRecord["employee"];
    connector: string;
    reason: ChangeReason;
    sources?: string[];
  },
): AuditRecord {
  const { op, id, failure } = input;
  return {
    changeId: input.changeId,
    time: input.time.toISOString(),
    outcome: failure ? "failed" : "succeeded",
    employee: input.employee,
    connector: input.connector,
    operation: op.op,
    ...(id ? { target: id } : {}),
    changes: operationChanges(op, input.before, input.employee.employeeId),
    reason: input.reason,
    sources: input.sources ?? [],
    detail: describeChange(op),
    ...(failure ? { error: failure } : {}),
  };
}

/** The history entry of a succeeded change: what, when, why, and the record to look up. */
export function historyEntry(record: AuditRecord): AccountChange {
  const source = record.sources.join(", ");
  return {
    time: record.time,
    operation: record.operation,
    detail: record.detail.slice(0, 1024),
    reason: record.reason,
    ...(source ? { source: source.slice(0, 1024) } : {}),
    changeId: record.changeId,
  };
}

/** An account's history after a reconcile: its new changes (in the order they ran) first, newest first. */
export function mergeHistory(
  recorded: readonly AccountChange[] | undefined,
  changes: readonly AccountChange[] | undefined,
): AccountChange[] {
  return [...(changes ?? [])]
    .reverse()
    .concat(recorded ?? [])
    .slice(0, ACCOUNT_HISTORY_LIMIT);
}

// --- the one Event a reconcile records ------------------------------------------------------

/** What a reconcile did to one account, for the Event. */
export type AccountSummary = {
  connector: string;
  id: string | undefined;
  applied: readonly Operation[];
  /** The scan's drift these operations put back. */
  driftCorrected?: string;
};

/**
 * The Event's reason names the most consequential change (so `kubectl get events
 * --field-selector reason=AccountDisabled` still finds leavers); its message tells them all.
 */
const PRECEDENCE = [
  "AccountCreated",
  "AccountDeleted",
  "AccountDisabled",
  "AccountEnabled",
  "AccountLinked",
  "DriftCorrected",
  "GrantExpired",
  "AccountUpdated",
  "PasswordSet",
  "GroupRemoved",
  "GroupAdded",
] as const;

const OPERATION_REASONS: Record<Operation["op"], (typeof PRECEDENCE)[number]> = {
  create: "AccountCreated",
  update: "AccountUpdated",
  enable: "AccountEnabled",
  disable: "AccountDisabled",
  set_password: "PasswordSet",
  link: "AccountLinked",
  delete: "AccountDeleted",
  group_add: "GroupAdded",
  group_remove: "GroupRemoved",
};

function accountParts(account: AccountSummary): string {
  const parts: string[] = [];
  if (account.driftCorrected !== undefined) parts.push(`put back ${account.driftCorrected}`);
  const added: string[] = [];
  const removed: string[] = [];
  let named = false;
  for (const op of account.applied) {
    switch (op.op) {
      case "create":
        parts.push(`created ${account.id ?? "an account"}`);
        added.push(...op.account.groups);
        named = true;
        break;
      case "link":
        parts.push(`linked ${op.id}`);
        named = true;
        break;
      case "delete":
        parts.push(`deleted ${account.id ?? "the account"}`);
        named = true;
        break;
      case "update":
        parts.push(`updated ${Object.keys(op.changes).sort().join(", ")}`);
        break;
      case "set_password":
        parts.push("set the generated password");
        break;
      case "enable":
      case "disable":
        parts.push(`${op.op}d`);
        break;
      case "group_add":
        added.push(op.group);
        break;
      case "group_remove":
        removed.push(op.group);
        break;
    }
  }
  if (added.length > 0) parts.push(`added to ${added.join(", ")}`);
  if (removed.length > 0) parts.push(`removed from ${removed.join(", ")}`);
  const label = named || account.id === undefined ? account.connector : `${account.connector} ${account.id}`;
  return `${label}: ${parts.join("; ")}`;
}

/**
 * The one Normal Event of a reconcile that changed something (or has news, such as an expired
 * grant): e.g. "corp-ldap: created uid=ada,...; added to engineering, staff; wiki: created 2819c223".
 * Undefined when there is nothing to tell.
 */
export function changeSummary(
  accounts: readonly AccountSummary[],
  notes: readonly { reason: "GrantExpired"; message: string }[] = [],
): { reason: string; message: string } | undefined {
  const changed = accounts.filter((a) => a.applied.length > 0);
  if (changed.length === 0 && notes.length === 0) return undefined;
  const reasons = new Set<string>(notes.map((n) => n.reason));
  for (const account of changed) {
    if (account.driftCorrected !== undefined) reasons.add("DriftCorrected");
    for (const op of account.applied) reasons.add(OPERATION_REASONS[op.op]);
  }
  const reason = PRECEDENCE.find((r) => reasons.has(r))!;
  const message = [...notes.map((n) => n.message), ...changed.map(accountParts)].join("; ");
  return { reason, message };
}
