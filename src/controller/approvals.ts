// Approvals of held deprovisions: the annotation roster.dev/approve-deprovisioning=N on a
// Connector, with N the held count, releases exactly the accounts held then; any other value is
// refused with an Event. The annotation is removed either way. Its own queue, run only by the
// leader: informer handlers on every replica only enqueue.
import type { CustomApi } from "../kube/api.ts";
import type { Logger } from "pino";
import type { Connector } from "../api/types.ts";
import { APPROVE_ANNOTATION, type BrakeGate } from "./brake.ts";
import { removeAnnotation } from "../kube/client.ts";
import { WorkQueue, keyOf, splitKey } from "./queue.ts";

export type ApprovalControllerOptions = {
  logger: Logger;
  custom: CustomApi;
  getConnector(namespace: string, name: string): Connector | undefined;
  brake: BrakeGate;
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
    const outcome = await o.brake.approve(connector, value);
    if ("released" in outcome) o.released(namespace);
    else o.logger.warn({ connector: key, value }, outcome.refused);
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
