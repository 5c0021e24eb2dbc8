import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, parseRetryAfter, TokenBucket } from "../../src/connectors/scim/ratelimit.ts";

describe("TokenBucket", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  async function takeTimes(bucket: TokenBucket, n: number): Promise<number[]> {
    const start = Date.now();
    const times: number[] = [];
    const all = Array.from({ length: n }, () => bucket.take().then(() => times.push(Date.now() - start)));
    await vi.runAllTimersAsync();
    await Promise.all(all);
    return times;
  }

  it("spaces requests evenly at the rate (capacity 1)", async () => {
    expect(await takeTimes(new TokenBucket(10), 5)).toEqual([0, 100, 200, 300, 400]);
  });

  it("never lets more than the rate through in any second", async () => {
    const times = await takeTimes(new TokenBucket(4), 12);
    for (const t of times) expect(times.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(4);
  });

  it("allows a burst up to its capacity, then the rate", async () => {
    expect(await takeTimes(new TokenBucket(10, 3), 5)).toEqual([0, 0, 0, 100, 200]);
  });

  it("refills while idle, up to capacity", async () => {
    const bucket = new TokenBucket(2, 2);
    await takeTimes(bucket, 2);
    vi.advanceTimersByTime(10_000);
    expect(bucket.delay()).toBe(0);
    expect(await takeTimes(bucket, 3)).toEqual([0, 0, 500]);
  });

  it("supports rates below one per second", async () => {
    expect(await takeTimes(new TokenBucket(0.5), 3)).toEqual([0, 2000, 4000]);
  });

  it("pauses until a given time (Retry-After), then continues at the rate", async () => {
    const bucket = new TokenBucket(10);
    bucket.pauseUntil(Date.now() + 1500);
    expect(await takeTimes(bucket, 3)).toEqual([1500, 1600, 1700]);
  });

  it("rejects nonsensical settings", () => {
    expect(() => new TokenBucket(0)).toThrow();
    expect(() => new TokenBucket(1, 0)).toThrow();
  });
});

describe("backoffDelay", () => {
  const timing = { baseDelayMs: 100, maxDelayMs: 1000 };
  it("grows exponentially with full jitter, capped", () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, timing, () => 1))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect(backoffDelay(3, timing, () => 0)).toBe(0);
    expect(backoffDelay(3, timing, () => 0.5)).toBe(200);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(4, timing);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(800);
    }
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
  });
  it("ignores absent or unreadable values", () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter("1.5", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });
});
