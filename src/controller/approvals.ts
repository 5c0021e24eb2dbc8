// Approvals of held deprovisions: the annotation roster.dev/approve-deprovisioning=N on a
// Connector releases N held deprovisions once and is then removed. Its own queue, run only by
// the leader: informer handlers on every replica only enqueue.
import type { CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { API_VERSION } from "../api/schema.ts";
import type { Connector } from "../api/types.ts";
import type { EventRecorder } from "./events.ts";
import { APPROVE_ANNOTATION, type BrakeGate } from "./brake.ts";
import { removeAnnotation } from "./kube.ts";
import { WorkQueue, keyOf, splitKey } from "./queue.ts";

export type ApprovalControllerOptions = {
  logger: Logger;
  custom: CustomObjectsApi;
  getConnector(namespace: string, name: string): Connector | undefined;
  brake: BrakeGate;
  events: EventRecorder;
  /** Deprovisions were released: reconcile the namespace's Employees. */
  released(namespace: string): void;
};

export class ApprovalController {
  readonly queue: WorkQueue;
  private readonly options: ApprovalControllerOptions;

  constructor(options: ApprovalControllerOptions) {
    this.options = options;
    this.queue = new WorkQueue({ name: "approval", logger: options.logger });
  }

  /** Enqueues the Connector when it carries the approval annotation. */
  observe(connector: Connector): void {
    if (connector.metadata.annotations?.[APPROVE_ANNOTATION] !== undefined) this.queue.add(keyOf(connector));
  }

  run(): Promise<void> {
    return this.queue.run(1, (key) => this.reconcile(key));
  }

  private async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const o = this.options;
    const connector = o.getConnector(namespace, name);
    const value = connector?.metadata.annotations?.[APPROVE_ANNOTATION];
    if (!connector || value === undefined) return;
    const count = Number(value);
    if (Number.isInteger(count) && count > 0) {
      o.brake.approve(connector, count);
      void o.events.record(
        { ...connector, kind: "Connector", apiVersion: API_VERSION },
        "Normal",
        "DeprovisioningApproved",
        `${count} held deprovisions approved`,
      );
      o.released(namespace);
    } else {
      o.logger.warn({ connector: key, value }, "ignoring approval annotation that is not a positive integer");
    }
    // Not retried: a second run would credit the brake twice.
    try {
      await removeAnnotation(o.custom, "connectors", connector, APPROVE_ANNOTATION);
    } catch (error) {
      o.logger.warn(
        { connector: key, error: error instanceof Error ? error.message : String(error) },
        "could not remove the approval annotation",
      );
    }
  }

  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }
}
