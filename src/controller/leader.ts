// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package
// (client-node has none). Writes are guarded by resourceVersion, so two replicas can never both
// believe they took the same free Lease. A leader that cannot renew within the renew deadline stops
// leading at once: the deadline is shorter than the lease duration, so it stops writing before any
// standby may take over.
//
// Time is judged as client-go judges it, each replica by its own clock only, never by comparing
// clocks across machines: a standby counts the lease duration from when *it* last saw the Lease
// record change (holder, renewTime, ..., or resourceVersion), on its monotonic clock; the leader
// counts its renew deadline from when it sent its last successful renewal, also on its monotonic
// clock. The renewTime and acquireTime in the Lease (the wall clock of whoever wrote them) are for
// people and tools to read; no decision here depends on them, so a standby whose wall clock runs
// minutes ahead does not take over a Lease that is still being renewed.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { V1MicroTime, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { LeaseApi } from "../kube/api.ts";
import { leaderElectionMasterStatus } from "../observe/metrics.ts";

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;

/**
 * The longest one target write may stay in flight once sent (a per-request / per-operation
 * timeout), for a Lease of `leaseDurationMs` renewed within `renewDeadlineMs`.
 *
 * A write is sent only while mayWrite() is true, i.e. at most renewDeadline after the last
 * renewal was sent; a standby may take over no sooner than leaseDuration after it saw that
 * renewal, which is later still. A write that is sent just before the deadline and gives up
 * within leaseDuration - renewDeadline is thus over before another replica can write. 80 % of
 * that margin is the budget; the rest covers a timer that fires late on a busy event loop.
 * Defaults (15 s, 10 s): 4000 ms.
 */
export function maxWriteMs(
  leaseDurationMs = DEFAULT_LEASE_DURATION_MS,
  renewDeadlineMs = DEFAULT_RENEW_DEADLINE_MS,
): number {
  return Math.floor((leaseDurationMs - renewDeadlineMs) * 0.8);
}

/** maxWriteMs() for the default timings (those the operator runs with). */
export const MAX_WRITE_MS = maxWriteMs();

/**
 * client-go's expiry rule: a Lease last seen to change at `observedAt` (this replica's monotonic
 * clock) is expired once more than `leaseDurationMs` has passed on that same clock. No remote
 * time takes part.
 */
export function leaseExpired(observedAt: number, leaseDurationMs: number, now: number): boolean {
  return observedAt + leaseDurationMs < now;
}

/** What identifies one write of the Lease: any change means its holder is still alive. */
function recordKey(lease: V1Lease): string {
  const spec = lease.spec ?? {};
  const time = (t: Date | undefined) => (t ? new Date(t).toISOString() : "");
  return JSON.stringify([
    spec.holderIdentity ?? "",
    spec.leaseDurationSeconds ?? null,
    time(spec.acquireTime),
    time(spec.renewTime),
    spec.leaseTransitions ?? null,
    lease.metadata?.resourceVersion ?? "",
  ]);
}

/**
 * What a replica knows of a Lease it does not hold: the record it saw last and when (its own
 * monotonic clock) that record last changed. Pure; LeaderElector feeds it every Lease it reads.
 */
export class LeaseObservation {
  private key: string | undefined;
  private observedAt = 0;
  private durationMs = 0;
  private holderIdentity = "";

  /** Records `lease` as read at `now`; true when its record differs from the one seen before. */
  observe(lease: V1Lease, now: number, defaultDurationMs = 0): boolean {
    const key = recordKey(lease);
    const seconds = lease.spec?.leaseDurationSeconds;
    this.holderIdentity = lease.spec?.holderIdentity ?? "";
    this.durationMs = seconds === undefined ? defaultDurationMs : seconds * 1000;
    if (key === this.key) return false;
    this.key = key;
    this.observedAt = now;
    return true;
  }

  get holder(): string {
    return this.holderIdentity;
  }

  /** Monotonic time at which the current record was first seen. */
  get since(): number {
    return this.observedAt;
  }

