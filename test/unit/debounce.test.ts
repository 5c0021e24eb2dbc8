// The trailing debounce that count-only status refreshes wait behind (src/controller/debounce.ts):
// a second after the last change, or at most `maxMs` after the first one still pending. A pure
// scheduling unit, on fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TrailingDebounce } from "../../src/controller/debounce.ts";

describe("TrailingDebounce", () => {
  let fired: { key: string; at: number }[];
  let debounce: TrailingDebounce;
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    fired = [];
    debounce = new TrailingDebounce((key) => fired.push({ key, at: Date.now() }), 1000, 30_000);
  });
  afterEach(() => {
    debounce.clear();
    vi.useRealTimers();
  });

  it("fires once a second after the last touch", () => {
    debounce.touch("a");
    vi.advanceTimersByTime(400);
    debounce.touch("a");
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([{ key: "a", at: 1400 }]);
    vi.advanceTimersByTime(60_000);
    expect(fired).toHaveLength(1);
  });

  it("fires at most maxMs after the first pending touch while touches keep coming", () => {
    for (let t = 0; t < 65_000; t += 100) {
      debounce.touch("a");
      vi.advanceTimersByTime(100);
    }
    expect(fired.map((f) => f.at)).toEqual([30_000, 60_000]);
    vi.advanceTimersByTime(1000);
    expect(fired.map((f) => f.at)).toEqual([30_000, 60_000, 65_900]);
  });

  it("keeps keys apart, and a cancelled key does not fire", () => {
    debounce.touch("a");
    debounce.touch("b");
    vi.advanceTimersByTime(500);
    debounce.cancel("a");
    vi.advanceTimersByTime(500);
    expect(fired).toEqual([{ key: "b", at: 1000 }]);
    // After a cancel (or a fire) the next touch starts a new wait.
    debounce.touch("a");
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual([
      { key: "b", at: 1000 },
      { key: "a", at: 2000 },
    ]);
  });
});
