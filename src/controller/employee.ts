// The Employee controller: level-based and idempotent. It reads each target account fresh, asks
// the planner what to do, asks the brake about deprovisions, runs the operations, and writes what
// the planner says to status, Events and metrics. Every decision is the planner's
// (src/plan/employee.ts); this file only does the I/O around it.
import { randomBytes, randomUUID } from "node:crypto";
import type { Connector, Employee, EmployeeStatusT } from "../api/types.ts";
import { sameStatus } from "../api/conditions.ts";
import type { ActualAccount } from "../connectors/types.ts";
import {
  connectorPaused,
  connectorsToVisit,
  planEmployee,
  type AccountPlan,
  type AccountResult,
  type BrakeHold,
  type EmployeePlanInput,
  type NamespaceObjects,
  type TargetRead,
} from "../plan/employee.ts";
import type { Operation } from "../plan/plan.ts";
import {
  accountAfter,
  employeeChangeRecord,
  errorClass,
  historyEntry,
  type AccountChange,
  type AuditRecord,
  type EmployeeChangeContext,
} from "../plan/audit.ts";
import type { Access } from "../policy/evaluate.ts";
import type { BrakeDecision, ScheduledDeletion } from "../plan/brake.ts";
import type { Target } from "./targets.ts";
import { FINALIZER } from "./finalizer.ts";
import type { EventType } from "./events.ts";
import { classify, PartialFailure } from "./errors.ts";
import type { ReconcileResult } from "./queue.ts";

