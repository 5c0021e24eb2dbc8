import { describe, expect, it } from "vitest";
import {
  approveDeprovisions,
  deprovisionLimit,
  countedInHour,
  HOUR_MS,
  requestDeprovision,
  reserveSlots,
  topUp,
  withdrawDeprovision,
  withReservation,
  type BrakeDecision,
  type BrakeState,
  type Reservation,
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

describe("counts taken ahead (Reserve)", () => {
  const t0 = Date.parse("2026-06-01T12:00:00Z");
  const empty: BrakeState = { counted: [], held: [], released: [] };
  const mine = { by: "me", slots: 3, forMs: 10_000 };

  it("one write first takes slots for the next ones, which are filled without a write first", () => {
    let state = empty;
    const persists: string[] = [];
    for (let i = 0; i < 5; i++) {
      const next = requestDeprovision(state, `a${i}`, 100, t0 + i, mine);
      expect(next.decision.allowed).toBe(true);
      persists.push(next.persist);
      state = next.state;
    }
    expect(persists).toEqual(["before", "later", "later", "later", "before"]);
    expect(state.counted.map((c) => c.account)).toEqual(["a0", "a1", "a2", "a3", "a4"]);
    expect(state.reserved).toEqual([{ by: "me", until: "2026-06-01T12:00:10Z", count: 3 }]);
    expect(countedInHour(state)).toBe(8);
  });

  it("never takes slots past the limit, and a limit lowered below them stops their use", () => {
    const first = requestDeprovision(empty, "a", 3, t0, mine);
    expect(first.state.reserved?.[0]?.count).toBe(2);
    expect(countedInHour(first.state)).toBe(3);
    const lowered = requestDeprovision(first.state, "b", 2, t0 + 1, mine);
    expect(lowered.decision).toEqual({ allowed: false, held: 1, limit: 2 });
    expect(lowered.persist).toBe("before");
  });

  it("another replica's slots (or this one's from before a reload) are never filled, and count for their hour", () => {
    const theirs = requestDeprovision(empty, "a", 4, t0, { ...mine, by: "old" }).state;
    // a + 3 slots of "old" use up the limit of 4: the new term may not fill them.
    const next = requestDeprovision(theirs, "b", 4, t0 + 1, { ...mine, by: "new" });
    expect(next.decision.allowed).toBe(false);
    // The slots still count after their `until` (when "a" has long expired), until an hour after it.
    const until = t0 + 10_000;
    const at = (ms: number) =>
      requestDeprovision(theirs, "b", 3, ms, { ...mine, by: "new" }).decision.allowed;
    expect(at(until + HOUR_MS - 1)).toBe(false);
    expect(at(until + HOUR_MS)).toBe(true);
  });

  it("its own slots not filled in time are dropped: it knows they never were", () => {
    const { state } = requestDeprovision(empty, "a", 4, t0, mine);
    const late = requestDeprovision(state, "b", 4, t0 + 10_000, mine);
    expect(late.persist).toBe("before");
    expect(late.state.counted.map((c) => c.account)).toEqual(["a", "b"]);
    expect(late.state.reserved).toEqual([{ by: "me", until: "2026-06-01T12:00:20Z", count: 2 }]);
  });

  it("a latched brake fills no slot", () => {
    const state: BrakeState = {
      ...requestDeprovision(empty, "a", 10, t0, mine).state,
      held: [{ account: "x", at: "2026-06-01T12:00:00Z" }],
    };
    expect(requestDeprovision(state, "b", 10, t0 + 1, mine).decision).toEqual({
      allowed: false,
      held: 2,
      limit: 10,
    });
  });

  it("a crash at any point loses only changes marked later, and the stored state still counts every deprovision", () => {
    // Random waves of requests, with top-ups whose write lands some requests later (fills go on
    // meanwhile, from the slots already stored; a count that must be written first waits for it,
    // as the gate's lock makes it). The store keeps only "before" states and landed top-ups, as
    // after a crash before any flush. Whatever was allowed must be counted by the stored state,
    // and a new term starting from it never lets the hour's total pass the limit.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let toppedUp = 0;
    for (let trial = 0; trial < 300; trial++) {
      const limit = 1 + Math.floor(random() * 60);
      const reserve = { by: "t1", slots: reserveSlots(limit) || 1 + Math.floor(random() * 5), forMs: 10_000 };
      let memory = empty;
      let stored = empty;
      let pending: { written: BrakeState; slots: Reservation } | undefined;
      const land = () => {
        if (!pending) return;
        stored = pending.written;
        memory = withReservation(memory, pending.slots);
        pending = undefined;
        toppedUp++;
      };
      let allowed = 0;
      const crashAt = Math.floor(random() * 80);
      let at = t0;
      for (let i = 0; i < crashAt; i++) {
        at += Math.floor(random() * 3000);
        if (random() < 0.4) land();
        let next = requestDeprovision(memory, `p${i}`, limit, at, reserve);
        if (next.persist === "before" && pending) {
          land();
          next = requestDeprovision(memory, `p${i}`, limit, at, reserve);
        }
        memory = next.state;
        if (next.persist === "before") stored = memory;
        if (next.decision.allowed) allowed++;
        if (next.persist === "later" && !pending) {
          const slots = topUp(memory, limit, at, reserve);
          if (slots) pending = { written: withReservation(memory, slots), slots };
        }
        expect(countedInHour(stored)).toBeGreaterThanOrEqual(allowed);
      }
      // Restart from what was stored, under a new term, within the same hour.
      let after = stored;
      for (let i = 0; i < 80; i++) {
        const next = requestDeprovision(after, `q${i}`, limit, at + 1 + i, { ...reserve, by: "t2" });
        after = next.state;
        if (next.decision.allowed) allowed++;
      }
      expect(allowed).toBeLessThanOrEqual(limit);
    }
    expect(toppedUp).toBeGreaterThan(100); // the top-ups were exercised, not skipped
  });

  it("tops up once half the own slots are filled, back to the full number, within the limit", () => {
    const five = { ...mine, slots: 5 };
    let state = requestDeprovision(empty, "a0", 100, t0, five).state; // a0 counted, 5 ahead
    let filled = 0;
    const fill = (n: number) => {
      for (let i = 0; i < n; i++)
        state = requestDeprovision(state, `f${++filled}`, 100, t0 + filled, five).state;
    };
    fill(2); // 3 left: more than half
    expect(topUp(state, 100, t0 + 10, five)).toBeUndefined();
    fill(1); // 2 left
    expect(topUp(state, 100, t0 + 10, five)).toEqual({ by: "me", until: "2026-06-01T12:00:10Z", count: 3 });
    // Within the limit: 4 counted + 2 slots = 6 of 8 leaves room for 2.
    expect(topUp(state, 8, t0 + 10, five)?.count).toBe(2);
    expect(topUp(state, 6, t0 + 10, five)).toBeUndefined();
    // Another term's slots are not its own: they count against the limit, not toward the half.
    const theirs = withReservation(state, { by: "other", until: "2026-06-01T12:00:05Z", count: 40 });
    expect(topUp(theirs, 100, t0 + 10, five)?.count).toBe(3);
    // Own slots past their time are gone: it tops up to the full number.
    expect(topUp(state, 100, t0 + 20_000, five)?.count).toBe(5);
    // A latched brake, or no slots to take, takes none.
    expect(
      topUp({ ...state, held: [{ account: "x", at: "2026-06-01T12:00:00Z" }] }, 100, t0, five),
    ).toBeUndefined();
    expect(topUp(state, 100, t0, { ...five, slots: 0 })).toBeUndefined();
  });

  it("takes 5% of the limit ahead, at most 50", () => {
    expect([3, 20, 100, 1000, 100000].map(reserveSlots)).toEqual([0, 1, 5, 50, 50]);
  });
});
