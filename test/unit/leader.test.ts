// Leader election's expiry decision (client-go's rule: this replica's own clock since it last saw
// the Lease change), and whole electors on an in-memory Lease with clocks that disagree.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { V1Lease } from "@kubernetes/client-node";
import {
  LeaderElector,
  LeaseObservation,
  MAX_WRITE_MS,
  leaseExpired,
  maxWriteMs,
} from "../../src/controller/leader.ts";
import type { LeaseApi } from "../../src/kube/api.ts";

const MINUTE = 60_000;

describe("leaseExpired", () => {
  it("is true only once more than the lease duration has passed on the local clock", () => {
    expect(leaseExpired(1000, 15_000, 1000)).toBe(false);
    expect(leaseExpired(1000, 15_000, 16_000)).toBe(false); // exactly the duration: still valid
    expect(leaseExpired(1000, 15_000, 16_001)).toBe(true);
  });
});

describe("LeaseObservation", () => {
  const lease = (renewTime: string, resourceVersion: string, holderIdentity = "a"): V1Lease => ({
    metadata: { name: "l", resourceVersion },
    spec: { holderIdentity, leaseDurationSeconds: 15, renewTime: new Date(renewTime) },
  });

  it("counts the duration from when the record was first seen, whatever its renewTime says", () => {
    const o = new LeaseObservation();
    expect(o.expired(0)).toBe(true); // nothing seen yet
    // A renewTime an hour in the past (the holder's clock is behind ours): not expired.
    expect(o.observe(lease("2000-01-01T00:00:00Z", "1"), 100)).toBe(true);
    expect(o.expired(100 + 15_000)).toBe(false);
    expect(o.expired(100 + 15_001)).toBe(true);
  });

  it("restarts the count on any change of the record, a new resourceVersion included", () => {
    const o = new LeaseObservation();
    o.observe(lease("2030-01-01T00:00:00Z", "1"), 0);
    expect(o.observe(lease("2030-01-01T00:00:00Z", "1"), 10_000)).toBe(false); // same record
    expect(o.since).toBe(0);
    expect(o.observe(lease("2030-01-01T00:00:00Z", "2"), 14_000)).toBe(true); // rewritten as is
    expect(o.expired(20_000)).toBe(false);
    expect(o.observe(lease("2030-01-01T00:00:02Z", "2"), 25_000)).toBe(true); // renewTime moved
    expect(o.observe(lease("2030-01-01T00:00:02Z", "2", "b"), 26_000)).toBe(true); // holder changed
    expect(o.holder).toBe("b");
    expect(o.expired(26_000 + 15_001)).toBe(true);
  });

  it("uses the Lease's own duration, and the default only when it has none", () => {
    const o = new LeaseObservation();
    const released: V1Lease = { metadata: { resourceVersion: "9" }, spec: { leaseDurationSeconds: 1 } };
    o.observe(released, 0, 15_000);
    expect(o.expired(1001)).toBe(true);
    o.observe({ metadata: { resourceVersion: "10" }, spec: {} }, 2000, 15_000);
    expect(o.expired(2000 + 15_000)).toBe(false);
    expect(o.expired(2000 + 15_001)).toBe(true);
  });
});

describe("maxWriteMs", () => {
  it("stays below the margin between the renew deadline and the lease duration", () => {
    expect(maxWriteMs(15_000, 10_000)).toBe(4000);
    expect(MAX_WRITE_MS).toBe(4000);
    expect(maxWriteMs(3000, 2000)).toBeLessThan(1000);
    expect(maxWriteMs(3000, 2000)).toBeGreaterThan(0);
  });
});

// --- electors on an in-memory Lease ----------------------------------------------------------

type Write = { at: number; holder: string };

/** The Lease API as the API server implements it: 404, create 409, replace on resourceVersion. */
function fakeLeaseApi() {
  let stored: V1Lease | undefined;
  let rv = 0;
  const writes: Write[] = [];
  const copy = (l: V1Lease): V1Lease => structuredClone(l);
  const keep = (body: V1Lease): V1Lease => {
    stored = copy({ ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } });
    writes.push({ at: Date.now(), holder: stored.spec?.holderIdentity ?? "" });
    return copy(stored);
  };
  const api = {
    readNamespacedLease: async () => {
      if (!stored) throw Object.assign(new Error("not found"), { code: 404 });
      return copy(stored);
    },
    createNamespacedLease: async ({ body }: { body: V1Lease }) => {
      if (stored) throw Object.assign(new Error("exists"), { code: 409 });
      return keep(body);
    },
    replaceNamespacedLease: async ({ body }: { body: V1Lease }) => {
      if (body.metadata?.resourceVersion !== stored?.metadata?.resourceVersion)
        throw Object.assign(new Error("conflict"), { code: 409 });
      return keep(body);
    },
  };
  return { leases: api as unknown as LeaseApi, writes, lease: () => stored };
}

type Clock = { wallOffsetMs: number; monotonicOriginMs: number };

function elector(leases: LeaseApi, identity: string, clock: Clock) {
  const started: number[] = [];
  const stopped: number[] = [];
  const e = new LeaderElector(leases, {
    namespace: "default",
    name: "unit",
    identity,
    // The defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    onStartedLeading: () => started.push(Date.now()),
    onStoppedLeading: () => stopped.push(Date.now()),
    // Date.now is the fake timers' clock: the "true" time. Each replica reads it off by its offset;
    // monotonic clocks of different machines have unrelated origins.
    now: () => Date.now() + clock.wallOffsetMs,
    monotonicNow: () => Date.now() - clock.monotonicOriginMs,
  });
  void e.run();
  return { e, started, stopped };
}

