// The audit trail as an auditor reads it: a real `roster operator` process (at --log-level error,
// so the trail must not depend on the level) provisions a joiner, a mover and a leaver in a real
// slapd; its log stream holds exactly one audit record per change it made, each naming the entry
// slapd holds, what changed before and after and why; the Employee's status keeps the history
// and `roster report --history` prints it; one Event per reconcile; no secret anywhere.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Entry } from "ldapts";
import type { Employee } from "../../src/api/types.ts";
import type { AuditRecord } from "../../src/plan/audit.ts";
import { waitFor } from "../harness/processes.ts";
import { attr } from "../support/ldap.ts";
import { requireMetric, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
let s: Scenario;
let operator: OperatorProcess;

type Line = AuditRecord & { name: string; audit: boolean; level: string; msg: string };

beforeAll(async () => {
  s = await scenario(info, "audit", { credentials: "GeneratedSecret" });
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [{ connector: s.connector, groups: ["engineering", "vpn-users"] }],
  });
  await s.apply("AccessPolicy", "sales", {
    match: [{ key: "department", operator: "In", values: ["Sales"] }],
    grants: [{ connector: s.connector, groups: ["sales"] }],
  });
  operator = await startOperator({ namespace: s.namespace, extraArgs: ["--log-level", "error"] });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

/** The audit records about one Employee on the operator's log stream, in the order written. */
function auditOf(name: string): Line[] {
  return operator
    .logLines()
    .filter((l) => l.audit === true)
    .map((l) => l as unknown as Line)
    .filter((l) => l.employee.name === name);
}

async function records(name: string, count: number): Promise<Line[]> {
  await waitFor(
    async () => auditOf(name).length >= count,
    20_000,
    () => `expected ${count} audit records for ${name}, found ${JSON.stringify(auditOf(name), null, 1)}`,
  );
  return auditOf(name);
}

/** The user attributes of the entry, as slapd holds them (operational ones left out). */
async function entryOf(employeeId: string): Promise<Entry> {
  const found = await s.ldap.client.search(s.usersDN, {
    scope: "sub",
    filter: `(employeeNumber=${employeeId})`,
    attributes: ["*"],
  });
  expect(found.searchEntries).toHaveLength(1);
  return found.searchEntries[0]!;
}

/** Attributes whose values differ between two reads of an entry. */
function changedAttributes(before: Entry, after: Entry): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)].filter((k) => k !== "dn"));
  return [...names]
    .filter((n) => JSON.stringify(attr(before, n).sort()) !== JSON.stringify(attr(after, n).sort()))
    .sort();
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function expectCommon(line: Line, dn: string, generation: number) {
  expect(line).toMatchObject({
    name: "roster.audit",
    audit: true,
    level: "info",
    outcome: "succeeded",
    connector: s.connector,
    target: dn,
    employee: { namespace: s.namespace, name: "ada", employeeId: "AU1", username: "ada", generation },
  });
  expect(line.changeId).toMatch(UUID);
  expect(new Date(line.time).toISOString()).toBe(line.time);
}

const normalEvents = async () => (await s.events("ada")).filter((e) => e.type === "Normal");

/** Waits until ada has `count` Normal Events: one per reconcile that changed something. */
async function normalEventCount(count: number, what: string) {
  let seen: unknown[] = [];
  await waitFor(
    async () => (seen = await normalEvents()).length === count,
    20_000,
    () => `${count} Normal Events (${what}): ${JSON.stringify(seen)}`,
  );
}

