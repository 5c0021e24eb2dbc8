// The drift and orphan scan: one key per Connector, run every drift.resyncInterval. It reads every
// account with paged requests and compares in memory with what the planner wants (compareScan):
// with nothing changed it writes nothing anywhere. Drift it finds is handed to the Employee
// controller, which corrects or reports it.
//
// With orphans Disable or Delete, an orphan Roster made (it carries an employeeId no Employee of
// the namespace has) is disabled or deleted through the brake, once two scans in a row found it
// (an Employee created a moment ago is not in the first one's cache yet). Accounts without an
// employeeId were never Roster's and are only reported; protected ones are never touched.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Connector, Employee } from "../api/types.ts";
import type { ActualAccount } from "../connectors/types.ts";
import {
  scanComparison,
  scannedGroups,
  type ScanResult,
  type UnmanagedGroup,
  type UnmanagedMember,
} from "../plan/scan.ts";
import type { NamespaceObjects } from "../plan/employee.ts";
import { connectorPaused } from "../plan/employee.ts";
import { parseDuration } from "../api/durations.ts";
import {
  driftAccounts,
  driftDetected,
  driftScanDuration,
  managedAccounts,
  orphanAccounts,
} from "../observe/metrics.ts";
import type { EventRecorder } from "./events.ts";
import type { Target, TargetPool } from "./targets.ts";
import type { BrakeGate } from "./brake.ts";
import { API_VERSION } from "../api/schema.ts";
import { accountMapping, protectedBy } from "../plan/employee.ts";
import { WorkQueue, keyOf, splitKey, type ReconcileResult } from "./queue.ts";
import { changeRecord, errorClass, type ChangeReason } from "../plan/audit.ts";
import type { Operation } from "../plan/plan.ts";
import { emitAudit } from "../observe/audit.ts";
import { classify } from "./errors.ts";

export type ScanControllerOptions = {
  logger: Logger;
  getConnector(namespace: string, name: string): Connector | undefined;
  objects(namespace: string): NamespaceObjects;
  pool: TargetPool;
  events: EventRecorder;
  /** Drift was found for this person: reconcile them. */
  drifted(employee: Employee): void;
  /** The scan's figures changed: refresh the Connector's status. */
  scanned(connector: Connector): void;
  /** The mass-change brake (a getter: the brake's percentage needs this controller's counts). */
  brake(): BrakeGate;
};

const FIRST_SCAN_DELAY_MS = 2000;

export class ScanController {
  readonly queue: WorkQueue;
  private readonly options: ScanControllerOptions;
  private readonly results = new Map<string, ScanResult>();
  /** "<employee key>|<connector>" -> what differs. */
  private readonly drifts = new Map<string, string>();
  /** Connector key -> the duplicate group names its last scan saw (JSON), for Connector status. */
  private readonly duplicates = new Map<string, string>();
  /** Connector key -> ids of the orphans with an employeeId its last scan found. */
  private readonly orphansSeen = new Map<string, Set<string>>();
  /** Connector key -> "<group key>|<id>" of the hand-added members to remove its last scan found. */
  private readonly unmanagedSeen = new Map<string, Set<string>>();

  constructor(options: ScanControllerOptions) {
    this.options = options;
    this.queue = new WorkQueue({ name: "scan", logger: options.logger });
  }

  /** (Re)schedules the connector's scan soon, e.g. after its spec changed. */
  schedule(connector: Connector): void {
    this.queue.addAfter(keyOf(connector), FIRST_SCAN_DELAY_MS);
  }

  forget(connector: Connector): void {
    this.results.delete(keyOf(connector));
    this.duplicates.delete(keyOf(connector));
    this.orphansSeen.delete(keyOf(connector));
    this.unmanagedSeen.delete(keyOf(connector));
  }

  /** The hand-added members of one group, as the connector's last scan saw them. */
  unmanagedIn(connector: Connector, group: string): UnmanagedGroup | undefined {
    const key = accountMapping(connector, { employees: [] }).groupKey;
    return this.result(connector)?.unmanaged.find((g) => key(g.group) === key(group));
  }

  result(connector: Connector): ScanResult | undefined {
    return this.results.get(keyOf(connector));
  }

  /** Accounts the last scan found owned by an Employee (for the brake's percentage). */
  managed(connector: Connector): number | undefined {
    const found = this.result(connector)?.managed;
    return found ? found.Active + found.Disabled : undefined;
  }

  driftFor(employee: Employee, connector: string): string | undefined {
    return this.drifts.get(`${keyOf(employee)}|${connector}`);
  }

  clearDrift(employee: Employee, connector: string): void {
    this.drifts.delete(`${keyOf(employee)}|${connector}`);
  }

