// The fault suite: during a batch of hires and leavers (40 hires, 15 of them then Terminated) one
// fault at a time: slapd SIGKILLed, the SCIM service failing and throttling, kube-apiserver
// restarted, the operator SIGKILLed, the leader frozen with SIGSTOP while a standby waits. After
// each, every Employee converges, no account is duplicated, no leaver keeps access and the
// hand-made (unowned) LDAP entry and SCIM user are untouched. Each fault runs against this file's
// own control plane, slapd and SCIM server, so the shared ones of the e2e run never see a fault.
// Convergence times are printed and appended to bench/results/faults.jsonl.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  CoordinationV1Api,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1Lease,
} from "@kubernetes/client-node";
import type { Entry } from "ldapts";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import type { HarnessInfo } from "../harness/info.ts";
import { waitFor } from "../harness/processes.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { startSlapd, type Slapd } from "../harness/slapd.ts";
import { createRoster } from "../support/kube.ts";
import { attr, ldapLook, type LdapLook } from "../support/ldap.ts";
import { requireMetric, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const HIRES = 40;
const LEAVERS = 15;
/** Hires created before the fault; the rest and all leavers are applied around or during it. */
const FIRST_WAVE = 20;
const SCIM_RATE = 50;
const LDAP_GROUPS = ["all-hands", "staff"];
const SCIM_GROUPS = ["readers"];
// The default mass-change brake (min(20/h, 10 % of managed, at least 5)) would hold most of the 15
// leavers for approval; this suite is about faults, not the brake, so both connectors lift it.
const SAFETY = { maxDeprovisionsPerHour: 1000, maxDeprovisionPercent: 100 };
const results = join(import.meta.dirname, "../../bench/results");

type Rec = Record<string, unknown>;
type ScimUser = { id: string; userName: string; externalId?: string; active?: boolean; meta?: Rec };
type ScimGroup = { id: string; displayName: string; members?: { value: string }[] };

const names = Array.from({ length: HIRES }, (_, i) => `h${String(i).padStart(2, "0")}`);
const idOf = (i: number) => `F${String(i).padStart(3, "0")}`;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

const cleanups: (() => Promise<unknown>)[] = [];
let controlPlane: ControlPlane;
let slapd: Slapd;
let info: HarnessInfo;

beforeAll(async () => {
  [controlPlane, slapd] = await Promise.all([startControlPlane(), startSlapd()]);
  info = {
    ...inject("harness"),
    dir: controlPlane.dir,
    server: controlPlane.server,
    kubeconfigPath: controlPlane.kubeconfigPath,
    binDir: controlPlane.binDir,
    ldap: {
      url: slapd.url,
      baseDN: slapd.baseDN,
      adminDN: slapd.adminDN,
      adminPassword: slapd.adminPassword,
      usersDN: slapd.usersDN,
      groupsDN: slapd.groupsDN,
    },
  };
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await Promise.all([controlPlane?.stop(), slapd?.stop()]);
});

/** Retries an API call through connection errors and conflicts (the API server may be restarting). */
async function retrying<T>(what: string, call: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (
        (typeof code === "number" && code >= 400 && code < 500 && code !== 409 && code !== 429) ||
        Date.now() > deadline
      )
        throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

type Env = {
  name: string;
  s: Scenario;
  scim: ScimServer;
  handmade: { dn: string; ldap: Entry; scimId: string; scim: Rec };
  operators: OperatorProcess[];
};

async function prepare(name: string): Promise<Env> {
  const scim = await startScimServer();
  cleanups.push(() => scim.stop());
  const s = await scenario(info, `faults-${name}`, { safety: SAFETY }, info.ldap);
  cleanups.push(() => s.close());
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: "wiki" },
    spec: {
      scim: {
        baseURL: scim.baseURL,
        tokenSecretRef: { name: "wiki-token", key: "token" },
        requestsPerSecond: SCIM_RATE,
      },
      safety: SAFETY,
    },
  });
  await s.apply("AccessPolicy", "everyone", {
    grants: [
      { connector: s.connector, groups: LDAP_GROUPS },
      { connector: "wiki", groups: SCIM_GROUPS },
    ],
  });

  // Unowned accounts in the managed scope, made by hand: an employeeNumber / externalId that no
  // Employee has. They must come out of every fault exactly as they went in.
  const dn = `uid=handmade,${s.usersDN}`;
  await s.ldap.client.add(dn, {
    objectClass: ["inetOrgPerson"],
    uid: "handmade",
    cn: "Hand Made",
    sn: "Made",
    mail: "handmade@example.com",
    employeeNumber: "HAND-1",
  });
  const created = await fetch(`${scim.baseURL}/Users`, {
    method: "POST",
    headers: { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" },
    body: JSON.stringify({
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
      userName: "handmade",
      externalId: "HAND-1",
      active: true,
      name: { givenName: "Hand", familyName: "Made" },
    }),
  });
  expect(created.status).toBe(201);
  const scimId = ((await created.json()) as ScimUser).id;
  const env: Env = {
    name,
    s,
    scim,
    operators: [],
    handmade: {
      dn,
      ldap: (await readEntry(s.ldap, dn))!,
      scimId,
      scim: structuredClone(scim.storage.users.get(scimId)!),
    },
  };
  return env;
}

