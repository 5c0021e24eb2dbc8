// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package
// (client-node has none). Writes are guarded by resourceVersion, so two replicas can never both
// believe they took the same free Lease. A leader that cannot renew within the renew deadline stops
// leading at once: the deadline is shorter than the lease duration, so it stops writing before any
// standby may take over.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { leaderElectionMasterStatus } from "../observe/metrics.ts";

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
};

const isApiError = (e: unknown, ...codes: number[]) => codes.includes((e as { code?: number })?.code ?? -1);

export class LeaderElector {
  readonly identity: string;
  private readonly api: CoordinationV1Api;
  private readonly options: LeaderElectorOptions;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger | undefined;

  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private observedHolder: string | undefined;
  private lease: V1Lease | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private finished: (() => void) | undefined;

  constructor(kc: KubeConfig, options: LeaderElectorOptions) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.options = options;
    this.identity = options.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
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

  /**
   * True while the last successful renewal was *sent* less than renewDeadline ago. Unlike
   * isLeader() it does not wait for a timer: a process that was frozen (SIGSTOP, a VM pause, a
   * long GC) sees false at its first write after waking up, before any timer has run.
   */
  mayWrite(): boolean {
    return this.leading && Date.now() - this.lastRenew < this.renewDeadlineMs;
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
        renewTime: new V1MicroTime(),
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
    const attemptAt = Date.now();
    this.inFlight = this.tryAcquireOrRenew()
      .then((outcome) => {
        if (this.stopped) return;
        if (outcome === "held") {
          if (this.leading && Date.now() - attemptAt >= this.renewDeadlineMs) {
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
        if (this.leading && Date.now() - this.lastRenew >= this.renewDeadlineMs) {
          this.lose(`could not renew within ${this.renewDeadlineMs} ms`);
        }
      },
      Math.max(0, this.renewDeadlineMs - (Date.now() - this.lastRenew)),
    );
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
    const now = new V1MicroTime();
    const leaseDurationSeconds = Math.ceil(this.leaseDurationMs / 1000);

    let current: V1Lease;
    try {
      current = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!isApiError(error, 404)) throw error;
      try {
        this.lease = await this.api.createNamespacedLease({
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
    const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewedAt + (spec.leaseDurationSeconds ?? 0) * 1000 < Date.now();
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
      this.lease = await this.api.replaceNamespacedLease({ name, namespace, body });
      return "held";
    } catch (error) {
      if (isApiError(error, 409)) return "conflict";
      throw error;
    }
  }
}
