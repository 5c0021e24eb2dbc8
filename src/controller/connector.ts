// The Connector controller: the only writer of Connector status. It checks that the target is
// reachable with its credentials, runs SCIM discovery, and records managed accounts, the scan's
// orphans and drift, and what the brake holds. Requeued every connector-check interval.
import type { CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Connector } from "../api/types.ts";
import { connectorPaused } from "../plan/employee.ts";
import type { ScanResult } from "../plan/scan.ts";
import { connectorStatus, insecureTransport } from "./summary.ts";
import { classify } from "./errors.ts";
import type { BrakeGate } from "./brake.ts";
import type { TargetPool } from "./targets.ts";
import { writeStatus } from "../kube/client.ts";
import { WorkQueue, keyOf, splitKey, type ReconcileResult } from "./queue.ts";

export type ConnectorControllerOptions = {
  logger: Logger;
  custom: CustomObjectsApi;
  getConnector(namespace: string, name: string): Connector | undefined;
  pool: TargetPool;
  managed(connector: Connector): number;
  brake: BrakeGate;
  scan(connector: Connector): ScanResult | undefined;
  /** The Connector was not Ready and now is. */
  recovered(connector: Connector): void;
  checkIntervalMs: number;
};

/** How soon a Connector that is not Ready is checked again. */
const RECHECK_FAILED_MS = 5000;

/** Status follows bursts of Employee changes at most once a second. */
const DEBOUNCE_MS = 1000;

export class ConnectorController {
  readonly queue: WorkQueue;
  private readonly options: ConnectorControllerOptions;
  /** Connector key -> the generation whose insecure transport was logged. */
  private readonly warned = new Map<string, number>();

  constructor(options: ConnectorControllerOptions) {
    this.options = options;
    this.queue = new WorkQueue({ name: "connector", logger: options.logger });
  }

  enqueue(connector: Connector, debounce = false): void {
    if (debounce) this.queue.addAfter(keyOf(connector), DEBOUNCE_MS);
    else this.queue.add(keyOf(connector));
  }

  run(): Promise<void> {
    return this.queue.run(1, (key) => this.reconcile(key));
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const connector = this.options.getConnector(namespace, name);
    if (!connector) return {};
    const insecure = insecureTransport(connector);
    if (insecure && this.warned.get(key) !== connector.metadata.generation) {
      this.warned.set(key, connector.metadata.generation ?? 0);
      this.options.logger.warn({ connector: key }, `insecure connection to the target: ${insecure}`);
    }
    let checkError: { reason: string; message: string } | undefined;
    let capabilities: Record<string, unknown> | undefined;
    if (!connectorPaused(connector)) {
      try {
        const target = await this.options.pool.get(connector);
        await target.client.check();
        capabilities = await target.discover?.();
      } catch (error) {
        const { reason, message } = classify(error);
        checkError = { reason, message };
      }
    }
    const wasReady = connector.status?.conditions?.find((c) => c.type === "Ready")?.status;
    if (checkError === undefined && wasReady === "False") this.options.recovered(connector);
    const status = connectorStatus(
      connector,
      this.options.managed(connector),
      checkError,
      this.options.brake.held(connector),
      this.options.scan(connector),
      new Date(),
    );
    await this.options.brake.exclusive(connector, (deprovisioning) =>
      writeStatus(this.options.custom, "connectors", connector, {
        ...status,
        deprovisioning,
        heldDeprovisions: deprovisioning.held.length,
        ...(capabilities ? { capabilities } : {}),
      }),
    );
    // A Connector that does not work is checked again soon, so that a fix (a Secret created, a
    // target back) reaches its people within seconds.
    return {
      requeueAfter: checkError
        ? Math.min(RECHECK_FAILED_MS, this.options.checkIntervalMs)
        : this.options.checkIntervalMs,
    };
  }

  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }
}
