// A work queue with client-go's semantics (util/workqueue + controller-runtime's reconcile loop):
// keys are deduplicated, one key is never processed by two workers at once, failures back off per
// key, and delayed requeues serve start/end dates. Reconciles are level-based: the key is all a
// handler gets, and it reads the object fresh, so collapsing many adds into one run loses nothing.
import type { Logger } from "pino";
import {
  activeWorkers,
  maxConcurrentReconciles,
  reconcileErrors,
  reconcileTime,
  reconcileTotal,
  terminalReconcileErrors,
  workqueueAdds,
  workqueueDepth,
  workqueueQueueDuration,
  workqueueRetries,
  workqueueWorkDuration,
} from "../observe/metrics.ts";
import { classify } from "./errors.ts";

/** What a handler may ask for after a successful run. */
export type ReconcileResult = {
  /** Run the key again after this many milliseconds (e.g. at an Employee's endDate). */
  requeueAfter?: number;
  /** Run the key again with the per-key backoff, without counting it as an error. */
  requeue?: boolean;
};

export type Handler = (key: string) => Promise<ReconcileResult | void>;

export type WorkQueueOptions = {
  /** The controller / queue name used as metric label. */
  name: string;
  /** First retry delay after a failure; doubles per consecutive failure. Default 5 ms. */
  baseDelayMs?: number;
  /** Cap on the retry delay. Default 60 s. */
  maxDelayMs?: number;
  logger?: Logger;
};

/** "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: "", name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class WorkQueue {
  readonly name: string;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly logger: Logger | undefined;

  // client-go's three sets: `queue` holds keys ready to hand out (a Set keeps FIFO order and makes
  // dedupe O(1)); `dirty` holds keys that need processing; `processing` holds keys a worker has.
  // A key added while processing stays only in `dirty` and is queued when its worker is done.
  private readonly queue = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private waiters: (() => void)[] = [];
  private shuttingDown = false;
  private workers: Promise<void>[] = [];

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.logger = options.logger;
    workqueueDepth.set({ name: this.name }, 0);
  }

  /** Keys waiting to be handed to a worker (not counting delayed or in-flight keys). */
  len(): number {
    return this.queue.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    workqueueAdds.inc({ name: this.name });
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return; // queued again by done()
    this.queue.add(key);
    workqueueDepth.set({ name: this.name }, this.queue.size);
    this.waiters.shift()?.();
  }

  /** Adds the key after `ms`. When the key already waits, the earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    // A pending requeue must not keep the process alive on shutdown.
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** Adds the key after its per-key exponential backoff and counts a retry. */
  addRateLimited(key: string): void {
    workqueueRetries.inc({ name: this.name });
    this.addAfter(key, this.nextDelay(key));
  }

  /** Resets the key's backoff (after a success, or a terminal error). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Consecutive failures of the key since the last forget(). */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The delay the next addRateLimited(key) will use: base * 2^failures, capped. */
  private nextDelay(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n; Math.min still caps it.
    return Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
  }

  /** Waits for the next key; undefined once the queue shuts down. */
  private async get(): Promise<string | undefined> {
    for (;;) {
      if (this.shuttingDown) return undefined;
      const next = this.queue.values().next();
      if (!next.done) {
        const key = next.value;
        this.queue.delete(key);
        this.dirty.delete(key);
        this.processing.add(key);
        workqueueDepth.set({ name: this.name }, this.queue.size);
        const added = this.addedAt.get(key);
        this.addedAt.delete(key);
        if (added !== undefined)
          workqueueQueueDuration.observe({ name: this.name }, (performance.now() - added) / 1000);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Marks the key finished; a key added meanwhile is queued now. */
  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.add(key);
      workqueueDepth.set({ name: this.name }, this.queue.size);
      this.waiters.shift()?.();
    }
  }

  /**
   * Starts `workers` loops calling `handler`; the promise resolves when all have stopped after
   * shutdown(). Handler outcomes: resolve → forget; `{requeueAfter}` → delayed add; `{requeue}` →
   * backoff add; throw → classified once (errors.ts): terminal → dropped, throttled → added
   * after the wait the target asked for, transient → backoff add.
   */
  run(workers: number, handler: Handler): Promise<void> {
    maxConcurrentReconciles.set({ controller: this.name }, workers);
    for (let i = 0; i < workers; i++) this.workers.push(this.worker(handler));
    return Promise.all(this.workers).then(() => undefined);
  }

  private async worker(handler: Handler): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      activeWorkers.inc({ controller: this.name });
      const started = performance.now();
      try {
        await this.process(key, handler);
      } finally {
        const seconds = (performance.now() - started) / 1000;
        reconcileTime.observe({ controller: this.name }, seconds);
        workqueueWorkDuration.observe({ name: this.name }, seconds);
        activeWorkers.dec({ controller: this.name });
        this.done(key);
      }
    }
  }

  private async process(key: string, handler: Handler): Promise<void> {
    const controller = this.name;
    let result: ReconcileResult | void;
    try {
      result = await handler(key);
    } catch (error) {
      reconcileErrors.inc({ controller });
      reconcileTotal.inc({ controller, result: "error" });
      // One line per failed run (key, reason, message); the stack only at debug level.
      const failure = classify(error);
      const line = { key, controller, reason: failure.reason, error: failure.message };
      this.logger?.debug({ ...line, err: error }, "reconcile failed (stack)");
      if (failure.kind === "terminal") {
        terminalReconcileErrors.inc({ controller });
        this.forget(key);
        this.logger?.warn(line, "reconcile failed; not retrying until the object changes");
      } else if (failure.kind === "throttled") {
        this.forget(key);
        this.addAfter(key, failure.retryAfterMs ?? this.nextDelay(key));
        this.logger?.warn({ ...line, retryAfterMs: failure.retryAfterMs }, "reconcile throttled; waiting");
      } else {
        this.addRateLimited(key);
        this.logger?.warn({ ...line, retries: this.numRequeues(key) }, "reconcile failed; retrying");
      }
      return;
    }
    if (result?.requeueAfter !== undefined && result.requeueAfter > 0) {
      this.forget(key);
      this.addAfter(key, result.requeueAfter);
      reconcileTotal.inc({ controller, result: "requeue_after" });
    } else if (result?.requeue) {
      this.addRateLimited(key);
      reconcileTotal.inc({ controller, result: "requeue" });
    } else {
      this.forget(key);
      reconcileTotal.inc({ controller, result: "success" });
    }
  }

  /**
   * Stops handing out keys, drops delayed requeues, and resolves once every in-flight handler has
   * finished (graceful SIGTERM). Keys still queued are not run: reconciles are level-based, so the
   * next leader's initial list covers them.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
    await Promise.all(this.workers);
  }
}
