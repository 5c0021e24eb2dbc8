// Runs `roster operator` as a real child process, the way users run it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { freePort, registerDirectory, startProcess, waitFor, type Managed } from "../harness/processes.ts";
import { COUNTS_MAX_MS } from "../../src/controller/debounce.ts";

const bin = join(import.meta.dirname, "../../bin/roster.js");

/**
 * How long a wait for a count in Connector or policy status may take: counts wait while
 * Employees keep changing (src/controller/debounce.ts), then the refresh itself runs.
 */
export const COUNTS_WAIT_MS = COUNTS_MAX_MS + 30_000;

export type OperatorProcess = Managed & {
  metricsUrl: string;
  healthUrl: string;
  /** The operator's JSON log lines, parsed. */
  logLines(): Record<string, unknown>[];
  metrics(): Promise<string>;
};

/**
 * Starts `roster operator` for one namespace (every namespace when `namespace` is undefined, e.g.
 * for a shard). Without `kubeconfigPath` it runs as the chart's ServiceAccount under the chart's
 * RBAC, with its Lease in the operator's namespace.
 */
export async function startOperator(options: {
  kubeconfigPath?: string;
  namespace: string | undefined;
  leaderElection?: boolean;
  leaseName?: string;
  leaseNamespace?: string;
  extraArgs?: string[];
  /** The `roster` entry point to run (default: the checkout's bin/roster.js). */
  entry?: string;
}): Promise<OperatorProcess> {
  const asServiceAccount = options.kubeconfigPath === undefined ? inject("harness").operator : undefined;
  const kubeconfigPath = options.kubeconfigPath ?? asServiceAccount!.kubeconfigPath;
  const leaseNamespace =
    options.leaseNamespace ?? asServiceAccount?.leaseNamespace ?? options.namespace ?? "roster-system";
  const dir = mkdtempSync(join(tmpdir(), "roster-operator-"));
  registerDirectory(dir);
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const args = [
    options.entry ?? bin,
    "operator",
    "--kubeconfig",
    kubeconfigPath,
    ...(options.namespace === undefined ? [] : ["--namespace", options.namespace]),
    "--leader-elect",
    String(options.leaderElection ?? true),
    "--lease-namespace",
    leaseNamespace,
    "--lease-name",
    options.leaseName ?? `roster-${options.namespace ?? "operator"}`,
    "--metrics-addr",
    `127.0.0.1:${metricsPort}`,
    "--health-addr",
    `127.0.0.1:${healthPort}`,
    "--log-level",
    "debug",
    ...(options.extraArgs ?? []),
  ];
  const logFile = join(dir, "operator.log");
  const managed = startProcess(process.execPath, args, logFile);
  const healthUrl = `http://127.0.0.1:${healthPort}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  await waitFor(
    async () => (await fetch(`${healthUrl}/healthz`)).ok,
    30_000,
    () => `operator did not start:\n${managed.tail(40)}`,
  );
  return {
    ...managed,
    metricsUrl,
    healthUrl,
    logLines: () =>
      managed
        .tail(1_000_000)
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    metrics: async () => (await fetch(metricsUrl)).text(),
  };
}

/** The labels of one sample line, e.g. `{a="x",b="y\\"z"}` (escapes as in the exposition format). */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  return labels;
}

function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const found: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? ([^ ]+)/.exec(line);
    if (!match || match[1] !== name) continue;
    found.push({ labels: parseLabels(match[2] ?? ""), value: Number(match[3]) });
  }
  return found;
}

/**
 * The sum of the samples of `name` in Prometheus text whose labels include `labels`, or
 * undefined when there is no such sample at all: a series that is missing is not the same as one
 * at 0 (prom-client exports a labelled counter's series only from its first inc()).
 */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const matching = samples(text, name).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return matching.length === 0 ? undefined : matching.reduce((total, s) => total + s.value, 0);
}

/** As metricValue for a series that must exist; throws, naming what is there, when it does not. */
export function requireMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  const value = metricValue(text, name, labels);
  if (value === undefined) {
    const present = samples(text, name).map((s) => JSON.stringify(s.labels));
    throw new Error(
      `no sample of ${name}${JSON.stringify(labels)} in the metrics; ` +
        (present.length ? `its series: ${present.join(", ")}` : "no series of that name at all"),
    );
  }
  return value;
}

/**
 * A counter that may legitimately not exist yet, as 0: only for a labelled counter that has never
 * been incremented in this process (prom-client exports no series for it until then). Say at the
 * call site why absence is meaningful there; elsewhere use requireMetric.
 */
export function counterOrZero(text: string, name: string, labels: Record<string, string> = {}): number {
  return metricValue(text, name, labels) ?? 0;
}

/**
 * Waits until the operator's Employee queue is empty and no Employee reconcile is running, in one
 * scrape: whatever reconcile the last change caused has finished. Both gauges exist once the
 * operator has reconciled anything (requireMetric throws otherwise).
 */
export async function employeeQueueIdle(operator: OperatorProcess, timeoutMs = 20_000): Promise<void> {
  let last = "";
  await waitFor(
    async () => {
      const metrics = await operator.metrics();
      const depth = requireMetric(metrics, "workqueue_depth", { name: "employee" });
      const active = requireMetric(metrics, "controller_runtime_active_workers", { controller: "employee" });
      last = `depth ${depth}, active workers ${active}`;
      return depth === 0 && active === 0;
    },
    timeoutMs,
    () => `the Employee queue did not go idle: ${last}`,
    200,
  );
}
