// The one planner. From an Employee, the objects of its namespace and what the targets hold, it
// returns the operations to run and the status to write (phase, accounts, entitlements,
// conditions, requeue time). Pure: the reconciler, the drift scan and `roster plan` all call it,
// so what they decide cannot differ.
import type {
  AccessPolicy,
  AccountStatusT,
  Connector,
  Employee,
  EmployeeSpecT,
  EmployeeStatusT,
  EntitlementT,
  GroupRule,
} from "../api/types.ts";
import { rfc3339Seconds, sameStatus, setCondition, type ConditionInput } from "../api/conditions.ts";
import type { ActualAccount, DesiredAccount } from "../connectors/types.ts";
import { attributeRenderer, managedAttributes, refersToManager } from "../connectors/mapping.ts";
import { managerReference } from "./references.ts";
import { caseIgnoreKey } from "../connectors/ldap/escape.ts";
import { evaluateAccess, isPaused, lifecycleOf, managedGroups, type Access } from "../policy/evaluate.ts";
import { parseDuration } from "../api/durations.ts";
import { DEPROVISION_FINALIZER } from "../api/schema.ts";
import { isDeprovision, planAccount, type Operation } from "./plan.ts";
import { changeSummary, mergeHistory, type AccountChange } from "./audit.ts";

export type NamespaceObjects = {
  employees: readonly Employee[];
  policies: readonly AccessPolicy[];
  rules: readonly GroupRule[];
  connectors: readonly Connector[];
  /** The Employees carrying an employeeId, when the caller keeps an index (else one is built). */
  withEmployeeId?: (employeeId: string) => readonly Employee[];
  /** The Employees with a username (a manager's), when the caller keeps an index (else one is built). */
  withUsername?: (username: string) => readonly Employee[];
  /**
   * The groups the Employees' grants hand out in a connector (managedGroups' Employee part, from
   * grantedGroups), when the caller keeps a count of them; else every Employee's grants are read.
   */
  grantedGroups?: (connector: string) => ReadonlySet<string>;
};

/** How an Employee maps onto an account of one Connector, whatever its kind. */
export type AccountMapping = {
  desiredAttributes(spec: EmployeeSpecT): Record<string, string[]>;
  managedAttributes: readonly string[];
  /** How the target compares group names (LDAP ignores case). */
  groupKey(name: string): string;
  /** Why a reference the mapping uses (the manager's account) is left unset, if one is. */
  referenceProblem(spec: EmployeeSpecT): string | undefined;
};

/**
 * How Employees map onto accounts of a connector; the namespace's Employees (`withUsername`, else
 * `employees`) resolve references (the manager's account id in this connector, RFC 7643 §4.3)
 * where the mapping uses them.
 */
export function accountMapping(
  connector: Connector,
  objects: Pick<NamespaceObjects, "employees" | "withUsername">,
): AccountMapping {
  const usesManager = refersToManager(connector);
  const render = attributeRenderer(connector);
  const reference = (spec: EmployeeSpecT) =>
    usesManager ? managerReference(spec, connector.metadata.name, objects) : {};
  return {
    desiredAttributes: (spec) => {
      const managerId = reference(spec).id;
      return render(spec, managerId ? { managerId } : {});
    },
    managedAttributes: managedAttributes(connector),
    groupKey: connector.spec.ldap ? caseIgnoreKey : (name) => name,
    referenceProblem: (spec) => reference(spec).problem,
  };
}

/**
 * Why a target operation failed, classified once. Terminal: retrying cannot help until the
 * Employee or its Connector changes (not owned, configuration); throttled: wait as asked;
 * transient: retry with backoff.
 */
export type Failure = {
  kind: "terminal" | "throttled" | "transient";
  reason: string;
  message: string;
  retryAfterMs?: number;
};

/** What one target holds for the person, as the reconciler found it. */
export type TargetRead =
  | {
      status: "read";
      actual: ActualAccount | undefined;
      /** With adoption on and no owned account: the unowned accounts that match (findUnowned). */
      candidates?: ActualAccount[];
    }
  | { status: "failed"; failure: Failure };

/** What running an account's operations did. */
export type AccountResult = {
  /** The operations that succeeded, in order. */
  applied: Operation[];
  /** The account after them (undefined once deleted). */
  current: ActualAccount | undefined;
  failure?: Failure;
  /** History entries of the applied operations, in the order they ran (same changeIds as their audit records). */
  changes?: readonly AccountChange[];
};

export type BrakeHold = { held: number; limit: number };