async function operator(env: Env, options: Partial<Parameters<typeof startOperator>[0]> = {}) {
  const o = await startOperator({
    kubeconfigPath: info.kubeconfigPath,
    namespace: env.s.namespace,
    leaderElection: false,
    ...options,
  });
  env.operators.push(o);
  cleanups.push(async () => {
    if (o.child.pid && o.child.exitCode === null) process.kill(o.child.pid, "SIGCONT");
    await o.stop();
  });
  return o;
}

async function readEntry(look: LdapLook, dn: string): Promise<Entry | undefined> {
  const { searchEntries } = await look.client.search(dn, { scope: "base", attributes: ["*", "+"] });
  return searchEntries[0];
}

/** Runs `fn` over `items`, `width` at a time. */
async function pooled<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

async function hire(env: Env, indexes: number[]): Promise<void> {
  await pooled(indexes, 10, (i) =>
    retrying(`hire ${names[i]}`, async () => {
      try {
        await createRoster(env.s.kube, env.s.namespace, {
          apiVersion: API_VERSION,
          kind: "Employee",
          metadata: { name: names[i] },
          spec: person(idOf(i), names[i]!),
        });
      } catch (error) {
        // A retried create whose first attempt went through.
        if ((error as { code?: number }).code !== 409) throw error;
      }
    }),
  );
}