describe("LeaderElector with clocks that disagree", () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date("2030-06-01T12:00:00Z") }));
  afterEach(() => vi.useRealTimers());

  const scenarios: [string, number][] = [
    ["5 minutes ahead of", 5 * MINUTE],
    ["5 minutes behind", -5 * MINUTE],
    ["a day ahead of", 24 * 60 * MINUTE],
  ];

  for (const [how, skew] of scenarios) {
    it(`a standby whose wall clock runs ${how} the leader's waits while the leader renews, and takes over a lease duration after it stops`, async () => {
      const { leases, writes, lease } = fakeLeaseApi();
      const leader = elector(leases, "leader", { wallOffsetMs: 0, monotonicOriginMs: 0 });
      await vi.advanceTimersByTimeAsync(100);
      expect(leader.e.isLeader()).toBe(true);
      const standby = elector(leases, "standby", { wallOffsetMs: skew, monotonicOriginMs: -7e9 });

      // Ten minutes of renewals: the standby never takes the Lease, the leader never loses it.
      await vi.advanceTimersByTimeAsync(10 * MINUTE);
      expect(standby.started).toEqual([]);
      expect(standby.e.isLeader()).toBe(false);
      expect(leader.e.isLeader()).toBe(true);
      expect(leader.e.mayWrite()).toBe(true);
      expect(leader.stopped).toEqual([]);
      expect(writes.every((w) => w.holder === "leader")).toBe(true);
      expect(lease()?.spec?.leaseTransitions).toBe(0);

      // The leader crashes (no release). The standby takes over once it has seen no renewal for
      // the lease duration by its own clock, wherever its wall clock stands.
      leader.e.stop();
      const lastRenewal = writes.at(-1)!.at;
      await vi.advanceTimersByTimeAsync(30_000);
      expect(standby.e.isLeader()).toBe(true);
      const takeover = writes.find((w) => w.holder === "standby")!.at;
      expect(takeover - lastRenewal).toBeGreaterThan(15_000);
      // At most a read period (2 s + 20 % jitter) to see the last renewal, and one more to act.
      expect(takeover - lastRenewal).toBeLessThan(15_000 + 2 * 2400 + 100);
      expect(lease()?.spec?.holderIdentity).toBe("standby");
      expect(lease()?.spec?.leaseTransitions).toBe(1);
      // The new holder's wall clock is what the Lease shows (for people; no decision reads it).
      expect(new Date(lease()!.spec!.renewTime!).getTime() - Date.now()).toBeGreaterThan(skew - 3000);
      standby.e.stop();
    });
  }

  it("a leader's wall clock stepping (NTP) changes nothing: deadlines run on the monotonic clock", async () => {
    const { leases, writes } = fakeLeaseApi();
    const leaderClock = { wallOffsetMs: 0, monotonicOriginMs: 0 };
    const leader = elector(leases, "leader", leaderClock);
    await vi.advanceTimersByTimeAsync(100);
    const standby = elector(leases, "standby", { wallOffsetMs: 0, monotonicOriginMs: 123_456 });
    await vi.advanceTimersByTimeAsync(MINUTE);
    leaderClock.wallOffsetMs = -60 * MINUTE; // stepped an hour back
    await vi.advanceTimersByTimeAsync(MINUTE);
    leaderClock.wallOffsetMs = 60 * MINUTE; // and two hours forward
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(leader.e.isLeader()).toBe(true);
    expect(leader.e.mayWrite()).toBe(true);
    expect(leader.stopped).toEqual([]);
    expect(standby.started).toEqual([]);
    expect(writes.every((w) => w.holder === "leader")).toBe(true);
    leader.e.stop();
    standby.e.stop();
  });

  it("a standby that starts next to a Lease held by another waits a full lease duration", async () => {
    const { leases, writes } = fakeLeaseApi();
    // A holder that wrote the Lease and then went silent, its renewTime far in the past: the
    // standby cannot tell how long ago that really was, so it counts from its first read.
    const gone = elector(leases, "gone", { wallOffsetMs: -60 * MINUTE, monotonicOriginMs: 0 });
    await vi.advanceTimersByTimeAsync(100);
    gone.e.stop();
    const lastRenewal = writes.at(-1)!.at;
    const standby = elector(leases, "standby", { wallOffsetMs: 0, monotonicOriginMs: 0 });
    await vi.advanceTimersByTimeAsync(14_000);
    expect(standby.e.isLeader()).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(standby.e.isLeader()).toBe(true);
    expect(writes.find((w) => w.holder === "standby")!.at - lastRenewal).toBeGreaterThan(15_000);
    standby.e.stop();
  });

  it("mayWrite() turns false once the renew deadline has passed on the monotonic clock", async () => {
    const { leases } = fakeLeaseApi();
    let frozen = 0;
    const leader = new LeaderElector(leases, {
      namespace: "default",
      name: "unit-frozen",
      identity: "leader",
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
      now: () => Date.now(),
      monotonicNow: () => Date.now() + frozen,
    });
    void leader.run();
    await vi.advanceTimersByTimeAsync(100);
    expect(leader.mayWrite()).toBe(true);
    frozen = 10_000; // the process slept 10 s without any timer running
    expect(leader.mayWrite()).toBe(false);
    leader.stop();
  });
});
