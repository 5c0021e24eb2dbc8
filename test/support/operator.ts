// Runs `roster operator` as a real child process, the way users run it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { freePort, registerDirectory, startProcess, waitFor, type Managed } from "../harness/processes.ts";

const bin = join(import.meta.dirname, "../../bin/roster.js");

export type OperatorProcess = Managed & {
  metricsUrl: string;
  healthUrl: string;
  /** The operator's JSON log lines, parsed. */
  logLines(): Record<string, unknown>[];
  metrics(): Promise<string>;
};

/**
 * Starts `roster operator` for one namespace. Without `kubeconfigPath` it runs as the chart's
 * ServiceAccount under the chart's RBAC, with its Lease in the operator's namespace.
 */
export async function startOperator(options: {
  kubeconfigPath?: string;
  namespace: string;
  leaderElection?: boolean;
  leaseName?: string;
  leaseNamespace?: string;
  extraArgs?: string[];
}): Promise<OperatorProcess> {
  const asServiceAccount = options.kubeconfigPath === undefined ? inject("harness").operator : undefined;
  const kubeconfigPath = options.kubeconfigPath ?? asServiceAccount!.kubeconfigPath;
  const leaseNamespace = options.leaseNamespace ?? asServiceAccount?.leaseNamespace ?? options.namespace;
  const dir = mkdtempSync(join(tmpdir(), "roster-operator-"));
  registerDirectory(dir);
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const args = [
    bin,
    "operator",
    "--kubeconfig",
    kubeconfigPath,
    "--namespace",
    options.namespace,
    "--leader-elect",
    String(options.leaderElection ?? true),
    "--lease-namespace",
    leaseNamespace,
    "--lease-name",
    options.leaseName ?? `roster-${options.namespace}`,
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

/** The value of a counter/gauge sample in Prometheus text, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([^ ]+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`)))
      total += Number(match[3]);
  }
  return total;
}
