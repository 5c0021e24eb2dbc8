// bench/results/summary.md from a report: the machine, every figure, the targets (measured, never
// asserted) and the findings kept in bench/findings.md.
import { renderScimBudget, type ScimBudget } from "./scim-budget.ts";

type Dist = { count: number; p50: number; p95: number; p99: number; max: number; mean: number };
type Window = {
  seconds: number;
  connectorRequests: Record<string, number>;
  ldapRequests: number;
  scimConnectorRequests: number;
  scimHttpRequests: Record<string, number>;
  scimHttpTotal: number;
  modifiedEvents: { employees: number; connectors: number; accesspolicies: number };
  apiWriteRequests: Record<string, number>;
  reconciles: number;
  cpuSeconds: Record<string, number>;
  loadAverage1m: number[];
};
type Memory = {
  vmRssMiB: number;
  vmHwmMiB: number;
  processResidentMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  openSockets: number;
  heapUsedAfterGcMiB?: number;
  vmRssAfterGcMiB?: number;
};
export type Report = {
  startedAt: string;
  finishedAt?: string;
  git?: { commit: string; dirtySrc: boolean };
  error?: string;
  machine: {
    cores: number;
    cpuModel: string;
    memoryGiB: number;
    node: string;
    platform: string;
    loadAverageAtStart: number[];
  };
  settings: Record<string, unknown> & { employees: number; scimServer: string; workers: number };
  ceiling?: { accountsPerSecond: number; seconds: number; concurrency: number; ldapOperations: number };
  bulk?: Window & {
    employees: number;
    createSeconds: number;
    readySeconds: number;
    targetsVerifiedSeconds: number;
    accountsPerSecond: number;
    ratioToCeiling?: number;
    settleSeconds: number;
    ldapRequestsPerAccount: number;
    scimHttpRequestsPerAccount: number;
    employeeWritesPerAccount: number;
  };
  memoryAtStart?: Memory;
  memoryAfterBulk?: Memory;
  policyEdit?: Window & {
    affected: number;
    convergeSeconds: number;
    employeesWritten: number;
    employeesWrittenOutsideAffected: number;
    findAccountCalls: number;
  };
  leavers?: Window & {
    count: number;
    managedEmployees: number;
    failures: string[];
    totalMs: Dist;
    ldapMs: Dist;
    scimMs: Dist;
    apiWriteMs: Dist;
  };
  connectorEdit?: Window & { settleSeconds: number };
  idle?: Window & {
    resyncInterval: string;
    accounts: number;
    perConnector: Record<
      string,
      { scans: number; listAccountsSeconds: Dist; fullScanSecondsFromCycle: Dist }
    >;
    ldapRequestsPerScan: number;
    scimHttpRequestsPerScan: number;
    rssPeakMiB: number;
  };
  memoryAfterIdle?: Memory;
  scimBudget?: ScimBudget;
  operatorErrors?: number;
  profiles?: Record<
    string,
    {
      seconds: number;
      busyPercent: number;
      byModule: { fn: string; ms: number; percent: number }[];
      self: { fn: string; where: string; ms: number; percent: number }[];
    }
  >;
};

const fmt = (n: number | undefined, digits = 1) =>
  n === undefined || Number.isNaN(n) ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: digits });
const counts = (c: Record<string, number>) =>
  Object.keys(c).length
    ? Object.entries(c)
        .sort()
        .map(([k, v]) => `${k} ${fmt(v, 0)}`)
        .join(", ")
    : "none";
const table = (head: string[], rows: (string | number)[][]) =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
const met = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "**met**" : "**missed**");
const dist = (d: Dist) => [fmt(d.p50), fmt(d.p95), fmt(d.p99), fmt(d.max), fmt(d.mean)];

function windowLines(w: Window): string[] {
  return [
    `- Connector calls (roster_connector_requests_total delta): ${counts(w.connectorRequests)}`,
    `- SCIM HTTP requests served: ${fmt(w.scimHttpTotal, 0)} (${counts(w.scimHttpRequests)})`,
    `- Kubernetes writes: watch MODIFIED events employees ${w.modifiedEvents.employees}, connectors ${w.modifiedEvents.connectors}, accesspolicies ${w.modifiedEvents.accesspolicies}; API server write requests: ${counts(w.apiWriteRequests)}`,
    `- Employee reconciles: ${fmt(w.reconciles, 0)}; CPU seconds: ${counts(w.cpuSeconds)}; load average (1 min) ${w.loadAverage1m.join(" → ")}`,
  ];
}

