// Access decisions end to end: GroupRules (Authoritative and Additive), time-bound grants, policy
// status, and change propagation that touches only the people an edit affects.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Watch } from "@kubernetes/client-node";
import { waitFor } from "../harness/processes.ts";
import { getRoster } from "../support/kube.ts";
import { COUNTS_WAIT_MS, requireMetric, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let operator: OperatorProcess;

beforeAll(async () => {
  s = await scenario(info, "access");
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  operator = await startOperator({
    namespace: s.namespace,
    leaderElection: false,
  });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

const groupsOf = async (employeeId: string) =>
  s.ldap.groupsOf(s.groupsDN, (await s.ldap.person(s.usersDN, employeeId))!.dn);

describe("GroupRules", () => {
  it("Authoritative: pushes the group to matching people who have an account, removes those who stop matching", async () => {
    await s.apply("GroupRule", "managers", {
      group: "managers",
      match: [{ key: "title", operator: "Matches", values: ["(?i)manager"] }],
      connectors: [s.connector],
    });
    await s.apply("Employee", "mia", person("A1", "mia", { title: "Engineering Manager" }));
    await s.apply("Employee", "max", person("A2", "max", { title: "Engineer" }));
    const mia = await s.until(
      "mia",
      "in managers",
      (e) => !!e.status?.accounts?.[0]?.groups?.includes("managers"),
    );
    expect(mia.status?.entitlements).toContainEqual({
      connector: s.connector,
      group: "managers",
      source: "GroupRule/managers",
    });
    await s.until("max", "Active", (e) => e.status?.phase === "Active");
    expect(await groupsOf("A2")).toEqual(["staff"]);
    await waitFor(
      async () =>
        ((await getRoster(s.kube, s.namespace, "GroupRule", "managers")).status as { memberCount?: number })
          ?.memberCount === 1,
      COUNTS_WAIT_MS,
      () => "GroupRule memberCount is not 1",
    );

    await s.apply("Employee", "mia", person("A1", "mia", { title: "Engineer" }));
    await s.until("mia", "out of managers", (e) => !e.status?.accounts?.[0]?.groups?.includes("managers"));
    expect(await groupsOf("A1")).toEqual(["staff"]);
  });

  it("a GroupRule never creates an account", async () => {
    await s.apply("GroupRule", "crm-users", { group: "crm-users", connectors: ["crm"] });
    await s.apply("Employee", "noa", person("A3", "noa"));
    const noa = await s.until("noa", "Active", (e) => e.status?.phase === "Active");
    expect(noa.status?.accounts?.map((a) => a.connector)).toEqual([s.connector]);
  });

  it("Additive: keeps members someone added by hand, and removes only members it added", async () => {
    await s.apply("GroupRule", "oncall", {
      group: "oncall",
      match: [{ key: "attributes.oncall", operator: "In", values: ["yes"] }],
      connectors: [s.connector],
      membership: "Additive",
    });
    await s.apply("Employee", "ola", person("A4", "ola", { attributes: { oncall: "yes" } }));
    await s.apply("Employee", "pia", person("A5", "pia"));
    await s.until("ola", "in oncall", (e) => !!e.status?.accounts?.[0]?.groups?.includes("oncall"));
    await s.until("pia", "Active", (e) => e.status?.phase === "Active");
    // pia is added to oncall by hand.
    const piaDN = (await s.ldap.person(s.usersDN, "A5"))!.dn;
    await s.ldap.client.modify(`cn=oncall,${s.groupsDN}`, [
      new (await import("ldapts")).Change({
        operation: "add",
        modification: new (await import("ldapts")).Attribute({ type: "member", values: [piaDN] }),
      }),
    ]);
    // Any change to pia makes the operator look at her again; the hand-added membership stays.
    await s.apply("Employee", "pia", person("A5", "pia", { title: "Analyst" }));
    await s.until(
      "pia",
      "title applied",
      (e) => e.status?.observedGeneration === e.metadata.generation && e.status?.phase === "Active",
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await groupsOf("A5")).toEqual(["oncall", "staff"]);
    // ola stops matching: the operator added her, so it removes her.
    await s.apply("Employee", "ola", person("A4", "ola", { attributes: { oncall: "no" } }));
    await s.until("ola", "out of oncall", (e) => !e.status?.accounts?.[0]?.groups?.includes("oncall"));
    expect(await groupsOf("A4")).toEqual(["staff"]);
    expect(await groupsOf("A5")).toEqual(["oncall", "staff"]);
  });
});

describe("individual grants", () => {
  it("a grant with until a few seconds ahead is removed when it expires, with an Event", async () => {
    const until = new Date(Date.now() + 4000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await s.apply(
      "Employee",
      "quinn",
      person("A6", "quinn", { grants: [{ connector: s.connector, groups: ["project-apollo"], until }] }),
    );
    const granted = await s.until(
      "quinn",
      "in project-apollo",
      (e) => !!e.status?.accounts?.[0]?.groups?.includes("project-apollo"),
    );
    expect(granted.status?.entitlements).toContainEqual({
      connector: s.connector,
      group: "project-apollo",
      source: "Grant",
    });
    expect(await groupsOf("A6")).toEqual(["project-apollo", "staff"]);
    await s.until(
      "quinn",
      "grant expired",
      (e) => !e.status?.accounts?.[0]?.groups?.includes("project-apollo"),
      20_000,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(new Date(until).getTime());
    expect(await groupsOf("A6")).toEqual(["staff"]);
    await s.eventsUntil("quinn", "a GrantExpired Event", (events) =>
      events.some((e) => e.reason === "GrantExpired"),
    );
  });
});

describe("policy status", () => {
  it("counts matched Employees and reports Ready", async () => {
    await waitFor(
      async () => {
        const policy = await getRoster(s.kube, s.namespace, "AccessPolicy", "everyone");
        const status = policy.status as {
          matchedEmployees?: number;
          conditions?: { type: string; status: string }[];
        };
        const employees = (await s.kube.custom.listNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace: s.namespace,
          plural: "employees",
        })) as { items: unknown[] };
        return (
          status?.matchedEmployees === employees.items.length &&
          status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true
        );
      },
      COUNTS_WAIT_MS,
      () => "AccessPolicy status not updated",
    );
  });
});

describe("change propagation", () => {
  it("editing a policy that affects 10 of 1,000 Employees writes the status of those 10 only", async () => {
    const t = await scenario(info, "propagation");
    const op = await startOperator({
      namespace: t.namespace,
      leaderElection: false,
      extraArgs: ["--workers", "16"],
    });
    try {
      await t.apply("AccessPolicy", "everyone", { grants: [{ connector: t.connector, groups: ["staff"] }] });
      const names = Array.from({ length: 1000 }, (_, i) => `e${String(i).padStart(4, "0")}`);
      for (let i = 0; i < names.length; i += 50) {
        await Promise.all(
          names
            .slice(i, i + 50)
            .map((n, j) =>
              t.apply(
                "Employee",
                n,
                person(`P${i + j}`, n, { department: i + j < 10 ? "Sales" : "Engineering" }),
              ),
            ),
        );
      }
      const list = async () =>
        (await t.kube.custom.listNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace: t.namespace,
          plural: "employees",
        })) as {
          metadata: { resourceVersion: string };
          items: { metadata: { name: string }; status?: { phase?: string } }[];
        };
      await waitFor(
        async () => (await list()).items.filter((e) => e.status?.phase === "Active").length === 1000,
        240_000,
        () => "not all Active",
        1000,
      );
      // Settled: nothing queued and no lookups for a while.
      const finds = async () =>
        // 1000 people were provisioned, so every one of them has been looked up: the series exists.
        requireMetric(await op.metrics(), "roster_connector_requests_total", { operation: "findAccount" });
      let last = -1;
      await waitFor(
        async () => {
          const [now, depth] = [
            await finds(),
            requireMetric(await op.metrics(), "workqueue_depth", { name: "employee" }),
          ];
          const settled = now === last && depth === 0;
          last = now;
          return settled;
        },
        60_000,
        () => "the operator did not settle",
        1000,
      );
      const { metadata } = await list();

      // Count every Employee write from now on.
      const written = new Map<string, number>();
      const watch = new Watch(t.kube.kc);
      const request = await watch.watch(
        `/apis/roster.dev/v1alpha1/namespaces/${t.namespace}/employees`,
        { resourceVersion: metadata.resourceVersion, allowWatchBookmarks: false },
        (type: string, obj: { metadata: { name: string } }) => {
          if (type === "MODIFIED") written.set(obj.metadata.name, (written.get(obj.metadata.name) ?? 0) + 1);
        },
        () => {},
      );
      const findsBefore = await finds();
      await t.apply("AccessPolicy", "sales-tools", {
        match: [{ key: "department", operator: "In", values: ["Sales"] }],
        grants: [{ connector: t.connector, groups: ["crm-users"] }],
      });
      await waitFor(
        async () => (await t.ldap.members(t.groupsDN, "crm-users")).length === 10,
        30_000,
        () => "crm-users does not have 10 members",
      );
      await new Promise((r) => setTimeout(r, 3000));
      request.abort();
      expect([...written.keys()].sort()).toEqual(names.slice(0, 10));
      // Nobody else was even looked up in the target.
      expect((await finds()) - findsBefore).toBe(10);
    } finally {
      await op.stop();
      await t.close();
    }
  });
});
