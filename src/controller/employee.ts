// The Employee reconciler: level-based and idempotent. It reads the Employee and its policies
// from the caches, each target account fresh from the target, applies the plan, and records the
// result in status, Events and metrics.
import { randomBytes } from "node:crypto";
import type {
  AccessPolicy,
  AccountStatusT,
  Connector,
  Employee,
  EmployeeStatusT,
  GroupRule,
} from "../api/types.ts";
import { rfc3339Seconds, sameStatus, setCondition } from "../api/conditions.ts";
import type { ActualAccount, DesiredAccount } from "../connectors/types.ts";
import { evaluateAccess, isPaused, managedGroups, type Access } from "../policy/evaluate.ts";
import { isDeprovision, parseDuration, planAccount, type Operation } from "../plan/plan.ts";
import type { BrakeDecision } from "../plan/brake.ts";
import type { Target } from "./targets.ts";
import { FINALIZER } from "./finalizer.ts";
import type { EventType } from "./events.ts";

/** What the reconciler needs from the world; the operator wires the real pieces in. */
export type EmployeeReconcilerDeps = {
  getEmployee(namespace: string, name: string): Employee | undefined;
  listEmployees(namespace: string): Employee[];
  listPolicies(namespace: string): AccessPolicy[];
  listRules(namespace: string): GroupRule[];
  listConnectors(namespace: string): Connector[];
  getConnector(namespace: string, name: string): Connector | undefined;
  target(connector: Connector): Promise<Target>;
  addFinalizer(employee: Employee): Promise<void>;
  removeFinalizer(employee: Employee): Promise<void>;
  writeStatus(employee: Employee, status: EmployeeStatusT): Promise<void>;
  event(employee: Employee, type: EventType, reason: string, message: string): void;
  /** Returns the initial password kept in the Employee's credentials Secret, creating it once. */
  initialPassword(employee: Employee, connector: string, generate: () => string): Promise<string>;
  /** The mass-change brake: may this account be deprovisioned now? (`account` is stable per person.) */
  requestDeprovision(connector: Connector, account: string): BrakeDecision;
  /** The account needs no deprovisioning any more: drop it from the held list. */
  withdrawDeprovision(connector: Connector, account: string): void;
  /** Drift the last full scan found for this person's account in a connector, if any. */
  driftFor(employee: Employee, connector: string): { detail: string } | undefined;
  clearDrift(employee: Employee, connector: string): void;
  /** Called when a target confirmed an operation (metrics). */
  confirmed(connector: string, operation: Operation["op"], employee: Employee): void;
  now(): Date;
};

export type ReconcileResult = { requeueAfter?: number };

const HELD_RETRY_MS = 30_000;

/** Reconcile failed for some accounts; status already says which. Retried with backoff. */
export class PartialFailure extends Error {
  override name = "PartialFailure";
}

const EVENT_REASONS: Record<Operation["op"], string> = {
  create: "AccountCreated",
  update: "AccountUpdated",
  enable: "AccountEnabled",
  disable: "AccountDisabled",
  delete: "AccountDeleted",
  group_add: "GroupAdded",
  group_remove: "GroupRemoved",
};