describe("the audit trail", () => {
  let dn: string;
  let joined: Entry;
  let moved: Entry;

  it("a joiner: one record, the create, with the entry's attributes and groups and the policies behind it", async () => {
    await s.apply("Employee", "ada", person("AU1", "ada", { department: "Engineering" }));
    await s.until(
      "ada",
      "Active",
      (e) => e.status?.phase === "Active" && readyCondition(e)?.status === "True",
    );
    joined = await entryOf("AU1");
    dn = joined.dn;
    const groups = await s.ldap.groupsOf(s.groupsDN, dn);
    expect(groups).toEqual(["engineering", "staff", "vpn-users"]);
    const [create, ...more] = await records("ada", 1);
    expect(more).toEqual([]);
    expectCommon(create!, dn, 1);
    expect(create).toMatchObject({
      operation: "create",
      reason: "joiner",
      sources: ["AccessPolicy/engineering", "AccessPolicy/everyone"],
      changes: {
        groups: { before: null, after: groups },
        enabled: { before: null, after: true },
        departmentNumber: { before: null, after: attr(joined, "departmentNumber") },
        mail: { before: null, after: attr(joined, "mail") },
      },
    });
    await normalEventCount(1, "one Normal Event for the joiner's reconcile");
    expect((await normalEvents())[0]).toMatchObject({
      reason: "AccountCreated",
      message: `${s.connector}: created ${dn}; added to engineering, staff, vpn-users`,
    });
  });

  it("a mover: one record per change slapd shows, the attribute before and after, each group with its policy", async () => {
    await s.apply("Employee", "ada", person("AU1", "ada", { department: "Sales" }));
    await s.until(
      "ada",
      "in sales",
      (e) => JSON.stringify(e.status?.accounts?.[0]?.groups) === '["sales","staff"]',
    );
    moved = await entryOf("AU1");
    expect(moved.dn).toBe(dn);
    expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual(["sales", "staff"]);
    const lines = (await records("ada", 5)).slice(1);
    expect(
      lines.map((l) => [l.operation, l.operation.startsWith("group") ? l.changes.groups : null]),
    ).toEqual([
      ["update", null],
      [
        "group_add",
        {
          before: ["engineering", "staff", "vpn-users"],
          after: ["engineering", "sales", "staff", "vpn-users"],
        },
      ],
      [
        "group_remove",
        { before: ["engineering", "sales", "staff", "vpn-users"], after: ["sales", "staff", "vpn-users"] },
      ],
      ["group_remove", { before: ["sales", "staff", "vpn-users"], after: ["sales", "staff"] }],
    ]);
    for (const line of lines) {
      expectCommon(line, dn, 2);
      expect(line.reason).toBe("employee change");
    }
    // The update names exactly the attributes that differ in slapd, with both values.
    const [update, add, removeEngineering, removeVpn] = lines;
    const changed = changedAttributes(joined, moved);
    expect(Object.keys(update!.changes).sort()).toEqual(changed);
    for (const name of changed)
      expect(update!.changes[name]).toEqual({ before: attr(joined, name), after: attr(moved, name) });
    expect(add!.sources).toEqual(["AccessPolicy/sales"]);
    expect(removeEngineering!.sources).toEqual(["AccessPolicy/engineering"]);
    expect(removeVpn!.sources).toEqual(["AccessPolicy/engineering"]);
    await normalEventCount(2, "one more Normal Event for the mover");
    expect(await normalEvents()).toContainEqual(
      expect.objectContaining({
        reason: "AccountUpdated",
        message: `${s.connector} ${dn}: updated ${changed.join(", ")}; added to sales; removed from engineering, vpn-users`,
      }),
    );
  });

  it("a leaver: the disable and each group removal, why, and what granted them", async () => {
    await s.apply(
      "Employee",
      "ada",
      person("AU1", "ada", { department: "Sales", employmentStatus: "Terminated" }),
    );
    await s.until("ada", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    const entry = await s.ldap.person(s.usersDN, "AU1");
    expect(entry?.dn).toBe(dn);
    expect(attr(entry, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
    expect(await s.ldap.groupsOf(s.groupsDN, dn)).toEqual([]);
    const all = await records("ada", 8);
    const lines = all.slice(5);
    expect(lines.map((l) => [l.operation, l.sources])).toEqual([
      ["disable", ["AccessPolicy/everyone", "AccessPolicy/sales"]],
      ["group_remove", ["AccessPolicy/sales"]],
      ["group_remove", ["AccessPolicy/everyone"]],
    ]);
    expect(lines[0]!.changes).toEqual({ enabled: { before: true, after: false } });
    for (const line of lines) {
      expectCommon(line, dn, 3);
      expect(line.reason).toBe("leaver");
    }
    // Eight changes, eight records, no record twice.
    expect(all).toHaveLength(8);
    expect(new Set(all.map((l) => l.changeId)).size).toBe(8);
    const metrics = await operator.metrics();
    const connector = `${s.namespace}/${s.connector}`;
    expect(requireMetric(metrics, "roster_changes_total", { connector, operation: "group_remove" })).toBe(4);
    expect(requireMetric(metrics, "roster_changes_total", { connector, outcome: "succeeded" })).toBe(8);
    await normalEventCount(3, "one more Normal Event for the leaver");
    expect(await normalEvents()).toContainEqual(
      expect.objectContaining({
        reason: "AccountDisabled",
        message: `${s.connector} ${dn}: disabled; removed from sales, staff`,
      }),
    );
  });

  it("the Employee's status keeps the history, newest first, under the records' change ids", async () => {
    const ada = await s.employee("ada");
    const history = ada.status?.accounts?.[0]?.history ?? [];
    const trail = auditOf("ada");
    expect(history.map((h) => h.changeId)).toEqual(trail.map((l) => l.changeId).reverse());
    expect(history.map((h) => [h.time, h.operation, h.detail, h.reason, h.source])).toEqual(
      trail
        .map((l) => [
          l.time,
          l.operation,
          l.detail,
          l.reason,
          l.sources.length ? l.sources.join(", ") : undefined,
        ])
        .reverse(),
    );
    expect(history[history.length - 1]).toMatchObject({
      operation: "create",
      detail: "created in groups engineering, staff, vpn-users",
      reason: "joiner",
      source: "AccessPolicy/engineering, AccessPolicy/everyone",
    });
  });

  it("roster report --history prints it per person and connector, as text and as JSON", async () => {
    const report = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [bin, "report", "--kubeconfig", info.kubeconfigPath, "-n", s.namespace, "--history", ...args],
          (error, stdout, stderr) =>
            resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
        ),
      );
    const history = ((await s.employee("ada")) as Employee).status!.accounts![0]!.history!;
    const text = await report([]);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `${s.namespace}/ada (ada, employeeId AU1)  ${s.connector}  ${dn}  Disabled`,
    );
    const lines = text.stdout.split("\n").filter((l) => l.startsWith("  20"));
    expect(lines).toHaveLength(history.length);
    history.forEach((h, i) => {
      expect(lines[i]).toContain(h.changeId);
      expect(lines[i]).toContain(h.detail);
      expect(lines[i]).toContain(`(${h.source ? `${h.reason}: ${h.source}` : h.reason})`);
    });
    const json = await report(["-o", "json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      scope: `namespace ${s.namespace}`,
      accounts: [
        {
          namespace: s.namespace,
          employee: "ada",
          username: "ada",
          employeeId: "AU1",
          connector: s.connector,
          id: dn,
          state: "Disabled",
          changes: history,
        },
      ],
    });
    expect((await report(["-o", "csv"])).code).toBe(2);
  });

  it("a change the target refuses is a record too: outcome failed, the error's class and reason", async () => {
    // A hand-made entry holds the name: the create is refused (Conflict), and said so in the trail.
    await s.ldap.client.add(`uid=bea,${s.usersDN}`, {
      objectClass: ["inetOrgPerson"],
      uid: "bea",
      cn: "Bea Handmade",
      sn: "Handmade",
    });
    await s.apply("Employee", "bea", person("AU2", "bea"));
    await s.until("bea", "Conflict", (e) => e.status?.accounts?.[0]?.state === "Conflict");
    await waitFor(
      async () => auditOf("bea").length >= 1,
      20_000,
      () => "no audit record for bea's refused create",
    );
    const [refused, ...more] = auditOf("bea");
    expect(more).toEqual([]);
    expect(refused).toMatchObject({
      audit: true,
      outcome: "failed",
      operation: "create",
      connector: s.connector,
      employee: { name: "bea", employeeId: "AU2" },
      error: { class: "NotOwnedError", reason: "NotOwned" },
      reason: "joiner",
    });
    expect(refused).not.toHaveProperty("target");
    expect(await s.ldap.person(s.usersDN, "AU2")).toBeUndefined();
  });

  it("is written whatever the log level, and no secret is on the log stream", async () => {
    const lines = operator.logLines();
    // At --log-level error the operator's own info lines are gone; the trail's are not.
    expect(lines.filter((l) => l.name === "roster" && l.level === "info")).toEqual([]);
    expect(lines.filter((l) => l.audit === true).length).toBeGreaterThanOrEqual(8);
    const stream = operator.tail(10_000_000);
    expect(stream).not.toContain(info.ldap.adminPassword);
    const secret = await s.kube.core.readNamespacedSecret({
      namespace: s.namespace,
      name: `ada-${s.connector}-credentials`,
    });
    const generated = Buffer.from(secret.data!.password!, "base64").toString();
    expect(generated.length).toBeGreaterThanOrEqual(20);
    expect(stream).not.toContain(generated);
  });
});