  /** No record seen yet, or the one seen has not changed for longer than its lease duration. */
  expired(now: number): boolean {
    return this.key === undefined || leaseExpired(this.observedAt, this.durationMs, now);
  }
}

export type LeaderElectorOptions = {
  namespace: string;
  /** Lease name; also the metric label. */
  name: string;
  /** Default: hostname + random suffix (unique even for two processes in one pod). */
  identity?: string;
  /** How long a Lease stays valid after its last renewal. Default 15 s. */
  leaseDurationMs?: number;
  /** A leader that has not renewed for this long gives up. Default 10 s; must be < leaseDurationMs. */
  renewDeadlineMs?: number;
  /** Interval between acquire/renew attempts. Default 2 s. */
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  /** Called at most once, synchronously when leadership is lost; the process is expected to exit. */
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
  /** Wall clock (epoch ms) for the renewTime and acquireTime written to the Lease. Default Date.now. */
  now?: () => number;
  /** Monotonic clock (ms) every expiry and deadline is judged by. Default performance.now. */
  monotonicNow?: () => number;
};

const isApiError = (e: unknown, ...codes: number[]) => codes.includes((e as { code?: number })?.code ?? -1);

export class LeaderElector {
  readonly identity: string;
  private readonly api: LeaseApi;
  private readonly options: LeaderElectorOptions;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger | undefined;
  private readonly wallNow: () => number;
  private readonly monoNow: () => number;

  private leading = false;
  private stopped = false;
  /** Monotonic time the last successful renewal was sent. */
  private lastRenew = 0;
  private observedHolder: string | undefined;
  private readonly observation = new LeaseObservation();
  private lease: V1Lease | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private finished: (() => void) | undefined;