export type EmployeePlanInput = {
  employee: Employee;
  objects: NamespaceObjects;
  /** Per connector to visit (see connectorsToVisit): what the target holds. Missing: not read. */
  targets: ReadonlyMap<string, TargetRead>;
  /** Drift the last full scan found, per connector. */
  drift?: ReadonlyMap<string, string>;
  /** Connectors whose brake holds this person's deprovisioning. */
  held?: ReadonlyMap<string, BrakeHold>;
  /** After the operations ran: what they did, per connector. */
  results?: ReadonlyMap<string, AccountResult>;
  /** Connectors where the generated password was never set on the existing account. */
  passwordPending?: ReadonlySet<string>;
  now: Date;
};

export type PlannedEvent = { type: "Normal" | "Warning"; reason: string; message: string };

export type AccountPlan = {
  connector: string;
  /** The operations to run, in order (deprovisions held by the brake already taken out). */
  ops: Operation[];
  /** The plan takes access away here (before the brake): ask the brake with brakeKey. */
  deprovisions: boolean;
  /** The account's status; undefined when there is nothing to list (nothing held or wanted). */
  status: AccountStatusT | undefined;
  failure?: Failure;
  held?: BrakeHold;
  /** Nothing failed, but the account is not where it should be yet, for this reason. */
  waiting?: string;
  /** With deprovisioning action Delete: when the account is to be deleted. */
  deleteAt?: Date;
  driftReported?: string;
  driftCorrected?: string;
};

export type EmployeePlan = {
  access: Access;
  /** The Employee is paused by annotation: nothing runs, status says so. */
  paused: boolean;
  /** Another Employee with the same employeeId acts on the targets: this one changes nothing. */
  duplicateOf?: string;
  accounts: AccountPlan[];
  status: EmployeeStatusT;
  events: PlannedEvent[];
  /** Connectors whose scan drift is dealt with (corrected, or stale because the Employee changed). */
  clearDrift: string[];
  /** The key the brake counts this person by (stable across reconciles). */
  brakeKey: string;
  /**
   * The Employee is going away while deletions are due later (deprovisioning.deleteAfter): each is
   * handed to its Connector before the finalizer goes, so it happens without the Employee.
   */
  handOver: { connector: string; id: string; deleteAt: Date }[];
  next: {
    /** backoff: a transient failure; after: run again in `afterMs`; none: wait for a change. */
    retry: "backoff" | "after" | "none";
    afterMs?: number;
    /** Deprovisioning is confirmed everywhere: the finalizer may go. */
    removeFinalizer: boolean;
  };
};

const HELD_RETRY_MS = 30_000;
const DEFAULT_DELETE_AFTER = "720h";

/**
 * Where the person may hold an account: what they should have, what status remembers, and, for
 * a leaver, every connector of the namespace (status may have been lost in a crash).
 */
export function connectorsToVisit(employee: Employee, objects: NamespaceObjects, now: Date): string[] {
  const access = evaluateAccess(employee, objects.policies, objects.rules, now);
  const names = new Set<string>(access.accounts.keys());
  for (const account of employee.status?.accounts ?? [])
    if (account.state !== "Deleted") names.add(account.connector);
  if (access.lifecycle === "Terminated") for (const c of objects.connectors) names.add(c.metadata.name);
  return [...names].sort();
}

export function connectorPaused(connector: Connector): boolean {
  return !!connector.spec.paused || isPaused(connector);
}

/** The groups Roster manages for this person in a connector: the namespace's, and what status recorded. */
function managedGroupsFor(
  connector: string,
  objects: NamespaceObjects,
  recorded: AccountStatusT | undefined,
): Set<string> {
  const groups = new Set(namespaceManagedGroups(connector, objects));
  for (const g of recorded?.groups ?? []) groups.add(g);
  return groups;
}

// Without the caller's count of granted groups, memoized per namespace snapshot (the same objects
// serve a whole reconcile or a whole scan): managedGroups reads every Employee's grants, which per
// account would make a scan quadratic.
const managedGroupsMemo = new WeakMap<NamespaceObjects, Map<string, ReadonlySet<string>>>();

function namespaceManagedGroups(connector: string, objects: NamespaceObjects): ReadonlySet<string> {
  if (objects.grantedGroups) {
    const groups = managedGroups(connector, objects.policies, objects.rules, []);
    for (const g of objects.grantedGroups(connector)) groups.add(g);
    return groups;
  }
  let byConnector = managedGroupsMemo.get(objects);
  if (!byConnector) {
    byConnector = new Map();
    managedGroupsMemo.set(objects, byConnector);
  }
  let groups = byConnector.get(connector);
  if (!groups) {
    groups = managedGroups(connector, objects.policies, objects.rules, objects.employees);
    byConnector.set(connector, groups);
  }
  return groups;
}

export type AccountOperationsInput = {
  employee: Employee;
  access: Access;
  connector: Connector;
  mapping: AccountMapping;
  actual: ActualAccount | undefined;
  objects: NamespaceObjects;
  now: Date;
  passwordPending?: boolean;
};