/** Figures derived from the report's raw ones, for the text and the findings. */
function derive(r: Report): Report {
  const out = structuredClone(r) as Report & Record<string, unknown>;
  if (out.bulk) {
    const n = out.bulk.employees;
    (out.bulk as Record<string, unknown>).cpuMsPerAccount = Object.fromEntries(
      Object.entries(out.bulk.cpuSeconds).map(([k, v]) => [k, Math.round((v * 1000) / n)]),
    );
    (out.bulk as Record<string, unknown>).apiWritesPerAccount =
      Object.values(out.bulk.apiWriteRequests).reduce((a, v) => a + v, 0) / n;
  }
  if (out.ceiling)
    (out.ceiling as Record<string, unknown>).cpuBudgetMsPerAccount =
      (out.machine.cores * 1000) / out.ceiling.accountsPerSecond;
  for (const key of ["memoryAtStart", "memoryAfterBulk", "memoryAfterIdle"] as const) {
    const m = out[key];
    if (m)
      (m as Record<string, unknown>).outsideHeapMiB = Math.round((m.vmRssMiB - m.heapTotalMiB) * 10) / 10;
  }
  return out;
}

export function renderSummary(report: Report, findings?: string): string {
  const r = derive(report);
  const n = r.settings.employees;
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `# Roster bench: summary`,
    "",
    `Generated by \`npm run bench${n === 10000 ? "" : ` -- --employees ${n}`}\` (bench/run.ts); every figure below is from the run of ${r.startedAt}${r.finishedAt ? ` to ${r.finishedAt}` : ""}. Full data: \`bench/results/latest.json\` (not committed).`,
    "",
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB memory, Node ${m.node}, ${m.platform}; load average at start ${m.loadAverageAtStart.join(" / ")}. The control plane (etcd, kube-apiserver), slapd, the SCIM server, the operator and the bench share these cores.`,
    `- Operator: \`roster operator --workers ${r.settings.workers} --leader-elect=false --log-level warn\` as a child process, admin kubeconfig, one namespace${r.git ? `; source at commit ${r.git.commit}${r.git.dirtySrc ? " with uncommitted changes in src/" : ""}` : ""}.`,
    `- Employees: ${fmt(n, 0)}; each gets an LDAP account in 3 groups (AccessPolicy \`base\`) and a SCIM account; 1% are in department Sales (AccessPolicy \`sales-tools\`).`,
    `- Safety: both Connectors run with \`safety: {maxDeprovisionsPerHour: 100000, maxDeprovisionPercent: 100}\` for the bench, so the mass-change brake does not hold leavers (it would with the defaults: 20 per hour).`,
    `- SCIM target: ${r.settings.scimServer === "indexed" ? "bench/scim-server.ts, an indexed in-memory SCIM 2.0 server in its own process. The harness's scimmy server (test/harness/scim.ts, `--scim-server harness`) clones and filters every stored user on every filtered request (about 10 ms per 1,000 users per request), which would make 10,000 accounts take hours and measure the fixture rather than the operator." : "test/harness/scim.ts (scimmy) in its own process."} SCIM requestsPerSecond 10000.`,
    "",
  );
  if (r.settings.operatorNodeOptions)
    out.push(
      `**Experiment:** the operator ran with NODE_OPTIONS \`${String(r.settings.operatorNodeOptions)}\`.`,
      "",
    );
  if (r.error) out.push("**The run failed:**", "", "```", r.error.slice(0, 2000), "```", "");

  // Targets.
  const b = r.bulk;
  const l = r.leavers;
  const idle = r.idle;
  const scanMax = idle
    ? Math.max(...Object.values(idle.perConnector).map((c) => c.fullScanSecondsFromCycle.max / 1000))
    : undefined;
  const writes = idle
    ? idle.modifiedEvents.employees + idle.modifiedEvents.connectors + idle.modifiedEvents.accesspolicies
    : undefined;
  const rss = Math.max(
    r.memoryAfterBulk?.vmRssMiB ?? 0,
    r.memoryAfterIdle?.vmRssMiB ?? 0,
    idle?.rssPeakMiB ?? 0,
  );
  out.push(
    "## Targets",
    "",
    table(
      ["Target", "Measured", ""],
      [
        [
          "Bulk joiners: operator throughput ≥ 0.8 × ceiling",
          b && r.ceiling
            ? `${fmt(b.accountsPerSecond)} / ${fmt(r.ceiling.accountsPerSecond)} accounts/s = **${fmt(b.ratioToCeiling, 3)}**`
            : "–",
          met(b?.ratioToCeiling === undefined ? undefined : b.ratioToCeiling >= 0.8),
        ],
        [
          "Leaver p99 < 500 ms",
          l ? `p99 **${fmt(l.totalMs.p99)} ms** (p50 ${fmt(l.totalMs.p50)}, max ${fmt(l.totalMs.max)})` : "–",
          met(l ? l.totalMs.p99 < 500 && l.failures.length === 0 : undefined),
        ],
        [
          `Idle full scan of ${fmt(n, 0)} < 5 s with zero Kubernetes writes`,
          idle
            ? `slowest scan **${fmt(scanMax, 2)} s**, ${writes} writes (MODIFIED events; ${fmt(
                Object.values(idle.apiWriteRequests).reduce((a, v) => a + v, 0),
                0,
              )} no-op write requests: ${counts(idle.apiWriteRequests)}) (${Object.entries(idle.perConnector)
                .map(([c, v]) => `${c} p50 ${fmt(v.fullScanSecondsFromCycle.p50 / 1000, 2)} s`)
                .join(", ")})`
            : "–",
          met(idle ? (scanMax ?? Infinity) < 5 && writes === 0 : undefined),
        ],
        [
          "Operator RSS < 256 MiB",
          r.memoryAfterBulk
            ? `after bulk **${fmt(r.memoryAfterBulk.vmRssMiB)} MiB**, after idle scans ${fmt(r.memoryAfterIdle?.vmRssMiB)} MiB, peak during idle ${fmt(idle?.rssPeakMiB)} MiB, high-water mark ${fmt(r.memoryAfterIdle?.vmHwmMiB ?? r.memoryAfterBulk.vmHwmMiB)} MiB`
            : "–",
          met(r.memoryAfterBulk ? rss < 256 : undefined),
        ],
        [
          "SCIM requests per hire into existing groups ≤ 3",
          r.scimBudget ? `**${fmt(r.scimBudget.perHire)}** per hire` : "–",
          met(r.scimBudget ? r.scimBudget.perHire <= 3 : undefined),
        ],
        [
          "SCIM requests in an idle minute beyond the scan's own pages: none",
          r.scimBudget ? `**${fmt(r.scimBudget.perIdleMinute)}** per minute` : "–",
          met(r.scimBudget ? r.scimBudget.perIdleMinute === 0 : undefined),
        ],
      ],
    ),
    "",
    n === 10000 ? "" : `Note: this run used ${fmt(n, 0)} Employees; the targets are stated for 10,000.\n`,
  );

  if (b) {
    out.push(
      "## Bulk joiners",
      "",
      `${fmt(n, 0)} Employees created with ${r.settings.createConcurrency} in flight (all created after ${fmt(b.createSeconds)} s); all Ready (phase Active, Ready True) after **${fmt(b.readySeconds)} s**, targets verified (${fmt(n, 0)} LDAP entries each in 3 groups, ${fmt(n, 0)} active SCIM users) at ${fmt(b.targetsVerifiedSeconds)} s.`,
      "",
      table(
        ["", "accounts/s", "seconds", "LDAP work per account"],
        [
          [
            "Operator (LDAP + SCIM + Kubernetes)",
            fmt(b.accountsPerSecond),
            fmt(b.readySeconds),
            `${fmt(b.ldapRequestsPerAccount, 2)} connector calls`,
          ],
          r.ceiling
            ? [
                `Ceiling (ldapts, ${r.ceiling.concurrency} in flight, 1 connection)`,
                fmt(r.ceiling.accountsPerSecond),
                fmt(r.ceiling.seconds),
                "5 LDAP operations (search, add, 3 × modify)",
              ]
            : ["Ceiling", "skipped", "", ""],
        ],
      ),
      "",
      `Ratio operator / ceiling: **${fmt(b.ratioToCeiling, 3)}**. Per account: ${fmt(b.ldapRequestsPerAccount, 2)} LDAP connector calls, ${fmt(b.scimHttpRequestsPerAccount, 2)} SCIM HTTP requests, ${fmt(b.employeeWritesPerAccount, 2)} Employee writes (MODIFIED events).`,
      "",
      ...windowLines(b),
      "",
    );
  }
  if (r.policyEdit) {
    const p = r.policyEdit;
    out.push(
      "## Policy edit (1%)",
      "",
      `AccessPolicy \`sales-tools\` gains group crm-users for the ${p.affected} Sales Employees (${fmt((p.affected / n) * 100)}% of ${fmt(n, 0)}). Converged (crm-users has all ${p.affected} members in LDAP and their status shows it) in **${fmt(p.convergeSeconds, 3)} s**. Employees whose object was written: ${p.employeesWritten} (${p.employeesWrittenOutsideAffected} outside the affected set); findAccount calls: ${p.findAccountCalls}.`,
      "",
      ...windowLines(p),
      "",
    );
  }
  if (l) {
    out.push(
      "## Leaver latency",
      "",
      `${l.count} Employees from the first ${r.settings.leaverPool} set to Terminated one at a time, with ${fmt(l.managedEmployees, 0)} managed. Latency from the API write to: LDAP entry locked (pwdAccountLockedTime) and in no group, and SCIM user active=false, polling each target every 10 ms.${l.failures.length ? ` **${l.failures.length} did not complete within 60 s:** ${l.failures.join(", ")}.` : ""}`,
      "",
      table(
        ["ms", "p50", "p95", "p99", "max", "mean"],
        [
          ["Both targets done", ...dist(l.totalMs)],
          ["LDAP done", ...dist(l.ldapMs)],
          ["SCIM done", ...dist(l.scimMs)],
          ["API write (PATCH round trip)", ...dist(l.apiWriteMs)],
        ],
      ),
      "",
      ...windowLines(l),
      "",
    );
  }
  if (r.connectorEdit) {
    const c = r.connectorEdit;
    out.push(
      "## Connector edit",
      "",
      `Setting \`drift.resyncInterval\` on both Connectors (before the idle phase) re-reconciled ${fmt(c.reconciles, 0)} Employees; the operator was idle again after ${fmt(c.settleSeconds)} s.`,
      "",
      ...windowLines(c),
      "",
    );
  }
  if (idle) {
    out.push(
      "## Idle resync",
      "",
      `Full scans every ${idle.resyncInterval} of ${fmt(idle.accounts, 0)} accounts per Connector with nothing changed. listAccounts time is from roster_connector_request_duration_seconds; the full scan (listAccounts plus the in-memory comparison) is the time between two listAccounts completions minus the resync interval (sampled every 100 ms).`,
      "",
      table(
        ["Connector", "scans", "listAccounts p50 / max ms", "full scan p50 / max ms"],
        Object.entries(idle.perConnector).map(([c, v]) => [
          c,
          v.scans,
          `${fmt(v.listAccountsSeconds.p50, 0)} / ${fmt(v.listAccountsSeconds.max, 0)}`,
          `${fmt(v.fullScanSecondsFromCycle.p50, 0)} / ${fmt(v.fullScanSecondsFromCycle.max, 0)}`,
        ]),
      ),
      "",
      `Per scan: ${fmt(idle.ldapRequestsPerScan)} LDAP connector calls (each listAccounts is one paged search of users and one of groups, 500 per page), ${fmt(idle.scimHttpRequestsPerScan)} SCIM HTTP requests.`,
      "",
      ...windowLines(idle),
      "",
    );
  }
  if (r.scimBudget) out.push(...renderScimBudget(r.scimBudget));
  if (r.memoryAfterBulk) {
    const rows = [
      ["At start (no Employees)", r.memoryAtStart],
      ["After bulk", r.memoryAfterBulk],
      ["After idle scans", r.memoryAfterIdle],
    ].filter((x): x is [string, Memory] => !!x[1]);
    out.push(
      "## Memory (operator)",
      "",
      table(
        [
          "",
          "VmRSS MiB",
          "VmHWM MiB",
          "process_resident_memory MiB",
          "heap used MiB",
          "heap used after GC MiB",
          "VmRSS after GC MiB",
          "heap total MiB",
          "external MiB",
          "open sockets",
        ],
        rows.map(([label, mem]) => [
          label,
          fmt(mem.vmRssMiB),
          fmt(mem.vmHwmMiB),
          fmt(mem.processResidentMiB),
          fmt(mem.heapUsedMiB),
          fmt(mem.heapUsedAfterGcMiB),
          fmt(mem.vmRssAfterGcMiB),
          fmt(mem.heapTotalMiB),
          fmt(mem.externalMiB),
          fmt(mem.openSockets, 0),
        ]),
      ),
      "",
    );
  }
  if (r.profiles) {
    out.push("## CPU profile of the operator (share of the phase's wall time)", "");
    for (const [phase, p] of Object.entries(r.profiles)) {
      out.push(
        `- ${phase} (${fmt(p.seconds)} s, busy ${fmt(p.busyPercent)}%): by module ` +
          p.byModule
            .slice(0, 8)
            .map((s) => `${s.fn} ${fmt(s.percent)}%`)
            .join(", ") +
          "; top functions " +
          p.self
            .slice(0, 5)
            .map((s) => `${s.fn} (${s.where}) ${fmt(s.percent)}%`)
            .join(", "),
      );
    }
    out.push("");
  }
  if (r.operatorErrors) out.push(`Connector calls that failed during the run: ${r.operatorErrors}.`, "");
  if (findings) out.push(fillIn(findings.trim(), r), "");
  return out.join("\n").replace(/\n{3,}/g, "\n\n");
}

/** Replaces {{path.to.figure}} in the findings with the figure from this run's report. */
function fillIn(text: string, report: Report): string {
  return text.replace(/\{\{([^{}]+)\}\}/g, (whole, path: string) => {
    let value: unknown = report;
    for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
    if (typeof value === "number") return fmt(value, Math.abs(value) < 1 ? 3 : Math.abs(value) < 10 ? 2 : 1);
    return value === undefined ? whole : String(value);
  });
}