  /** `leases`: unfenced (a Lease write is how leadership is held). */
  constructor(leases: LeaseApi, options: LeaderElectorOptions) {
    this.api = leases;
    this.options = options;
    this.identity = options.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
    this.leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
    this.retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.wallNow = options.now ?? Date.now;
    this.monoNow = options.monotonicNow ?? (() => performance.now());
    if (this.renewDeadlineMs >= this.leaseDurationMs)
      throw new Error("renewDeadline must be shorter than leaseDuration");
    if (this.retryPeriodMs >= this.renewDeadlineMs)
      throw new Error("retryPeriod must be shorter than renewDeadline");
    this.logger = options.logger?.child({
      lease: `${options.namespace}/${options.name}`,
      identity: this.identity,
    });
    leaderElectionMasterStatus.set({ name: options.name }, 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The per-write timeout budget for this elector's timings (see maxWriteMs). */
  get maxWriteMs(): number {
    return maxWriteMs(this.leaseDurationMs, this.renewDeadlineMs);
  }

  /**
   * True while the last successful renewal was *sent* less than renewDeadline ago. Unlike
   * isLeader() it does not wait for a timer: a process that was frozen (SIGSTOP, a VM pause, a
   * long GC) sees false at its first write after waking up, before any timer has run.
   */
  mayWrite(): boolean {
    return this.leading && this.monoNow() - this.lastRenew < this.renewDeadlineMs;
  }

  /** Runs the election; resolves when the elector stops (leadership lost, stop() or release()). */
  run(): Promise<void> {
    const done = new Promise<void>((resolve) => (this.finished = resolve));
    this.tick();
    return done;
  }

  /** Stops all timers without touching the Lease (what a crash looks like to the other replicas). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.deadlineTimer);
    this.setLeading(false);
    this.finished?.();
  }

  /** Stops, and if leading hands the Lease back so a standby takes over at once (graceful shutdown). */
  async release(): Promise<void> {
    const wasLeading = this.leading;
    this.stop();
    await this.inFlight?.catch(() => {});
    if (!wasLeading || !this.lease) return;
    try {
      const lease = await this.api.readNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
      });
      if (lease.spec?.holderIdentity !== this.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: "",
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(this.wallNow()),
      };
      await this.api.replaceNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
        body: lease,
      });
      this.logger?.info("released leadership");
    } catch (error) {
      // Not fatal: the Lease then simply expires after its duration.
      this.logger?.warn({ err: error }, "could not release the lease");
    }
  }

  private tick(): void {
    if (this.stopped) return;
    // The Lease was written at some point after this: count the renewal from here, not from when
    // the answer was read (an answer that waited in the socket while the process was frozen is old).
    const attemptAt = this.monoNow();
    this.inFlight = this.tryAcquireOrRenew()
      .then((outcome) => {
        if (this.stopped) return;
        if (outcome === "held") {
          if (this.leading && this.monoNow() - attemptAt >= this.renewDeadlineMs) {
            this.lose(`renewal answered after the ${this.renewDeadlineMs} ms renew deadline`);
            return;
          }
          this.lastRenew = attemptAt;
          this.armDeadline();
          if (!this.leading) {
            this.setLeading(true);
            this.logger?.info("became leader");
            this.options.onStartedLeading();
          }
        } else if (outcome === "other" && this.leading) {
          // Someone else validly holds the Lease: stop now rather than at the deadline.
          this.lose("lease taken by another holder");
        }
        // "conflict": a concurrent write; try again next period (the deadline timer bounds this).
      })
      .catch((error: unknown) => {
        this.logger?.warn({ err: error }, this.leading ? "failed to renew lease" : "failed to acquire lease");
      })
      .finally(() => {
        if (!this.stopped) this.retryTimer = setTimeout(() => this.tick(), this.jitter());
      });
  }

  /** A leader retries on the exact period; candidates add up to 20 % so they do not stampede. */
  private jitter(): number {
    return this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
  }

  /** A timer rather than a check after each request: a hung renewal must not delay giving up. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(
      () => {
        if (this.leading && this.monoNow() - this.lastRenew >= this.renewDeadlineMs) {
          this.lose(`could not renew within ${this.renewDeadlineMs} ms`);
        } else if (this.leading) {
          this.armDeadline(); // woke early (timers and the injected clock may disagree)
        }
      },
      Math.max(0, this.renewDeadlineMs - (this.monoNow() - this.lastRenew)),
    );
  }

  /** The Lease as this replica just wrote it. */
  private wrote(lease: V1Lease): void {
    this.lease = lease;
    this.observation.observe(lease, this.monoNow(), this.leaseDurationMs);
  }

  private lose(reason: string): void {
    this.logger?.error({ reason }, "leadership lost");
    this.stop();
    this.options.onStoppedLeading();
  }

  private setLeading(value: boolean): void {
    this.leading = value;
    leaderElectionMasterStatus.set({ name: this.options.name }, value ? 1 : 0);
  }

  /**
   * "held": we hold the Lease after this attempt; "other": another identity validly holds it;
   * "conflict": a concurrent write won. Throws on API errors (retried next period).
   */
  private async tryAcquireOrRenew(): Promise<"held" | "other" | "conflict"> {
    const { name, namespace } = this.options;
    const now = new V1MicroTime(this.wallNow());
    const leaseDurationSeconds = Math.ceil(this.leaseDurationMs / 1000);

    let current: V1Lease;
    try {
      current = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!isApiError(error, 404)) throw error;
      try {
        const created = await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.wrote(created);
        return "held";
      } catch (createError) {
        if (isApiError(createError, 409)) return "conflict"; // another replica created it first
        throw createError;
      }
    }

    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder) this.options.onNewLeader?.(holder);
    }
    // client-go's rule: expired only when this replica has seen no change of the record for the
    // lease duration, by its own clock; the holder's renewTime is never compared with ours.
    this.observation.observe(current, this.monoNow(), this.leaseDurationMs);
    const expired = this.observation.expired(this.monoNow());
    const mine = holder === this.identity;
    if (holder && !mine && !expired) return "other";

    const body: V1Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds,
        renewTime: now,
        ...(mine ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
      },
    };
    try {
      // current.metadata.resourceVersion rides along: a concurrent writer makes this a 409.
      this.wrote(await this.api.replaceNamespacedLease({ name, namespace, body }));
      return "held";
    } catch (error) {
      if (isApiError(error, 409)) return "conflict";
      throw error;
    }
  }
}
