import { describe, expect, it } from "vitest";
import { DeprovisionBrake, deprovisionLimit, HOUR_MS } from "../../src/plan/brake.ts";

describe("deprovisionLimit", () => {
  it.each([
    [undefined, 60, 6],
    [undefined, 1000, 20],
    [undefined, 3, 5],
    [{ maxDeprovisionsPerHour: 2 }, 3, 2],
    [{ maxDeprovisionPercent: 50 }, 10, 5],
    [{ maxDeprovisionPercent: 50, maxDeprovisionsPerHour: 100 }, 100, 50],
    [{ maxDeprovisionsPerHour: 0 }, 100, 0],
    [{ maxDeprovisionPercent: 0 }, 100, 0],
    [{ maxDeprovisionPercent: 100, maxDeprovisionsPerHour: 1000 }, 3, 1000],
  ])("safety %o with %d managed accounts allows %d an hour", (safety, managed, limit) => {
    expect(deprovisionLimit(safety, managed)).toBe(limit);
  });
});

describe("DeprovisionBrake", () => {
  const t0 = 1_000_000;

  it("lets through up to the limit per sliding hour and holds the rest, without dropping them", () => {
    const brake = new DeprovisionBrake();
    const decisions = Array.from({ length: 10 }, (_, i) => brake.request("c", `a${i}`, 6, t0 + i));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(6);
    expect(decisions.at(-1)).toEqual({ allowed: false, held: 4, limit: 6 });
    expect(brake.held("c")).toEqual(["a6", "a7", "a8", "a9"]);
    // Still held a minute later; free again once the hour has passed.
    expect(brake.request("c", "a6", 6, t0 + 60_000).allowed).toBe(false);
    expect(brake.request("c", "a6", 6, t0 + HOUR_MS + 10).allowed).toBe(true);
    expect(brake.held("c")).toEqual(["a7", "a8", "a9"]);
  });

  it("counts one account once however many operations its deprovisioning takes", () => {
    const brake = new DeprovisionBrake();
    for (let i = 0; i < 5; i++) expect(brake.request("c", "leaver", 1, t0 + i).allowed).toBe(true);
    expect(brake.counted("c", t0 + 10)).toBe(1);
    expect(brake.request("c", "other", 1, t0 + 10).allowed).toBe(false);
  });

  it("releases exactly the approved number of held deprovisions", () => {
    const brake = new DeprovisionBrake();
    brake.request("c", "a", 0, t0);
    brake.request("c", "b", 0, t0);
    brake.request("c", "d", 0, t0);
    brake.approve("c", 2);
    expect(brake.request("c", "a", 0, t0 + 1).allowed).toBe(true);
    expect(brake.request("c", "b", 0, t0 + 1).allowed).toBe(true);
    expect(brake.request("c", "d", 0, t0 + 1).allowed).toBe(false);
    expect(brake.held("c")).toEqual(["d"]);
  });

  it("keeps connectors apart and forgets a withdrawn account", () => {
    const brake = new DeprovisionBrake();
    brake.request("c1", "x", 0, t0);
    expect(brake.request("c2", "x", 1, t0).allowed).toBe(true);
    brake.withdraw("c1", "x");
    expect(brake.held("c1")).toEqual([]);
  });
});
