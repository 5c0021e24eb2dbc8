// The mass-change brake as the operator runs it. Its state (src/plan/brake.ts) lives in the
// Connector's status: a change is written there before the deprovision it allows or holds goes
// ahead, so a restart, a rollout or a failover neither forgets what was counted nor releases what
// is held. Writes to one Connector's status are serialized here, and every writer of that status
// (this gate and the Connector controller) builds its body from the gate's memory inside the lock.
import type { CustomApi } from "../kube/api.ts";
import { API_VERSION } from "../api/schema.ts";
import type { Connector } from "../api/types.ts";
import {
  approveDeprovisions,
  deprovisionLimit,
  requestDeprovision,
  scheduleDeletion,
  unscheduleDeletion,
  withdrawDeprovision,
  type BrakeDecision,
  type BrakeState,
  type ScheduledDeletion,
} from "../plan/brake.ts";
import { deprovisionsHeld } from "../observe/metrics.ts";
import type { EventRecorder } from "./events.ts";
import { patchStatus } from "./finalizer.ts";
import { keyOf } from "./queue.ts";

export const APPROVE_ANNOTATION = "roster.dev/approve-deprovisioning";

export type BrakeGateOptions = {
  custom: CustomApi;
  /** Managed accounts in the connector: the percentage's denominator. */
  managed(connector: Connector): number;
  events: EventRecorder;
  /** The held list of a connector changed: refresh its status. */
  changed(connector: Connector): void;
};

function brakeOf(connector: Connector): BrakeState {
  const saved = connector.status?.deprovisioning;
  return {
    counted: saved?.counted ?? [],
    held: saved?.held ?? [],
    released: saved?.released ?? [],
    ...(saved?.scheduled?.length ? { scheduled: saved.scheduled } : {}),
  };
}

export class BrakeGate {
  private readonly options: BrakeGateOptions;
  private readonly states = new Map<string, BrakeState>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(options: BrakeGateOptions) {
    this.options = options;
  }

  /** Takes the state from a Connector read fresh from the API server (at the start of leading). */
  load(connector: Connector): void {
    this.states.set(keyOf(connector), brakeOf(connector));
    deprovisionsHeld.set({ connector: keyOf(connector) }, this.state(connector).held.length);
  }

  forget(connector: Connector): void {
    this.states.delete(keyOf(connector));
  }

  /** The state; a Connector not loaded yet starts from what its cached status says. */
  state(connector: Connector): BrakeState {
    const key = keyOf(connector);
    let state = this.states.get(key);
    if (!state) {
      state = brakeOf(connector);
      this.states.set(key, state);
    }
    return state;
  }

  limit(connector: Connector): number {
    return deprovisionLimit(connector.spec.safety, this.options.managed(connector));
  }

  held(connector: Connector): { count: number; limit: number } {
    return { count: this.state(connector).held.length, limit: this.limit(connector) };
  }

  /** Runs `write` alone among the writers of this Connector's status, with the brake as it is then. */
  exclusive<T>(connector: Connector, write: (brake: BrakeState) => Promise<T>): Promise<T> {
    const key = keyOf(connector);
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => write(this.state(connector)));
    this.locks.set(key, next);
    const release = () => {
      if (this.locks.get(key) === next) this.locks.delete(key);
    };
    // The caller gets the rejection; this derived promise must not become an unhandled one.
    next.then(release, release);
    return next;
  }

  /**
   * Computes the next state from the current one and persists it before it takes effect, all
   * inside the lock: two workers deciding at once cannot both take the last free slot. A failed
   * write leaves the old state (and throws).
   */
  private update<T>(
    connector: Connector,
    decide: (state: BrakeState) => { state: BrakeState; result: T },
  ): Promise<T> {
    return this.exclusive(connector, async (before) => {
      const { state, result } = decide(before);
      if (state === before) return result;
      await patchStatus(
        this.options.custom,
        "connectors",
        connector.metadata.namespace ?? "default",
        connector.metadata.name,
        { deprovisioning: state, heldDeprovisions: state.held.length },
      );
      this.states.set(keyOf(connector), state);
      if (state.held.length !== before.held.length) this.heldChanged(connector, before.held.length);
      return result;
    });
  }

  request(connector: Connector, account: string): Promise<BrakeDecision> {
    const limit = this.limit(connector);
    return this.update(connector, (before) => {
      const { state, decision } = requestDeprovision(before, account, limit, Date.now());
      return { state, result: decision };
    });
  }

  withdraw(connector: Connector, account: string): Promise<void> {
    // Almost every reconcile withdraws an account that is neither held nor released: no lock.
    const state = this.state(connector);
    if (withdrawDeprovision(state, account) === state) return Promise.resolve();
    return this.update(connector, (before) => ({
      state: withdrawDeprovision(before, account),
      result: undefined,
    }));
  }

  /** Hands a deletion due later over to the Connector (persisted before the Employee may go). */
  schedule(connector: Connector, entry: ScheduledDeletion): Promise<void> {
    return this.update(connector, (before) => ({
      state: scheduleDeletion(before, entry),
      result: undefined,
    }));
  }

  unschedule(connector: Connector, account: string): Promise<void> {
    return this.update(connector, (before) => ({
      state: unscheduleDeletion(withdrawDeprovision(before, account), account),
      result: undefined,
    }));
  }

  /** Acts on an approval annotation's value: exactly the held count releases them, anything else is refused. */
  async approve(connector: Connector, value: string): Promise<{ released: number } | { refused: string }> {
    const subject = { ...connector, kind: "Connector", apiVersion: API_VERSION };
    const outcome = await this.update(connector, (before) => {
      const approval = approveDeprovisions(before, value);
      return { state: approval.approved ? approval.state : before, result: approval };
    });
    if (!outcome.approved) {
      void this.options.events.record(subject, "Warning", "ApprovalRefused", outcome.reason);
      return { refused: outcome.reason };
    }
    void this.options.events.record(
      subject,
      "Normal",
      "DeprovisioningApproved",
      `${outcome.released} held deprovisions approved and released`,
    );
    return { released: outcome.released };
  }

  private heldChanged(connector: Connector, before: number): void {
    const count = this.state(connector).held.length;
    deprovisionsHeld.set({ connector: keyOf(connector) }, count);
    if (before === 0 && count > 0)
      void this.options.events.record(
        { ...connector, kind: "Connector", apiVersion: API_VERSION },
        "Warning",
        "DeprovisioningHeld",
        `deprovisioning held: more than ${this.limit(connector)} per hour; review, then approve with the annotation ${APPROVE_ANNOTATION}=<held count>`,
      );
    this.options.changed(connector);
  }
}