function describe(op: Operation, connector: string, id: string): string {
  switch (op.op) {
    case "create":
      return `created account ${id} in ${connector}`;
    case "update":
      return `updated ${Object.keys(op.changes).sort().join(", ")} of ${id} in ${connector}`;
    case "enable":
      return `enabled ${id} in ${connector}`;
    case "disable":
      return `disabled ${id} in ${connector}`;
    case "delete":
      return `deleted ${id} in ${connector}`;
    case "group_add":
      return `added ${id} to group ${op.group} in ${connector}`;
    case "group_remove":
      return `removed ${id} from group ${op.group} in ${connector}`;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type AccountOutcome = {
  status: AccountStatusT;
  ok: boolean;
  changed: boolean;
  deleteAt?: Date;
  /** Nothing there, nothing wanted, nothing remembered: not listed in status. */
  absent?: boolean;
  /** Deprovisioning operations were held by the mass-change brake. */
  held?: boolean;
  /** Drift found by the scan: left in place (policy Report) or put back (policy Correct). */
  driftReported?: string;
  driftCorrected?: string;
};

export async function reconcileEmployee(
  deps: EmployeeReconcilerDeps,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const employee = deps.getEmployee(namespace, name);
  if (!employee) return {};
  const deleting = !!employee.metadata.deletionTimestamp;
  const hasFinalizer = employee.metadata.finalizers?.includes(FINALIZER) ?? false;
  if (deleting && !hasFinalizer) return {};
  const generation = employee.metadata.generation ?? 0;
  const previous = employee.status ?? {};

  if (isPaused(employee)) {
    await writeIfChanged(deps, employee, {
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
        deps.now(),
      ),
    });
    return {};
  }
  if (!deleting && !hasFinalizer) await deps.addFinalizer(employee);

  const now = deps.now();
  const policies = deps.listPolicies(namespace);
  const rules = deps.listRules(namespace);
  const access = evaluateAccess(employee, policies, rules, now);
  for (const grant of access.expiredGrants) {
    const alreadyGone = !(previous.entitlements ?? []).some(
      (e) => e.connector === grant.connector && e.source === "Grant",
    );
    if (!alreadyGone)
      deps.event(employee, "Normal", "GrantExpired", `grant on ${grant.connector} expired at ${grant.until}`);
  }
  const terminated = access.lifecycle === "Terminated";
  const deprovisionedAt = terminated ? (previous.deprovisionedAt ?? rfc3339Seconds(now)) : undefined;

  // Where the person may hold an account: what they should have, what status remembers, and,
  // for a leaver, every connector of the namespace (status may have been lost in a crash).
  const connectorNames = new Set<string>(access.accounts.keys());
  for (const account of previous.accounts ?? [])
    if (account.state !== "Deleted") connectorNames.add(account.connector);
  if (terminated) for (const c of deps.listConnectors(namespace)) connectorNames.add(c.metadata.name);

  const employees = deps.listEmployees(namespace);
  // Targets are independent: a leaver loses access everywhere at once, not one target after another.
  const outcomes = await Promise.all(
    [...connectorNames].sort().map((connectorName) =>
      reconcileAccount(
        deps,
        employee,
        access,
        connectorName,
        previous.accounts?.find((a) => a.connector === connectorName),
        {
          policies,
          rules,
          employees,
          now,
          deprovisionedAt,
        },
      ),
    ),
  );

  const accounts = outcomes.filter((o) => !o.absent).map((o) => o.status);
  const failed = outcomes.filter((o) => !o.ok);
  const held = outcomes.filter((o) => o.held);
  const ready = failed.length === 0 && held.length === 0;
  const phase: EmployeeStatusT["phase"] =
    failed.length > 0
      ? "Failed"
      : access.lifecycle === "Scheduled"
        ? "Scheduled"
        : access.lifecycle === "Suspended"
          ? "Suspended"
          : terminated
            ? "Deprovisioned"
            : accounts.length === 0
              ? "Pending"
              : "Active";
  const anyChange = outcomes.some((o) => o.changed);
  const status: EmployeeStatusT = {
    ...previous,
    observedGeneration: generation,
    phase,
    accounts,
    entitlements: access.entitlements,
    conditions: setCondition(
      previous.conditions?.filter((c) => c.type !== "Paused"),
      ready
        ? {
            type: "Ready",
            status: "True",
            reason: terminated
              ? "Deprovisioned"
              : access.lifecycle === "Scheduled"
                ? "Scheduled"
                : "Provisioned",
            message: terminated
              ? `access removed: ${access.reason}`
              : access.lifecycle === "Scheduled"
                ? `no access until ${employee.spec.startDate}`
                : "every account matches the desired state",
            observedGeneration: generation,
          }
        : {
            type: "Ready",
            status: "False",
            reason: failed.length > 0 ? "TargetError" : "DeprovisioningHeld",
            message: [...failed, ...held]
              .map((o) => `${o.status.connector}: ${o.status.message ?? "failed"}`)
              .join("; "),
            observedGeneration: generation,
          },
      now,
    ),
  };
  const reported = outcomes.filter((o) => o.driftReported);
  const corrected = outcomes.filter((o) => o.driftCorrected);
  const driftNote = (list: AccountOutcome[], key: "driftReported" | "driftCorrected") =>
    list.map((o) => `${o.status.connector}: ${o[key]}`).join("; ");
  status.conditions = setCondition(
    status.conditions,
    reported.length > 0
      ? {
          type: "Drifted",
          status: "True",
          reason: "DriftReported",
          message: `changed outside Roster, left as found (drift policy Report): ${driftNote(reported, "driftReported")}`,
          observedGeneration: generation,
        }
      : corrected.length > 0
        ? {
            type: "Drifted",
            status: "False",
            reason: "DriftCorrected",
            message: `changed outside Roster and put back: ${driftNote(corrected, "driftCorrected")}`,
            observedGeneration: generation,
          }
        : {
            type: "Drifted",
            status: "False",
            reason:
              previous.conditions?.find((c) => c.type === "Drifted")?.reason === "DriftCorrected"
                ? "DriftCorrected"
                : "InSync",
            message:
              previous.conditions?.find((c) => c.type === "Drifted")?.reason === "DriftCorrected"
                ? previous.conditions.find((c) => c.type === "Drifted")!.message
                : "",
            observedGeneration: generation,
          },
    now,
  );
  if (!accounts.length) delete status.accounts;
  if (
    ready &&
    access.lifecycle !== "Scheduled" &&
    !terminated &&
    accounts.length > 0 &&
    !previous.provisionedAt
  )
    status.provisionedAt = rfc3339Seconds(now);
  if (deprovisionedAt) status.deprovisionedAt = deprovisionedAt;
  else delete status.deprovisionedAt;
  if (anyChange || !sameStatus(status, previous)) await writeIfChanged(deps, employee, status);

  if (failed.length > 0)
    throw new PartialFailure(status.conditions!.find((c) => c.type === "Ready")!.message);

  // Held deprovisions are retried as the hour's window frees up or an approval arrives.
  if (held.length > 0) return { requeueAfter: HELD_RETRY_MS };
  if (deleting) {
    await deps.removeFinalizer(employee);
    return {};
  }
  const wakeups = [access.nextChangeAt, ...outcomes.map((o) => o.deleteAt)]
    .filter((d): d is Date => !!d && d.getTime() > now.getTime())
    .map((d) => d.getTime() - now.getTime());
  return wakeups.length ? { requeueAfter: Math.min(...wakeups) + 50 } : {};
}

async function writeIfChanged(deps: EmployeeReconcilerDeps, employee: Employee, status: EmployeeStatusT) {
  if (sameStatus(status, employee.status ?? {})) return;
  await deps.writeStatus(employee, status);
}

async function reconcileAccount(
  deps: EmployeeReconcilerDeps,
  employee: Employee,
  access: Access,
  connectorName: string,
  before: AccountStatusT | undefined,
  context: {
    policies: AccessPolicy[];
    rules: GroupRule[];
    employees: Employee[];
    now: Date;
    deprovisionedAt: string | undefined;
  },
): Promise<AccountOutcome> {
  const namespace = employee.metadata.namespace ?? "default";
  const connector = deps.getConnector(namespace, connectorName);
  const fail = (message: string): AccountOutcome => ({
    ok: false,
    changed: false,
    status: {
      connector: connectorName,
      ...(before?.id ? { id: before.id } : {}),
      state: "Failed",
      groups: before?.groups ?? [],
      ...(before?.lastSyncTime ? { lastSyncTime: before.lastSyncTime } : {}),
      message,
    },
  });
  if (!connector) {
    // A leaver's sweep visits every connector; only a wanted or remembered one must exist.
    if (!access.accounts.has(connectorName) && !before) return absent(connectorName);
    return fail(`Connector ${connectorName} not found`);
  }
  if (connector.spec.paused || isPaused(connector)) {
    return {
      ok: true,
      changed: false,
      status: before ?? {
        connector: connectorName,
        state: "Pending",
        groups: [],
        message: "Connector is paused",
      },
    };
  }
  const wanted = access.accounts.get(connectorName);
  try {
    const target = await deps.target(connector);
    const actual = await target.client.findAccount(employee.spec.employeeId, employee.spec.username);
    if (!wanted && !actual && !before) return absent(connectorName);
    const desired: DesiredAccount | undefined = wanted && {
      employeeId: employee.spec.employeeId,
      username: employee.spec.username,
      attributes: target.desiredAttributes(employee.spec),
      enabled: access.lifecycle === "Active",
      groups: [...wanted.groups.keys()].sort(),
    };
    const groupsManaged = managedGroups(connectorName, context.policies, context.rules, context.employees);
    for (const g of before?.groups ?? []) groupsManaged.add(g);
    const deprovisioning = connector.spec.deprovisioning;
    let deleteAt: Date | undefined;
    if (!wanted && deprovisioning?.action === "Delete") {
      const since = context.deprovisionedAt ? new Date(context.deprovisionedAt) : context.now;
      deleteAt = new Date(since.getTime() + parseDuration(deprovisioning.deleteAfter ?? "720h"));
    }
    const deleteNow = !!deleteAt && deleteAt.getTime() <= context.now.getTime();
    // Drift the scan found: under policy Report it stays as found until the Employee itself changes.
    const drift = deps.driftFor(employee, connectorName);
    const reportOnly =
      !!drift &&
      connector.spec.drift?.policy === "Report" &&
      employee.status?.observedGeneration === employee.metadata.generation;
    if (drift && !reportOnly && connector.spec.drift?.policy === "Report")
      deps.clearDrift(employee, connectorName);
    let ops = planAccount({
      desired,
      actual,
      managedAttributes: target.managedAttributes,
      managedGroups: groupsManaged,
      deleteNow,
      groupKey: (group) => target.client.groupKey(group),
    });

    if (reportOnly) {
      return {
        ok: true,
        changed: false,
        driftReported: drift!.detail,
        status: {
          ...(before ?? { connector: connectorName, state: "Active", groups: [] }),
          message: `drift: ${drift!.detail}`,
        },
      };
    }
    const accountKey = `${namespace}/${employee.spec.employeeId}`;
    let heldMessage: string | undefined;
    if (ops.some(isDeprovision)) {
      const decision = deps.requestDeprovision(connector, accountKey);
      if (!decision.allowed) {
        ops = ops.filter((op) => !isDeprovision(op));
        heldMessage =
          `deprovisioning held by the mass-change brake (${decision.held} held, limit ${decision.limit} per hour); ` +
          `approve with the annotation roster.dev/approve-deprovisioning on Connector ${connectorName}`;
      }
    } else {
      deps.withdrawDeprovision(connector, accountKey);
    }

    let current: ActualAccount | undefined = actual;
    let deleted = false;
    for (const op of ops) {
      current = await apply(deps, employee, connector, target, op, current);
      if (op.op === "delete") deleted = true;
      deps.confirmed(connectorName, op.op, employee);
      deps.event(
        employee,
        "Normal",
        EVENT_REASONS[op.op],
        describe(op, connectorName, current?.id ?? actual?.id ?? ""),
      );
    }
    // Status lists the groups Roster manages; memberships added by hand elsewhere are not ours to show.
    const managedKeys = new Set(
      [...groupsManaged, ...(desired?.groups ?? [])].map((g) => target.client.groupKey(g)),
    );
    const groups =
      deleted || !current
        ? []
        : desiredGroupsAfter(ops, actual, desired).filter((g) => managedKeys.has(target.client.groupKey(g)));
    const state: AccountStatusT["state"] = deleted
      ? "Deleted"
      : !current
        ? before?.state === "Deleted" || !wanted
          ? "Deleted"
          : "Pending"
        : (heldMessage ? current.enabled : desired?.enabled)
          ? "Active"
          : "Disabled";
    const status: AccountStatusT = {
      connector: connectorName,
      ...(current?.id ? { id: current.id } : before?.id ? { id: before.id } : {}),
      state,
      groups,
      ...(ops.length > 0 || !before?.lastSyncTime
        ? { lastSyncTime: rfc3339Seconds(context.now) }
        : { lastSyncTime: before.lastSyncTime }),
      ...(heldMessage ? { message: heldMessage } : {}),
    };
    let driftCorrected: string | undefined;
    if (drift) {
      deps.clearDrift(employee, connectorName);
      if (ops.length > 0) {
        driftCorrected = drift.detail;
        deps.event(employee, "Normal", "DriftCorrected", `${connectorName}: put back ${drift.detail}`);
      }
    }
    return {
      ok: true,
      changed: ops.length > 0,
      status,
      ...(heldMessage ? { held: true } : {}),
      ...(driftCorrected ? { driftCorrected } : {}),
      ...(deleteAt && !deleteNow && current ? { deleteAt } : {}),
    };
  } catch (error) {
    const message = errorMessage(error);
    deps.event(employee, "Warning", "ProvisioningFailed", `${connectorName}: ${message}`);
    return fail(message);
  }
}

function absent(connector: string): AccountOutcome {
  return { ok: true, changed: false, absent: true, status: { connector, state: "Deleted", groups: [] } };
}

/** The managed groups the account is in after the plan ran. */
function desiredGroupsAfter(
  ops: Operation[],
  actual: ActualAccount | undefined,
  desired: DesiredAccount | undefined,
) {
  if (ops.some((o) => o.op === "create")) return desired?.groups ?? [];
  const groups = new Set(actual?.groups ?? []);
  for (const op of ops) {
    if (op.op === "group_add") groups.add(op.group);
    if (op.op === "group_remove") groups.delete(op.group);
  }
  return [...groups].sort();
}

async function apply(
  deps: EmployeeReconcilerDeps,
  employee: Employee,
  connector: Connector,
  target: Target,
  op: Operation,
  current: ActualAccount | undefined,
): Promise<ActualAccount | undefined> {
  const client = target.client;
  if (op.op === "create") {
    const password =
      connector.spec.credentials === "GeneratedSecret"
        ? await deps.initialPassword(employee, connector.metadata.name, () =>
            randomBytes(18).toString("base64url"),
          )
        : undefined;
    return client.createAccount(op.account, password);
  }
  if (!current) throw new Error(`${op.op} needs an existing account`);
  switch (op.op) {
    case "update":
      await client.updateAttributes(current, op.changes);
      break;
    case "enable":
      await client.setEnabled(current, true);
      break;
    case "disable":
      await client.setEnabled(current, false);
      break;
    case "group_add":
      await client.addToGroup(op.group, current);
      break;
    case "group_remove":
      await client.removeFromGroup(op.group, current);
      break;
    case "delete":
      await client.deleteAccount(current);
      return undefined;
  }
  return current;
}
