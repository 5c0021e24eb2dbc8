// The drift and orphan scan: one key per Connector, run every drift.resyncInterval. It reads every
// account with paged requests and compares in memory with what the planner wants (compareScan):
// with nothing changed it writes nothing anywhere. Drift it finds is handed to the Employee
// controller, which corrects or reports it.
import type { Logger } from "pino";
import type { Connector, Employee } from "../api/types.ts";
import { compareScan, type ScanResult } from "../plan/scan.ts";
import type { NamespaceObjects } from "../plan/employee.ts";
import { connectorPaused } from "../plan/employee.ts";
import { parseDuration } from "../api/durations.ts";
import { driftAccounts, driftDetected, managedAccounts, orphanAccounts } from "../observe/metrics.ts";
import type { EventRecorder } from "./events.ts";
import type { TargetPool } from "./targets.ts";
import { WorkQueue, keyOf, splitKey, type ReconcileResult } from "./queue.ts";

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
    const target = await this.options.pool.get(connector);
    const accounts = await target.client.listAccounts(500);
    const objects = this.options.objects(namespace);
    const result = compareScan({ connector, objects, accounts, now: new Date() });
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
    const duplicates = JSON.stringify(target.client.duplicateGroups());
    const duplicatesChanged = (this.duplicates.get(key) ?? "[]") !== duplicates;
    this.duplicates.set(key, duplicates);
    if (JSON.stringify(previous) !== JSON.stringify(result) || duplicatesChanged)
      this.options.scanned(connector);
    return { requeueAfter: interval };
  }

  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }
}
