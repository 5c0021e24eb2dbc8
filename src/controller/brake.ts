// The mass-change brake as the operator runs it. Its state (src/plan/brake.ts) lives in the
// Connector's status: a change is written there before the deprovision it allows or holds goes
// ahead, so a restart, a rollout or a failover neither forgets what was counted nor releases what
// is held. Writes to one Connector's status are serialized here, and every writer of that status
// (this gate and the Connector controller) builds its body from the gate's memory inside the lock.
// A leaver should not wait for a Kubernetes write before losing access, so the gate takes counts
// ahead (plan/brake.ts `Reserve`): a deprovision that fills a slot already stored goes at once,
// without waiting for the lock either (unless a write that replaces the state is in flight), and
// its account is written within FLUSH_MS, with whatever else changed meanwhile. Once half of the
// slots are filled, a write in the background takes more (plan/brake.ts `topUp`), so a steady
// stream of leavers never waits for a write; only the first after a quiet spell does.
import type { CustomApi } from "../kube/api.ts";
import { API_VERSION } from "../api/schema.ts";
import type { Connector } from "../api/types.ts";
import { randomBytes } from "node:crypto";
import {
  approveDeprovisions,
  deprovisionLimit,
  releaseReserved,
  requestDeprovision,
  reserveSlots,
  scheduleDeletion,
  topUp,
  unscheduleDeletion,
  withdrawDeprovision,
  withReservation,
  type BrakeDecision,
  type BrakeState,
  type Persist,
  type Reserve,
  type ScheduledDeletion,
} from "../plan/brake.ts";
import { deprovisionsHeld } from "../observe/metrics.ts";
import type { EventRecorder } from "./events.ts";
import { patchStatus } from "./finalizer.ts";
import { keyOf } from "./queue.ts";

export const APPROVE_ANNOTATION = "roster.dev/approve-deprovisioning";

/** How long slots taken ahead may be filled. */
const RESERVE_MS = 10_000;
/** How soon a change that needed no write first (a slot filled) is written. */
const FLUSH_MS = 1_000;
/** How soon a write of such changes that failed is tried again. */
const FLUSH_RETRY_MS = 5_000;

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
    ...(saved?.reserved?.length ? { reserved: saved.reserved } : {}),
  };
}

export class BrakeGate {
  private readonly options: BrakeGateOptions;
  private readonly states = new Map<string, BrakeState>();
  /** The state as last stored (or read); a flush writes only when memory has moved on. */
  private readonly stored = new Map<string, BrakeState>();
  /**
   * This process's name for the slots it takes in a Connector, new after every load: slots read
   * back from the API server are never filled, since whoever took them may have filled them.
   */
  private readonly terms = new Map<string, { term: string; connector: Connector }>();
  private readonly flushes = new Map<string, NodeJS.Timeout>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /**
   * Connectors with a write in flight whose result replaces the state in memory once stored: a
   * slot filled meanwhile would be lost with it, so until then requests wait for the lock.
   */
  private readonly replacing = new Set<string>();
  /** Connectors with a top-up (slots taken ahead in the background) queued or in flight. */
  private readonly toppingUp = new Set<string>();

  constructor(options: BrakeGateOptions) {
    this.options = options;
  }

  /** Takes the state from a Connector read fresh from the API server (at the start of leading). */
  load(connector: Connector): void {
    const key = keyOf(connector);
    this.forget(connector);
    const state = brakeOf(connector);
    this.states.set(key, state);
    this.stored.set(key, state);
    deprovisionsHeld.set({ connector: key }, state.held.length);
  }

  forget(connector: Connector): void {
    const key = keyOf(connector);
    this.states.delete(key);
    this.stored.delete(key);
    this.terms.delete(key);
    clearTimeout(this.flushes.get(key));
    this.flushes.delete(key);
  }

  /** The state; a Connector not loaded yet starts from what its cached status says. */
  state(connector: Connector): BrakeState {
    const key = keyOf(connector);
    let state = this.states.get(key);
    if (!state) {
      state = brakeOf(connector);
      this.states.set(key, state);
      this.stored.set(key, state);
    }
    return state;
  }

  private term(connector: Connector): string {
    const key = keyOf(connector);
    const known = this.terms.get(key);
    if (known) return known.term;
    const term = randomBytes(6).toString("hex");
    this.terms.set(key, { term, connector });
    return term;
  }

