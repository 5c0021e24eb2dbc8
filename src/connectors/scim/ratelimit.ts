// Request pacing and retry timing for the SCIM connector (no I/O; time from Date.now and setTimeout,
// so fake timers drive it in tests).

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A token bucket (implemented as its equivalent, the generic cell rate algorithm): tokens refill
 * at `ratePerSecond` up to `capacity`, and every request takes one, waiting until one is there.
 * Waiters are served in call order. With capacity 1 (the default) requests are evenly spaced
 * 1/rate apart, so no window of one second ever holds more than `ratePerSecond` requests.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly capacity: number;
  readonly #interval: number;
  /** Theoretical arrival time: when the bucket would be full again. */
  #tat = 0;

  constructor(ratePerSecond: number, capacity = 1) {
    if (!(ratePerSecond > 0)) throw new Error(`TokenBucket: rate must be positive, got ${ratePerSecond}`);
    if (!(capacity >= 1)) throw new Error(`TokenBucket: capacity must be at least 1, got ${capacity}`);
    this.ratePerSecond = ratePerSecond;
    this.capacity = capacity;
    this.#interval = 1000 / ratePerSecond;
  }

  /** Milliseconds until a token would be available (0 when one is there now). */
  delay(now = Date.now()): number {
    const tat = Math.max(this.#tat, now);
    return Math.max(0, tat - (this.capacity - 1) * this.#interval - now);
  }

  /** Reserves a token and resolves when it may be used. */
  take(): Promise<void> {
    const now = Date.now();
    const wait = this.delay(now);
    this.#tat = Math.max(this.#tat, now) + this.#interval;
    return wait > 0 ? sleep(wait) : Promise.resolve();
  }

  /** No token is handed out before `until` (epoch ms), e.g. after a 429 with Retry-After. */
  pauseUntil(until: number): void {
    this.#tat = Math.max(this.#tat, until + (this.capacity - 1) * this.#interval);
  }
}

export type RetryTiming = {
  /** Tries per request, the first included (default 5). */
  attempts: number;
  /** Backoff base and cap (defaults 250 ms and 8 s). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A 429 asking to wait longer than this is not waited for but thrown (default 60 s). */
  maxRetryAfterMs: number;
};

export const DEFAULT_RETRY: RetryTiming = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

/** Exponential backoff with full jitter: random in [0, min(max, base * 2^(failures-1))]. */
export function backoffDelay(
  failures: number,
  timing: Pick<RetryTiming, "baseDelayMs" | "maxDelayMs">,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(timing.maxDelayMs, timing.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(random() * ceiling);
}

/**
 * The delay a Retry-After header asks for, in ms: delta-seconds or an HTTP date (RFC 9110 section
 * 10.2.3); undefined when absent or unreadable. A date in the past means 0.
 */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
