// `npm run bench` (issue 7, 16): provisioning performance of the operator on the real harness.
//
//   npm run bench                                 # 10,000 Employees, every phase (about 20 minutes on 2 cores)
//   npm run bench -- --employees 10000,30000      # each size from scratch, side by side (growth)
//   npm run bench -- --employees 1000             # a quick run
//   npm run bench -- --scim-budget                # only the SCIM request budget (about 2 minutes)
//   npm run bench -- --help
//
// At the first size it measures the plain-ldapts ceiling and the ideal operator (bench/ideal.ts: only
// the writes any operator must do), each on servers of its own; per size it then starts a fresh
// control plane, slapd and SCIM server and runs
// `roster operator` as a child process, compiled as the image runs it and with the chart's
// NODE_OPTIONS, and measures: bulk joiners, an AccessPolicy edit affecting 1%, leaver latency, a
// Connector edit, idle full scans and memory (RSS sampled every second, against the chart's
// memory limit). Writes bench/results/report-<timestamp>.json, bench/results/latest.json and
// bench/results/summary.md. Targets are reported, never asserted.
import { mkdirSync, mkdtempSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { Client } from "ldapts";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { API_VERSION, GROUP, VERSION } from "../src/api/schema.ts";
import type { EmployeeSpecT } from "../src/api/types.ts";
import { childDN, escapeFilterValue } from "../src/connectors/ldap/escape.ts";
import { kubeGet, startControlPlane } from "../test/harness/controlplane.ts";
import { freePort, registerDirectory, waitFor } from "../test/harness/processes.ts";
import { startSlapd, type Slapd } from "../test/harness/slapd.ts";
import { createRoster, freshNamespace, kubeFrom } from "../test/support/kube.ts";
import { shareConnections } from "../src/kube/client.ts";
import { ensureOUs } from "../test/support/ldap.ts";
import { runCeiling, type CeilingResult } from "./ceiling.ts";
import { runIdeal, type IdealResult } from "./ideal.ts";
import { Profiler, type ProfileSummary } from "./profile.ts";
import { measureScimBudget } from "./scim-budget.ts";
import { renderSummary, type Report } from "./summary.ts";
import {
  buildOperator,
  chartMemory,
  childProcesses,
  cpuDelta,
  cpuSeconds,
  diffCounts,
  distribution,
  machine,
  metric,
  mib,
  parseMetrics,
  pool,
  progress,
  requestCounts,
  ResourceWatch,
  root,
  settle,
  sleep,
  startOperator,
  startScimTarget,
  sumWhere,
  type Operator,
  type Sample,
  type WatchedObject,
} from "./support.ts";

const HELP = `Usage: npm run bench -- [flags]
  --employees N[,N...]     Employees in the bulk set (default 10000); several sizes run one after
                           the other, each on a fresh harness, and the summary compares them
                           (e.g. 10000,30000: bulk, idle scan and RSS ratios); the ceiling and the
                           ideal operator are measured at the first size only
  --workers N              operator --workers (default 16)
  --create-concurrency N   Employee creates in flight (default 32)
  --ceiling-concurrency N  LDAP accounts in flight in the ceiling script (default: --workers)
  --leavers N              leavers, one at a time (default 200)
  --leaver-pool N          leavers are taken from the first N Employees (default 1000)
  --idle-scans N           idle full scans per connector (default 12)
  --resync-interval D      drift.resyncInterval during the idle phase (default 5s)
  --slapd-no-member-index  slapd without its equality index on member (an experiment: back-mdb
                           then stops re-indexing every member of a group on each change)
  --scim-server IMPL       indexed (default) | harness (test/harness/scim.ts; slow past ~1,000 users)
  --profile                CPU-profile the operator per phase (inspector; profiles in a temp dir;
                           the operator runs tsc's dist/ unbundled, so frames map to src/)
  --operator-node-options S  NODE_OPTIONS for the operator instead of the chart's operator.nodeOptions
                           (experiments, e.g. =--max-old-space-size=160)
  --operator-env K=V       an environment variable for the operator process only, beside the
                           chart's operator.env (repeatable; experiments, e.g. MALLOC_ARENA_MAX=8)
  --operator-source        run the operator from src/ (Node strips types) instead of compiling it
                           and bundling it as the image does (dist/bundle/)
  --skip-ceiling --skip-ideal --skip-policy --skip-leavers --skip-idle --skip-scim-budget
  --scim-budget            only the SCIM request budget (requests per hire, mover, leaver and idle
                           minute against the strict SCIM server, bench/scim-budget.ts), merged into
                           latest.json and summary.md
  --budget-idle-seconds N  the budget's idle window (default 60)
  --out DIR                results directory (default bench/results)
  --render REPORT.json     only re-render summary.md from a saved report (and bench/findings.md)`;

const { values: flags } = parseArgs({
  options: {
    employees: { type: "string", default: "10000" },
    workers: { type: "string", default: "16" },
    "create-concurrency": { type: "string", default: "32" },
    "ceiling-concurrency": { type: "string" },
    leavers: { type: "string", default: "200" },
    "leaver-pool": { type: "string", default: "1000" },
    "idle-scans": { type: "string", default: "12" },
    "resync-interval": { type: "string", default: "5s" },
    "scim-server": { type: "string", default: "indexed" },
    "slapd-no-member-index": { type: "boolean", default: false },
    "operator-node-options": { type: "string" },
    "operator-env": { type: "string", multiple: true },
    "operator-source": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    "skip-ceiling": { type: "boolean", default: false },
    "skip-ideal": { type: "boolean", default: false },
    "skip-policy": { type: "boolean", default: false },
    "skip-leavers": { type: "boolean", default: false },
    "skip-idle": { type: "boolean", default: false },
    "skip-scim-budget": { type: "boolean", default: false },
    "scim-budget": { type: "boolean", default: false },
    "budget-idle-seconds": { type: "string", default: "60" },
    out: { type: "string", default: join(root, "bench/results") },
    render: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
if (flags.render) {
  // Re-renders summary.md from a saved report (e.g. after editing bench/findings.md).
  const saved = JSON.parse(readFileSync(flags.render, "utf8")) as Report;
  const findingsFile = join(root, "bench/findings.md");
  writeFileSync(
    join(flags.out!, "summary.md"),
    renderSummary(saved, existsSync(findingsFile) ? readFileSync(findingsFile, "utf8") : undefined),
  );
  console.log(`wrote ${join(flags.out!, "summary.md")} from ${flags.render}`);
  process.exit(0);
}
const int = (name: keyof typeof flags, fallback?: number) => {
  const raw = flags[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (n === undefined || !Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
};
const SIZES = flags.employees!.split(",").map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n <= 0) throw new Error("--employees must be whole numbers, e.g. 10000,30000");
  return n;
});
const WORKERS = int("workers");
const CREATE_CONCURRENCY = int("create-concurrency");
const CEILING_CONCURRENCY = int("ceiling-concurrency", WORKERS);
const IDLE_SCANS = int("idle-scans");
const RESYNC = flags["resync-interval"]!;
const LDAP_GROUPS = ["staff", "vpn", "wiki"];
/** The SCIM account's groups (AccessPolicy base): a create and a group add, as the ideal operator does. */
const SCIM_GROUPS = ["everyone"];
const POLICY_GROUP = "crm-users";
const SAFETY = { maxDeprovisionsPerHour: 100000, maxDeprovisionPercent: 100 };

const CHART = chartMemory();
const NODE_OPTIONS = flags["operator-node-options"] ?? CHART.nodeOptions;
/** --operator-env: experiments, on top of the chart's operator.env. */
const EXPERIMENT_ENV: Record<string, string> = Object.fromEntries(
  (flags["operator-env"] ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const OPERATOR_ENV = { ...CHART.env, ...EXPERIMENT_ENV };
const SLAPD_OPTIONS = { memberIndex: !flags["slapd-no-member-index"] };

function gitState(): { commit: string; dirtySrc: boolean } | undefined {
  try {
    const git = (args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
    return {
      commit: git(["rev-parse", "--short", "HEAD"]),
      dirtySrc: git(["status", "--porcelain", "src"]) !== "",
    };
  } catch {
    return undefined;
  }
}
const GIT = gitState();
const MACHINE = machine();

/** One report per size; the first is the summary's main one, the others its growth comparison. */
const runs: Record<string, unknown>[] = [];
const save = () => {
  const [first, ...larger] = runs;
  if (!first) return;
  const report = { ...first, ...(larger.length ? { largerRuns: larger } : {}) };
  mkdirSync(flags.out!, { recursive: true });
  const stamp = (first.startedAt as string).replace(/[:.]/g, "-");
  const json = JSON.stringify(report, null, 2);
  writeFileSync(join(flags.out!, `report-${stamp}.json`), json);
  writeFileSync(join(flags.out!, "latest.json"), json);
  const findings = join(root, "bench/findings.md");
  writeFileSync(
    join(flags.out!, "summary.md"),
    renderSummary(
      report as unknown as Report,
      existsSync(findings) ? readFileSync(findings, "utf8") : undefined,
    ),
  );
};

const newReport = (N: number, LEAVERS: number, LEAVER_POOL: number): Record<string, unknown> => ({
  startedAt: new Date().toISOString(),
  git: GIT,
  machine: { ...MACHINE, loadAverageAtStart: machine().loadAverageAtStart },
  settings: {
    employees: N,
    workers: WORKERS,
    createConcurrency: CREATE_CONCURRENCY,
    ceilingConcurrency: CEILING_CONCURRENCY,
    leavers: LEAVERS,
    leaverPool: LEAVER_POOL,
    idleScans: IDLE_SCANS,
    idleResyncInterval: RESYNC,
    scimServer: flags["scim-server"],
    slapdMemberIndex: SLAPD_OPTIONS.memberIndex,
    operatorNodeOptions: NODE_OPTIONS,
    operatorNodeOptionsFromChart: flags["operator-node-options"] === undefined,
    operatorEnvFromChart: CHART.env,
    operatorEnvExperiment: EXPERIMENT_ENV,
    operatorBuild: flags["operator-source"] ? "source" : flags.profile ? "compiled" : "bundled",
    chartMemoryLimit: CHART.limit,
    chartMemoryLimitMiB: CHART.limitMiB,
    ldapGroupsPerAccount: LDAP_GROUPS.length,
    scimGroupsPerAccount: SCIM_GROUPS.length,
    safety: SAFETY,
    logLevel: "warn",
  },
});

// --- the people -------------------------------------------------------------------------------

const DEPARTMENTS = ["Engineering", "Support", "Finance", "Marketing"];
const pad = (i: number) => String(i).padStart(6, "0");
const isSales = (i: number) => i % 100 === 50;
const peopleOf = (N: number) =>
  Array.from({ length: N }, (_, i) => ({
    name: `e${pad(i)}`,
    spec: {
      employeeId: `E${pad(i)}`,
      username: `u${pad(i)}`,
      givenName: `Given${i}`,
      familyName: "Bench",
      email: `u${pad(i)}@example.com`,
      department: isSales(i) ? "Sales" : DEPARTMENTS[i % DEPARTMENTS.length],
      title: "Engineer",
      location: "Berlin",
    } as EmployeeSpecT,
  }));

/** The source the budget measured, for its section of the summary. */
function budgetGit(): { git?: string } {
  return GIT ? { git: `${GIT.commit}${GIT.dirtySrc ? " with uncommitted changes in src/" : ""}` } : {};
}

if (flags["scim-budget"]) {
  // Only the budget: a control plane and the strict SCIM server, no slapd, no 10,000 people.
  const dir = mkdtempSync(join(tmpdir(), "roster-bench-"));
  registerDirectory(dir);
  progress("scim budget: starting the control plane");
  const controlPlane = await startControlPlane();
  try {
    const budget = await measureScimBudget({
      kube: kubeFrom({ kubeconfigPath: controlPlane.kubeconfigPath }),
      kubeconfigPath: controlPlane.kubeconfigPath,
      dir,
      ...budgetGit(),
      idleSeconds: int("budget-idle-seconds"),
    });
    // Into the last full report, so that summary.md keeps every other figure (each section says
    // when it was measured).
    const latest = join(flags.out!, "latest.json");
    const saved = (
      existsSync(latest) ? JSON.parse(readFileSync(latest, "utf8")) : newReport(SIZES[0]!, 0, 0)
    ) as Report;
    saved.scimBudget = budget;
    mkdirSync(flags.out!, { recursive: true });
    writeFileSync(latest, JSON.stringify(saved, null, 2));
    const findings = join(root, "bench/findings.md");
    writeFileSync(
      join(flags.out!, "summary.md"),
      renderSummary(saved, existsSync(findings) ? readFileSync(findings, "utf8") : undefined),
    );
    progress(
      `scim budget: per hire ${budget.perHire}, mover ${budget.perMover}, leaver ${budget.perLeaver}, idle minute ${budget.perIdleMinute}; wrote ${join(flags.out!, "summary.md")}`,
    );
  } finally {
    await controlPlane.stop();
  }
  process.exit(0);
}

// The operator once for every size, as the image runs it.
const buildDir = mkdtempSync(join(tmpdir(), "roster-bench-build-"));
registerDirectory(buildDir);
const OPERATOR_ENTRY = flags["operator-source"]
  ? undefined
  : buildOperator(buildDir, { bundle: !flags.profile });
if (OPERATOR_ENTRY) progress(`operator compiled into ${buildDir} (as the image runs it)`);
progress(
  `operator NODE_OPTIONS "${NODE_OPTIONS}" (${flags["operator-node-options"] === undefined ? "the chart's operator.nodeOptions" : "--operator-node-options"}); environment ${JSON.stringify(OPERATOR_ENV)}; chart memory limit ${CHART.limit}`,
);

for (const [index, size] of SIZES.entries()) {
  progress(`=== ${size} Employees (${index + 1} of ${SIZES.length}) ===`);
  if (await runSize(size, index === 0)) continue;
  process.exitCode = 1;
  break;
}
process.exit();

/** One size on a fresh harness; false when it failed (recorded in its report). */
async function runSize(N: number, first: boolean): Promise<boolean> {
  const LEAVER_POOL = Math.min(int("leaver-pool"), N);
  const LEAVERS = Math.min(int("leavers"), Math.floor(LEAVER_POOL / 2));
  const report = newReport(N, LEAVERS, LEAVER_POOL);
  runs.push(report);
  const people = peopleOf(N);
  const salesCount = people.filter((_, i) => isSales(i)).length;

  // --- the yardsticks, each on servers of its own ------------------------------------------------
  // Measured at the first size only: they are the yardstick, not the subject. Each starts from
  // empty servers, as Roster does after them: left in place, the ceiling's and the ideal
  // operator's 20,000 entries would sit in Roster's slapd and the ideal's 10,000 Employees in its
  // API server (its watch cache and Go heap), through the bulk, the leavers and the scans.

  /** How a yardstick binds to its slapd and where it writes. */
  const ldapOf = (slapd: Slapd) => ({
    url: slapd.url,
    bindDN: slapd.adminDN,
    password: slapd.adminPassword,
    usersParent: slapd.usersDN,
    groupsParent: slapd.groupsDN,
  });

  let ceiling: CeilingResult | undefined;
  if (!flags["skip-ceiling"] && first) {
    const slapd = await startSlapd(SLAPD_OPTIONS);
    try {
      progress(`ceiling: ${N} accounts with ldapts, ${CEILING_CONCURRENCY} in flight on one connection`);
      ceiling = await runCeiling({
        ...ldapOf(slapd),
        groups: LDAP_GROUPS,
        people: people.map((p) => p.spec),
        concurrency: CEILING_CONCURRENCY,
      });
    } finally {
      await slapd.stop();
    }
    progress(`ceiling: ${ceiling.accountsPerSecond} accounts/s (${ceiling.seconds} s)`);
    report.ceiling = ceiling;
  }

  let ideal: IdealResult | undefined;
  if (!flags["skip-ideal"] && first) {
    const idealDir = mkdtempSync(join(tmpdir(), "roster-bench-ideal-"));
    registerDirectory(idealDir);
    const [controlPlane, slapd] = await Promise.all([startControlPlane(), startSlapd(SLAPD_OPTIONS)]);
    const idealScim = await startScimTarget(flags["scim-server"]!, idealDir);
    try {
      progress(`ideal operator: ${N} accounts, only the writes any operator must do, ${WORKERS} in flight`);
      const kube = kubeFrom({ kubeconfigPath: controlPlane.kubeconfigPath });
      ideal = await runIdeal({
        kubeconfigPath: controlPlane.kubeconfigPath,
        namespace: await freshNamespace(kube, "ideal"),
        ldap: ldapOf(slapd),
        ldapGroups: LDAP_GROUPS,
        scim: idealScim,
        scimGroups: SCIM_GROUPS,
        people,
        concurrency: WORKERS,
      });
    } finally {
      await idealScim.stop();
      await Promise.allSettled([controlPlane.stop(), slapd.stop()]);
    }
    progress(`ideal operator: ${ideal.accountsPerSecond} accounts/s (${ideal.seconds} s)`);
    report.ideal = ideal;
  }

  // --- the harness ------------------------------------------------------------------------------

  const dir = mkdtempSync(join(tmpdir(), "roster-bench-"));
  registerDirectory(dir);
  progress(`starting control plane, slapd and SCIM server (${flags["scim-server"]}) in ${dir}`);
  const [controlPlane, slapd] = await Promise.all([startControlPlane(), startSlapd(SLAPD_OPTIONS)]);
  const scim = await startScimTarget(flags["scim-server"]!, dir);
  const kube = kubeFrom({ kubeconfigPath: controlPlane.kubeconfigPath });
  // One TLS connection for the bench's own creates and patches, as the operator has: without it each
  // is a handshake, whose CPU the operator would pay on the shared cores.
  shareConnections(kube.kc);
  const kc = kube.kc;
  const namespace = await freshNamespace(kube, "bench");
  const ldap = new Client({ url: slapd.url, timeout: 30_000 });
  await ldap.bind(slapd.adminDN, slapd.adminPassword);
  const ou = `bench-${randomBytes(3).toString("hex")}`;
  const [usersDN, groupsDN] = (await ensureOUs(ldap, ou, [slapd.usersDN, slapd.groupsDN])) as [
    string,
    string,
  ];
  progress(`harness up: ${controlPlane.server}, ${slapd.url}, ${scim.baseURL}; namespace ${namespace}`);

  const pids: Record<number, string> = {};
  const namePids = () => {
    for (const [pid, comm] of Object.entries(childProcesses()))
      pids[Number(pid)] ??= comm === "node" ? `node ${pid}` : comm;
    pids[slapd.pid] = "slapd";
    pids[scim.pid] = "scim-server";
  };

  const custom = kube.custom;
  const crd = (plural: string) => ({ group: GROUP, version: VERSION, namespace, plural });
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const patch = (plural: string, name: string, body: object) =>
    custom.patchNamespacedCustomObject({ ...crd(plural), name, body }, mergePatch);

  await kube.core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "ldap-bind" }, stringData: { password: slapd.adminPassword } },
  });
  await kube.core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: "scim-token" }, stringData: { token: scim.token } },
  });
  const connectorBase = { safety: SAFETY, drift: { policy: "Correct", resyncInterval: "1h" } };
  await createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: "corp-ldap" },
    spec: {
      ...connectorBase,
      ldap: {
        url: slapd.url,
        bindDN: slapd.adminDN,
        bindPasswordSecretRef: { name: "ldap-bind", key: "password" },
        usersDN,
        groupsDN,
      },
    },
  });
  await createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: "apps-scim" },
    spec: {
      ...connectorBase,
      scim: {
        baseURL: scim.baseURL,
        tokenSecretRef: { name: "scim-token", key: "token" },
        requestsPerSecond: 10000,
      },
    },
  });
  await createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "AccessPolicy",
    metadata: { name: "base" },
    spec: {
      grants: [
        { connector: "corp-ldap", groups: LDAP_GROUPS },
        { connector: "apps-scim", groups: SCIM_GROUPS },
      ],
    },
  });
  await createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "AccessPolicy",
    metadata: { name: "sales-tools" },
    spec: {
      match: [{ key: "department", operator: "In", values: ["Sales"] }],
      grants: [{ connector: "corp-ldap", groups: ["staff"] }],
    },
  });

  // --- target checks ----------------------------------------------------------------------------

  const ldapValues = (v: unknown) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));
  async function ldapAccounts(base: string): Promise<number> {
    const { searchEntries } = await ldap.search(base, {
      scope: "one",
      filter: "(employeeNumber=*)",
      attributes: ["1.1"],
      paged: { pageSize: 1000 },
    });
    return searchEntries.length;
  }
  async function ldapMembers(base: string, group: string): Promise<number> {
    const { searchEntries } = await ldap.search(base, {
      scope: "one",
      filter: `(cn=${escapeFilterValue(group)})`,
      attributes: ["member"],
    });
    return ldapValues(searchEntries[0]?.member).filter((m) => m !== "").length;
  }

  // --- watches: Employee readiness and every write ----------------------------------------------

  type Seen = {
    ready: boolean;
    phase?: string;
    ldapGroups: string[];
    ldapState?: string;
    scimState?: string;
  };
  const seen = new Map<string, Seen>();
  let readyCount = 0;
  let lastReadyAt = 0;
  const onEmployee = (type: string, obj: WatchedObject) => {
    const name = obj.metadata.name;
    const before = seen.get(name);
    if (type === "DELETED") {
      if (before?.ready) readyCount--;
      seen.delete(name);
      return;
    }
    const status = (obj.status ?? {}) as {
      phase?: string;
      observedGeneration?: number;
      conditions?: { type: string; status: string }[];
      accounts?: { connector: string; state: string; groups?: string[] }[];
    };
    const ready =
      status.phase === "Active" &&
      status.observedGeneration === obj.metadata.generation &&
      !!status.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    const ldapAccount = status.accounts?.find((a) => a.connector === "corp-ldap");
    const now: Seen = {
      ready,
      phase: status.phase,
      ldapGroups: ldapAccount?.groups ?? [],
      ldapState: ldapAccount?.state,
      scimState: status.accounts?.find((a) => a.connector === "apps-scim")?.state,
    };
    if (ready && !before?.ready) {
      readyCount++;
      lastReadyAt = performance.now();
    } else if (!ready && before?.ready) readyCount--;
    seen.set(name, now);
  };
  const listRV = async (plural: string) =>
    (
      (await custom.listNamespacedCustomObject({ ...crd(plural), limit: 1 })) as {
        metadata: { resourceVersion: string };
      }
    ).metadata.resourceVersion;
  const watches = {
    employees: new ResourceWatch(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/employees`,
      await listRV("employees"),
      onEmployee,
    ),
    connectors: new ResourceWatch(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/connectors`,
      await listRV("connectors"),
    ),
    accesspolicies: new ResourceWatch(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/accesspolicies`,
      await listRV("accesspolicies"),
    ),
  };
  for (const w of Object.values(watches)) await w.start();
  const modified = () => ({
    employees: watches.employees.counts.MODIFIED ?? 0,
    connectors: watches.connectors.counts.MODIFIED ?? 0,
    accesspolicies: watches.accesspolicies.counts.MODIFIED ?? 0,
  });
  const diffModified = (a: ReturnType<typeof modified>, b: ReturnType<typeof modified>) => ({
    employees: a.employees - b.employees,
    connectors: a.connectors - b.connectors,
    accesspolicies: a.accesspolicies - b.accesspolicies,
  });

  /** Write requests the API server served for Roster's kinds, Events and Secrets (apiserver_request_total). */
  async function apiWrites(): Promise<Record<string, number>> {
    const samples = parseMetrics(await kubeGet(kc, "/metrics"));
    const out: Record<string, number> = {};
    for (const s of samples) {
      if (s.name !== "apiserver_request_total") continue;
      if (!["POST", "PUT", "PATCH", "DELETE", "APPLY"].includes(s.labels.verb ?? "")) continue;
      const resource = `${s.labels.resource}${s.labels.subresource ? `/${s.labels.subresource}` : ""}`;
      if (!/^(employees|connectors|accesspolicies|grouprules|events|secrets)/.test(resource)) continue;
      const key = `${s.labels.verb} ${resource}`;
      out[key] = (out[key] ?? 0) + s.value;
    }
    return out;
  }

  // --- the operator -----------------------------------------------------------------------------

  // The inspector (loopback) lets the bench force a garbage collection before reading the heap, and
  // CPU-profile phases with --profile.
  const inspectPort = await freePort();
  const operator: Operator = await startOperator({
    kubeconfigPath: controlPlane.kubeconfigPath,
    namespace,
    workers: WORKERS,
    dir,
    logLevel: "warn",
    // The chart's NODE_OPTIONS (or --operator-node-options), and the inspector.
    nodeOptions: `${NODE_OPTIONS} --inspect=127.0.0.1:${inspectPort}`.trim(),
    env: OPERATOR_ENV,
    ...(OPERATOR_ENTRY ? { entry: OPERATOR_ENTRY } : {}),
  });
  namePids();
  pids[operator.pid] = "operator";
  progress(`operator pid ${operator.pid}, metrics ${operator.metricsUrl}`);
  const inspector = await Profiler.connect(inspectPort);
  const profiler = flags.profile ? inspector : undefined;
  await profiler?.startHeapSampling();
  // RSS every second, the peak per phase: the target is RSS within bounds at every sample.
  let rssPhase = "start";
  const rssPeaks: Record<string, number> = {};
  let rssSamples = 0;
  const recordRss = () => {
    let hwm = 0;
    try {
      const m = operator.memory();
      rssSamples++;
      rssPeaks[rssPhase] = Math.max(rssPeaks[rssPhase] ?? 0, m.rss);
      hwm = m.hwm;
    } catch {
      // exited: the phases fail on their own
    }
    report.rss = {
      sampleSeconds: 1,
      samples: rssSamples,
      peakMiB: mib(Math.max(0, ...Object.values(rssPeaks))),
      peakByPhaseMiB: Object.fromEntries(Object.entries(rssPeaks).map(([k, v]) => [k, mib(v)])),
      highWaterMiB: hwm ? mib(hwm) : (report.rss as { highWaterMiB?: number } | undefined)?.highWaterMiB,
      chartLimitMiB: CHART.limitMiB,
    };
  };
  const rssTimer = setInterval(recordRss, 1000);
  const inPhase = (phase: string) => {
    recordRss();
    rssPhase = phase;
  };
  report.memoryAtStart = await memoryNow();
  const profileDir = flags.profile ? mkdtempSync(join(tmpdir(), "roster-bench-profiles-")) : "";
  const profiles: Record<string, ProfileSummary> = {};
  const profilePhase = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
    inPhase(phase);
    if (!profiler) return fn();
    await profiler.start();
    try {
      return await fn();
    } finally {
      profiles[phase] = await profiler.stop(join(profileDir, `${phase}.cpuprofile`));
      report.profiles = profiles;
    }
  };

  type Snapshot = {
    at: number;
    samples: Sample[];
    requests: Record<string, number>;
    scim: Awaited<ReturnType<typeof scim.stats>>;
    modified: ReturnType<typeof modified>;
    cpu: Record<string, number>;
    apiWrites: Record<string, number>;
    load: number;
  };
  async function snapshot(): Promise<Snapshot> {
    const samples = await operator.samples();
    return {
      at: performance.now(),
      samples,
      requests: requestCounts(samples),
      scim: await scim.stats(),
      modified: modified(),
      cpu: cpuSeconds(pids),
      apiWrites: await apiWrites(),
      load: Math.round(loadavg()[0]! * 100) / 100,
    };
  }
  function window(a: Snapshot, b: Snapshot) {
    const requests = diffCounts(b.requests, a.requests);
    return {
      seconds: Math.round((b.at - a.at) / 100) / 10,
      connectorRequests: requests,
      ldapRequests: sumWhere(requests, (k) => k.startsWith("corp-ldap ")),
      scimConnectorRequests: sumWhere(requests, (k) => k.startsWith("apps-scim ")),
      scimHttpRequests: diffCounts(b.scim.requests, a.scim.requests),
      scimHttpTotal: b.scim.total - a.scim.total,
      modifiedEvents: diffModified(b.modified, a.modified),
      apiWriteRequests: diffCounts(b.apiWrites, a.apiWrites),
      reconciles:
        metric(b.samples, "controller_runtime_reconcile_total", { controller: "employee" }) -
        metric(a.samples, "controller_runtime_reconcile_total", { controller: "employee" }),
      cpuSeconds: cpuDelta(b.cpu, a.cpu),
      loadAverage1m: [a.load, b.load],
    };
  }
  /** Memory as found, then the heap after a forced full garbage collection. */
  async function memoryNow() {
    const found = memory(await operator.samples());
    await inspector.collectGarbage();
    const collected = memory(await operator.samples());
    return { ...found, heapUsedAfterGcMiB: collected.heapUsedMiB, vmRssAfterGcMiB: collected.vmRssMiB };
  }
  function memory(samples: Sample[]) {
    const m = operator.memory();
    return {
      vmRssMiB: mib(m.rss),
      vmHwmMiB: mib(m.hwm),
      processResidentMiB: mib(metric(samples, "process_resident_memory_bytes")),
      heapUsedMiB: mib(metric(samples, "nodejs_heap_size_used_bytes")),
      heapTotalMiB: mib(metric(samples, "nodejs_heap_size_total_bytes")),
      externalMiB: mib(metric(samples, "nodejs_external_memory_bytes")),
      openSockets: m.sockets,
    };
  }

  // Every phase fails at once, with the operator's last log lines, when the operator exits.
  let stopping = false;
  const operatorDied = operator.exited.then((code) => {
    if (!stopping) throw new Error(`the operator exited (code ${code}):\n${operator.tail(30)}`);
  });
  operatorDied.catch(() => {});

  const phases = async () => {
    // --- bulk joiners ---------------------------------------------------------------------------
    await profilePhase("bulk", async () => {
      progress(`bulk: creating ${N} Employees, ${CREATE_CONCURRENCY} in flight`);
      const before = await snapshot();
      const t0 = performance.now();
      let created = 0;
      let createdAt = 0;
      let lastReady = 0;
      let lastProgress = performance.now();
      const timer = setInterval(() => {
        const rate = ((readyCount - lastReady) / 5).toFixed(0);
        lastReady = readyCount;
        const phases: Record<string, number> = {};
        for (const s of seen.values())
          if (!s.ready) phases[s.phase ?? "none"] = (phases[s.phase ?? "none"] ?? 0) + 1;
        progress(
          `bulk: created ${created}/${N}, Ready ${readyCount}/${N} (${rate}/s), operator RSS ${mib(operator.memory().rss)} MiB, ${operator.memory().sockets} sockets, load ${loadavg()[0]!.toFixed(1)}` +
            (Object.keys(phases).length ? `, not Ready: ${JSON.stringify(phases)}` : ""),
        );
      }, 5000);
      try {
        const creating = pool(people, CREATE_CONCURRENCY, async (p) => {
          await createRoster(kube, namespace, {
            apiVersion: API_VERSION,
            kind: "Employee",
            metadata: { name: p.name },
            spec: p.spec,
          });
          created++;
          if (created === N) createdAt = performance.now();
        });
        await creating;
        // Wait for every Employee to be Ready; give up when none became Ready for 5 minutes.
        let lastCount = -1;
        const deadline = performance.now() + Math.max(1_800_000, N * 300);
        while (readyCount < N) {
          if (readyCount !== lastCount) {
            lastCount = readyCount;
            lastProgress = performance.now();
          }
          if (performance.now() - lastProgress > 300_000 || performance.now() > deadline)
            throw new Error(`only ${readyCount}/${N} Employees Ready:\n${operator.tail(20)}`);
          await sleep(100);
        }
      } finally {
        clearInterval(timer);
      }
      const readySeconds = (lastReadyAt - t0) / 1000;
      // Present in the targets: every LDAP entry in its 3 groups, every SCIM user active.
      const targets = {
        ldapAccounts: 0,
        ldapGroupMembers: [] as number[],
        scimUsers: 0,
        scimGroupMembers: [] as number[],
      };
      await waitFor(
        async () => {
          targets.ldapAccounts = await ldapAccounts(usersDN);
          targets.ldapGroupMembers = await Promise.all(LDAP_GROUPS.map((g) => ldapMembers(groupsDN, g)));
          const s = await scim.stats();
          targets.scimUsers = s.activeUsers;
          targets.scimGroupMembers = SCIM_GROUPS.map((g) => s.groupMembers[g] ?? 0);
          return (
            targets.ldapAccounts === N &&
            targets.ldapGroupMembers.every((m) => m === N) &&
            s.activeUsers === N &&
            targets.scimGroupMembers.every((m) => m === N)
          );
        },
        120_000,
        () => `targets incomplete: ${JSON.stringify(targets)}`,
        1000,
      );
      const verifiedSeconds = (performance.now() - t0) / 1000;
      progress(`bulk: ${N} Ready in ${readySeconds.toFixed(1)} s; targets verified; settling`);
      const settleMs = await settle(operator, 300_000);
      const after = await snapshot();
      const throughput = N / readySeconds;
      const w = window(before, after);
      report.bulk = {
        employees: N,
        createSeconds: Math.round((createdAt - t0) / 100) / 10,
        readySeconds: Math.round(readySeconds * 10) / 10,
        targetsVerifiedSeconds: Math.round(verifiedSeconds * 10) / 10,
        accountsPerSecond: Math.round(throughput * 10) / 10,
        ceilingAccountsPerSecond: ceiling?.accountsPerSecond,
        ratioToCeiling: ceiling
          ? Math.round((throughput / ceiling.accountsPerSecond) * 1000) / 1000
          : undefined,
        idealAccountsPerSecond: ideal?.accountsPerSecond,
        ratioToIdeal: ideal ? Math.round((throughput / ideal.accountsPerSecond) * 1000) / 1000 : undefined,
        targets,
        settleSeconds: Math.round(settleMs / 100) / 10,
        ...w,
        ldapRequestsPerAccount: Math.round((w.ldapRequests / N) * 100) / 100,
        scimHttpRequestsPerAccount: Math.round((w.scimHttpTotal / N) * 100) / 100,
        employeeWritesPerAccount: Math.round((w.modifiedEvents.employees / N) * 100) / 100,
      };
      report.memoryAfterBulk = await memoryNow();
      if (profiler) report.heapAfterBulk = await profiler.heap();
      progress(
        `bulk: ${throughput.toFixed(1)} accounts/s` +
          (ceiling ? ` = ${(throughput / ceiling.accountsPerSecond).toFixed(3)} of the ceiling` : "") +
          (ideal ? `, ${(throughput / ideal.accountsPerSecond).toFixed(3)} of the ideal operator` : "") +
          `; RSS ${(report.memoryAfterBulk as { vmRssMiB: number }).vmRssMiB} MiB`,
      );
      save();
    });

    // --- an AccessPolicy edit affecting 1% --------------------------------------------------------
    if (!flags["skip-policy"] && salesCount > 0) {
      await profilePhase("policy", async () => {
        const salesNames = people.filter((_, i) => isSales(i)).map((p) => p.name);
        progress(`policy edit: sales-tools gains ${POLICY_GROUP} for ${salesNames.length} of ${N} Employees`);
        const writers = new Set<string>();
        const unsubscribe = (type: string, obj: WatchedObject) => {
          if (type === "MODIFIED") writers.add(obj.metadata.name);
        };
        const spy = new ResourceWatch(
          kc,
          `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/employees`,
          await listRV("employees"),
          unsubscribe,
        );
        await spy.start();
        const before = await snapshot();
        const t0 = performance.now();
        await patch("accesspolicies", "sales-tools", {
          spec: { grants: [{ connector: "corp-ldap", groups: ["staff", POLICY_GROUP] }] },
        });
        await waitFor(
          async () =>
            salesNames.every((n) => seen.get(n)?.ldapGroups.includes(POLICY_GROUP) && seen.get(n)?.ready) &&
            (await ldapMembers(groupsDN, POLICY_GROUP)) === salesNames.length,
          300_000,
          () => `${POLICY_GROUP} did not reach ${salesNames.length} members`,
          20,
        );
        const converged = (performance.now() - t0) / 1000;
        await sleep(3000);
        await settle(operator, 120_000);
        const after = await snapshot();
        spy.stop();
        const w = window(before, after);
        report.policyEdit = {
          affected: salesNames.length,
          convergeSeconds: Math.round(converged * 1000) / 1000,
          employeesWritten: writers.size,
          employeesWrittenOutsideAffected: [...writers].filter((n) => !salesNames.includes(n)).length,
          ...w,
          findAccountCalls: sumWhere(w.connectorRequests, (k) => k.endsWith(" findAccount")),
        };
        progress(
          `policy edit: converged in ${converged.toFixed(2)} s; ${w.modifiedEvents.employees} Employee writes, ${w.ldapRequests} LDAP + ${w.scimConnectorRequests} SCIM connector calls`,
        );
        save();
      });
    }

    // --- leavers, one at a time -------------------------------------------------------------------
    if (!flags["skip-leavers"] && LEAVERS > 0) {
      await profilePhase("leavers", async () => {
        const step = Math.max(1, Math.floor(LEAVER_POOL / LEAVERS));
        const leavers = people
          .slice(0, LEAVER_POOL)
          .filter((_, i) => i % step === Math.min(2, step - 1) && !isSales(i))
          .slice(0, LEAVERS);
        progress(
          `leavers: ${leavers.length} of the first ${LEAVER_POOL}, sequentially, polling targets every 10 ms`,
        );
        const before = await snapshot();
        const rows: { name: string; apiMs: number; ldapMs: number; scimMs: number; totalMs: number }[] = [];
        const failures: string[] = [];
        for (const [k, p] of leavers.entries()) {
          const dn = childDN("uid", p.spec.username, usersDN);
          const t0 = performance.now();
          await patch("employees", p.name, { spec: { employmentStatus: "Terminated" } });
          const apiMs = performance.now() - t0;
          let ldapMs = NaN;
          let scimMs = NaN;
          const deadline = t0 + 60_000;
          while (Number.isNaN(ldapMs) || Number.isNaN(scimMs)) {
            const tick = performance.now();
            const [entry, groups, user] = await Promise.all([
              Number.isNaN(ldapMs)
                ? ldap.search(dn, { scope: "base", attributes: ["pwdAccountLockedTime"] })
                : undefined,
              Number.isNaN(ldapMs)
                ? ldap.search(groupsDN, {
                    scope: "one",
                    filter: `(member=${escapeFilterValue(dn)})`,
                    attributes: ["1.1"],
                  })
                : undefined,
              Number.isNaN(scimMs) ? scim.user(p.spec.employeeId) : undefined,
            ]);
            const at = performance.now() - t0;
            if (
              entry &&
              groups &&
              ldapValues(entry.searchEntries[0]?.pwdAccountLockedTime).length > 0 &&
              groups.searchEntries.length === 0
            )
              ldapMs = at;
            if (user && user.active === false) scimMs = at;
            if (performance.now() > deadline) {
              failures.push(p.name);
              break;
            }
            await sleep(Math.max(0, 10 - (performance.now() - tick)));
          }
          if (!Number.isNaN(ldapMs) && !Number.isNaN(scimMs))
            rows.push({ name: p.name, apiMs, ldapMs, scimMs, totalMs: Math.max(ldapMs, scimMs) });
          if ((k + 1) % 25 === 0) {
            const d = distribution(rows.map((r) => r.totalMs));
            progress(
              `leavers: ${k + 1}/${leavers.length}, p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms`,
            );
          }
        }
        await settle(operator, 120_000);
        const after = await snapshot();
        report.leavers = {
          count: leavers.length,
          managedEmployees: N,
          failures,
          totalMs: distribution(rows.map((r) => r.totalMs)),
          ldapMs: distribution(rows.map((r) => r.ldapMs)),
          scimMs: distribution(rows.map((r) => r.scimMs)),
          apiWriteMs: distribution(rows.map((r) => r.apiMs)),
          slowest: [...rows].sort((a, b) => b.totalMs - a.totalMs).slice(0, 5),
          ...window(before, after),
        };
        const d = (report.leavers as { totalMs: ReturnType<typeof distribution> }).totalMs;
        progress(`leavers: p50 ${d.p50} ms, p95 ${d.p95} ms, p99 ${d.p99} ms, max ${d.max} ms`);
        save();
      });
    }

    // --- idle: a Connector edit, then full scans with nothing changed ------------------------------
    if (!flags["skip-idle"]) {
      inPhase("connectorEdit");
      progress(`idle: setting drift.resyncInterval ${RESYNC} on both Connectors`);
      const beforeEdit = await snapshot();
      const t0 = performance.now();
      for (const name of ["corp-ldap", "apps-scim"])
        await patch("connectors", name, { spec: { drift: { resyncInterval: RESYNC } } });
      await sleep(3000);
      await settle(operator, 900_000, 3000);
      const afterEdit = await snapshot();
      report.connectorEdit = {
        settleSeconds: Math.round((performance.now() - t0) / 100) / 10,
        ...window(beforeEdit, afterEdit),
      };
      progress(
        `idle: the Connector edit re-reconciled ${(report.connectorEdit as { reconciles: number }).reconciles} Employees in ${(report.connectorEdit as { settleSeconds: number }).settleSeconds} s`,
      );

      await profilePhase("idle", async () => {
        progress(`idle: waiting for ${IDLE_SCANS} full scans per Connector`);
        const before = await snapshot();
        const scans: Record<string, { at: number; seconds: number }[]> = { "corp-ldap": [], "apps-scim": [] };
        // Each full scan's own time, as the operator measures it (its metric lands just after the listing's).
        const scanSeconds: Record<string, number[]> = { "corp-ldap": [], "apps-scim": [] };
        const read = (s: Sample[], c: string) => {
          const listing = { connector: `${namespace}/${c}`, operation: "listAccounts" };
          const scan = { connector: `${namespace}/${c}` };
          return {
            count: metric(s, "roster_connector_request_duration_seconds_count", listing),
            sum: metric(s, "roster_connector_request_duration_seconds_sum", listing),
            scanCount: metric(s, "roster_drift_scan_duration_seconds_count", scan),
            scanSum: metric(s, "roster_drift_scan_duration_seconds_sum", scan),
          };
        };
        const last: Record<string, ReturnType<typeof read>> = {};
        for (const c of Object.keys(scans)) last[c] = read(before.samples, c);
        let memoryPeak = 0;
        await waitFor(
          async () => {
            const s = await operator.samples();
            const at = performance.now();
            memoryPeak = Math.max(memoryPeak, operator.memory().rss);
            for (const c of Object.keys(scans)) {
              const now = read(s, c);
              const was = last[c]!;
              if (now.count > was.count)
                scans[c]!.push({ at, seconds: (now.sum - was.sum) / (now.count - was.count) });
              if (now.scanCount > was.scanCount)
                scanSeconds[c]!.push((now.scanSum - was.scanSum) / (now.scanCount - was.scanCount));
              last[c] = now;
            }
            return Object.keys(scans).every(
              (c) => scans[c]!.length >= IDLE_SCANS && scanSeconds[c]!.length >= IDLE_SCANS,
            );
          },
          IDLE_SCANS * 600_000,
          () =>
            `scans so far: ${JSON.stringify(Object.fromEntries(Object.entries(scans).map(([k, v]) => [k, v.length])))}`,
          100,
        );
        const after = await snapshot();
        const interval = durationSeconds(RESYNC);
        const perConnector = Object.fromEntries(
          Object.entries(scans).map(([c, list]) => {
            const cycles = list.slice(1).map((s, i) => s.at - list[i]!.at);
            return [
              c,
              {
                scans: list.length,
                listAccountsSeconds: distribution(list.map((s) => s.seconds * 1000)),
                fullScanSeconds: distribution(scanSeconds[c]!.map((seconds) => seconds * 1000)),
                // Between two listAccounts completions: listAccounts + compare + the resync interval.
                fullScanSecondsFromCycle: distribution(
                  cycles.map((ms, i) => Math.max(list[i + 1]!.seconds * 1000, ms - interval * 1000)),
                ),
              },
            ];
          }),
        );
        const w = window(before, after);
        report.idle = {
          resyncInterval: RESYNC,
          accounts: N,
          perConnector,
          ...w,
          ldapRequestsPerScan:
            Math.round((w.ldapRequests / Math.max(1, perConnector["corp-ldap"]!.scans)) * 10) / 10,
          scimHttpRequestsPerScan:
            Math.round((w.scimHttpTotal / Math.max(1, perConnector["apps-scim"]!.scans)) * 10) / 10,
          rssPeakMiB: mib(memoryPeak),
        };
        report.memoryAfterIdle = await memoryNow();
        if (profiler) report.heapAfterIdle = await profiler.heap();
        progress(
          `idle: ${JSON.stringify(Object.fromEntries(Object.entries(perConnector).map(([c, v]) => [c, v.listAccountsSeconds.p50])))} ms per listAccounts; writes ${JSON.stringify(w.modifiedEvents)}`,
        );
        save();
      });
    }
    inPhase("end");
    if (first && !flags["skip-scim-budget"]) {
      progress("scim budget: hires, movers, leavers and an idle minute against the strict SCIM server");
      report.scimBudget = await measureScimBudget({
        kube,
        kubeconfigPath: controlPlane.kubeconfigPath,
        dir,
        ...budgetGit(),
        idleSeconds: int("budget-idle-seconds"),
      });
      save();
    }
    report.operatorErrors = sumWhere(requestCounts(await operator.samples()), (k) => k.endsWith("(error)"));
    report.finishedAt = new Date().toISOString();
    save();
    progress(`done: ${join(flags.out!, "summary.md")}`);
  };

  const running = phases();
  // A phase abandoned after the operator died may still be polling; its failure is the one below.
  running.catch(() => {});
  try {
    await Promise.race([running, operatorDied]);
    return true;
  } catch (error) {
    report.error = String((error as Error)?.stack ?? error);
    report.operatorLogTail = operator.tail(40);
    save();
    console.error(error);
    console.error(operator.tail(40));
    return false;
  } finally {
    stopping = true;
    clearInterval(rssTimer);
    inspector.close();
    if (profileDir) progress(`CPU profiles in ${profileDir}`);
    for (const w of Object.values(watches)) w.stop();
    await operator.stop(10_000);
    await ldap.unbind().catch(() => {});
    await scim.stop();
    await Promise.allSettled([controlPlane.stop(), slapd.stop()]);
  }
}

function durationSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`--resync-interval: cannot read ${text}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"];
}