export type AccountOperations = {
  desired: DesiredAccount | undefined;
  ops: Operation[];
  managedGroups: Set<string>;
  deleteAt?: Date;
};

/** The operations that take this person's account in one connector to what it should be. */
export function accountOperations(input: AccountOperationsInput): AccountOperations {
  const { employee, access, connector, mapping, actual, now } = input;
  const name = connector.metadata.name;
  const wanted = access.accounts.get(name);
  const recorded = employee.status?.accounts?.find((a) => a.connector === name);
  const desired: DesiredAccount | undefined = wanted && {
    employeeId: employee.spec.employeeId,
    username: employee.spec.username,
    attributes: mapping.desiredAttributes(employee.spec),
    enabled: access.lifecycle === "Active",
    groups: [...wanted.groups.keys()].sort(),
  };
  const groups = managedGroupsFor(name, input.objects, recorded);
  let deleteAt: Date | undefined;
  const deprovisioning = connector.spec.deprovisioning;
  if (!wanted && deprovisioning?.action === "Delete") {
    const since = employee.status?.deprovisionedAt ? new Date(employee.status.deprovisionedAt) : now;
    deleteAt = new Date(since.getTime() + parseDuration(deprovisioning.deleteAfter ?? DEFAULT_DELETE_AFTER));
  }
  const ops = planAccount({
    desired,
    actual,
    managedAttributes: mapping.managedAttributes,
    managedGroups: groups,
    deleteNow: !!deleteAt && deleteAt.getTime() <= now.getTime(),
    groupKey: mapping.groupKey,
    passwordPending: !!input.passwordPending,
  });
  return { desired, ops, managedGroups: groups, ...(deleteAt ? { deleteAt } : {}) };
}

/** The managed groups the account is in after the operations ran. */
function groupsAfter(applied: readonly Operation[], actual: ActualAccount | undefined): string[] {
  const created = applied.find((o) => o.op === "create");
  if (created?.op === "create") return [...created.account.groups].sort();
  const groups = new Set(actual?.groups ?? []);
  for (const op of applied) {
    if (op.op === "group_add") groups.add(op.group);
    if (op.op === "group_remove") groups.delete(op.group);
  }
  return [...groups].sort();
}

/** The state an account status shows for a failure: Conflict for an account Roster may not touch. */
function failedState(failure: Failure): AccountStatusT["state"] {
  return failure.reason === "NotOwned" ? "Conflict" : "Failed";
}

function failedAccount(
  connector: string,
  before: AccountStatusT | undefined,
  failure: Failure,
  id?: string,
): AccountStatusT {
  const recordedId = id ?? before?.id;
  return {
    connector,
    ...(recordedId ? { id: recordedId } : {}),
    state: failedState(failure),
    groups: before?.groups ?? [],
    ...(before?.lastSyncTime ? { lastSyncTime: before.lastSyncTime } : {}),
    message: failure.message,
  };
}

/**
 * Drift under policy Report is left as found only while the person's access is what the last
 * reconcile recorded: a new generation, a passed endDate or an expired grant is Roster's change to
 * make, drift or not.
 */
function unchangedSinceLastReconcile(employee: Employee, access: Access): boolean {
  const status = employee.status;
  return (
    status?.observedGeneration === employee.metadata.generation &&
    access.lifecycle !== "Terminated" &&
    (status?.entitlements === undefined || sameStatus(access.entitlements, status.entitlements))
  );
}

type AccountContext = {
  input: EmployeePlanInput;
  access: Access;
  events: PlannedEvent[];
  clearDrift: string[];
};

/** Why an account is one Roster never touches (Connector spec.protected), or undefined. */
export function protectedBy(
  connector: Connector,
  account: Pick<ActualAccount, "username" | "groups">,
  groupKey: (name: string) => string,
): string | undefined {
  const guarded = connector.spec.protected;
  if (!guarded) return undefined;
  // Usernames as the targets compare them: without regard to case.
  const username = account.username.toLowerCase();
  if (guarded.usernames?.some((u) => u.toLowerCase() === username))
    return `username ${account.username} is protected`;
  const protectedGroups = new Set((guarded.groups ?? []).map(groupKey));
  const group = account.groups.find((g) => protectedGroups.has(groupKey(g)));
  return group === undefined ? undefined : `it is a member of the protected group ${group}`;
}

function protectedStatus(
  connector: Connector,
  account: ActualAccount,
  before: AccountStatusT | undefined,
): AccountStatusT {
  const why = protectedBy(connector, account, accountMapping(connector, { employees: [] }).groupKey);
  return {
    connector: connector.metadata.name,
    id: account.id,
    state: "Protected",
    groups: [],
    ...(before?.lastSyncTime ? { lastSyncTime: before.lastSyncTime } : {}),
    message: `${why}: Roster does not adopt, change, disable or delete it (Connector spec.protected)`,
  };
}

