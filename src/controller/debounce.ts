// A trailing debounce per key, for status that only counts things (managed accounts, matched
// Employees): while Employees keep changing (a bulk load writes one status a reconcile), a refresh
// a second would rewrite the same objects hundreds of times for numbers nobody acts on.

/**
 * How long a count in a Connector's or a policy's status may lag while Employees keep changing;
 * once they are quiet for a second it is written.
 */
export const COUNTS_MAX_MS = 30_000;

/**
 * Calls `fire(key)` once the key has had no touch for `idleMs`, or `maxMs` after the first touch
 * still pending, whichever comes first: a steady stream of touches still fires every `maxMs`.
 */
export class TrailingDebounce {
  private readonly pending = new Map<string, { first: number; last: number; timer: NodeJS.Timeout }>();

  private readonly fire: (key: string) => void;
  private readonly idleMs: number;
  private readonly maxMs: number;

  constructor(fire: (key: string) => void, idleMs: number, maxMs: number) {
    this.fire = fire;
    this.idleMs = idleMs;
    this.maxMs = maxMs;
  }

  touch(key: string): void {
    const now = Date.now();
    const pending = this.pending.get(key);
    // The timer is armed once and looks again when it runs, rather than re-armed on every touch.
    if (pending) pending.last = now;
    else this.pending.set(key, { first: now, last: now, timer: this.arm(key, this.idleMs) });
  }

  /** Drops the key's pending call (the caller has the work done another way). */
  cancel(key: string): void {
    const pending = this.pending.get(key);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(key);
  }

  clear(): void {
    for (const key of [...this.pending.keys()]) this.cancel(key);
  }

  private arm(key: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.due(key), ms);
    // A pending refresh must not keep the process alive on shutdown.
    timer.unref?.();
    return timer;
  }

  private due(key: string): void {
    const pending = this.pending.get(key);
    if (!pending) return;
    const at = Math.min(pending.last + this.idleMs, pending.first + this.maxMs);
    const wait = at - Date.now();
    if (wait > 0) {
      pending.timer = this.arm(key, wait);
      return;
    }
    this.pending.delete(key);
    this.fire(key);
  }
}
