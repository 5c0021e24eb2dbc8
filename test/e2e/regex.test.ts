// `Matches` expressions run in linear time (RE2 semantics): no pattern or input can stall the
// operator (api.md). A pattern that is valid RE2 but catastrophic for a backtracking engine, and a
// title built to trigger it, against two replicas and against `roster plan`.
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { dump } from "js-yaml";
import { API_VERSION } from "../../src/api/schema.ts";
import { registerDirectory, waitFor } from "../harness/processes.ts";
import { getRoster } from "../support/kube.ts";
import { COUNTS_WAIT_MS, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const run = promisify(execFile);
const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
const PATTERN = "^([a-z]+ ?)+$";
// 42 letters and a character the pattern cannot match: 2^42 ways to split the letters for a
// backtracking engine to try before it gives up.
const HOSTILE = "a".repeat(42) + "!";

let s: Scenario;
const replicas: OperatorProcess[] = [];

beforeAll(async () => {
  s = await scenario(info, "regex");
  const leaseName = `regex-${s.namespace}`;
  for (let i = 0; i < 2; i++) replicas.push(await startOperator({ namespace: s.namespace, leaseName }));
  const leases = s.kube.kc.makeApiClient(CoordinationV1Api);
  await waitFor(
    async () =>
      !!(await leases.readNamespacedLease({ name: leaseName, namespace: info.operator.leaseNamespace })).spec
        ?.holderIdentity,
    20_000,
    () => "nobody took the lease",
  );
});

afterAll(async () => {
  for (const replica of replicas) await replica.stop().catch(() => {});
  await s?.close();
});

/**
 * Both replicas answer /healthz, several times over a couple of seconds. A request has a deadline
 * only so that a frozen replica fails this with a message instead of hanging the test.
 */
async function bothReplicasAnswer(): Promise<void> {
  const answer = async (replica: OperatorProcess) => {
    try {
      return (await fetch(`${replica.healthUrl}/healthz`, { signal: AbortSignal.timeout(10_000) })).status;
    } catch (error) {
      return String(error);
    }
  };
  for (let round = 0; round < 5; round++) {
    const statuses = await Promise.all(replicas.map(answer));
    expect(
      statuses,
      `/healthz of the two replicas, round ${round}:\n${replicas.map((r) => r.tail(8)).join("\n--\n")}`,
    ).toEqual([200, 200]);
    await new Promise((r) => setTimeout(r, 400));
  }
}

describe("a catastrophic-backtracking Matches pattern", () => {
  it("stalls neither replica, leader or standby: the hostile title gets no grant, everyone else is provisioned", async () => {
    await s.apply("AccessPolicy", "lowercase-titles", {
      match: [{ key: "title", operator: "Matches", values: [PATTERN] }],
      grants: [{ connector: s.connector, groups: ["staff"] }],
    });

    await s.apply("Employee", "sam", person("RX-1", "sam", { title: "staff engineer" }));
    const sam = await s.until("sam", "Active", (e) => e.status?.phase === "Active");
    expect(sam.status?.accounts?.map((a) => a.connector)).toEqual([s.connector]);
    expect(await s.ldap.people(s.usersDN, "RX-1")).toHaveLength(1);

    await s.apply("Employee", "eve", person("RX-2", "eve", { title: HOSTILE }));
    await bothReplicasAnswer();
    // Its status is written for its generation: evaluated, matched by nothing, so no account.
    const eve = await s.until("eve", "evaluated", (e) => e.status?.phase === "Pending");
    expect(eve.status?.accounts ?? []).toEqual([]);
    expect(eve.status?.entitlements ?? []).toEqual([]);
    expect(await s.ldap.people(s.usersDN, "RX-2")).toHaveLength(0);

    // A policy edit has every replica, standby included, evaluate the policies against everyone
    // in its informer handler, the hostile title among them.
    await s.apply("AccessPolicy", "lowercase-titles", {
      match: [{ key: "title", operator: "Matches", values: [PATTERN] }],
      grants: [{ connector: s.connector, groups: ["staff", "engineers"] }],
    });
    await bothReplicasAnswer();
    await s.until("sam", "in engineers", (e) => !!e.status?.accounts?.[0]?.groups?.includes("engineers"));
    expect(await s.ldap.groupsOf(s.groupsDN, (await s.ldap.person(s.usersDN, "RX-1"))!.dn)).toEqual([
      "engineers",
      "staff",
    ]);
    expect((await s.employee("eve")).status?.accounts ?? []).toEqual([]);

    // The operator is not stalled: someone hired afterwards is provisioned.
    await s.apply("Employee", "pat", person("RX-3", "pat", { title: "principal engineer" }));
    await s.until("pat", "Active", (e) => e.status?.phase === "Active");
    expect(await s.ldap.people(s.usersDN, "RX-3")).toHaveLength(1);
    expect(await s.ldap.people(s.usersDN, "RX-2")).toHaveLength(0);
    // The policy's own status counts its matches with the same engine.
    await waitFor(
      async () =>
        (
          (await getRoster(s.kube, s.namespace, "AccessPolicy", "lowercase-titles")).status as {
            matchedEmployees?: number;
          }
        )?.matchedEmployees === 2,
      COUNTS_WAIT_MS,
      () => "AccessPolicy matchedEmployees is not 2",
    );
    await bothReplicasAnswer();
  });

  it("does not stall `roster plan` either", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roster-regex-plan-"));
    registerDirectory(dir);
    mkdirSync(join(dir, "people"));
    const people: [string, Record<string, unknown>][] = [
      ["sam", person("RX-1", "sam", { title: "staff engineer" })],
      ["eve", person("RX-2", "eve", { title: HOSTILE })],
      ["pat", person("RX-3", "pat", { title: "principal engineer" })],
      ["ivy", person("RX-4", "ivy", { title: HOSTILE })],
      ["lee", person("RX-5", "lee", { title: "site reliability engineer" })],
    ];
    for (const [name, spec] of people)
      writeFileSync(
        join(dir, "people", `${name}.yaml`),
        dump({ apiVersion: API_VERSION, kind: "Employee", metadata: { name }, spec }),
      );
    // `timeout` only turns a hang into a failure (the child is killed); nothing is timed.
    const { stdout } = await run(
      process.execPath,
      [bin, "plan", dir, "--kubeconfig", info.kubeconfigPath, "-n", s.namespace, "-o", "json"],
      { timeout: 60_000 },
    );
    const preview = JSON.parse(stdout) as { changes: { employee: string; action: string }[] };
    expect(preview.changes.map((c) => [c.employee, c.action])).toEqual([["lee", "create"]]);
  });
});
