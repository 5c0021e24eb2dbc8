// Pieces of the bench that are not phases: the operator process, Prometheus text, watches that
// count writes, the SCIM target process, machine facts and small statistics.
import { randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
} from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { load as loadYaml } from "js-yaml";
import { freePort, startProcess, waitFor, type Managed } from "../test/harness/processes.ts";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const root = join(import.meta.dirname, "..");

/** Prints a progress line with the seconds since the bench started. */
const started = performance.now();
export function progress(message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(7);
  console.log(`[${s}s] ${message}`);
}

// --- Prometheus text --------------------------------------------------------------------------

export type Sample = { name: string; labels: Record<string, string>; value: number };

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ([^ ]+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `labels`. */
export function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples)
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  return total;
}

/** roster_connector_requests_total by "connector operation" (result summed), e.g. "ns/corp-ldap findAccount". */
export function requestCounts(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== "roster_connector_requests_total") continue;
    const key = `${s.labels.connector?.split("/").pop()} ${s.labels.operation}${s.labels.result === "error" ? " (error)" : ""}`;
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

export function diffCounts(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export const sumWhere = (counts: Record<string, number>, match: (key: string) => boolean) =>
  Object.entries(counts)
    .filter(([k]) => match(k))
    .reduce((a, [, v]) => a + v, 0);

// --- the operator -----------------------------------------------------------------------------

export type Operator = Managed & {
  pid: number;
  metricsUrl: string;
  samples(): Promise<Sample[]>;
  /** VmRSS and VmHWM of the operator process, in bytes, and its open sockets. */
  memory(): { rss: number; hwm: number; sockets: number };
};

export async function startOperator(options: {
  kubeconfigPath: string;
  namespace: string;
  workers: number;
  dir: string;
  logLevel: string;
  /** The operator's NODE_OPTIONS, exactly (the bench's own are not passed on). */
  nodeOptions?: string;
  /** More environment for the operator process alone. */
  env?: Record<string, string>;
  /** The `roster` entry point: bin/roster.js of the checkout (the sources), or of buildOperator's copy. */
  entry?: string;
}): Promise<Operator> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const args = [
    options.entry ?? join(root, "bin/roster.js"),
    "operator",
    "--kubeconfig",
    options.kubeconfigPath,
    "--namespace",
    options.namespace,
    "--leader-elect=false",
    "--workers",
    String(options.workers),
    "--metrics-addr",
    `127.0.0.1:${metricsPort}`,
    "--health-addr",
    `127.0.0.1:${healthPort}`,
    "--log-level",
    options.logLevel,
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, NODE_OPTIONS: options.nodeOptions ?? "" };
  // As in the image (Dockerfile).
  if (options.entry) env.NODE_ENV = "production";
  const managed = startProcess(process.execPath, args, join(options.dir, "operator.log"), env);
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok,
    60_000,
    () => `operator did not become ready:\n${managed.tail(40)}`,
    200,
  );
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  return {
    ...managed,
    pid: managed.child.pid!,
    metricsUrl,
    samples: async () => parseMetrics(await (await fetch(metricsUrl)).text()),
    memory() {
      const status = readFileSync(`/proc/${managed.child.pid}/status`, "utf8");
      const kb = (key: string) =>
        Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
      let sockets = 0;
      for (const fd of readdirSync(`/proc/${managed.child.pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${managed.child.pid}/fd/${fd}`).startsWith("socket:")) sockets++;
        } catch {
          // closed meanwhile
        }
      }
      return { rss: kb("VmRSS"), hwm: kb("VmHWM"), sockets };
    },
  };
}

/**
 * The operator as the image runs it: src/ compiled by tsc (tsconfig.build.json) into `dir` and
 * bundled (`bundle`, as `npm run build` does), next to a copy of bin/roster.js, which then loads
 * the bundle instead of stripping types from the sources at startup (that costs about 20 MiB of
 * RSS that the image does not have). Returns the entry point.
 */
