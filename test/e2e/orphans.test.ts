// orphans: Disable (api.md): accounts in the managed scope that no Employee owns. Only those that
// carry an employeeId (Roster made them; their Employee is gone) are acted on, through the brake;
// accounts without one and protected accounts are left exactly as they are. Real API server and
// slapd, the operator a separate process.
import { afterAll, describe, expect, inject, it } from "vitest";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Connector } from "../../src/api/types.ts";
import { waitFor } from "../harness/processes.ts";
import { getRoster } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import { counterOrZero, startOperator } from "../support/operator.ts";
import { scenario } from "../support/scenario.ts";

const info = inject("harness");
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

describe("orphans: Disable", () => {
  it(
    "disables orphans Roster made, through the brake; never one without an employeeId or a protected one",
    { timeout: 120_000 },
    async () => {
      const s = await scenario(info, "orphans", {
        orphans: "Disable",
        drift: { resyncInterval: "2s" },
        protected: { usernames: ["keeper"] },
        safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 },
      });
      cleanups.push(() => s.close());
      const entry = async (uid: string, employeeNumber?: string) => {
        const dn = `uid=${uid},${s.usersDN}`;
        await s.ldap.client.add(dn, {
          objectClass: ["inetOrgPerson"],
          uid,
          cn: uid,
          sn: "Orphan",
          ...(employeeNumber ? { employeeNumber } : {}),
        });
        return dn;
      };
      const gone = [
        await entry("gone1", "GONE-1"),
        await entry("gone2", "GONE-2"),
        await entry("gone3", "GONE-3"),
      ];
      const untouched = [await entry("keeper", "GONE-4"), await entry("nokey")];
      const csn = async (dn: string) =>
        attr(
          (await s.ldap.client.search(dn, { scope: "base", attributes: ["entryCSN"] })).searchEntries[0],
          "entryCSN",
        )[0];
      const before = await Promise.all(untouched.map(csn));
      const locked = async (dn: string) =>
        attr(
          (await s.ldap.client.search(dn, { scope: "base", attributes: ["pwdAccountLockedTime"] }))
            .searchEntries[0],
          "pwdAccountLockedTime",
        ).length > 0;

      const operator = await startOperator({ namespace: s.namespace, leaderElection: false });
      cleanups.push(() => operator.stop());
      const connector = async () =>
        (await getRoster(s.kube, s.namespace, "Connector", s.connector)) as unknown as Connector;
      // One an hour: the first orphan is disabled, the other two wait for approval.
      await waitFor(
        async () => (await connector()).status?.heldDeprovisions === 2,
        60_000,
        () => `the brake does not hold two orphans:\n${operator.tail(20)}`,
        500,
      );
      const disabled = [];
      for (const dn of gone) if (await locked(dn)) disabled.push(dn);
      expect(disabled).toHaveLength(1);
      // Two more scans: the protected account and the one without an employeeId stay as they were.
      const scans = async () =>
        counterOrZero(await operator.metrics(), "controller_runtime_reconcile_total", { controller: "scan" });
      const seen = await scans();
      await waitFor(
        async () => (await scans()) >= seen + 2,
        30_000,
        () => "no full scan ran",
      );
      expect(await Promise.all(untouched.map(csn))).toEqual(before);
      expect(await Promise.all(untouched.map(locked))).toEqual([false, false]);
      const events = await s.eventsUntil(s.connector, "an OrphanDisabled Event", (events) =>
        events.some((e) => e.reason === "OrphanDisabled"),
      );
      expect(events.filter((e) => e.reason === "OrphanDisabled")).toEqual([
        expect.objectContaining({ message: expect.stringContaining(disabled[0]) }),
      ]);

      // The exact approval releases the two held.
      await s.kube.custom.patchNamespacedCustomObject(
        {
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "connectors",
          name: s.connector,
          body: { metadata: { annotations: { "roster.dev/approve-deprovisioning": "2" } } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await waitFor(
        async () => (await Promise.all(gone.map(locked))).every(Boolean),
        60_000,
        () => `the approved orphans were not disabled:\n${operator.tail(20)}`,
        500,
      );
      expect(await Promise.all(untouched.map(csn))).toEqual(before);
    },
  );
});