  run(workers = 2): Promise<void> {
    return this.queue.run(workers, (key) => this.reconcile(key));
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const connector = this.options.getConnector(namespace, name);
    if (!connector) return {};
    const interval = parseDuration(connector.spec.drift?.resyncInterval ?? "10m");
    if (connectorPaused(connector)) return { requeueAfter: interval };
    const started = performance.now();
    const target = await this.options.pool.get(connector);
    const objects = this.options.objects(namespace);
    const comparison = scanComparison({ connector, objects, now: new Date() });
    // Compared a page at a time; kept whole only: the accounts the orphan action and the removal
    // of hand-added members may write to (those no Employee of the namespace owns, in groups or
    // with a key).
    const known = new Set(objects.employees.map((e) => e.spec.employeeId));
    const accounts: ActualAccount[] = [];
    // Every member of the groups Roster hands out too, also those a SCIM listing leaves out.
    await target.client.listAccounts(
      500,
      (page) => {
        comparison.page(page);
        for (const account of page)
          if (account.employeeId ? !known.has(account.employeeId) : account.groups.length > 0)
            accounts.push(account);
      },
      scannedGroups(connector, objects),
    );
    const result = comparison.result();
    const previous = this.results.get(key);
    this.results.set(key, result);
    managedAccounts.set({ connector: key, state: "Active" }, result.managed.Active);
    managedAccounts.set({ connector: key, state: "Disabled" }, result.managed.Disabled);
    orphanAccounts.set({ connector: key }, result.orphans.length);
    for (const kind of ["attributes", "enabled", "membership", "deleted"] as const)
      driftAccounts.set({ connector: key, kind }, result.drift.filter((d) => d.kinds.includes(kind)).length);
    const byName = new Map(objects.employees.map((e) => [e.metadata.name, e]));
    for (const drift of result.drift) {
      const employee = byName.get(drift.employee)!;
      const driftKey = `${keyOf(employee)}|${name}`;
      if (this.drifts.get(driftKey) === drift.detail) continue;
      this.drifts.set(driftKey, drift.detail);
      for (const kind of drift.kinds) driftDetected.inc({ connector: key, kind });
      void this.options.events.record(employee, "Warning", "DriftDetected", `${name}: ${drift.detail}`);
      this.options.drifted(employee);
    }
    await this.actOnOrphans(connector, target, result, accounts);
    await this.removeUnmanagedMembers(connector, target, result, accounts);
    const duplicates = JSON.stringify(target.client.duplicateGroups());
    const duplicatesChanged = (this.duplicates.get(key) ?? "[]") !== duplicates;
    this.duplicates.set(key, duplicates);
    if (JSON.stringify(previous) !== JSON.stringify(result) || duplicatesChanged)
      this.options.scanned(connector);
    driftScanDuration.observe({ connector: key }, (performance.now() - started) / 1000);
    return { requeueAfter: interval };
  }

  private async actOnOrphans(
    connector: Connector,
    target: Target,
    result: ScanResult,
    accounts: readonly ActualAccount[],
  ): Promise<void> {
    const key = keyOf(connector);
    const action = connector.spec.orphans;
    const seenBefore = this.orphansSeen.get(key) ?? new Set<string>();
    const owned = result.orphans.filter((o) => o.employeeId !== "");
    this.orphansSeen.set(key, new Set(owned.map((o) => o.id)));
    if (action !== "Disable" && action !== "Delete") return;
    const byId = new Map(accounts.map((a) => [a.id, a]));
    const groupKey = accountMapping(connector, { employees: [] }).groupKey;
    const subject = { ...connector, kind: "Connector", apiVersion: API_VERSION };
    for (const orphan of owned) {
      const account = byId.get(orphan.id);
      if (!account || !seenBefore.has(orphan.id) || protectedBy(connector, account, groupKey)) continue;
      if (action === "Disable" && !account.enabled) continue;
      const person = `${connector.metadata.namespace ?? "default"}/${orphan.employeeId}`;
      // Each write, done or refused, is an audit record (src/observe/audit.ts).
      let writing = false;
      const audited = (failure?: { class: string; reason: string }) =>
        this.audit(connector, {
          op: { op: action === "Delete" ? "delete" : "disable" },
          before: account,
          id: orphan.id,
          employeeId: orphan.employeeId,
          reason: "orphan action",
          failure,
        });
      try {
        const decision = await this.options.brake().request(connector, person);
        if (!decision.allowed) continue;
        const ref = { id: orphan.id, employeeId: orphan.employeeId };
        writing = true;
        if (action === "Delete") await target.client.deleteAccount(ref);
        else await target.client.setEnabled(ref, false);
        writing = false;
        audited();
        await this.options.brake().withdraw(connector, person);
        void this.options.events.record(
          subject,
          "Normal",
          action === "Delete" ? "OrphanDeleted" : "OrphanDisabled",
          `${action === "Delete" ? "deleted" : "disabled"} ${orphan.id}: employeeId ${orphan.employeeId} belongs to no Employee (orphans: ${action})`,
        );
      } catch (error) {
        if (writing) audited({ class: errorClass(error), reason: classify(error).reason });
        this.options.logger.warn(
          { connector: key, id: orphan.id, error: (error as Error).message },
          "orphan action failed; the next scan tries again",
        );
      }
    }
  }

