import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkQueue, keyOf, splitKey } from "../../src/controller/queue.ts";
import { TerminalError } from "../../src/controller/errors.ts";
import { registry } from "../../src/observe/metrics.ts";

let seq = 0;
const newQueue = (opts: { baseDelayMs?: number; maxDelayMs?: number } = {}) =>
  new WorkQueue({ name: `test-${++seq}`, ...opts });

/** A promise with its resolve function, to hold a handler open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const match = metric?.values.find((v) =>
    Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  );
  return match?.value ?? 0;
}

describe("keys", () => {
  it("joins and splits namespace/name", () => {
    expect(keyOf({ metadata: { namespace: "hr", name: "ada" } })).toBe("hr/ada");
    expect(keyOf({ metadata: { name: "cluster-wide" } })).toBe("cluster-wide");
    expect(splitKey("hr/ada")).toEqual({ namespace: "hr", name: "ada" });
    expect(splitKey("x")).toEqual({ namespace: "", name: "x" });
  });
});

describe("WorkQueue", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("stores a key added many times while queued once", async () => {
    const q = newQueue();
    q.add("ns/a");
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/a");
    expect(q.len()).toBe(2);
    const seen: string[] = [];
    const running = q.run(1, async (key) => {
      seen.push(key);
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(seen).toEqual(["ns/a", "ns/b"]);
    expect(await metricValue("workqueue_adds_total", { name: q.name })).toBe(2);
    await q.shutdown();
    await running;
  });

  it("never runs one key in two workers at once, and re-runs a key added during processing", async () => {
    const q = newQueue();
    let active = 0;
    let maxActive = 0;
    const runs: string[] = [];
    const first = gate();
    const running = q.run(4, async (key) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(key);
      if (runs.length === 1) await first.promise;
      active--;
    });
    q.add("ns/a");
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual(["ns/a"]);
    // Added twice while a worker holds it: stored once, not handed to the three idle workers.
    q.add("ns/a");
    q.add("ns/a");
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual(["ns/a"]);
    expect(q.len()).toBe(0);
    first.open();
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual(["ns/a", "ns/a"]);
    expect(maxActive).toBe(1);
    await q.shutdown();
    await running;
  });

  it("runs different keys concurrently up to the worker count", async () => {
    const q = newQueue();
    const hold = gate();
    let active = 0;
    let maxActive = 0;
    const running = q.run(2, async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await hold.promise;
      active--;
    });
    for (const k of ["a", "b", "c"]) q.add(k);
    await vi.advanceTimersByTimeAsync(1);
    expect(active).toBe(2);
    hold.open();
    await vi.advanceTimersByTimeAsync(1);
    expect(maxActive).toBe(2);
    expect(active).toBe(0);
    await q.shutdown();
    await running;
  });

  it("backs off exponentially per key on errors and resets on success", async () => {
    const q = newQueue({ baseDelayMs: 5, maxDelayMs: 60_000 });
    const times: number[] = [];
    let failuresLeft = 20;
    const start = Date.now();
    const running = q.run(1, async () => {
      times.push(Date.now() - start);
      if (failuresLeft-- > 0) throw new Error("boom");
    });
    q.add("ns/a");
    await vi.advanceTimersByTimeAsync(0);
    // Attempts at 0, then after 5, 10, 20, 40 ... ms.
    await vi.advanceTimersByTimeAsync(5 + 10 + 20 + 40);
    expect(times).toEqual([0, 5, 15, 35, 75]);
    expect(q.numRequeues("ns/a")).toBe(5);
    // Growth is capped at maxDelayMs.
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...gaps)).toBe(60_000);
    expect(gaps.slice(0, 6)).toEqual([5, 10, 20, 40, 80, 160]);
    // Run until the handler succeeds: the backoff is forgotten.
    await vi.advanceTimersByTimeAsync(20 * 60_000);
    expect(failuresLeft).toBeLessThan(0);
    expect(q.numRequeues("ns/a")).toBe(0);
    expect(await metricValue("controller_runtime_reconcile_errors_total", { controller: q.name })).toBe(20);
    expect(
      await metricValue("controller_runtime_reconcile_total", { controller: q.name, result: "success" }),
    ).toBe(1);
    expect(await metricValue("workqueue_retries_total", { name: q.name })).toBe(20);
    await q.shutdown();
    await running;
  });

  it("forget() resets the backoff", () => {
    const q = newQueue();
    q.addRateLimited("k");
    q.addRateLimited("k");
    expect(q.numRequeues("k")).toBe(2);
    q.forget("k");
    expect(q.numRequeues("k")).toBe(0);
    void q.shutdown();
  });

  it("does not retry a TerminalError", async () => {
    const q = newQueue();
    let calls = 0;
    const running = q.run(1, async () => {
      calls++;
      throw new TerminalError("invalid spec");
    });
    q.add("ns/a");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(1);
    expect(
      await metricValue("controller_runtime_terminal_reconcile_errors_total", { controller: q.name }),
    ).toBe(1);
    await q.shutdown();
    await running;
  });

  it("requeues after requeueAfter", async () => {
    const q = newQueue();
    const times: number[] = [];
    const start = Date.now();
    const running = q.run(1, async () => {
      times.push(Date.now() - start);
      return times.length < 3 ? { requeueAfter: 1000 } : undefined;
    });
    q.add("ns/a");
    await vi.advanceTimersByTimeAsync(5000);
    expect(times).toEqual([0, 1000, 2000]);
    expect(
      await metricValue("controller_runtime_reconcile_total", {
        controller: q.name,
        result: "requeue_after",
      }),
    ).toBe(2);
    await q.shutdown();
    await running;
  });

  it("addAfter keeps the earliest pending time per key", async () => {
    const q = newQueue();
    const times: number[] = [];
    const start = Date.now();
    const running = q.run(1, async () => {
      times.push(Date.now() - start);
    });
    q.addAfter("ns/a", 5000);
    q.addAfter("ns/a", 2000); // earlier: replaces
    q.addAfter("ns/a", 8000); // later: ignored
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toEqual([2000]);
    await q.shutdown();
    await running;
  });

  it("shutdown stops taking work and resolves when in-flight handlers finish", async () => {
    const q = newQueue();
    const hold = gate();
    const started: string[] = [];
    let finished = 0;
    const running = q.run(2, async (key) => {
      started.push(key);
      await hold.promise;
      finished++;
    });
    for (const k of ["a", "b", "c", "d"]) q.add(k);
    q.addAfter("e", 100);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toEqual(["a", "b"]);

    let drained = false;
    const shutdown = q.shutdown().then(() => (drained = true));
    await vi.advanceTimersByTimeAsync(1);
    expect(drained).toBe(false);
    q.add("f"); // ignored after shutdown
    hold.open();
    await shutdown;
    await running;
    expect(finished).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(started).toEqual(["a", "b"]);
  });
});
