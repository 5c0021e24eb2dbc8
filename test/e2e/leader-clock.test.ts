// Two operator processes on one Lease, the standby's clock 5 minutes ahead of the leader's (its
// Date is shifted by a module preloaded with --import, so the operator itself is unchanged): the
// standby must not take over while the leader renews, and must take over about a lease duration
// (15 s, the operator's default) after the leader is killed without releasing the Lease.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { registerDirectory, waitFor } from "../harness/processes.ts";
import { freshNamespace, kubeFrom } from "../support/kube.ts";
import { requireMetric, startOperator, type OperatorProcess } from "../support/operator.ts";

const info = inject("harness");
const SKEW_MS = 5 * 60_000;
const LEASE_DURATION_MS = 15_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

/** A module that makes Date (Date.now, new Date()) run `offsetMs` off the machine's clock. */
function clockSkewModule(offsetMs: number): string {
  const dir = mkdtempSync(join(tmpdir(), "roster-clock-"));
  registerDirectory(dir);
  const file = join(dir, "skew.mjs");
  writeFileSync(
    file,
    `const RealDate = globalThis.Date;
const offset = ${offsetMs};
class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }
  static now() {
    return RealDate.now() + offset;
  }
}
globalThis.Date = SkewedDate;
process.stderr.write("clock-skew: " + new Date().toISOString() + "\\n");
`,
  );
  return pathToFileURL(file).href;
}

/** startOperator with the child's clock shifted (it inherits process.env when spawned). */
async function startSkewedOperator(
  offsetMs: number,
  options: Parameters<typeof startOperator>[0],
): Promise<OperatorProcess> {
  const saved = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${saved ? `${saved} ` : ""}--import=${clockSkewModule(offsetMs)}`;
  try {
    return await startOperator(options);
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
}

const masterStatus = async (o: OperatorProcess) =>
  requireMetric(await o.metrics(), "leader_election_master_status");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("leader election across skewed clocks", () => {
  it("a standby whose clock runs 5 minutes ahead waits while the leader renews, and takes over a lease duration after the leader is killed", async () => {
    const kube = kubeFrom(info);
    const namespace = await freshNamespace(kube, "clock");
    const leaseName = `clock-${namespace}`;
    const leases = kube.kc.makeApiClient(CoordinationV1Api);
    const readLease = () =>
      leases.readNamespacedLease({ name: leaseName, namespace: info.operator.leaseNamespace });

    const leader = await startOperator({ namespace, leaseName });
    cleanups.push(() => leader.stop());
    await waitFor(
      async () => (await masterStatus(leader)) === 1,
      20_000,
      () => `the first operator did not lead:\n${leader.tail(20)}`,
    );
    const leaderIdentity = (await readLease()).spec?.holderIdentity;
    expect(leaderIdentity).toBeTruthy();

    const standby = await startSkewedOperator(SKEW_MS, { namespace, leaseName });
    cleanups.push(() => standby.stop());
    // The skew is in effect in the standby (its preload says what time it believes it is).
    const believed = /^clock-skew: (\S+)$/m.exec(standby.tail(1000))?.[1];
    expect(believed, standby.tail(20)).toBeDefined();
    expect(new Date(believed!).getTime() - Date.now()).toBeGreaterThan(SKEW_MS - 60_000);

    // More than a lease duration of renewals: the Lease stays the leader's, the leader keeps
    // leading (it does not see itself displaced and exit), the standby never leads.
    const watchUntil = Date.now() + LEASE_DURATION_MS + 10_000;
    while (Date.now() < watchUntil) {
      expect((await readLease()).spec?.holderIdentity).toBe(leaderIdentity);
      expect(await masterStatus(standby)).toBe(0);
      expect(await masterStatus(leader)).toBe(1);
      await sleep(500);
    }
    expect(leader.child.exitCode).toBeNull();
    expect(standby.logLines().some((l) => l.msg === "became leader")).toBe(false);

    // Killed: no release, the Lease stays held until the standby has seen it unchanged for the
    // lease duration by its own clock.
    const lastRenewed = (await readLease()).metadata?.resourceVersion;
    const killed = Date.now();
    await leader.kill();
    await waitFor(
      async () => (await masterStatus(standby)) === 1,
      LEASE_DURATION_MS + 15_000,
      () => `the standby did not take over:\n${standby.tail(20)}`,
      200,
    );
    const after = Date.now() - killed;
    // The leader renewed at most a retry period (2 s) before it was killed.
    expect(after).toBeGreaterThanOrEqual(LEASE_DURATION_MS - 2500);
    expect(after).toBeLessThan(LEASE_DURATION_MS + 8000);
    const lease = await readLease();
    expect(lease.metadata?.resourceVersion).not.toBe(lastRenewed);
    expect(lease.spec?.holderIdentity).not.toBe(leaderIdentity);
    expect(lease.spec?.leaseTransitions).toBe(1);
    // The new holder writes its own wall clock into the Lease; nothing reads it to decide.
    expect(new Date(lease.spec!.renewTime!).getTime() - Date.now()).toBeGreaterThan(SKEW_MS - 60_000);
  });
});