  /**
   * Authoritative GroupRules remove the members Roster did not add: each removal goes through the
   * brake (one count per account), and only once two scans in a row found the member (an Employee
   * created a moment ago, whose account waits to be linked, is not in the first one's cache yet).
   */
  private async removeUnmanagedMembers(
    connector: Connector,
    target: Target,
    result: ScanResult,
    accounts: readonly ActualAccount[],
  ): Promise<void> {
    const key = keyOf(connector);
    const groupKey = accountMapping(connector, { employees: [] }).groupKey;
    const seenBefore = this.unmanagedSeen.get(key) ?? new Set<string>();
    const toRemove = result.unmanaged.filter((g) => g.remove);
    this.unmanagedSeen.set(
      key,
      new Set(toRemove.flatMap((g) => g.members.map((m) => `${groupKey(g.group)}|${m.id}`))),
    );
    const namespace = connector.metadata.namespace ?? "default";
    const byId = new Map(accounts.map((a) => [a.id, a]));
    const personOf = (m: UnmanagedMember) => `${namespace}/account:${m.username || m.id}`.slice(0, 512);
    // A removal no longer wanted (the rule became Additive, the member left by hand) stops
    // being held, so the brake does not wait for an approval of nothing.
    const wanted = new Set(toRemove.flatMap((g) => g.members.map(personOf)));
    const brakeState = this.options.brake().state(connector);
    for (const account of new Set([...brakeState.held.map((h) => h.account), ...brakeState.released]))
      if (account.startsWith(`${namespace}/account:`) && !wanted.has(account))
        await this.options.brake().withdraw(connector, account);
    const subject = { ...connector, kind: "Connector", apiVersion: API_VERSION };
    for (const group of toRemove) {
      const removed: string[] = [];
      for (const member of group.members) {
        if (!seenBefore.has(`${groupKey(group.group)}|${member.id}`)) continue;
        const person = personOf(member);
        let writing = false;
        const audited = (failure?: { class: string; reason: string }) =>
          this.audit(connector, {
            op: { op: "group_remove", group: group.group },
            before: byId.get(member.id),
            id: member.id,
            employeeId: "",
            reason: "unmanaged member",
            sources: group.rules,
            failure,
          });
        try {
          const decision = await this.options.brake().request(connector, person);
          if (!decision.allowed) continue;
          writing = true;
          await target.client.removeUnownedMember(group.group, member.id);
          writing = false;
          audited();
          await this.options.brake().withdraw(connector, person);
          removed.push(member.username || member.id);
        } catch (error) {
          if (writing) audited({ class: errorClass(error), reason: classify(error).reason });
          this.options.logger.warn(
            { connector: key, group: group.group, id: member.id, error: (error as Error).message },
            "removing a hand-added member failed; the next scan tries again",
          );
        }
      }
      if (removed.length)
        void this.options.events.record(
          subject,
          "Normal",
          "UnmanagedMembersRemoved",
          `removed ${removed.length} members Roster did not add from ${group.group} (${group.rules.join(", ")} is Authoritative): ${removed.join(", ")}`.slice(
            0,
            1024,
          ),
        );
    }
  }

  /** The audit record of a change the scan made to an account no Employee owns. */
  private audit(
    connector: Connector,
    change: {
      op: Operation;
      before: ActualAccount | undefined;
      id: string;
      employeeId: string;
      reason: ChangeReason;
      sources?: string[];
      failure: { class: string; reason: string } | undefined;
    },
  ): void {
    emitAudit(
      this.options.logger,
      changeRecord({
        changeId: randomUUID(),
        time: new Date(),
        op: change.op,
        before: change.before,
        id: change.id,
        employee: {
          namespace: connector.metadata.namespace ?? "default",
          employeeId: change.employeeId,
          ...(change.before ? { username: change.before.username } : {}),
        },
        connector: connector.metadata.name,
        reason: change.reason,
        ...(change.sources ? { sources: change.sources } : {}),
        ...(change.failure ? { failure: change.failure } : {}),
      }),
    );
  }

  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }
}
