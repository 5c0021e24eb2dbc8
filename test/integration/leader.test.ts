// Leader election on a real Lease: one leader at a time, fast hand-over on release, takeover after
// the lease duration on a crash, a leader that cannot renew gives up before its lease expires, and a
// standby whose clock runs ahead waits for the lease duration by its own clock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { LeaseApi } from "../../src/kube/api.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { LeaderElector, type LeaderElectorOptions } from "../../src/controller/leader.ts";
import { registry } from "../../src/observe/metrics.ts";

let cp: ControlPlane;
let leaseSeq = 0;

beforeAll(async () => {
  cp = await startControlPlane();
});

afterAll(async () => {
  await cp?.stop();
});

type Candidate = { elector: LeaderElector; started: number[]; stopped: number[] };

function candidates(
  count: number,
  name = `roster-${++leaseSeq}`,
  extra: (i: number) => Partial<LeaderElectorOptions> = () => ({}),
): Candidate[] {
  return Array.from({ length: count }, (_, i) => {
    const c: Candidate = { started: [], stopped: [], elector: undefined as unknown as LeaderElector };
    c.elector = new LeaderElector(new LeaseApi(cp.kubeconfig), {
      namespace: "default",
      name,
      identity: `replica-${i}`,
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 300,
      onStartedLeading: () => c.started.push(Date.now()),
      onStoppedLeading: () => c.stopped.push(Date.now()),
      ...extra(i),
    });
    void c.elector.run();
    return c;
  });
}

async function until<T>(get: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const leaders = (cs: Candidate[]) => cs.filter((c) => c.elector.isLeader());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("LeaderElector", () => {
  it("forbids writes the moment a frozen leader wakes past its renew deadline, before any timer runs", async () => {
    const [c] = candidates(1);
    try {
      await until(() => (c!.elector.isLeader() ? true : undefined), 10_000, "leadership");
      expect(c!.elector.mayWrite()).toBe(true);
      // Freeze the event loop (as SIGSTOP or a long pause would) past the 2 s renew deadline.
      const frozenUntil = Date.now() + 2300;
      while (Date.now() < frozenUntil) {
        // busy
      }
      expect(c!.elector.mayWrite()).toBe(false);
    } finally {
      c!.elector.stop();
    }
  });

  it("elects exactly one leader, and hands over promptly on release", async () => {
    const cs = candidates(2);
    try {
      const leader = await until(() => leaders(cs)[0], 10_000, "a leader");
      for (let i = 0; i < 10; i++) {
        expect(leaders(cs)).toHaveLength(1);
        await sleep(200);
      }
      const standby = cs.find((c) => c !== leader)!;
      expect(standby.started).toEqual([]);
      const metrics = await registry.getSingleMetricAsString("leader_election_master_status");
      expect(metrics).toMatch(/leader_election_master_status\{name="roster-\d+"\} 1/);

      const released = Date.now();
      await leader.elector.release();
      expect(leader.elector.isLeader()).toBe(false);
      expect(leader.stopped).toEqual([]); // a release is not a loss
      await until(() => (standby.elector.isLeader() ? true : undefined), 5000, "standby takes over");
      expect(Date.now() - released).toBeLessThan(2000);

      const lease = await cp.kubeconfig
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: `roster-${leaseSeq}`, namespace: "default" });
      expect(lease.spec?.holderIdentity).toBe(standby.elector.identity);
      expect(lease.spec?.leaseTransitions).toBeGreaterThanOrEqual(1);
    } finally {
      for (const c of cs) await c.elector.release();
    }
  });

  it("takes over from a crashed leader only after the lease duration", async () => {
    const cs = candidates(2);
    try {
      const leader = await until(() => leaders(cs)[0], 10_000, "a leader");
      const standby = cs.find((c) => c !== leader)!;
      await sleep(500); // let it renew at least once
      const crashed = Date.now();
      leader.elector.stop(); // no release: the Lease stays held until it expires
      await until(() => (standby.elector.isLeader() ? true : undefined), 10_000, "standby takes over");
      const after = Date.now() - crashed;
      // The last renewal was at most one retry period (300 ms) before the crash; lease is 3 s.
      expect(after).toBeGreaterThanOrEqual(2500);
      expect(after).toBeLessThan(5000);
    } finally {
      for (const c of cs) await c.elector.release();
    }
  });

  it("a standby whose wall clock runs 5 minutes ahead does not take over while the leader renews, and takes over a lease duration after it crashes", async () => {
    const name = `roster-${++leaseSeq}`;
    // replica-0 starts alone and leads; replica-1's wall clock (what it writes as renewTime, and
    // what a comparison with the leader's renewTime would use) is 5 minutes ahead.
    const [leader] = candidates(1, name);
    await until(() => (leader!.elector.isLeader() ? true : undefined), 10_000, "a leader");
    const [standby] = candidates(1, name, () => ({
      identity: "replica-ahead",
      now: () => Date.now() + 5 * 60_000,
    }));
    const leases = cp.kubeconfig.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ name, namespace: "default" })).spec?.holderIdentity;
    try {
      // Three lease durations of renewals: the standby must stay a standby all along.
      for (let i = 0; i < 30; i++) {
        expect(standby!.started).toEqual([]);
        expect(leader!.elector.mayWrite()).toBe(true);
        expect(await holder()).toBe(leader!.elector.identity);
        await sleep(300);
      }
      expect(leader!.stopped).toEqual([]);

      const crashed = Date.now();
      leader!.elector.stop(); // no release
      await until(() => (standby!.elector.isLeader() ? true : undefined), 10_000, "standby takes over");
      const after = Date.now() - crashed;
      // Last renewal at most 300 ms before the crash; the standby counts the 3 s from when it saw it.
      expect(after).toBeGreaterThanOrEqual(2500);
      expect(after).toBeLessThan(5000);
      const lease = await leases.readNamespacedLease({ name, namespace: "default" });
      expect(lease.spec?.holderIdentity).toBe("replica-ahead");
      // The standby stamped the Lease with its own (skewed) wall clock.
      expect(new Date(lease.spec!.renewTime!).getTime() - Date.now()).toBeGreaterThan(4 * 60_000);
    } finally {
      await standby!.elector.release();
      await leader!.elector.release();
    }
  });

  it("a leader that cannot renew stops leading before its lease could expire", async () => {
    const [only] = candidates(1);
    try {
      await until(() => (only!.elector.isLeader() ? true : undefined), 10_000, "leader");
      await sleep(500);
      const outage = Date.now();
      const restart = cp.restartApiServer(); // the API server is down for several seconds
      const lostAt = await until(() => only!.stopped[0], 10_000, "onStoppedLeading");
      expect(only!.elector.isLeader()).toBe(false);
      // Renewed at most 300 ms before the outage; it must give up within the renew deadline
      // (2 s) and so before the 3 s lease could let another replica in.
      expect(lostAt - outage).toBeLessThan(2700);
      expect(only!.stopped).toHaveLength(1);
      await restart;
    } finally {
      await only!.elector.release();
    }
  });
});