/** What the reconciler needs from the world; the operator wires the real pieces in. */
export type EmployeeReconcilerDeps = {
  getEmployee(namespace: string, name: string): Employee | undefined;
  objects(namespace: string): NamespaceObjects;
  target(connector: Connector): Promise<Target>;
  addFinalizer(employee: Employee): Promise<void>;
  removeFinalizer(employee: Employee): Promise<void>;
  writeStatus(employee: Employee, status: EmployeeStatusT): Promise<void>;
  event(employee: Employee, type: EventType, reason: string, message: string): void;
  /** Returns the initial password kept in the Employee's credentials Secret, creating it once. */
  initialPassword(employee: Employee, connector: string, generate: () => string): Promise<string>;
  /** Whether the credentials Secret says its password was never set on the account. */
  passwordPending(employee: Employee, connector: string): Promise<boolean>;
  /** Records on the credentials Secret that the account has its password. */
  passwordSet(employee: Employee, connector: string): Promise<void>;
  /** The mass-change brake: may this account be deprovisioned now? (`account` is stable per person.) */
  requestDeprovision(connector: Connector, account: string): Promise<BrakeDecision>;
  /** The account needs no deprovisioning any more: drop it from the held and released lists. */
  withdrawDeprovision(connector: Connector, account: string): Promise<void>;
  /** Hands a deletion due later over to the Connector, for when this Employee is gone. */
  scheduleDeletion(connector: Connector, entry: ScheduledDeletion): Promise<void>;
  /** Drift the last full scan found for this person's account in a connector, if any. */
  driftFor(employee: Employee, connector: string): string | undefined;
  clearDrift(employee: Employee, connector: string): void;
  /** Called when a target confirmed an operation (metrics). */
  confirmed(connector: string, operation: Operation["op"], employee: Employee): void;
  /** One audit record per operation a target confirmed or refused (src/observe/audit.ts). */
  audit(record: AuditRecord): void;
  now(): Date;
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
  const now = deps.now();
  const objects = deps.objects(namespace);
  const input: EmployeePlanInput = { employee, objects, targets: new Map(), now };

  const first = planEmployee(input);
  if (first.paused || first.duplicateOf !== undefined) {
    await writeIfChanged(deps, employee, first.status);
    if (first.next.removeFinalizer && hasFinalizer) await deps.removeFinalizer(employee);
    return {};
  }
  if (!deleting && !hasFinalizer) await deps.addFinalizer(employee);

  // Read every target the person may hold an account in; targets are independent, so a leaver
  // loses access everywhere at once, not one target after another.
  const connectors = new Map(objects.connectors.map((c) => [c.metadata.name, c]));
  const targets = new Map<string, Target>();
  const reads = new Map<string, TargetRead>();
  await Promise.all(
    connectorsToVisit(employee, objects, now).map(async (connectorName) => {
      const connector = connectors.get(connectorName);
      if (!connector || connectorPaused(connector)) return;
      try {
        const target = await deps.target(connector);
        // Only an id recorded as this person's account is read back directly; an Unlinked or
        // Protected one was never theirs.
        const recorded = employee.status?.accounts?.find(
          (a) => a.connector === connectorName && !["Deleted", "Unlinked", "Protected"].includes(a.state),
        )?.id;
        const actual = await target.client.findAccount(
          employee.spec.employeeId,
          employee.spec.username,
          recorded,
        );
        // Adoption: accounts made before Roster that match, for one who should have an account here.
        const match = connector.spec.adoption?.match;
        const value = match === "Email" ? employee.spec.email : employee.spec.username;
        const candidates =
          !actual &&
          !deleting &&
          match &&
          match !== "None" &&
          value &&
          first.access.accounts.has(connectorName)
            ? await target.client.findUnowned(match, value)
            : undefined;
        targets.set(connectorName, target);
        reads.set(connectorName, { status: "read", actual, ...(candidates ? { candidates } : {}) });
      } catch (error) {
        reads.set(connectorName, { status: "failed", failure: classify(error) });
      }
    }),
  );
  // A generated password is looked for only where the last reconcile did not finish with the
  // account (a create that failed half-way, or status lost in a crash), not on every pass.
  const passwordPending = new Set<string>();
  await Promise.all(
    [...reads].map(async ([connectorName, read]) => {
      const connector = connectors.get(connectorName)!;
      if (read.status !== "read" || !read.actual || connector.spec.credentials !== "GeneratedSecret") return;
      const recorded = employee.status?.accounts?.find((a) => a.connector === connectorName);
      const finished =
        recorded?.id === read.actual.id && ["Active", "Disabled", "Held"].includes(recorded.state);
      if (!finished && (await deps.passwordPending(employee, connectorName)))
        passwordPending.add(connectorName);
    }),
  );
  const drift = new Map<string, string>();
  for (const connectorName of connectors.keys()) {
    const found = deps.driftFor(employee, connectorName);
    if (found !== undefined) drift.set(connectorName, found);
  }
  const read: EmployeePlanInput = { ...input, targets: reads, drift, passwordPending };

  // The brake is asked once per account the plan would take access from. Each connector has its
  // own brake (BrakeGate serializes the writes to one Connector's status), so a leaver's are
  // asked at once: one Kubernetes write's time before the targets, not one per connector.
  const planned = planEmployee(read);
  const held = new Map<string, BrakeHold>();
  await settleAll(
    planned.accounts.map(async (account) => {
      const connector = connectors.get(account.connector);
      if (
        !connector ||
        !targets.has(account.connector) ||
        account.failure ||
        account.driftReported !== undefined
      )
        return;
      if (!account.deprovisions) return deps.withdrawDeprovision(connector, planned.brakeKey);
      const decision = await deps.requestDeprovision(connector, planned.brakeKey);
      if (!decision.allowed) held.set(account.connector, { held: decision.held, limit: decision.limit });
    }),
  );
  const braked = held.size > 0 ? planEmployee({ ...read, held }) : planned;

  const results = new Map<string, AccountResult>();
  await Promise.all(
    braked.accounts
      .filter((a) => a.ops.length > 0)
      .map(async (account) => {
        const read = reads.get(account.connector);
        const actual = read?.status === "read" ? read.actual : undefined;
        const connector = connectors.get(account.connector)!;
        const target = targets.get(account.connector)!;
        results.set(
          account.connector,
          await run(deps, employee, braked.access, connector, target, account, actual),
        );
      }),
  );
  const final = planEmployee({ ...read, held, results });
  // A deprovisioning that went through needs no approval any more (the Employee may be gone next).
  await settleAll(
    braked.accounts.map(async (account) => {
      const result = results.get(account.connector);
      if (account.deprovisions && !account.held && result && !result.failure)
        await deps.withdrawDeprovision(connectors.get(account.connector)!, braked.brakeKey);
    }),
  );
  for (const connectorName of final.clearDrift) deps.clearDrift(employee, connectorName);
  for (const event of final.events) deps.event(employee, event.type, event.reason, event.message);
  await writeIfChanged(deps, employee, final.status);

  switch (final.next.retry) {
    case "backoff":
      throw new PartialFailure(final.status.conditions!.find((c) => c.type === "Ready")!.message);
    case "after":
      return { requeueAfter: final.next.afterMs! };
    case "none":
      if (!final.next.removeFinalizer) return {};
      // Written before the finalizer goes: once it is gone, nothing else remembers the deletion.
      for (const handOver of final.handOver)
        await deps.scheduleDeletion(connectors.get(handOver.connector)!, {
          account: final.brakeKey,
          employeeId: employee.spec.employeeId,
          username: employee.spec.username,
          id: handOver.id,
          deleteAt: handOver.deleteAt.toISOString().replace(/\.\d{3}Z$/, "Z"),
        });
      await deps.removeFinalizer(employee);
      return {};
  }
}