export function buildOperator(dir: string, options: { bundle: boolean }): string {
  const app = join(dir, "app");
  mkdirSync(join(app, "bin"), { recursive: true });
  try {
    execFileSync(
      join(root, "node_modules/.bin/tsc"),
      ["-p", join(root, "tsconfig.build.json"), "--outDir", join(app, "dist")],
      { cwd: root, encoding: "utf8" },
    );
  } catch (error) {
    // Type errors still emit (noEmitOnError is off); only a missing dist/ is fatal.
    if (!existsSync(join(app, "dist/cli/main.js"))) throw error;
    progress(
      `operator build: tsc reported errors, dist/ emitted anyway:\n${(error as { stdout?: string }).stdout ?? ""}`,
    );
  }
  // The image runs the bundle (scripts/bundle.ts); a profile wants tsc's files, whose frames
  // map to src/ by name.
  if (options.bundle) execFileSync(process.execPath, [join(root, "scripts/bundle.ts"), join(app, "dist")]);
  copyFileSync(join(root, "bin/roster.js"), join(app, "bin/roster.js"));
  copyFileSync(join(root, "package.json"), join(app, "package.json"));
  symlinkSync(join(root, "node_modules"), join(app, "node_modules"));
  symlinkSync(join(root, "crds"), join(app, "crds"));
  return join(app, "bin/roster.js");
}

/**
 * Waits until the operator has nothing to do: the employee queue empty, no worker busy and no
 * reconcile finished nor target request made for `quietMs`.
 */
export async function settle(operator: Operator, timeoutMs: number, quietMs = 2000): Promise<number> {
  const t0 = performance.now();
  let last = "";
  let since = performance.now();
  await waitFor(
    async () => {
      const s = await operator.samples();
      const state = JSON.stringify([
        metric(s, "workqueue_depth", { name: "employee" }),
        metric(s, "controller_runtime_active_workers", { controller: "employee" }),
        metric(s, "controller_runtime_reconcile_total", { controller: "employee" }),
        sumWhere(requestCounts(s), (k) => !k.includes(" check") && !k.includes(" listAccounts")),
      ]);
      const busy = JSON.parse(state) as number[];
      if (state !== last || busy[0]! > 0 || busy[1]! > 0) {
        last = state;
        since = performance.now();
        return false;
      }
      return performance.now() - since >= quietMs;
    },
    timeoutMs,
    () => `the operator did not settle: ${last}`,
    250,
  );
  return performance.now() - t0;
}

// --- watches ----------------------------------------------------------------------------------

export type WatchedObject = {
  metadata: { name: string; resourceVersion?: string; generation?: number };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
};

/** A watch on a collection that restarts where it stopped and counts events by type. */
export class ResourceWatch {
  readonly counts: Record<string, number> = { ADDED: 0, MODIFIED: 0, DELETED: 0 };
  private resourceVersion: string;
  private abort: AbortController | undefined;
  private stopped = false;
  private readonly watch: Watch;
  private readonly path: string;
  private readonly onEvent: (type: string, obj: WatchedObject) => void;