  /**
   * On shutdown, once no reconcile runs and before the Lease is given up: stores what was filled
   * and gives back the slots this process took and did not fill, so that a rollout does not
   * leave them counted for an hour. A write that fails leaves them counted, the safe side.
   */
  async settle(): Promise<void> {
    for (const timer of this.flushes.values()) clearTimeout(timer);
    this.flushes.clear();
    await Promise.allSettled(
      [...this.terms].map(([key, { term, connector }]) =>
        this.exclusive(connector, async (state) => {
          const settled = releaseReserved(state, term);
          if (settled === state && this.stored.get(key) === state) return;
          await this.whileReplacing(key, () => this.store(connector, settled));
          this.states.set(key, settled);
          this.stored.set(key, settled);
        }),
      ),
    );
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
    const next = previous
      .catch(() => {})
      .then(async () => {
        const state = this.state(connector);
        const result = await write(state);
        // Whatever the writer stored, it built from this state (unless it moved the state on itself).
        if (this.states.get(key) === state) this.stored.set(key, state);
        return result;
      });
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
    decide: (state: BrakeState) => { state: BrakeState; result: T; persist?: Persist },
  ): Promise<T> {
    return this.exclusive(connector, async (before) => {
      const { state, result, persist = "before" } = decide(before);
      if (state === before) return result;
      const key = keyOf(connector);
      if (persist === "later") {
        this.storeLater(connector, state);
        return result;
      }
      await this.whileReplacing(key, () => this.store(connector, state));
      this.states.set(key, state);
      this.stored.set(key, state);
      if (state.held.length !== before.held.length) this.heldChanged(connector, before.held.length);
      return result;
    });
  }

  private async whileReplacing<T>(key: string, write: () => Promise<T>): Promise<T> {
    this.replacing.add(key);
    try {
      return await write();
    } finally {
      this.replacing.delete(key);
    }
  }

  private store(connector: Connector, state: BrakeState): Promise<void> {
    return patchStatus(
      this.options.custom,
      "connectors",
      connector.metadata.namespace ?? "default",
      connector.metadata.name,
      { deprovisioning: state, heldDeprovisions: state.held.length },
    );
  }

  /** Takes a change the stored state already covers (a slot filled) into memory; written soon. */
  private storeLater(connector: Connector, state: BrakeState): void {
    this.states.set(keyOf(connector), state);
    this.flushSoon(connector, FLUSH_MS);
  }

  /** Writes memory's state once `ms` have passed, unless some other write stored it meanwhile. */
  private flushSoon(connector: Connector, ms: number): void {
    const key = keyOf(connector);
    if (this.flushes.has(key)) return;
    const term = this.terms.get(key)?.term;
    const timer = setTimeout(() => {
      this.flushes.delete(key);
      this.exclusive(connector, async (state) => {
        if (this.stored.get(key) !== state) await this.store(connector, state);
      }).catch(() => {
        // Until it is written, the stored state counts the filled slots as slots: too many, not too few.
        if (this.terms.get(key)?.term === term && this.states.has(key))
          this.flushSoon(connector, FLUSH_RETRY_MS);
      });
    }, ms);
    timer.unref?.();
    this.flushes.set(key, timer);
  }

  request(connector: Connector, account: string): Promise<BrakeDecision> {
    const key = keyOf(connector);
    const limit = this.limit(connector);
    const reserve = { by: this.term(connector), slots: reserveSlots(limit), forMs: RESERVE_MS };
    const decide = (before: BrakeState) => {
      const { state, decision, persist } = requestDeprovision(before, account, limit, Date.now(), reserve);
      return { state, result: decision, persist };
    };
    if (!this.replacing.has(key)) {
      // A slot filled (or an account counted already) needs no write first, so no lock: a flush
      // or a top-up in flight stores a state that already counts it.
      const before = this.state(connector);
      const { state, result, persist } = decide(before);
      if (persist === "later") {
        if (state !== before) this.storeLater(connector, state);
        this.topUpSoon(connector, limit, reserve);
        return Promise.resolve(result);
      }
    }
    return this.update(connector, decide).then((decision) => {
      if (decision.allowed) this.topUpSoon(connector, limit, reserve);
      return decision;
    });
  }

  /**
   * Takes more slots ahead in the background once the own ones run low. The write stores the
   * state with them before any is filled; slots filled meanwhile came from those already stored,
   * so the new ones join the state as it is when the write returns.
   */
  private topUpSoon(connector: Connector, limit: number, reserve: Reserve): void {
    const key = keyOf(connector);
    const current = () => this.terms.get(key)?.term === reserve.by && this.states.has(key);
    if (this.toppingUp.has(key) || !current() || !topUp(this.state(connector), limit, Date.now(), reserve))
      return;
    this.toppingUp.add(key);
    this.exclusive(connector, async (state) => {
      const slots = current() ? topUp(state, limit, Date.now(), reserve) : undefined;
      if (!slots) return false;
      const written = withReservation(state, slots);
      await this.store(connector, written);
      // A reload (another term) or a lost lead meanwhile: the slots stay stored, counted, unused.
      if (!current()) return false;
      const now = this.state(connector);
      this.states.set(key, now === state ? written : withReservation(now, slots));
      this.stored.set(key, written);
      return true;
    }).then(
      (took) => {
        this.toppingUp.delete(key);
        // Filled meanwhile down to half again: take more now rather than at the next fill.
        if (took) this.topUpSoon(connector, limit, reserve);
      },
      // No slots taken: the next deprovision writes its count first, as without them.
      () => this.toppingUp.delete(key),
    );
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