export const ADOPT_ANNOTATION = "roster.dev/adopt";

type Adoption =
  | { kind: "link"; account: ActualAccount }
  | { kind: "proposed"; account: ActualAccount; message: string }
  | { kind: "protected"; account: ActualAccount }
  | { kind: "conflict"; id?: string; message: string };

/** Whether the Employee's roster.dev/adopt annotation names this connector. */
export function adoptionApproved(employee: Employee, connector: string): boolean {
  const names = employee.metadata.annotations?.[ADOPT_ANNOTATION] ?? "";
  return names.split(",").some((n) => n.trim() === connector);
}

/** The value an Employee is matched on, as the targets compare it (without regard to case). */
function matchValue(employee: Employee, match: "Username" | "Email"): string | undefined {
  const value = match === "Username" ? employee.spec.username : employee.spec.email;
  return value?.toLowerCase();
}

/**
 * What adoption makes of the unowned accounts that match an Employee without an account here
 * (api.md "Adopting accounts"): undefined when adoption is off or nothing matches. A candidate
 * is linked only when the match is unique both ways; a protected one never.
 */
function adoptionOf(
  input: EmployeePlanInput,
  connector: Connector,
  candidates: readonly ActualAccount[],
): Adoption | undefined {
  const match = connector.spec.adoption?.match;
  if (!match || match === "None" || candidates.length === 0) return undefined;
  const name = connector.metadata.name;
  const how = match === "Username" ? "username" : "email";
  if (candidates.length > 1)
    return {
      kind: "conflict",
      message: `${candidates.length} existing accounts match by ${how} (${candidates.map((c) => c.id).join(", ")}); none is linked`,
    };
  const account = candidates[0]!;
  const value = matchValue(input.employee, match);
  const others = input.objects.employees.filter(
    (e) =>
      e.metadata.name !== input.employee.metadata.name &&
      e.spec.employeeId !== input.employee.spec.employeeId &&
      matchValue(e, match) === value,
  );
  if (others.length > 0)
    return {
      kind: "conflict",
      id: account.id,
      message: `existing account ${account.id} matches by ${how} this Employee and ${others.map((e) => e.metadata.name).join(", ")}; none is linked`,
    };
  if (protectedBy(connector, account, accountMapping(connector, input.objects).groupKey))
    return { kind: "protected", account };
  if (connector.spec.adoption?.mode === "Automatic" || adoptionApproved(input.employee, name))
    return { kind: "link", account: { ...account, employeeId: input.employee.spec.employeeId } };
  return {
    kind: "proposed",
    account,
    message:
      `existing account ${account.id} matches by ${how} and is not linked; review it, then link it with ` +
      `kubectl annotate employee ${input.employee.metadata.name} ${ADOPT_ANNOTATION}=${name}`,
  };
}

