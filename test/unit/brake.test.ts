import { describe, expect, it } from "vitest";
import {
  approveDeprovisions,
  deprovisionLimit,
  HOUR_MS,
  requestDeprovision,
  withdrawDeprovision,
  type BrakeDecision,
  type BrakeState,
} from "../../src/plan/brake.ts";

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

describe("the brake's state", () => {
  const t0 = Date.parse("2026-06-01T12:00:00Z");
  const empty: BrakeState = { counted: [], held: [], released: [] };
  /** Runs requests in order, as the operator would, and returns the final state and decisions. */
  const run = (state: BrakeState, requests: [string, number][], limit: number) => {
    const decisions: BrakeDecision[] = [];
    for (const [account, at] of requests) {
      const next = requestDeprovision(state, account, limit, at);
      state = next.state;
      decisions.push(next.decision);
    }
    return { state, decisions };
  };

  it("lets through up to the limit and holds the rest, without dropping them", () => {
    const { state, decisions } = run(
      empty,
      Array.from({ length: 10 }, (_, i) => [`a${i}`, t0 + i] as [string, number]),
      6,
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(6);
    expect(decisions.at(-1)).toEqual({ allowed: false, held: 4, limit: 6 });
    expect(state.held.map((h) => h.account)).toEqual(["a6", "a7", "a8", "a9"]);
  });

  it("latches: held changes stay held when the hour has passed, and new ones are held too", () => {
    const { state } = run(
      empty,
      [
        ["a", t0],
        ["b", t0 + 1],
        ["c", t0 + 2],
      ],
      2,
    );
    const later = t0 + HOUR_MS + 60_000;
    const again = requestDeprovision(state, "c", 2, later);
    expect(again.decision.allowed).toBe(false);
    const newcomer = requestDeprovision(again.state, "d", 2, later);
    expect(newcomer.decision).toEqual({ allowed: false, held: 2, limit: 2 });
    expect(newcomer.state.counted).toEqual([]);
  });

  it("counts one account once however many operations its deprovisioning takes", () => {
    const { state, decisions } = run(
      empty,
      Array.from({ length: 5 }, (_, i) => ["leaver", t0 + i] as [string, number]),
      1,
    );
    expect(decisions.every((d) => d.allowed)).toBe(true);
    expect(state.counted).toHaveLength(1);
    expect(requestDeprovision(state, "other", 1, t0 + 10).decision.allowed).toBe(false);
  });

  it("an approval must equal the held count, releases exactly those, and gives no credit", () => {
    const { state } = run(
      empty,
      [
        ["a", t0],
        ["b", t0],
        ["c", t0],
      ],
      0,
    );
    expect(approveDeprovisions(state, "1000")).toMatchObject({ approved: false });
    expect(approveDeprovisions(state, "2")).toMatchObject({ approved: false });
    const approval = approveDeprovisions(state, "3");
    expect(approval).toMatchObject({ approved: true, released: 3 });
    if (!approval.approved) return;
    for (const account of ["a", "b", "c"])
      expect(requestDeprovision(approval.state, account, 0, t0 + 1).decision.allowed).toBe(true);
    // A leaver after the approval is held again: the approval was not credit.
    expect(requestDeprovision(approval.state, "d", 0, t0 + 1).decision).toEqual({
      allowed: false,
      held: 1,
      limit: 0,
    });
    expect(approveDeprovisions({ ...approval.state, held: [] }, "3")).toMatchObject({ approved: false });
  });

  it("forgets a withdrawn account, held or released", () => {
    const { state } = run(empty, [["x", t0]], 0);
    expect(withdrawDeprovision(state, "x").held).toEqual([]);
    expect(withdrawDeprovision(state, "y")).toBe(state);
  });

  it("counts expire after an hour while nothing is held", () => {
    const { state } = run(empty, [["a", t0]], 1);
    expect(requestDeprovision(state, "b", 1, t0 + 1000).decision.allowed).toBe(false);
    expect(requestDeprovision(state, "b", 1, t0 + HOUR_MS + 1).decision.allowed).toBe(true);
  });
});
