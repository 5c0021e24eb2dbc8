// One Prometheus registry for the whole process. Controller and work-queue metrics reuse the names and
// labels of controller-runtime / client-go so that existing operator dashboards and alerts work as-is.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const registers = [registry];

// --- controller-runtime (pkg/internal/controller/metrics) -------------------------------------

/** result: success | error | requeue | requeue_after */
export const reconcileTotal = new Counter({
  name: "controller_runtime_reconcile_total",
  help: "Total number of reconciliations per controller",
  labelNames: ["controller", "result"] as const,
  registers,
});

export const reconcileErrors = new Counter({
  name: "controller_runtime_reconcile_errors_total",
  help: "Total number of reconciliation errors per controller",
  labelNames: ["controller"] as const,
  registers,
});

export const terminalReconcileErrors = new Counter({
  name: "controller_runtime_terminal_reconcile_errors_total",
  help: "Total number of terminal reconciliation errors per controller",
  labelNames: ["controller"] as const,
  registers,
});

export const reconcileTime = new Histogram({
  name: "controller_runtime_reconcile_time_seconds",
  help: "Length of time per reconciliation per controller",
  labelNames: ["controller"] as const,
  // controller-runtime's buckets, so histogram_quantile panels line up.
  buckets: [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
    1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
  ],
  registers,
});

export const maxConcurrentReconciles = new Gauge({
  name: "controller_runtime_max_concurrent_reconciles",
  help: "Maximum number of concurrent reconciles per controller",
  labelNames: ["controller"] as const,
  registers,
});

export const activeWorkers = new Gauge({
  name: "controller_runtime_active_workers",
  help: "Number of currently used workers per controller",
  labelNames: ["controller"] as const,
  registers,
});

// --- client-go workqueue (controller-runtime's prometheus provider) ---------------------------

// client-go: prometheus.ExponentialBuckets(10e-9, 10, 12): 10ns .. 1000s.
const queueBuckets = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

export const workqueueDepth = new Gauge({
  name: "workqueue_depth",
  help: "Current depth of workqueue",
  labelNames: ["name"] as const,
  registers,
});

export const workqueueAdds = new Counter({
  name: "workqueue_adds_total",
  help: "Total number of adds handled by workqueue",
  labelNames: ["name"] as const,
  registers,
});

export const workqueueQueueDuration = new Histogram({
  name: "workqueue_queue_duration_seconds",
  help: "How long in seconds an item stays in workqueue before being requested",
  labelNames: ["name"] as const,
  buckets: queueBuckets,
  registers,
});

export const workqueueWorkDuration = new Histogram({
  name: "workqueue_work_duration_seconds",
  help: "How long in seconds processing an item from workqueue takes",
  labelNames: ["name"] as const,
  buckets: queueBuckets,
  registers,
});

export const workqueueRetries = new Counter({
  name: "workqueue_retries_total",
  help: "Total number of retries handled by workqueue",
  labelNames: ["name"] as const,
  registers,
});

// --- leader election (client-go leaderelection metrics) ---------------------------------------

export const leaderElectionMasterStatus = new Gauge({
  name: "leader_election_master_status",
  help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
  labelNames: ["name"] as const,
  registers,
});

// --- Roster ------------------------------------------------------------------------------------

export const provisioningLatency = new Histogram({
  name: "roster_provisioning_latency_seconds",
  help: "Time from an HR change being observed to the target reflecting it",
  labelNames: ["connector", "operation"] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers,
});

/** result: success | error */
export const connectorRequests = new Counter({
  name: "roster_connector_requests_total",
  help: "Requests made to target systems",
  labelNames: ["connector", "operation", "result"] as const,
  registers,
});

export const connectorRequestDuration = new Histogram({
  name: "roster_connector_request_duration_seconds",
  help: "Duration of requests to target systems",
  labelNames: ["connector", "operation"] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});

/** One per audit record (src/observe/audit.ts). outcome: succeeded | failed */
export const targetChanges = new Counter({
  name: "roster_changes_total",
  help: "Changes Roster made or tried in target systems (one per audit record), by operation and outcome",
  labelNames: ["connector", "operation", "outcome"] as const,
  registers,
});

/** state: the AccountStatus state (Active | Disabled | Deleted | Pending | Failed) */
export const managedAccounts = new Gauge({
  name: "roster_managed_accounts",
  help: "Accounts the operator owns in each target, by state",
  labelNames: ["connector", "state"] as const,
  registers,
});

export const adoptionCandidates = new Gauge({
  name: "roster_adoption_candidates",
  help: "Accounts made before Roster that match an Employee and wait to be linked (roster.dev/adopt), per connector",
  labelNames: ["connector"] as const,
  registers,
});

export const orphanAccounts = new Gauge({
  name: "roster_orphan_accounts",
  help: "Accounts in a connector's managed scope that no Employee owns",
  labelNames: ["connector"] as const,
  registers,
});

export const driftAccounts = new Gauge({
  name: "roster_drift_accounts",
  help: "Accounts currently differing from their desired state, by kind of drift",
  labelNames: ["connector", "kind"] as const,
  registers,
});

/** One full scan: the listing, its comparison and what the scan then corrects, from start to end. */
export const driftScanDuration = new Histogram({
  name: "roster_drift_scan_duration_seconds",
  help: "Duration of a connector's drift and orphan scan (listing every account and comparing), per scan that completed",
  labelNames: ["connector"] as const,
  buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers,
});

export const driftDetected = new Counter({
  name: "roster_drift_detected_total",
  help: "Drift found in targets (changes made outside the operator), by kind",
  labelNames: ["connector", "kind"] as const,
  registers,
});

export const deprovisionsHeld = new Gauge({
  name: "roster_deprovisions_held",
  help: "Deprovisions held back by the mass-change brake, waiting for approval",
  labelNames: ["connector"] as const,
  registers,
});

// --- roster import (a batch job: pushed to a Pushgateway with --pushgateway, not served) --------

/** Its own registry: the operator's /metrics never shows these, only the import's push does. */
export const importRegistry = new Registry();

export const importLastRun = new Gauge({
  name: "roster_import_last_run_timestamp_seconds",
  help: "When roster import last ran (Unix time)",
  registers: [importRegistry],
});

export const importLastSuccess = new Gauge({
  name: "roster_import_last_success_timestamp_seconds",
  help: "When roster import last read the whole export and wrote its changes (Unix time)",
  registers: [importRegistry],
});

export const importSucceeded = new Gauge({
  name: "roster_import_last_run_success",
  help: "1 when the last roster import succeeded (refused rows included), 0 when it failed and wrote nothing",
  registers: [importRegistry],
});

/** outcome: hire | mover | leaver | refused | unchanged | skipped */
export const importRows = new Gauge({
  name: "roster_import_rows",
  help: "Rows of the last successful roster import, by outcome",
  labelNames: ["outcome"] as const,
  registers: [importRegistry],
});