async function terminate(env: Env, indexes: number[]): Promise<void> {
  await pooled(indexes, 10, (i) =>
    retrying(`terminate ${names[i]}`, () =>
      env.s.kube.custom.patchNamespacedCustomObject(
        {
          group: "roster.dev",
          version: "v1alpha1",
          namespace: env.s.namespace,
          plural: "employees",
          name: names[i]!,
          body: { spec: { employmentStatus: "Terminated" } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
    ),
  );
}

async function employees(env: Env): Promise<Employee[]> {
  const list = (await env.s.kube.custom.listNamespacedCustomObject({
    group: "roster.dev",
    version: "v1alpha1",
    namespace: env.s.namespace,
    plural: "employees",
  })) as { items: Employee[] };
  return list.items;
}

/** People provisioned in SCIM so far (the last connector a hire reaches). */
const scimProvisioned = (env: Env) => env.scim.storage.users.size - 1;

const leavers = new Set(range(0, LEAVERS).map((i) => names[i]!));

function settled(e: Employee): boolean {
  const st = e.status;
  if (!st || st.observedGeneration !== e.metadata.generation || readyCondition(e)?.status !== "True")
    return false;
  if (leavers.has(e.metadata.name))
    return (
      st.phase === "Deprovisioned" &&
      (st.accounts ?? []).every((a) => a.state === "Disabled" || a.state === "Deleted")
    );
  return st.phase === "Active" && st.accounts?.length === 2 && st.accounts.every((a) => a.state === "Active");
}

/** Waits until all 40 Employees have converged; returns the milliseconds since `since`. */
async function converge(env: Env, since: number, timeoutMs = 90_000): Promise<number> {
  let pending: Employee[] = [];
  await waitFor(
    async () => {
      const all = await employees(env);
      if (all.length !== HIRES) return false;
      pending = all.filter((e) => !settled(e));
      return pending.length === 0;
    },
    timeoutMs,
    () =>
      `${pending.length} Employees did not converge:\n${pending
        .slice(0, 5)
        .map((e) => `${e.metadata.name} (generation ${e.metadata.generation}): ${JSON.stringify(e.status)}`)
        .join("\n")}\nthe operator's log ends:\n${env.operators.at(-1)?.tail(15)}`,
    250,
  );
  return Date.now() - since;
}

function report(fault: string, ms: number, extra: Rec = {}): void {
  console.log(`fault ${fault}: converged in ${ms} ms`);
  mkdirSync(results, { recursive: true });
  appendFileSync(
    join(results, "faults.jsonl"),
    `${JSON.stringify({ fault, convergedMs: ms, hires: HIRES, leavers: LEAVERS, at: new Date().toISOString(), ...extra })}\n`,
  );
}

/** Everything a user would check after the storm, in the Employees and in both targets. */
async function verify(env: Env): Promise<void> {
  const { s, scim } = env;
  const look = await ldapLook(info.ldap);
  try {
    // LDAP: one entry per employeeNumber, the hand-made one unchanged.
    const { searchEntries } = await look.client.search(s.usersDN, {
      scope: "sub",
      filter: "(employeeNumber=*)",
      attributes: ["*", "+"],
    });
    const byId = new Map<string, Entry[]>();
    for (const entry of searchEntries) {
      const id = attr(entry, "employeeNumber")[0]!;
      byId.set(id, [...(byId.get(id) ?? []), entry]);
    }
    for (const [id, entries] of byId) expect(entries, `LDAP entries for ${id}`).toHaveLength(1);
    expect(await readEntry(look, env.handmade.dn)).toEqual(env.handmade.ldap);
    const groups = (
      await look.client.search(s.groupsDN, { scope: "one", filter: "(cn=*)", attributes: ["cn", "member"] })
    ).searchEntries;
    const groupsOf = (dn: string) =>
      groups
        .filter((g) => attr(g, "member").includes(dn))
        .map((g) => attr(g, "cn")[0]!)
        .sort();

    // SCIM: one user per externalId, the hand-made one unchanged and in no group.
    const users = (await scim.users()) as ScimUser[];
    const scimGroups = (await scim.groups()) as ScimGroup[];
    expect(new Set(users.map((u) => u.externalId)).size).toBe(users.length);
    expect(scim.storage.users.get(env.handmade.scimId)).toEqual(env.handmade.scim);
    const scimGroupsOf = (id: string) =>
      scimGroups
        .filter((g) => g.members?.some((m) => m.value === id))
        .map((g) => g.displayName)
        .sort();
    expect(scimGroupsOf(env.handmade.scimId)).toEqual([]);

    const all = await employees(env);
    expect(all).toHaveLength(HIRES);
    for (const [i, name] of names.entries()) {
      const e = all.find((x) => x.metadata.name === name)!;
      const entry = byId.get(idOf(i))?.[0];
      const user = users.find((u) => u.externalId === idOf(i));
      const accounts = e.status?.accounts ?? [];
      const ldapAccount = accounts.find((a) => a.connector === s.connector);
      const scimAccount = accounts.find((a) => a.connector === "wiki");
      expect(readyCondition(e)?.status, name).toBe("True");
      if (!leavers.has(name)) {
        expect(e.status?.phase, name).toBe("Active");
        expect(accounts, name).toHaveLength(2);
        expect(ldapAccount, name).toMatchObject({ id: entry?.dn, state: "Active", groups: LDAP_GROUPS });
        expect(scimAccount, name).toMatchObject({ id: user?.id, state: "Active", groups: SCIM_GROUPS });
        expect(attr(entry, "pwdAccountLockedTime"), name).toEqual([]);
        expect(groupsOf(entry!.dn), name).toEqual(LDAP_GROUPS);
        expect(user?.active, name).toBe(true);
        expect(scimGroupsOf(user!.id), name).toEqual(SCIM_GROUPS);
      } else {
        // A leaver terminated before the operator got to them may never have had an account (status
        // then lists none, or a Deleted one after a failed attempt); an account that exists is
        // listed as Disabled, locked or inactive, and in no group.
        expect(e.status?.phase, name).toBe("Deprovisioned");
        expect(e.status?.deprovisionedAt, name).toBeDefined();
        const shape = (a: (typeof accounts)[number] | undefined) =>
          a && a.state !== "Deleted" ? { id: a.id, state: a.state, groups: a.groups } : undefined;
        expect(shape(ldapAccount), name).toEqual(
          entry ? { id: entry.dn, state: "Disabled", groups: [] } : undefined,
        );
        expect(shape(scimAccount), name).toEqual(
          user ? { id: user.id, state: "Disabled", groups: [] } : undefined,
        );
        if (entry) {
          expect(attr(entry, "pwdAccountLockedTime"), name).toEqual(["000001010000Z"]);
          expect(groupsOf(entry.dn), name).toEqual([]);
        }
        if (user) {
          expect(user.active, name).toBe(false);
          expect(scimGroupsOf(user.id), name).toEqual([]);
        }
      }
    }
    // Every hire has its accounts; no account exists for anyone else but the hand-made ones.
    expect(byId.size).toBeGreaterThanOrEqual(HIRES - LEAVERS + 1);
    expect([...byId.keys()].every((id) => id === "HAND-1" || /^F\d{3}$/.test(id))).toBe(true);
  } finally {
    await look.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGSTOPs `leader` as soon as a watch shows it renewed the Lease; resolves with the time. */
async function freezeOnRenewal(
  s: Scenario,
  leaseName: string,
  identity: string,
  leader: OperatorProcess,
): Promise<number> {
  let controller: AbortController | undefined;
  let renewedAt: string | undefined;
  const stopped = new Promise<number>((resolve, reject) => {
    void new Watch(s.kube.kc)
      .watch(
        `/apis/coordination.k8s.io/v1/namespaces/${s.namespace}/leases`,
        { fieldSelector: `metadata.name=${leaseName}` },
        (type: string, lease: V1Lease) => {
          const renewal = String(lease.spec?.renewTime);
          if (type === "MODIFIED" && renewedAt !== undefined && renewal !== renewedAt) {
            if (lease.spec?.holderIdentity !== identity) reject(new Error("the leader changed too early"));
            process.kill(leader.child.pid!, "SIGSTOP");
            resolve(Date.now());
            controller?.abort();
          }
          renewedAt = renewal;
        },
        (err: unknown) => (err ? reject(err as Error) : undefined),
      )
      .then((c) => (controller = c), reject);
  });
  const timeout = sleep(15_000).then(() => Promise.reject(new Error("no lease renewal seen in 15 s")));
  return Promise.race([stopped, timeout]);
}

describe("faults during a batch of 40 hires and 15 leavers", () => {
  it("slapd SIGKILLed mid-batch and restarted a few seconds later", async () => {
    const env = await prepare("slapd");
    await operator(env);
    await hire(env, range(0, FIRST_WAVE));
    await waitFor(
      async () => scimProvisioned(env) >= 5,
      30_000,
      () => "the first hires did not happen",
    );

    await slapd.kill();
    const killedAt = Date.now();
    await env.s.ldap.close().catch(() => {});
    await hire(env, range(FIRST_WAVE, HIRES));
    await terminate(env, range(0, LEAVERS));
    await sleep(Math.max(0, 3000 - (Date.now() - killedAt)));
    await slapd.restart();
    const back = Date.now();
    env.s.ldap = await ldapLook(info.ldap);

    const ms = await converge(env, back);
    report("slapd-sigkill", ms, { downMs: back - killedAt });
    await verify(env);
  });

  it("the SCIM service answering 500 and then 429 with Retry-After for a while", async () => {
    const env = await prepare("scim");
    await operator(env);
    await hire(env, range(0, FIRST_WAVE));
    await waitFor(
      async () => scimProvisioned(env) >= 5,
      30_000,
      () => "the first hires did not happen",
    );

    // Every request fails with 500 for 4 s, then is throttled with Retry-After: 1 for 4 s.
    const start = Date.now();
    const firstRequest = env.scim.requests.length;
    env.scim.onRequest = () => {
      const t = Date.now() - start;
      if (t < 4000) env.scim.faults.failNext(1, 500);
      else if (t < 8000) env.scim.faults.throttleNext(1, 1);
    };
    await hire(env, range(FIRST_WAVE, HIRES));
    await terminate(env, range(0, LEAVERS));
    await sleep(Math.max(0, 8000 - (Date.now() - start)));
    env.scim.onRequest = undefined;
    const over = Date.now();
    const statuses = env.scim.requests.slice(firstRequest).map((r) => r.status);
    expect(statuses).toContain(500);
    expect(statuses).toContain(429);

    const ms = await converge(env, over);
    report("scim-500-429", ms, {
      failed: statuses.filter((st) => st === 500).length,
      throttled: statuses.filter((st) => st === 429).length,
    });
    await verify(env);
  });

  it("kube-apiserver restarted mid-batch: watches resume and nothing created or terminated around it is missed", async () => {
    const env = await prepare("apiserver");
    await operator(env);
    await hire(env, range(0, FIRST_WAVE));
    await waitFor(
      async () => scimProvisioned(env) >= 5,
      30_000,
      () => "the first hires did not happen",
    );

    // Right before the restart: more hires and the first leavers.
    await hire(env, range(FIRST_WAVE, 28));
    await terminate(env, range(0, 8));
    const restartAt = Date.now();
    await controlPlane.restartApiServer();
    const back = Date.now();
    // Right after: the rest, seen only if the operator's watches came back.
    await hire(env, range(28, HIRES));
    await terminate(env, range(8, LEAVERS));

    const ms = await converge(env, back);
    report("apiserver-restart", ms, { restartMs: back - restartAt });
    await verify(env);
  });

  it("the operator SIGKILLed mid-batch and started again", async () => {
    const env = await prepare("operator");
    const first = await operator(env);
    await hire(env, range(0, HIRES));
    await waitFor(
      async () => scimProvisioned(env) >= 12,
      30_000,
      () => "the first hires did not happen",
    );
    await first.kill();
    expect(scimProvisioned(env)).toBeLessThan(HIRES);
    await terminate(env, range(0, LEAVERS));

    const restartAt = Date.now();
    await operator(env);
    const ms = await converge(env, restartAt);
    report("operator-sigkill", ms);
    await verify(env);
  });

  it("the leader frozen with SIGSTOP: the standby takes over within the lease, and the old leader exits on SIGCONT without writing", async () => {
    const env = await prepare("sigstop");
    const { s } = env;
    const leaseName = `faults-${s.namespace}`;
    const leases = s.kube.kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ name: leaseName, namespace: s.namespace })).spec?.holderIdentity ??
      "";
    const a = await operator(env, { leaderElection: true, leaseName });
    await waitFor(
      async () => !!(await holder()),
      20_000,
      () => "nobody took the lease",
    );
    const leaderIdentity = await holder();
    const b = await operator(env, { leaderElection: true, leaseName });
    expect(requireMetric(await a.metrics(), "leader_election_master_status")).toBe(1);
    // The elector sets the gauge to 0 when it starts: a standby shows 0, not nothing.
    expect(requireMetric(await b.metrics(), "leader_election_master_status")).toBe(0);

    await hire(env, range(0, HIRES));
    await waitFor(
      async () => scimProvisioned(env) >= 5,
      30_000,
      () => "the first hires did not happen",
    );
    // Freeze the leader mid-batch the moment the API server has accepted one of its renewals: when
    // the answer is still unread, what it reads on waking up is a renewal 15+ s old. A freeze must
    // be safe at any moment; this is the hardest one.
    const stoppedAt = await freezeOnRenewal(s, leaseName, leaderIdentity, a);
    await terminate(env, range(0, LEAVERS));

    await waitFor(
      async () => ![leaderIdentity, ""].includes(await holder()),
      25_000,
      () => "the standby did not take the lease",
      200,
    );
    const takeoverMs = Date.now() - stoppedAt;
    expect(takeoverMs).toBeLessThan(20_000);
    const ms = await converge(env, stoppedAt);
    expect(requireMetric(await b.metrics(), "leader_election_master_status")).toBe(1);

    // What the world looks like before the old leader wakes up.
    const look = await ldapLook(info.ldap);
    const snapshot = async () => ({
      ldap: (
        await Promise.all(
          [s.usersDN, s.groupsDN].map(
            async (base) =>
              (await look.client.search(base, { scope: "sub", attributes: ["*", "+"] })).searchEntries,
          ),
        )
      ).flat(),
      scim: { users: await env.scim.users(), groups: await env.scim.groups() },
      employees: (await employees(env)).map((e) => ({ name: e.metadata.name, status: e.status })),
    });
    const before = await snapshot();
    const firstRequest = env.scim.requests.length;
    const exited = a.exited;
    process.kill(a.child.pid!, "SIGCONT");
    const resumedAt = Date.now();
    const code = await Promise.race([exited, sleep(10_000).then(() => "still running")]);
    const exitMs = Date.now() - resumedAt;
    await sleep(1500);
    const after = await snapshot();
    await look.close();
    report("leader-sigstop", ms, { takeoverMs, oldLeaderExitMs: exitMs });

    expect(code, `old leader after SIGCONT:\n${a.tail(20)}`).toBe(1);
    // "At once": on its first timer or write after waking, not at its next renewal attempt (2 s).
    expect.soft(exitMs, "old leader's time to exit after SIGCONT").toBeLessThan(1000);
    expect(a.tail(200)).toContain("lost leadership");
    // Soft: each kind of stale write is reported, and verify() below shows what it broke.
    const writes = env.scim.requests
      .slice(firstRequest)
      .filter((r) => r.method !== "GET")
      .map((r) => `${r.method} ${r.path} -> ${r.status} ${JSON.stringify(r.body ?? "")}`);
    expect.soft(writes, "SCIM writes after the old leader woke up").toEqual([]);
    expect.soft(after.ldap, "LDAP after the old leader woke up").toEqual(before.ldap);
    expect.soft(after.scim, "SCIM after the old leader woke up").toEqual(before.scim);
    expect.soft(after.employees, "Employee status after the old leader woke up").toEqual(before.employees);
    await verify(env);
  });
});
