// The operator under trouble: the directory goes away mid-hire, the operator is SIGKILLed in the
// middle of a batch, and two replicas run at once.
import { afterAll, describe, expect, inject, it } from "vitest";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { startSlapd, type Slapd } from "../harness/slapd.ts";
import { waitFor } from "../harness/processes.ts";
import { attr } from "../support/ldap.ts";
import { counterOrZero, requireMetric, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function withOperator(options: Parameters<typeof startOperator>[0]): Promise<OperatorProcess> {
  const operator = await startOperator(options);
  cleanups.push(() => operator.stop());
  return operator;
}

describe("resilience", () => {
  it("slapd stopped during a hire: status shows the failure, retries back off, the person converges once slapd is back", async () => {
    const slapd: Slapd = await startSlapd();
    cleanups.push(() => slapd.stop());
    const ldapInfo = { ...info.ldap, ...slapd };
    const s: Scenario = await scenario(info, "slapd-down", {}, ldapInfo);
    cleanups.push(() => s.close());
    await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
    const operator = await withOperator({
      namespace: s.namespace,
      leaderElection: false,
    });

    await slapd.kill();
    await s.apply("Employee", "dee", person("E500", "dee"));
    const failed = await s.until("dee", "Failed while slapd is down", (e) => e.status?.phase === "Failed");
    expect(readyCondition(failed)).toMatchObject({ status: "False", reason: "TargetError" });
    expect(failed.status?.accounts?.[0]).toMatchObject({ connector: s.connector, state: "Failed" });
    expect(
      (await s.events("dee")).some((e) => e.type === "Warning" && e.reason === "ProvisioningFailed"),
    ).toBe(true);

    // Backoff: over a few seconds the retries are few, not a hot loop.
    // Absent counts as 0 here: the Failed status is written before the failing reconcile hands the
    // key back for a retry, so the first retry may not have been counted (nor the series created) yet.
    // `during` below must still reach 1, which it cannot without the series.
    const retriesAt = async () =>
      counterOrZero(await operator.metrics(), "workqueue_retries_total", { name: "employee" });
    const before = await retriesAt();
    await new Promise((r) => setTimeout(r, 4000));
    const during = (await retriesAt()) - before;
    expect(during).toBeGreaterThanOrEqual(1);
    expect(during).toBeLessThan(15);

    await slapd.restart();
    await s.ldap.close();
    s.ldap = await (await import("../support/ldap.ts")).ldapLook(ldapInfo);
    const ok = await s.until(
      "dee",
      "Active after slapd is back",
      (e) => e.status?.phase === "Active",
      90_000,
    );
    expect(readyCondition(ok)?.status).toBe("True");
    expect(await s.ldap.people(s.usersDN, "E500")).toHaveLength(1);
  });

  it("the operator killed with SIGKILL in the middle of 200 hires: every person converges, no duplicates", async () => {
    const s = await scenario(info, "sigkill");
    cleanups.push(() => s.close());
    await s.apply("AccessPolicy", "everyone", {
      grants: [{ connector: s.connector, groups: ["staff", "all-hands"] }],
    });
    const first = await withOperator({
      namespace: s.namespace,
      leaderElection: false,
    });
    const count = 200;
    const names = Array.from({ length: count }, (_, i) => `p${String(i).padStart(3, "0")}`);
    for (let i = 0; i < count; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((n, j) => s.apply("Employee", n, person(`K${i + j}`, n))));
    }
    const entries = async () =>
      (
        await s.ldap.client.search(s.usersDN, {
          scope: "one",
          filter: "(employeeNumber=*)",
          attributes: ["employeeNumber"],
        })
      ).searchEntries;
    await waitFor(
      async () => (await entries()).length >= 20,
      60_000,
      () => "the first hires did not happen",
    );
    await first.kill();
    const provisionedAtKill = (await entries()).length;
    expect(provisionedAtKill).toBeLessThan(count);

    await withOperator({
      namespace: s.namespace,
      leaderElection: false,
    });
    await waitFor(
      async () => {
        const list = (await s.kube.custom.listNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "employees",
        })) as { items: { status?: { phase?: string } }[] };
        return list.items.filter((e) => e.status?.phase === "Active").length === count;
      },
      180_000,
      () => "not every Employee became Active",
      500,
    );
    const all = await entries();
    expect(all).toHaveLength(count);
    expect(new Set(all.map((e) => attr(e, "employeeNumber")[0])).size).toBe(count);
    expect(await s.ldap.members(s.groupsDN, "all-hands")).toHaveLength(count);
  });

  it("two operator processes at once: only the lease holder writes, and the other takes over when it stops", async () => {
    const s = await scenario(info, "two");
    cleanups.push(() => s.close());
    await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
    const a = await withOperator({ namespace: s.namespace, leaseName: `two-${s.namespace}` });
    const b = await withOperator({ namespace: s.namespace, leaseName: `two-${s.namespace}` });
    const leases = s.kube.kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (
        await leases.readNamespacedLease({
          name: `two-${s.namespace}`,
          namespace: info.operator.leaseNamespace,
        })
      ).spec?.holderIdentity;
    await waitFor(
      async () => !!(await holder()),
      20_000,
      () => "nobody took the lease",
    );

    for (const n of ["q1", "q2", "q3"]) await s.apply("Employee", n, person(`Q-${n}`, n));
    for (const n of ["q1", "q2", "q3"]) await s.until(n, "Active", (e) => e.status?.phase === "Active");

    // Absent counts as 0 here: a standby that has never reconciled has no series for it at all.
    // Exactly one of the two must show reconciles, so this cannot pass with the counting gone.
    const reconciles = async (o: OperatorProcess) =>
      counterOrZero(await o.metrics(), "controller_runtime_reconcile_total", { controller: "employee" });
    const [ra, rb] = [await reconciles(a), await reconciles(b)];
    expect([ra, rb].filter((n) => n > 0)).toHaveLength(1);
    const [leader, standby] = ra > 0 ? [a, b] : [b, a];
    expect(requireMetric(await leader.metrics(), "leader_election_master_status")).toBe(1);
    expect(requireMetric(await standby.metrics(), "leader_election_master_status")).toBe(0);

    // A graceful stop releases the lease; the standby takes over promptly and carries on.
    await leader.stop();
    await s.apply("Employee", "q4", person("Q-q4", "q4"));
    await s.until("q4", "Active under the new leader", (e) => e.status?.phase === "Active", 30_000);
    expect(await reconciles(standby)).toBeGreaterThan(0);
    expect(await s.ldap.people(s.usersDN, "Q-q4")).toHaveLength(1);
  });
});