  constructor(
    kc: KubeConfig,
    path: string,
    resourceVersion: string,
    onEvent: (type: string, obj: WatchedObject) => void = () => {},
  ) {
    this.watch = new Watch(kc);
    (this.watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 3_600_000;
    this.path = path;
    this.resourceVersion = resourceVersion;
    this.onEvent = onEvent;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    this.abort = await this.watch.watch(
      this.path,
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 1800 },
      (type: string, obj: WatchedObject) => {
        if (obj?.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (type === "BOOKMARK" || type === "ERROR") return;
        this.counts[type] = (this.counts[type] ?? 0) + 1;
        this.onEvent(type, obj);
      },
      (err: unknown) => {
        if (this.stopped) return;
        if (err) progress(`watch ${this.path} ended (${String((err as Error)?.message ?? err)}); resuming`);
        setTimeout(() => void this.start().catch(() => {}), 200);
      },
    );
  }

  snapshot(): Record<string, number> {
    return { ...this.counts };
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

// --- the SCIM target --------------------------------------------------------------------------

export type ScimStats = {
  requests: Record<string, number>;
  total: number;
  users: number;
  activeUsers: number;
  groups: number;
  groupMembers: Record<string, number>;
};

export type ScimTarget = {
  baseURL: string;
  token: string;
  impl: string;
  pid: number;
  stats(): Promise<ScimStats>;
  user(externalId: string): Promise<{ id: string; active: boolean; groups: string[] } | undefined>;
  stop(): Promise<void>;
};

export async function startScimTarget(impl: string, dir: string): Promise<ScimTarget> {
  const token = randomUUID();
  const logFile = join(dir, "scim.log");
  const managed = startProcess(
    process.execPath,
    [join(root, "bench/scim-server.ts"), "--impl", impl, "--token", token],
    logFile,
  );
  let info: { baseURL: string; adminURL: string } | undefined;
  await waitFor(
    async () => {
      const line = readFileSync(logFile, "utf8")
        .split("\n")
        .find((l) => l.startsWith('{"ready"'));
      if (line) info = JSON.parse(line) as typeof info;
      return !!info;
    },
    30_000,
    () => `SCIM server did not start:\n${managed.tail()}`,
  );
  const adminURL = info!.adminURL;
  const agent = { keepalive: true } as const;
  return {
    baseURL: info!.baseURL,
    token,
    impl,
    pid: managed.child.pid!,
    stats: async () => (await (await fetch(`${adminURL}/stats`, agent)).json()) as ScimStats,
    async user(externalId) {
      const res = await fetch(`${adminURL}/user?externalId=${encodeURIComponent(externalId)}`, agent);
      if (res.status === 404) {
        await res.arrayBuffer();
        return undefined;
      }
      return (await res.json()) as { id: string; active: boolean; groups: string[] };
    },
    stop: () => managed.stop(),
  };
}

// --- machine and statistics -------------------------------------------------------------------

export function machine() {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function distribution(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? NaN),
    mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
  };
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, task: (item: T, index: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** CPU seconds (user + system) of the bench's child processes and of the bench itself, by name. */
export function cpuSeconds(names: Record<number, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, name] of Object.entries(names)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[name] = (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // exited
    }
  }
  const self = process.cpuUsage();
  out.bench = (self.user + self.system) / 1e6;
  return out;
}

/** The bench's child processes by pid, named by their command (kube-apiserver, etcd, slapd). */
export function childProcesses(): Record<number, string> {
  const out: Record<number, string> = {};
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid) out[Number(entry)] = comm;
    } catch {
      // gone
    }
  }
  return out;
}

export function cpuDelta(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = Math.round((v - (before[k] ?? 0)) * 10) / 10;
  return out;
}

// --- the chart's memory settings ---------------------------------------------------------------

export type ChartMemory = {
  /** operator.nodeOptions: the NODE_OPTIONS the chart sets (the heap limits it was measured with). */
  nodeOptions: string;
  /** operator.env: the operator's other environment the limit was measured with (MALLOC_ARENA_MAX). */
  env: Record<string, string>;
  /** resources.limits.memory as written, and in MiB. */
  limit: string;
  limitMiB: number;
};

/** The operator's memory settings from charts/roster/values.yaml, so the bench runs what the chart runs. */
export function chartMemory(): ChartMemory {
  const values = loadYaml(readFileSync(join(root, "charts/roster/values.yaml"), "utf8")) as {
    operator?: { nodeOptions?: string; env?: Record<string, string> };
    resources?: { limits?: { memory?: string } };
  };
  const limit = String(values.resources?.limits?.memory ?? "");
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(limit);
  const factor = { Ki: 1 / 1024, Mi: 1, Gi: 1024, K: 1e3 / 2 ** 20, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20 };
  return {
    nodeOptions: values.operator?.nodeOptions ?? "",
    env: Object.fromEntries(Object.entries(values.operator?.env ?? {}).map(([k, v]) => [k, String(v)])),
    limit,
    limitMiB: m ? Number(m[1]) * (m[2] ? factor[m[2] as keyof typeof factor] : 1 / 2 ** 20) : NaN,
  };
}