/**
 * 24 random characters (144 bits) with an upper-case letter, a lower-case letter and a digit, so
 * that directories with complexity rules (Active Directory) accept it; drawn again until it does.
 */
export function generatedPassword(): string {
  for (;;) {
    const candidate = randomBytes(18).toString("base64url");
    if (/[A-Z]/.test(candidate) && /[a-z]/.test(candidate) && /[0-9]/.test(candidate)) return candidate;
  }
}

/** Waits for every one of them, then throws the first failure, if any (nothing is left running). */
async function settleAll(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function writeIfChanged(deps: EmployeeReconcilerDeps, employee: Employee, status: EmployeeStatusT) {
  if (sameStatus(status, employee.status ?? {})) return;
  await deps.writeStatus(employee, status);
}

/**
 * The steps an account's operations run in: each operation on the account entry itself (create,
 * link, update, password, enable, disable, delete) alone and in plan order; the group membership
 * changes between two of them together, as each touches another group.
 */
export function runSteps(ops: readonly Operation[], groupKey: (name: string) => string): Operation[][] {
  const steps: Operation[][] = [];
  let groups: Set<string> | undefined;
  for (const op of ops) {
    const group = op.op === "group_add" || op.op === "group_remove" ? groupKey(op.group) : undefined;
    if (group !== undefined && groups && !groups.has(group)) {
      steps.at(-1)!.push(op);
      groups.add(group);
      continue;
    }
    steps.push([op]);
    groups = group !== undefined ? new Set([group]) : undefined;
  }
  return steps;
}

/**
 * Runs one account's operations (see runSteps): a step starts once the one before it is confirmed,
 * so the planner's order holds between the entry and its groups (a password and an enable before
 * groups are added; a leaver's disable confirmed, with its fresh ownership read, before the
 * removals go out, all at once). It stops after the first step with a failure and says what it
 * did: `applied` and history hold the confirmed operations in plan order, the failure is the first
 * in plan order, and each operation tried, confirmed or refused, is one audit record.
 */
async function run(
  deps: EmployeeReconcilerDeps,
  employee: Employee,
  access: Access,
  connector: Connector,
  target: Target,
  account: AccountPlan,
  actual: ActualAccount | undefined,
): Promise<AccountResult> {
  const applied: Operation[] = [];
  const changes: AccountChange[] = [];
  const context: EmployeeChangeContext = {
    employee,
    access,
    connector: connector.metadata.name,
    ops: account.ops,
    driftCorrected: account.driftCorrected !== undefined,
  };
  let current = actual;
  // The account as the audit trail sees it, operation by operation (a link starts from the candidate).
  let seen = actual;
  for (const step of runSteps(account.ops, (name) => target.client.groupKey(name))) {
    const from = current;
    const outcomes = await Promise.all(
      step.map(async (op) => {
        try {
          const after = await apply(deps, employee, connector, target, op, from);
          return { op, after, time: deps.now() };
        } catch (error) {
          return { op, error, time: deps.now() };
        }
      }),
    );
    let failure: AccountResult["failure"];
    for (const outcome of outcomes) {
      const { op, time } = outcome;
      const before = seen;
      if ("error" in outcome) {
        const classified = classify(outcome.error);
        failure ??= classified;
        deps.audit(
          employeeChangeRecord(context, {
            changeId: randomUUID(),
            time,
            op,
            before,
            id: op.op === "link" ? op.id : before?.id,
            failure: { class: errorClass(outcome.error), reason: classified.reason },
          }),
        );
        continue;
      }
      current = outcome.after;
      seen = accountAfter(op, before, current);
      const record = employeeChangeRecord(context, {
        changeId: randomUUID(),
        time,
        op,
        before,
        id: current?.id ?? before?.id ?? (op.op === "link" ? op.id : undefined),
      });
      deps.audit(record);
      changes.push(historyEntry(record));
      applied.push(op);
      deps.confirmed(connector.metadata.name, op.op, employee);
    }
    if (failure) return { applied, current, failure, changes };
  }
  return { applied, current, changes };
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
  const generated = connector.spec.credentials === "GeneratedSecret";
  const password = () => deps.initialPassword(employee, connector.metadata.name, generatedPassword);
  if (op.op === "create") {
    const created = await client.createAccount(op.account, generated ? await password() : undefined);
    if (generated) await deps.passwordSet(employee, connector.metadata.name);
    return created;
  }
  if (op.op === "link") return client.linkAccount(op.id, employee.spec.employeeId);
  if (!current) throw new Error(`${op.op} needs an existing account`);
  switch (op.op) {
    case "set_password":
      await client.setPassword(current, await password());
      await deps.passwordSet(employee, connector.metadata.name);
      break;
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
