// Joiner, mover, leaver into a real slapd, driven by a real `roster operator` process against a
// real kube-apiserver; every assertion looks at what a user would: the directory, status, Events.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Client } from "ldapts";
import { attr } from "../support/ldap.ts";
import {
  counterOrZero,
  employeeQueueIdle,
  requireMetric,
  startOperator,
  type OperatorProcess,
} from "../support/operator.ts";
import { expectReady, person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";
import { waitFor } from "../harness/processes.ts";

const info = inject("harness");
let s: Scenario;
let operator: OperatorProcess;

beforeAll(async () => {
  s = await scenario(info, "lifecycle", {
    ldap: {
      attributes: { cn: "{{givenName}} {{familyName}}", description: "{{title}} ({{attributes.badge}})" },
    },
    credentials: "GeneratedSecret",
  });
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [{ connector: s.connector, groups: ["engineering", "vpn-users"] }],
  });
  await s.apply("AccessPolicy", "sales", {
    match: [{ key: "department", operator: "In", values: ["Sales"] }],
    grants: [{ connector: s.connector, groups: ["sales"] }],
  });
  operator = await startOperator({ namespace: s.namespace });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

describe("roster operator with LDAP", () => {
  it("hires: an entry with the mapped attributes and groups, Ready and Active, with an Event", async () => {
    await s.apply(
      "Employee",
      "ada",
      person("E100", "ada", { department: "Engineering", title: "Engineer", attributes: { badge: "B-7" } }),
    );
    const ada = await s.until(
      "ada",
      "Active and Ready",
      (e) => e.status?.phase === "Active" && readyCondition(e)?.status === "True",
    );
    expectReady(ada, "Active");
    const entry = await s.ldap.person(s.usersDN, "E100");
    expect(entry?.dn).toBe(`uid=ada,${s.usersDN}`);
    expect(attr(entry, "cn")).toEqual(["Ada Tester"]);
    expect(attr(entry, "sn")).toEqual(["Tester"]);
    expect(attr(entry, "mail")).toEqual(["ada@example.com"]);
    expect(attr(entry, "description")).toEqual(["Engineer (B-7)"]);
    expect(attr(entry, "departmentNumber")).toEqual(["Engineering"]);
    expect(attr(entry, "pwdAccountLockedTime")).toEqual([]);
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["engineering", "staff", "vpn-users"]);
    expect(ada.status?.accounts).toEqual([
      expect.objectContaining({
        connector: s.connector,
        id: entry!.dn,
        state: "Active",
        groups: ["engineering", "staff", "vpn-users"],
      }),
    ]);
    expect(ada.status?.entitlements).toContainEqual({
      connector: s.connector,
      group: "engineering",
      source: "AccessPolicy/engineering",
    });
    expect(ada.metadata.finalizers).toContain("roster.dev/deprovision");
    // The operator's writes carry its own name as field manager (kubectl --show-managed-fields).
    const { managedFields = [] } = ada.metadata as {
      managedFields?: { manager?: string; operation?: string; subresource?: string }[];
    };
    const managers = managedFields.map((f) =>
      [f.manager, f.operation, f.subresource].filter(Boolean).join(" "),
    );
    expect(managers).toEqual(expect.arrayContaining(["roster Update", "roster Update status"]));
    expect(managers.filter((m) => m.startsWith("undici"))).toEqual([]);
    const events = await s.eventsUntil("ada", "an AccountCreated Event", (events) =>
      events.some((e) => e.reason === "AccountCreated" && e.type === "Normal"),
    );
    // GeneratedSecret: the password works, and lives only in the Employee-owned Secret.
    const secret = await s.kube.core.readNamespacedSecret({
      namespace: s.namespace,
      name: `ada-${s.connector}-credentials`,
    });
    expect(secret.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Employee", name: "ada" });
    const password = Buffer.from(secret.data!.password!, "base64").toString();
    const login = new Client({ url: info.ldap.url });
    await login.bind(entry!.dn, password);
    await login.unbind();
    expect(JSON.stringify(ada.status)).not.toContain(password);
    expect(JSON.stringify(events)).not.toContain(password);
    expect(operator.tail(100000)).not.toContain(password);
  });

  it("moves: a department change moves the person from the old groups to the new ones", async () => {
    await s.apply(
      "Employee",
      "ada",
      person("E100", "ada", { department: "Sales", title: "Engineer", attributes: { badge: "B-7" } }),
    );
    await s.until(
      "ada",
      "in sales only",
      (e) => JSON.stringify(e.status?.accounts?.[0]?.groups) === JSON.stringify(["sales", "staff"]),
    );
    const entry = await s.ldap.person(s.usersDN, "E100");
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["sales", "staff"]);
    expect(attr(entry, "departmentNumber")).toEqual(["Sales"]);
  });

  it("leave: OnLeave disables and keeps groups; Active again re-enables", async () => {
    await s.apply(
      "Employee",
      "ada",
      person("E100", "ada", { department: "Sales", employmentStatus: "OnLeave" }),
    );
    const away = await s.until("ada", "Suspended", (e) => e.status?.phase === "Suspended");
    expect(away.status?.accounts?.[0]?.state).toBe("Disabled");
    let entry = await s.ldap.person(s.usersDN, "E100");
    expect(attr(entry, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["sales", "staff"]);
    await s.apply(
      "Employee",
      "ada",
      person("E100", "ada", { department: "Sales", employmentStatus: "Active" }),
    );
    await s.until(
      "ada",
      "Active again",
      (e) => e.status?.phase === "Active" && e.status.accounts?.[0]?.state === "Active",
    );
    entry = await s.ldap.person(s.usersDN, "E100");
    expect(attr(entry, "pwdAccountLockedTime")).toEqual([]);
    await s.eventsUntil("ada", "AccountDisabled and AccountEnabled Events", (events) =>
      ["AccountDisabled", "AccountEnabled"].every((reason) => events.some((e) => e.reason === reason)),
    );
  });

  it("leaver: Terminated disables and removes every managed group, leaving unmanaged ones; a rehire reactivates the same entry", async () => {
    const entry = await s.ldap.person(s.usersDN, "E100");
    // A group Roster does not manage, with a member added by hand: never touched.
    await s.ldap.client.add(`cn=book-club,${s.groupsDN}`, {
      objectClass: ["groupOfNames"],
      cn: "book-club",
      member: [entry!.dn],
    });
    await s.apply(
      "Employee",
      "ada",
      person("E100", "ada", { department: "Sales", employmentStatus: "Terminated" }),
    );
    const gone = await s.until("ada", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    expect(gone.status?.accounts?.[0]).toMatchObject({ state: "Disabled", groups: [] });
    expect(gone.status?.deprovisionedAt).toBeDefined();
    const after = await s.ldap.person(s.usersDN, "E100");
    expect(attr(after, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["book-club"]);
    // One reconcile did it all: every removal and the disable carry the same lastSyncTime moment.
    const uuid = attr(after, "entryUUID")[0];

    await s.apply(
      "Employee",
      "ada",
      person("E100", "ada", { department: "Engineering", employmentStatus: "Active" }),
    );
    await s.until(
      "ada",
      "rehired",
      (e) => e.status?.phase === "Active" && e.status.accounts?.[0]?.state === "Active",
    );
    const rehired = await s.ldap.people(s.usersDN, "E100");
    expect(rehired).toHaveLength(1);
    expect(attr(rehired[0], "entryUUID")[0]).toBe(uuid);
    expect(attr(rehired[0], "pwdAccountLockedTime")).toEqual([]);
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual([
      "book-club",
      "engineering",
      "staff",
      "vpn-users",
    ]);
  });

  it("deleting an Employee deprovisions before the object is gone", async () => {
    await s.apply("Employee", "bob", person("E200", "bob", { department: "Engineering" }));
    await s.until("bob", "Active", (e) => e.status?.phase === "Active");
    const dn = (await s.ldap.person(s.usersDN, "E200"))!.dn;
    await s.kube.custom.deleteNamespacedCustomObject({
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: "employees",
      name: "bob",
    });
    await waitFor(
      async () => {
        try {
          await s.employee("bob");
          return false;
        } catch (error) {
          return (error as { code?: number }).code === 404;
        }
      },
      30_000,
      () => "bob was not removed",
    );
    const entry = await s.ldap.person(s.usersDN, "E200");
    expect(entry?.dn).toBe(dn);
    expect(attr(entry, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
    expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual([]);
  });

  it("a startDate a few seconds ahead: nothing before it, everything right after", async () => {
    const startDate = new Date(Date.now() + 4000).toISOString().replace(/\.\d{3}Z$/, "Z");
    const start = new Date(startDate);
    await s.apply("Employee", "cy", person("E300", "cy", { startDate }));
    const scheduled = await s.until("cy", "Scheduled", (e) => e.status?.phase === "Scheduled");
    expect(scheduled.status?.accounts ?? []).toEqual([]);
    expect(await s.ldap.person(s.usersDN, "E300")).toBeUndefined();
    const active = await s.until("cy", "Active after startDate", (e) => e.status?.phase === "Active", 20_000);
    const seenActive = Date.now();
    // What the operator did, by its own and the directory's clocks (same host as this test; all three
    // are whole seconds, truncated, and startDate is a whole second): the account was made, and
    // recorded as made, no earlier than startDate and no later than the test saw Active.
    const entry = await s.ldap.person(s.usersDN, "E300");
    expect(entry).toBeDefined();
    const [createTimestamp] = attr(entry, "createTimestamp");
    const created = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(createTimestamp ?? "");
    expect(created, `createTimestamp ${createTimestamp}`).not.toBeNull();
    const [, y, mo, d, h, mi, sec] = created!.map(Number);
    const createdAt = Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!);
    const provisionedAt = new Date(active.status!.provisionedAt!).getTime();
    const lastSync = new Date(active.status!.accounts![0]!.lastSyncTime!).getTime();
    for (const [what, at] of [
      ["createTimestamp of the entry", createdAt],
      ["status.provisionedAt", provisionedAt],
      ["status.accounts[0].lastSyncTime", lastSync],
    ] as const) {
      expect(at, what).toBeGreaterThanOrEqual(start.getTime());
      expect(at, what).toBeLessThanOrEqual(seenActive);
    }
  });

  it("stores and matches names with special and non-ASCII characters exactly", async () => {
    const tricky = {
      givenName: ' Zoë, "Q" +<x>; =#',
      familyName: "O'Brien*(Nuñez)\\ ",
      department: "R&D ü",
    };
    const group = 'Team, "A" +#<b>; =* (x) \\ ';
    await s.apply("AccessPolicy", "tricky", {
      match: [{ key: "department", operator: "In", values: ["R&D ü"] }],
      grants: [{ connector: s.connector, groups: [group, "日本語チーム"] }],
    });
    await s.apply("Employee", "zoe", person("E#400, \\*", "zoe", tricky));
    const zoe = await s.until("zoe", "Active", (e) => e.status?.phase === "Active");
    expect(zoe.status?.accounts?.[0]?.groups).toEqual(
      expect.arrayContaining([group, "日本語チーム", "staff"]),
    );
    const entry = await s.ldap.person(s.usersDN, "E#400, \\*");
    expect(attr(entry, "givenName")).toEqual([' Zoë, "Q" +<x>; =#']);
    expect(attr(entry, "sn")).toEqual(["O'Brien*(Nuñez)\\ "]);
    expect(attr(entry, "employeeNumber")).toEqual(["E#400, \\*"]);
    expect(await s.ldap.members(s.groupsDN, group)).toEqual([entry!.dn]);
    expect(await s.ldap.members(s.groupsDN, "日本語チーム")).toEqual([entry!.dn]);
    // A second pass changes nothing (the names compare equal to what was stored): an annotation
    // makes the operator reconcile zoe again; once it has, neither status nor the entry moved.
    const csn = async () =>
      attr(
        (await s.ldap.client.search(entry!.dn, { scope: "base", attributes: ["entryCSN"] })).searchEntries[0],
        "entryCSN",
      );
    const [statusBefore, csnBefore] = [(await s.employee("zoe")).status, await csn()];
    // The annotation's watch event queues zoe (workqueue_adds_total), and an idle queue after
    // that means the reconcile it caused has finished.
    const reconciled = async () =>
      counterOrZero(await operator.metrics(), "workqueue_adds_total", { name: "employee" });
    const reconcilesBefore = await reconciled();
    await s.apply("Employee", "zoe", person("E#400, \\*", "zoe", tricky), {
      annotations: { "example.com/touched": "again" },
    });
    await waitFor(
      async () => (await reconciled()) > reconcilesBefore,
      20_000,
      () => "the operator did not reconcile zoe again",
    );
    await employeeQueueIdle(operator);
    expect((await s.employee("zoe")).status).toEqual(statusBefore);
    expect(await csn()).toEqual(csnBefore);
  });

  it("kubectl get emp shows the printer columns and kubectl describe shows the Events", async () => {
    const kubectl = `${info.binDir}/kubectl`;
    const { execFileSync } = await import("node:child_process");
    const table = execFileSync(
      kubectl,
      ["--kubeconfig", info.kubeconfigPath, "-n", s.namespace, "get", "emp"],
      { encoding: "utf8" },
    );
    const header = table.split("\n")[0]!.split(/\s+/).filter(Boolean);
    expect(header).toEqual(["NAME", "USERNAME", "DEPARTMENT", "STATUS", "PHASE", "READY", "AGE"]);
    expect(table).toMatch(/^ada\s+ada\s+Engineering\s+Active\s+Active\s+True\s+/m);
    const describe = execFileSync(
      kubectl,
      ["--kubeconfig", info.kubeconfigPath, "-n", s.namespace, "describe", "emp", "ada"],
      { encoding: "utf8" },
    );
    expect(describe).toMatch(/Events:/);
    expect(describe).toMatch(/AccountCreated/);
  });

  it("serves the documented metrics with real provisioning latency samples, and logs no secret", async () => {
    const metrics = await operator.metrics();
    for (const name of [
      "roster_provisioning_latency_seconds_bucket",
      "roster_managed_accounts",
      "roster_orphan_accounts",
      "roster_drift_accounts",
      "roster_drift_detected_total",
      "roster_drift_scan_duration_seconds_bucket",
      "roster_deprovisions_held",
      "roster_connector_requests_total",
      "roster_connector_request_duration_seconds_bucket",
      "controller_runtime_reconcile_total",
      "controller_runtime_reconcile_errors_total",
      "controller_runtime_reconcile_time_seconds_bucket",
      "workqueue_depth",
      "workqueue_adds_total",
      "workqueue_queue_duration_seconds_bucket",
      "workqueue_work_duration_seconds_bucket",
      "workqueue_retries_total",
      "leader_election_master_status",
      "process_resident_memory_bytes",
      "nodejs_heap_size_used_bytes",
    ])
      expect(metrics, name).toMatch(new RegExp(`^# TYPE ${name.replace(/_bucket$/, "")} `, "m"));
    expect(
      requireMetric(metrics, "roster_provisioning_latency_seconds_count", { operation: "create" }),
    ).toBeGreaterThan(0);
    expect(
      requireMetric(metrics, "roster_provisioning_latency_seconds_sum", { operation: "create" }),
    ).toBeGreaterThan(0);
    expect(
      requireMetric(metrics, "controller_runtime_reconcile_total", {
        controller: "employee",
        result: "success",
      }),
    ).toBeGreaterThan(0);
    expect(requireMetric(metrics, "leader_election_master_status")).toBe(1);
    // The logs of the whole run never show the bind password or a generated password.
    const logs = operator.tail(10_000_000);
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs).not.toContain(info.ldap.adminPassword);
    const secret = await s.kube.core.readNamespacedSecret({
      namespace: s.namespace,
      name: `ada-${s.connector}-credentials`,
    });
    expect(logs).not.toContain(Buffer.from(secret.data!.password!, "base64").toString());
  });
});
