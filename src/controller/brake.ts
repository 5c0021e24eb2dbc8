// The mass-change brake as the operator runs it: the pure DeprovisionBrake (src/plan/brake.ts)
// with its metric, its Events and a nudge to the Connector status controller when the held list
// changes.
import { API_VERSION } from "../api/schema.ts";
import type { Connector } from "../api/types.ts";
import { DeprovisionBrake, deprovisionLimit, type BrakeDecision } from "../plan/brake.ts";
import { deprovisionsHeld } from "../observe/metrics.ts";
import type { EventRecorder } from "./events.ts";
import { keyOf } from "./queue.ts";

export const APPROVE_ANNOTATION = "roster.dev/approve-deprovisioning";

export type BrakeGateOptions = {
  /** Managed accounts in the connector: the percentage's denominator. */
  managed(connector: Connector): number;
  events: EventRecorder;
  /** The held list of a connector changed. */
  changed(connector: Connector): void;
};

export class BrakeGate {
  private readonly brake = new DeprovisionBrake();
  private readonly options: BrakeGateOptions;

  constructor(options: BrakeGateOptions) {
    this.options = options;
  }

  limit(connector: Connector): number {
    return deprovisionLimit(connector.spec.safety, this.options.managed(connector));
  }

  held(connector: Connector): { count: number; limit: number } {
    return { count: this.brake.held(keyOf(connector)).length, limit: this.limit(connector) };
  }

  request(connector: Connector, account: string): BrakeDecision {
    const key = keyOf(connector);
    const before = this.brake.held(key).length;
    const decision = this.brake.request(key, account, this.limit(connector), Date.now());
    const after = this.brake.held(key).length;
    if (after !== before) {
      this.heldChanged(connector, after);
      if (before === 0)
        void this.options.events.record(
          { ...connector, kind: "Connector", apiVersion: API_VERSION },
          "Warning",
          "DeprovisioningHeld",
          `deprovisioning held: more than ${!decision.allowed ? decision.limit : 0} per hour; approve with the annotation ${APPROVE_ANNOTATION}`,
        );
    }
    return decision;
  }

  withdraw(connector: Connector, account: string): void {
    const key = keyOf(connector);
    const before = this.brake.held(key).length;
    this.brake.withdraw(key, account);
    const after = this.brake.held(key).length;
    if (after !== before) this.heldChanged(connector, after);
  }

  approve(connector: Connector, count: number): void {
    this.brake.approve(keyOf(connector), count);
  }

  private heldChanged(connector: Connector, count: number): void {
    deprovisionsHeld.set({ connector: keyOf(connector) }, count);
    this.options.changed(connector);
  }
}