/** Attributes a person signs in or resets a password with: never rewritten when an account is linked. */
const LOGIN_ATTRIBUTE = /^(mail|uid|userprincipalname|samaccountname|username|emails)([[.].*)?$/i;

/** Linking first; what linking brings along leaves the login attributes as they are. */
function linkingOperations(planned: AccountOperations, account: ActualAccount): AccountOperations {
  const ops: Operation[] = [{ op: "link", id: account.id }];
  for (const op of planned.ops) {
    if (op.op !== "update") {
      ops.push(op);
      continue;
    }
    const changes = Object.fromEntries(
      Object.entries(op.changes).filter(([key]) => !LOGIN_ATTRIBUTE.test(key)),
    );
    if (Object.keys(changes).length > 0) ops.push({ op: "update", changes });
  }
  return { ...planned, ops };
}

function planAccountIn(ctx: AccountContext, name: string): AccountPlan {
  const { input, access, events } = ctx;
  const { employee, now } = input;
  const before = employee.status?.accounts?.find((a) => a.connector === name);
  const wanted = access.accounts.has(name);
  const connector = input.objects.connectors.find((c) => c.metadata.name === name);
  const none: AccountPlan = { connector: name, ops: [], deprovisions: false, status: undefined };
  const failed = (failure: Failure, id?: string): AccountPlan => {
    // A terminal failure is reported once; a transient one each time it happens.
    const same =
      failure.kind === "terminal" &&
      before?.state === failedState(failure) &&
      before.message === failure.message;
    if (!same)
      events.push({ type: "Warning", reason: "ProvisioningFailed", message: `${name}: ${failure.message}` });
    return { ...none, status: failedAccount(name, before, failure, id), failure };
  };
  if (!connector) {
    // A leaver's sweep visits every connector; only a wanted or remembered one must exist.
    if (!wanted && !before) return none;
    return failed({
      kind: "terminal",
      reason: "ConnectorNotFound",
      message: `Connector ${name} not found: its account is left as it is until the Connector is back (to leave it for good, remove the finalizer ${DEPROVISION_FINALIZER} from this Employee)`,
    });
  }
  if (connectorPaused(connector)) {
    // Nothing is read or written; a joiner's account and a leaver's deprovisioning wait for it.
    const remembered = before && before.state !== "Deleted";
    if (remembered && !wanted)
      return {
        ...none,
        status: { ...before, message: "Connector is paused: deprovisioning waits until it is resumed" },
        waiting: "ConnectorPaused",
      };
    if (remembered || !wanted) return { ...none, status: before };
    return {
      ...none,
      status: { connector: name, state: "Pending", groups: [], message: "Connector is paused" },
      waiting: "ConnectorPaused",
    };
  }
  const read = input.targets.get(name);
  // Not read (yet): nothing is known, so nothing is decided, and a deletion does not go ahead.
  if (!read) return { ...none, status: before, waiting: "NotRead" };
  if (read.status === "failed") return failed(read.failure);
  const mapping = accountMapping(connector, input.objects);
  if (read.actual && protectedBy(connector, read.actual, mapping.groupKey))
    return { ...none, status: protectedStatus(connector, read.actual, before) };
  const adoption = !read.actual && wanted ? adoptionOf(input, connector, read.candidates ?? []) : undefined;
  if (adoption?.kind === "conflict")
    return failed({ kind: "terminal", reason: "NotOwned", message: adoption.message }, adoption.id);
  if (adoption?.kind === "protected")
    return { ...none, status: protectedStatus(connector, adoption.account, before) };
  if (adoption?.kind === "proposed")
    return {
      ...none,
      status: {
        connector: name,
        id: adoption.account.id,
        state: "Unlinked",
        groups: [],
        message: adoption.message,
      },
      waiting: "Unlinked",
    };
  const linking = adoption?.kind === "link" ? adoption.account : undefined;
  const actual = read.actual ?? linking;
  if (!wanted && !actual && !before) return none;
  if (connector.metadata.deletionTimestamp && wanted && !actual)
    // A Connector on its way out serves the accounts it has and makes no new ones.
    return {
      ...none,
      status: {
        connector: name,
        state: "Pending",
        groups: [],
        message: `Connector ${name} is being deleted: no account is created`,
      },
      waiting: "ConnectorDeleting",
    };

  const operations = accountOperations({
    employee,
    access,
    connector,
    mapping,
    actual,
    objects: input.objects,
    now,
    passwordPending: input.passwordPending?.has(name) ?? false,
  });
  const planned = linking ? linkingOperations(operations, linking) : operations;
  const deleteNow = !!planned.deleteAt && planned.deleteAt.getTime() <= now.getTime();
  // Drift the scan found: under policy Report it stays as found until the Employee itself changes.
  const drift = input.drift?.get(name);
  const reportOnly =
    drift !== undefined &&
    connector.spec.drift?.policy === "Report" &&
    unchangedSinceLastReconcile(employee, access);
  if (reportOnly)
    return {
      ...none,
      driftReported: drift,
      status: { ...(before ?? { connector: name, state: "Active", groups: [] }), message: `drift: ${drift}` },
    };
  if (drift !== undefined) ctx.clearDrift.push(name);

  // What linking an existing account changes on it counts like a deprovision, and a held
  // adoption waits whole: the account is not linked until the brake lets its corrections through.
  const takesAccess = (op: Operation) => isDeprovision(op) || (!!linking && op.op === "update");
  const deprovisions = planned.ops.some(takesAccess);
  const hold = deprovisions ? input.held?.get(name) : undefined;
  const ops = hold ? (linking ? [] : planned.ops.filter((op) => !takesAccess(op))) : planned.ops;
  const heldMessage = hold
    ? `${linking ? "linking this account" : "deprovisioning"} held by the mass-change brake (${hold.held} held, limit ${hold.limit} per hour); ` +
      `approve with the annotation roster.dev/approve-deprovisioning on Connector ${name}`
    : undefined;

  const result = input.results?.get(name);
  const applied = result ? result.applied : [];
  const current = result ? result.current : actual;
  const plan: AccountPlan = {
    connector: name,
    ops,
    deprovisions,
    status: undefined,
    ...(hold ? { held: hold } : {}),
  };
  if (result?.failure) {
    // The id just read (or created) is recorded even so: a later deprovisioning reads it directly.
    const failure = failed(result.failure, result.current?.id ?? actual?.id);
    return { ...plan, status: failure.status, failure: result.failure };
  }
  if (drift !== undefined && ops.length > 0) plan.driftCorrected = drift;

  // Before the operations run, status is what it will be once they succeed.
  const done = result ? applied : ops;
  const deleted = done.some((o) => o.op === "delete");
  const exists = result
    ? current !== undefined
    : !deleted && (actual !== undefined || ops[0]?.op === "create");
  // Status lists the groups Roster manages: those its policies, grants and Authoritative rules
  // hand out, those it recorded, and those it adds now. A membership made by hand in an Additive
  // rule's group is not Roster's, so it is never listed and never removed.
  const added = done.flatMap((o) =>
    o.op === "create" ? o.account.groups : o.op === "group_add" ? [o.group] : [],
  );
  const managedKeys = new Set([...planned.managedGroups, ...added].map(mapping.groupKey));
  const groups =
    deleted || !exists ? [] : groupsAfter(done, actual).filter((g) => managedKeys.has(mapping.groupKey(g)));
  const enabled = !!planned.desired?.enabled;
  const state: AccountStatusT["state"] = deleted
    ? "Deleted"
    : !exists
      ? before?.state === "Deleted" || !wanted
        ? "Deleted"
        : "Pending"
      : hold
        ? "Held"
        : enabled
          ? "Active"
          : "Disabled";
  const id = current?.id ?? before?.id;
  const referenceProblem = planned.desired ? mapping.referenceProblem(employee.spec) : undefined;
  if (planned.deleteAt && !deleteNow && exists) plan.deleteAt = planned.deleteAt;
  plan.status = {
    connector: name,
    ...(id ? { id } : {}),
    state,
    groups,
    lastSyncTime: done.length > 0 || !before?.lastSyncTime ? rfc3339Seconds(now) : before.lastSyncTime,
    ...(heldMessage
      ? { message: heldMessage }
      : referenceProblem && !deleted && exists
        ? { message: referenceProblem }
        : {}),
  };
  return plan;
}

function readyCondition(
  access: Access,
  employee: Employee,
  failures: AccountPlan[],
  held: AccountPlan[],
  waiting: AccountPlan[],
  generation: number,
): ConditionInput {
  const terminated = access.lifecycle === "Terminated";
  if (failures.length === 0 && held.length === 0 && waiting.length === 0)
    return {
      type: "Ready",
      status: "True",
      reason: terminated ? "Deprovisioned" : access.lifecycle === "Scheduled" ? "Scheduled" : "Provisioned",
      message: terminated
        ? `access removed: ${access.reason}`
        : access.lifecycle === "Scheduled"
          ? `no access until ${employee.spec.startDate}`
          : "every account matches the desired state",
      observedGeneration: generation,
    };
  // The reason names what a person must do: fix a conflict or configuration, approve, or wait.
  const reason = failures.some((f) => f.failure?.reason === "NotOwned")
    ? "Conflict"
    : failures.some((f) => f.failure?.kind === "terminal")
      ? failures.find((f) => f.failure?.kind === "terminal")!.failure!.reason
      : failures.length > 0
        ? "TargetError"
        : held.length > 0
          ? "DeprovisioningHeld"
          : waiting[0]!.waiting!;
  return {
    type: "Ready",
    status: "False",
    reason,
    message: [...failures, ...held, ...waiting]
      .map((o) => `${o.connector}: ${o.status?.message ?? "failed"}`)
      .join("; "),
    observedGeneration: generation,
  };
}

function driftCondition(
  previous: EmployeeStatusT,
  accounts: AccountPlan[],
  generation: number,
): ConditionInput {
  const note = (list: AccountPlan[], key: "driftReported" | "driftCorrected") =>
    list.map((o) => `${o.connector}: ${o[key]}`).join("; ");
  const reported = accounts.filter((o) => o.driftReported !== undefined);
  const corrected = accounts.filter((o) => o.driftCorrected !== undefined);
  if (reported.length > 0)
    return {
      type: "Drifted",
      status: "True",
      reason: "DriftReported",
      message: `changed outside Roster, left as found (drift policy Report): ${note(reported, "driftReported")}`,
      observedGeneration: generation,
    };
  if (corrected.length > 0)
    return {
      type: "Drifted",
      status: "False",
      reason: "DriftCorrected",
      message: `changed outside Roster and put back: ${note(corrected, "driftCorrected")}`,
      observedGeneration: generation,
    };
  // The last correction stays on record until drift is found again.
  const last = previous.conditions?.find((c) => c.type === "Drifted");
  const keep = last?.reason === "DriftCorrected";
  return {
    type: "Drifted",
    status: "False",
    reason: keep ? "DriftCorrected" : "InSync",
    message: keep ? last.message : "",
    observedGeneration: generation,
  };
}

function phaseOf(access: Access, failed: boolean, listed: number): EmployeeStatusT["phase"] {
  if (failed) return "Failed";
  switch (access.lifecycle) {
    case "Scheduled":
      return "Scheduled";
    case "Suspended":
      return "Suspended";
    case "Terminated":
      return "Deprovisioned";
    case "Active":
      return listed === 0 ? "Pending" : "Active";
  }
}

/**
 * Which Employee of the namespace acts for an employeeId (given the Employees that carry it): the one that is not Terminated (the
 * oldest, if several are not), else the oldest. A rehire filed as a new object while the old
 * record still exists must not have the old record disable or delete the new account.
 */
export function actingEmployee(employee: Employee, carriers: readonly Employee[], now: Date): string {
  const same = carriers.filter(
    (e) => e.spec.employeeId === employee.spec.employeeId && e.metadata.name !== employee.metadata.name,
  );
  if (same.length === 0) return employee.metadata.name;
  const all = [employee, ...same];
  const active = all.filter((e) => lifecycleOf(e, now).lifecycle !== "Terminated");
  const oldest = (list: Employee[]) =>
    [...list].sort(
      (a, b) =>
        (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") ||
        a.metadata.name.localeCompare(b.metadata.name),
    )[0]!.metadata.name;
  return oldest(active.length > 0 ? active : all);
}

const employeeIdMemo = new WeakMap<readonly Employee[], Map<string, Employee[]>>();

/** The namespace's Employees by employeeId, memoized per snapshot. */
function byEmployeeId(employees: readonly Employee[]): Map<string, Employee[]> {
  let index = employeeIdMemo.get(employees);
  if (!index) {
    index = new Map();
    for (const e of employees) {
      const list = index.get(e.spec.employeeId);
      if (list) list.push(e);
      else index.set(e.spec.employeeId, [e]);
    }
    employeeIdMemo.set(employees, index);
  }
  return index;
}

/** Whether status still shows what an expired grant gave (and nothing live gives it now). */
function grantStillShown(
  grant: Access["expiredGrants"][number],
  recorded: readonly EntitlementT[],
  access: Access,
): boolean {
  const gave = (e: EntitlementT) =>
    e.connector === grant.connector &&
    e.source === "Grant" &&
    (grant.groups.length > 0
      ? e.group !== undefined && grant.groups.includes(e.group)
      : e.group === undefined);
  return recorded.some(gave) && !access.entitlements.some(gave);
}

export function planEmployee(input: EmployeePlanInput): EmployeePlan {
  const { employee, now } = input;
  const generation = employee.metadata.generation ?? 0;
  const previous = employee.status ?? {};
  const access = evaluateAccess(employee, input.objects.policies, input.objects.rules, now);
  const brakeKey = `${employee.metadata.namespace ?? "default"}/${employee.spec.employeeId}`;

  if (isPaused(employee))
    return {
      access,
      paused: true,
      accounts: [],
      events: [],
      clearDrift: [],
      brakeKey,
      handOver: [],
      status: {
        ...previous,
        observedGeneration: generation,
        conditions: setCondition(
          previous.conditions,
          {
            type: "Paused",
            status: "True",
            reason: "PausedByAnnotation",
            message: 'roster.dev/paused is "true": no change is made for this Employee',
            observedGeneration: generation,
          },
          now,
        ),
      },
      next: { retry: "none", removeFinalizer: false },
    };

  const carriers = input.objects.withEmployeeId
    ? input.objects.withEmployeeId(employee.spec.employeeId)
    : (byEmployeeId(input.objects.employees).get(employee.spec.employeeId) ?? []);
  const actor = actingEmployee(employee, carriers, now);
  if (actor !== employee.metadata.name)
    return {
      access,
      paused: false,
      duplicateOf: actor,
      accounts: [],
      events: [],
      clearDrift: [],
      brakeKey,
      handOver: [],
      status: {
        ...Object.fromEntries(Object.entries(previous).filter(([k]) => k !== "accounts")),
        observedGeneration: generation,
        conditions: setCondition(
          previous.conditions,
          {
            type: "DuplicateEmployeeId",
            status: "True",
            reason: "DuplicateEmployeeId",
            message: `employeeId ${employee.spec.employeeId} is also Employee ${actor}'s, which acts on the targets; this one changes nothing`,
            observedGeneration: generation,
          },
          now,
        ),
      },
      next: { retry: "none", removeFinalizer: !!employee.metadata.deletionTimestamp },
    };

  const events: PlannedEvent[] = [];
  // Expired grants are announced once: when they still show in the entitlements.
  const expired = access.expiredGrants
    .filter((grant) => grantStillShown(grant, previous.entitlements ?? [], access))
    .map((grant) => ({
      reason: "GrantExpired" as const,
      message: `grant on ${grant.connector} expired at ${grant.until}`,
    }));
  const ctx: AccountContext = { input, access, events, clearDrift: [] };
  const accounts = connectorsToVisit(employee, input.objects, now).map((name) =>
    withHistory(planAccountIn(ctx, name), previous, input.results?.get(name)),
  );
  // One Normal Event for all a reconcile changed; Warnings stay one per failure.
  const summary = changeSummary(
    accounts.map((a) => {
      const result = input.results?.get(a.connector);
      return {
        connector: a.connector,
        id: a.status?.id ?? result?.current?.id,
        applied: result?.applied ?? [],
        ...(a.driftCorrected !== undefined ? { driftCorrected: a.driftCorrected } : {}),
      };
    }),
    expired,
  );
  if (summary) events.unshift({ type: "Normal", ...summary });

  const terminated = access.lifecycle === "Terminated";
  const failures = accounts.filter((a) => a.failure);
  const held = accounts.filter((a) => a.held);
  const waiting = accounts.filter((a) => a.waiting);
  const listed = accounts.flatMap((a) => (a.status ? [a.status] : []));
  const status: EmployeeStatusT = {
    ...previous,
    observedGeneration: generation,
    phase: phaseOf(
      access,
      failures.length > 0,
      listed.filter((a) => a.state !== "Pending" && a.state !== "Unlinked").length,
    ),
    accounts: listed,
    entitlements: access.entitlements,
    conditions: setCondition(
      setCondition(
        previous.conditions?.filter((c) => c.type !== "Paused" && c.type !== "DuplicateEmployeeId"),
        readyCondition(access, employee, failures, held, waiting, generation),
        now,
      ),
      driftCondition(previous, accounts, generation),
      now,
    ),
  };
  if (!listed.length) delete status.accounts;
  const ready = failures.length === 0 && held.length === 0 && waiting.length === 0;
  if (
    ready &&
    access.lifecycle !== "Scheduled" &&
    !terminated &&
    listed.length > 0 &&
    !previous.provisionedAt
  )
    status.provisionedAt = rfc3339Seconds(now);
  if (terminated) status.deprovisionedAt = previous.deprovisionedAt ?? rfc3339Seconds(now);
  else delete status.deprovisionedAt;

  const next = nextStep(access, accounts, !!employee.metadata.deletionTimestamp, now);
  const handOver = next.removeFinalizer
    ? accounts.flatMap((a) =>
        a.deleteAt && a.status?.id ? [{ connector: a.connector, id: a.status.id, deleteAt: a.deleteAt }] : [],
      )
    : [];
  return {
    access,
    paused: false,
    accounts,
    status,
    events,
    clearDrift: ctx.clearDrift,
    brakeKey,
    handOver,
    next,
  };
}

/** The account's last changes, newest first: what this reconcile did, then what status recorded. */
function withHistory(
  plan: AccountPlan,
  previous: EmployeeStatusT,
  result: AccountResult | undefined,
): AccountPlan {
  if (!plan.status) return plan;
  const recorded = previous.accounts?.find((a) => a.connector === plan.connector)?.history;
  const history = mergeHistory(recorded, result?.changes);
  const { history: _stale, ...status } = plan.status;
  return { ...plan, status: history.length > 0 ? { ...status, history } : status };
}

function nextStep(
  access: Access,
  accounts: AccountPlan[],
  deleting: boolean,
  now: Date,
): EmployeePlan["next"] {
  const failures = accounts.flatMap((a) => (a.failure ? [a.failure] : []));
  if (failures.some((f) => f.kind === "transient")) return { retry: "backoff", removeFinalizer: false };
  const throttled = failures.filter((f) => f.kind === "throttled");
  if (throttled.length > 0)
    return {
      retry: "after",
      afterMs: Math.max(1000, ...throttled.map((f) => f.retryAfterMs ?? 1000)),
      removeFinalizer: false,
    };
  // Held deprovisions are retried as the hour's window frees up or an approval arrives.
  if (accounts.some((a) => a.held)) return { retry: "after", afterMs: HELD_RETRY_MS, removeFinalizer: false };
  // A terminal failure or a paused Connector waits for a change of the Employee or its
  // Connector, which requeues it.
  if (failures.length > 0 || accounts.some((a) => a.waiting))
    return { retry: "none", removeFinalizer: false };
  if (deleting) return { retry: "none", removeFinalizer: true };
  const wakeups = [access.nextChangeAt, ...accounts.map((a) => a.deleteAt)]
    .filter((d): d is Date => !!d && d.getTime() > now.getTime())
    .map((d) => d.getTime() - now.getTime());
  return wakeups.length
    ? { retry: "after", afterMs: Math.min(...wakeups) + 50, removeFinalizer: false }
    : { retry: "none", removeFinalizer: false };
}
