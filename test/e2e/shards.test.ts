// Sharding by namespace on the real control plane and slapd: two shards (two `roster operator`
// processes, each with its own --shard-selector and Lease, as the chart's ServiceAccount under
// deploy/base's RBAC) split three labelled namespaces, and an unlabelled one belongs to neither.
// Each Employee is reconciled by exactly one shard: each shard's write log (every write, at debug
// level, with its namespace) names only its own namespaces, and every account exists once. Then a
// namespace is relabelled from shard A to shard B while hires and edits are in flight, and B takes
// it over only after A released it, with every write of A's there answered before the release and
// every write of B's begun after it took over; then shard A is SIGKILLed while a namespace moves,
// and B takes that one over once A's Lease has expired, not before.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CoordinationV1Api, PatchStrategy, setHeaderOptions, type V1Lease } from "@kubernetes/client-node";
import type { Employee } from "../../src/api/types.ts";
import { HANDOVER_SHARD_ANNOTATION, handoverLeaseName } from "../../src/controller/shard.ts";
import { waitFor } from "../harness/processes.ts";
import type { Kube } from "../support/kube.ts";
import { attr } from "../support/ldap.ts";
import { startLdapProxy, type LdapProxy } from "../support/ldap-proxy.ts";
import { employeeQueueIdle, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const run = randomBytes(3).toString("hex");
const LABEL = "e2e.roster.dev/shard";
const shardLease = { a: `roster-shard-a-${run}`, b: `roster-shard-b-${run}` };
const selector = (shard: "a" | "b") => `${LABEL}=${run}-${shard}`;

type Line = Record<string, unknown> & { msg?: string; time?: string; namespace?: string };
/** What an Employee's account in LDAP is: its entry, which must be exactly one. */
type Account = { dn: string; entryUUID: string };

const spaces: Record<"a1" | "a2" | "b1" | "none", Scenario> = {} as never;
const shards: { a?: OperatorProcess; b?: OperatorProcess } = {};
let kube: Kube;
let leases: CoordinationV1Api;
/** Between a2's Connector and slapd: holds a write in flight on cue. */
let proxy: LdapProxy;

async function label(s: Scenario, shard: "a" | "b"): Promise<void> {
  await s.kube.core.patchNamespace(
    { name: s.namespace, body: { metadata: { labels: { [LABEL]: `${run}-${shard}` } } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

/** Creates or replaces the Employee; a replace that races the operator's own writes is tried again. */
async function hire(s: Scenario, name: string, extra: Record<string, unknown> = {}): Promise<void> {
  for (;;) {
    try {
      await s.apply(
        "Employee",
        name,
        person(`${s.namespace}-${name}`, name, { department: "Eng", ...extra }),
      );
      return;
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }
}

const ready = (e: Employee) => e.status?.phase === "Active" && readyCondition(e)?.status === "True";

/** Waits as Scenario.until does; a timeout shows what both shards logged last. */
async function converged(s: Scenario, name: string, check: (e: Employee) => boolean = ready): Promise<void> {
  try {
    await s.until(name, "Ready", check, 60_000);
  } catch (error) {
    const tails = Object.entries(shards).map(([shard, o]) => `shard ${shard}:\n${o.tail(40)}`);
    throw new Error([(error as Error).message, ...tails].join("\n"), { cause: error });
  }
}

/** The one LDAP entry of the person (fails on none or several). */
async function account(s: Scenario, name: string): Promise<Account> {
  const found = await s.ldap.people(s.usersDN, `${s.namespace}-${name}`);
  expect(
    found.map((e) => e.dn),
    `${s.namespace}/${name}: LDAP entries`,
  ).toHaveLength(1);
  return { dn: found[0]!.dn, entryUUID: attr(found[0], "entryUUID")[0]! };
}

const lines = (o: OperatorProcess) => o.logLines() as Line[];
const writesIn = (o: OperatorProcess, namespace: string) =>
  lines(o).filter((l) => l.msg === "write" && l.namespace === namespace);
const namespacesWritten = (o: OperatorProcess) =>
  [...new Set(lines(o).flatMap((l) => (l.msg === "write" ? [l.namespace!] : [])))].sort();
const FENCED =
  "namespace left the shard's selector: writes there fenced; handing it over once those in flight are answered";
const WAITING =
  "namespace matches the shard's selector but another shard holds it: waiting until it is handed over";
const at = (l: Line | undefined, field: "time" | "startedAt" = "time") => Date.parse(String(l?.[field]));

/** The shard's log line `msg` about `namespace`, waited for. */
async function logged(o: OperatorProcess, msg: string, namespace: string, timeoutMs = 60_000): Promise<Line> {
  let found: Line | undefined;
  await waitFor(
    async () => !!(found = lines(o).find((l) => l.msg === msg && l.namespace === namespace)),
    timeoutMs,
    () => `no "${msg}" for ${namespace} in the log:\n${o.tail(30)}`,
  );
  return found!;
}

async function handover(namespace: string): Promise<V1Lease> {
  return leases.readNamespacedLease({
    name: handoverLeaseName(namespace),
    namespace: info.operator.leaseNamespace,
  });
}

async function startShard(shard: "a" | "b"): Promise<OperatorProcess> {
  const o = await startOperator({
    namespace: undefined,
    leaseName: shardLease[shard],
    extraArgs: ["--shard-selector", selector(shard)],
  });
  shards[shard] = o;
  return o;
}

beforeAll(async () => {
  proxy = await startLdapProxy(info.ldap.url);
  for (const key of ["a1", "a2", "b1", "none"] as const) {
    const ldap = key === "a2" ? { ...info.ldap, url: proxy.url } : info.ldap;
    spaces[key] = await scenario(info, `shard-${key}`, {}, ldap);
    await spaces[key].apply("AccessPolicy", "everyone", {
      grants: [{ connector: spaces[key].connector, groups: ["staff"] }],
    });
  }
  kube = spaces.a1.kube;
  leases = kube.kc.makeApiClient(CoordinationV1Api);
  await label(spaces.a1, "a");
  await label(spaces.a2, "a");
  await label(spaces.b1, "b");
  for (const key of ["a1", "a2", "b1", "none"] as const)
    for (const name of ["ada", "bob", "cy"]) await hire(spaces[key], name);
  await Promise.all([startShard("a"), startShard("b")]);
});

afterAll(async () => {
  await Promise.allSettled(Object.values(shards).map((o) => o.stop()));
  for (const s of Object.values(spaces)) await s.close();
  await proxy?.close();
});

describe("two shards on one cluster", () => {
  const early: Record<string, Account> = {};

  it("each Employee is reconciled by exactly one shard, the one whose selector matches", async () => {
    const { a, b } = shards as Required<typeof shards>;
    for (const key of ["a1", "a2", "b1"] as const)
      for (const name of ["ada", "bob", "cy"]) {
        await converged(spaces[key], name);
        early[`${key}/${name}`] = await account(spaces[key], name);
      }
    await Promise.all([employeeQueueIdle(a), employeeQueueIdle(b)]);

    // Each shard wrote only in its own namespaces (status, finalizers, Events, LDAP: every write).
    expect(namespacesWritten(a)).toEqual([spaces.a1.namespace, spaces.a2.namespace].sort());
    expect(namespacesWritten(b)).toEqual([spaces.b1.namespace]);
    expect(writesIn(a, spaces.a1.namespace).some((l) => String(l.write).endsWith("createAccount"))).toBe(
      true,
    );

    // The namespace no selector matches: no shard touched it.
    for (const name of ["ada", "bob", "cy"]) {
      const e = await spaces.none.employee(name);
      expect(e.status, `${spaces.none.namespace}/${name}`).toBeUndefined();
      expect(e.metadata.finalizers ?? []).toEqual([]);
      expect(await spaces.none.ldap.people(spaces.none.usersDN, `${spaces.none.namespace}-${name}`)).toEqual(
        [],
      );
    }

    // The handover Leases say who holds what, in the operator's namespace.
    for (const [key, shard] of [
      ["a1", "a"],
      ["a2", "a"],
      ["b1", "b"],
    ] as const) {
      const lease = await handover(spaces[key].namespace);
      expect(lease.metadata?.annotations?.[HANDOVER_SHARD_ANNOTATION]).toBe(shardLease[shard]);
      expect(lease.spec?.holderIdentity).toBeTruthy();
    }
  });

  it("a namespace relabelled while changes are in flight is handed over: A drains and releases, then B acts", async () => {
    const { a, b } = shards as Required<typeof shards>;
    const s = spaces.a2;
    // A's LDAP write for a new hire is held unanswered (until its 4 s write timeout) when the
    // labels change, and more hires and edits land during the move.
    proxy.fault = "swallow-writes";
    await hire(s, "dee");
    await waitFor(
      async () => proxy.hits > 0,
      30_000,
      () => "shard A sent no LDAP write for dee",
    );
    const edits = [
      ...["eve", "fay"].map((name) => hire(s, name)),
      ...["ada", "bob", "cy"].map((name) => hire(s, name, { title: "Engineer II" })),
    ];
    await label(s, "b");
    const fenced = await logged(a, FENCED, s.namespace);
    proxy.fault = "none";
    await Promise.all([...edits, ...["gus", "hal"].map((name) => hire(s, name))]);
    expect(fenced.writesInFlight).toBeGreaterThan(0);

    // B waited while A's write was unanswered, and took over only once A had released it.
    const released = await logged(a, "released namespace: handed over", s.namespace);
    const waited = await logged(b, WAITING, s.namespace);
    const took = await logged(b, "took over namespace", s.namespace);
    expect(took.because).toBe("released");
    expect(at(waited)).toBeLessThan(at(released));
    expect(at(took)).toBeGreaterThanOrEqual(at(released));

    const names = ["ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal"];
    for (const name of names)
      await converged(
        s,
        name,
        (e) => ready(e) && (!["ada", "bob", "cy"].includes(name) || e.spec.title === "Engineer II"),
      );
    await employeeQueueIdle(b);
    for (const name of names) {
      const found = await account(s, name);
      // Accounts made before the handover are the same entries: nothing was created twice.
      if (early[`a2/${name}`]) expect(found).toEqual(early[`a2/${name}`]);
      const entry = (await s.ldap.people(s.usersDN, `${s.namespace}-${name}`))[0];
      if (["ada", "bob", "cy"].includes(name)) expect(attr(entry, "title")).toEqual(["Engineer II"]);
    }

    // No double write: every write A made there was answered before it released the namespace,
    // and every write B made there began after it took it over.
    const before = writesIn(a, s.namespace);
    const after = writesIn(b, s.namespace);
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    expect(before.filter((l) => at(l) > at(released))).toEqual([]);
    expect(after.filter((l) => at(l, "startedAt") < at(took))).toEqual([]);
    expect((await handover(s.namespace)).metadata?.annotations?.[HANDOVER_SHARD_ANNOTATION]).toBe(
      shardLease.b,
    );
    // B now writes in a2 too, and only there and in b1.
    expect(namespacesWritten(b)).toEqual([spaces.a2.namespace, spaces.b1.namespace].sort());
  });

  it("a shard SIGKILLed while its namespace moves: B takes it once A's Lease has expired", async () => {
    const { a, b } = shards as Required<typeof shards>;
    const s = spaces.a1;
    const hires = ["ivy", "jon"].map((name) => hire(s, name));
    await a.kill();
    await label(s, "b");
    await Promise.all([...hires, ...["kim", "lou"].map((name) => hire(s, name))]);

    // A cannot release it: B waits while A's shard Lease still looks renewed, then takes over.
    const waited = await logged(b, WAITING, s.namespace);
    const took = await logged(b, "took over namespace", s.namespace);
    expect(took.because).toBe("shard-lease-expired");
    expect(took.fromShard).toBe(shardLease.a);
    expect(at(took)).toBeGreaterThan(at(waited));

    const names = ["ada", "bob", "cy", "ivy", "jon", "kim", "lou"];
    for (const name of names) await converged(s, name);
    await employeeQueueIdle(b);
    for (const name of names) {
      const found = await account(s, name);
      if (early[`a1/${name}`]) expect(found).toEqual(early[`a1/${name}`]);
    }
    expect(writesIn(b, s.namespace).filter((l) => at(l, "startedAt") < at(took))).toEqual([]);
    expect((await handover(s.namespace)).metadata?.annotations?.[HANDOVER_SHARD_ANNOTATION]).toBe(
      shardLease.b,
    );
  });
});

describe("roster operator --shard-selector refuses", () => {
  const bin = join(import.meta.dirname, "../../bin/roster.js");
  const operator = (...args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [bin, "operator", "--kubeconfig", info.kubeconfigPath, "--health-addr", "127.0.0.1:0", ...args],
        (error, _stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr }),
      ),
    );

  it.each([
    [["--shard-selector", "roster.dev/shard in (eu"], /--shard-selector "roster.dev\/shard in \(eu": .+/],
    [["--shard-selector", "a=b", "--namespace", "people"], /exclude each other/],
    [["--shard-selector", "a=b", "--leader-elect=false"], /needs leader election/],
  ])("%j with a usage error, before it starts", async (args, message) => {
    const result = await operator(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
