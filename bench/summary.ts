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
  ideal?: {
    accountsPerSecond: number;
    seconds: number;
    concurrency: number;
    perAccount: { kubernetes: number; ldap: number; scim: number };
  };
  /** Operator RSS sampled every second: the peak overall and per phase, VmHWM, the chart's limit. */
  rss?: {
    sampleSeconds: number;
    samples: number;
    peakMiB: number;
    peakByPhaseMiB: Record<string, number>;
    highWaterMiB?: number;
    chartLimitMiB: number;
  };
  /** The further sizes of `--employees 10000,30000`, each a whole run of its own. */
  largerRuns?: Report[];
  bulk?: Window & {
    employees: number;
    createSeconds: number;
    readySeconds: number;
    targetsVerifiedSeconds: number;
    accountsPerSecond: number;
    ratioToCeiling?: number;
    ratioToIdeal?: number;
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
      {
        scans: number;
        listAccountsSeconds: Dist;
        /** From roster_drift_scan_duration_seconds (reports before it have only the cycle figure). */
        fullScanSeconds?: Dist;
        fullScanSecondsFromCycle: Dist;
      }
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
      Object.entries(out.bulk.cpuSeconds).map(([k, v]) => [k, Math.round((v * 10_000) / n) / 10]),
    );
    // The operator's writes: the Employee create is the bench's own (what HR tooling sends).
    (out.bulk as Record<string, unknown>).apiWritesPerAccount =
      Object.entries(out.bulk.apiWriteRequests)
        .filter(([request]) => request !== "POST employees")
        .reduce((a, [, v]) => a + v, 0) / n;
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

/** The operator's peak RSS in a run: the largest 1 s sample, VmHWM and the memory table's readings. */
function rssPeak(r: Report): number | undefined {
  const readings = [
    r.rss?.peakMiB,
    r.rss?.highWaterMiB,
    r.memoryAfterBulk?.vmRssMiB,
    r.memoryAfterIdle?.vmRssMiB,
    r.idle?.rssPeakMiB,
  ].filter((v): v is number => v !== undefined && v > 0);
  return readings.length ? Math.max(...readings) : undefined;
}

type ScanFigures = NonNullable<Report["idle"]>["perConnector"][string];
/** One full scan's time (ms): the operator's own figure where the report has it. */
const fullScan = (c: ScanFigures): Dist => c.fullScanSeconds ?? c.fullScanSecondsFromCycle;

/** Slowest full scan of a run's idle phase, in seconds. */
function slowestScan(r: Report): number | undefined {
  return r.idle
    ? Math.max(...Object.values(r.idle.perConnector).map((c) => fullScan(c).max / 1000))
    : undefined;
}

const RSS_TARGET_MIB = 256;
const GROWTH_TARGET = 3.3;

export function renderSummary(report: Report, findings?: string): string {
  const r = derive(report);
  const n = r.settings.employees;
  const larger = (report.largerRuns ?? []).map(derive);
  const sizes = [n, ...larger.map((x) => x.settings.employees)];
  const out: string[] = [];
  const m = r.machine;
  const s = r.settings as Report["settings"] & {
    operatorNodeOptions?: string;
    operatorNodeOptionsFromChart?: boolean;
    operatorEnv?: Record<string, string>;
    operatorEnvFromChart?: Record<string, string>;
    operatorEnvExperiment?: Record<string, string>;
    operatorBuild?: string;
    chartMemoryLimit?: string;
    ldapGroupsPerAccount?: number;
    scimGroupsPerAccount?: number;
    slapdMemberIndex?: boolean;
  };
  // Reports from before operator.env named --operator-env's variables operatorEnv.
  const experimentEnv = s.operatorEnvExperiment ?? s.operatorEnv ?? {};
  const envList = (env: Record<string, string>) =>
    Object.entries(env)
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(", ");
  const command = `npm run bench${sizes.join(",") === "10000" ? "" : ` -- --employees ${sizes.join(",")}`}`;
  out.push(
    `# Roster bench: summary`,
    "",
    `Generated by \`${command}\` (bench/run.ts); every figure below is from the run of ${r.startedAt}${(larger.at(-1) ?? r).finishedAt ? ` to ${(larger.at(-1) ?? r).finishedAt}` : ""}. Full data: \`bench/results/latest.json\` (not committed).`,
    "",
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB memory, Node ${m.node}, ${m.platform}; load average at start ${m.loadAverageAtStart.join(" / ")}. The control plane (etcd, kube-apiserver), slapd, the SCIM server, the operator and the bench share these cores.`,
    `- Operator: \`roster operator --workers ${s.workers} --leader-elect=false --log-level warn\` as a child process, ${s.operatorBuild === "bundled" ? "built as the image runs it (tsc to dist/, bundled by scripts/bundle.ts, NODE_ENV=production)" : s.operatorBuild === "compiled" ? "compiled by tsc, unbundled (for --profile; NODE_ENV=production)" : "from the sources (Node strips types)"}, admin kubeconfig, one namespace${r.git ? `; source at commit ${r.git.commit}${r.git.dirtySrc ? " with uncommitted changes in src/" : ""}` : ""}.`,
    `- Memory settings: NODE_OPTIONS \`${s.operatorNodeOptions ?? ""}\` (${s.operatorNodeOptionsFromChart === false ? "**an experiment, not the chart's**" : "the chart's operator.nodeOptions"})${
      Object.keys(s.operatorEnvFromChart ?? {}).length
        ? `; environment ${envList(s.operatorEnvFromChart!)} (the chart's operator.env)`
        : ""
    }${
      Object.keys(experimentEnv).length
        ? `; **an experiment**: the operator's environment adds ${envList(experimentEnv)}`
        : ""
    }; the chart's memory limit is ${s.chartMemoryLimit ?? "–"}. RSS is sampled every second (VmRSS) and VmHWM is read at the end of each phase.`,
    `- Employees: ${sizes.map((x) => fmt(x, 0)).join(" and ")}${sizes.length > 1 ? ", each size a separate run on a fresh harness" : ""}; each gets an LDAP account in ${s.ldapGroupsPerAccount ?? 3} groups and a SCIM account in ${s.scimGroupsPerAccount ? `${s.scimGroupsPerAccount} group${s.scimGroupsPerAccount > 1 ? "s" : ""}` : "no group"} (AccessPolicy \`base\`); 1% are in department Sales (AccessPolicy \`sales-tools\`).`,
    `- LDAP target: the harness's slapd (test/harness/slapd.ts: back-mdb, memberof and ppolicy overlays, equality indexes on objectClass, uid, employeeNumber${s.slapdMemberIndex === false ? "; **an experiment**: without the index on member" : " and member"}).`,
    `- Safety: both Connectors run with \`safety: {maxDeprovisionsPerHour: 100000, maxDeprovisionPercent: 100}\` for the bench, so the mass-change brake does not hold leavers (it would with the defaults: 20 per hour).`,
    `- SCIM target: ${r.settings.scimServer === "indexed" ? "bench/scim-server.ts, an indexed in-memory SCIM 2.0 server in its own process. The harness's scimmy server (test/harness/scim.ts, `--scim-server harness`) clones and filters every stored user on every filtered request (about 10 ms per 1,000 users per request), which would make 10,000 accounts take hours and measure the fixture rather than the operator." : "test/harness/scim.ts (scimmy) in its own process."} SCIM requestsPerSecond 10000.`,
    "",
  );
  if (r.error) out.push("**The run failed:**", "", "```", r.error.slice(0, 2000), "```", "");
  for (const x of larger)
    if (x.error)
      out.push(
        `**The ${fmt(x.settings.employees, 0)} run failed:**`,
        "",
        "```",
        x.error.slice(0, 2000),
        "```",
        "",
      );

  // Targets.
  const b = r.bulk;
  const l = r.leavers;
  const idle = r.idle;
  const scanMax = slowestScan(r);
  const writes = idle
    ? idle.modifiedEvents.employees + idle.modifiedEvents.connectors + idle.modifiedEvents.accesspolicies
    : undefined;
  const rss = rssPeak(r);
  const limitMiB = r.rss?.chartLimitMiB;
  const apiWritesPerAccount = (b as { apiWritesPerAccount?: number } | undefined)?.apiWritesPerAccount;
  const rows: (string | number)[][] = [
    [
      "Bulk joiners: Roster ≥ 0.8 × the ideal operator",
      b && r.ideal
        ? `${fmt(b.accountsPerSecond)} / ${fmt(r.ideal.accountsPerSecond)} accounts/s = **${fmt(b.ratioToIdeal, 3)}**`
        : "–",
      met(b?.ratioToIdeal === undefined ? undefined : b.ratioToIdeal >= 0.8),
    ],
    [
      "Bulk joiners: Roster ≥ 0.5 × the raw-ldapts ceiling",
      b && r.ceiling
        ? `${fmt(b.accountsPerSecond)} / ${fmt(r.ceiling.accountsPerSecond)} accounts/s = **${fmt(b.ratioToCeiling, 3)}**`
        : "–",
      met(b?.ratioToCeiling === undefined ? undefined : b.ratioToCeiling >= 0.5),
    ],
    [
      "Bulk: SCIM requests per new account ≤ 2.5",
      b ? `**${fmt(b.scimHttpRequestsPerAccount, 2)}**` : "–",
      met(b ? b.scimHttpRequestsPerAccount <= 2.5 : undefined),
    ],
    [
      "Bulk: the operator's Kubernetes writes per new account ≤ 3 (the bench's own create left out)",
      b ? `**${fmt(apiWritesPerAccount, 3)}** (${counts(b.apiWriteRequests)})` : "–",
      met(apiWritesPerAccount === undefined ? undefined : apiWritesPerAccount <= 3),
    ],
    [
      "Leaver p99 ≤ 100 ms, both targets done",
      l ? `p99 **${fmt(l.totalMs.p99)} ms** (p50 ${fmt(l.totalMs.p50)}, max ${fmt(l.totalMs.max)})` : "–",
      met(l ? l.totalMs.p99 <= 100 && l.failures.length === 0 : undefined),
    ],
    [
      `Idle full scan of ${fmt(n, 0)} < 5 s with zero Kubernetes writes`,
      idle
        ? `slowest scan **${fmt(scanMax, 2)} s**, ${writes} writes (MODIFIED events; ${fmt(
            Object.values(idle.apiWriteRequests).reduce((a, v) => a + v, 0),
            0,
          )} no-op write requests: ${counts(idle.apiWriteRequests)}) (${Object.entries(idle.perConnector)
            .map(([c, v]) => `${c} p50 ${fmt(fullScan(v).p50 / 1000, 2)} s`)
            .join(", ")})`
        : "–",
      met(idle ? (scanMax ?? Infinity) < 5 && writes === 0 : undefined),
    ],
    [
      `Operator RSS ≤ ${RSS_TARGET_MIB} MiB at every sample, under the chart's memory settings`,
      rss !== undefined
        ? `peak **${fmt(rss)} MiB** (largest 1 s sample ${fmt(r.rss?.peakMiB)}, VmHWM ${fmt(r.rss?.highWaterMiB ?? r.memoryAfterIdle?.vmHwmMiB ?? r.memoryAfterBulk?.vmHwmMiB)}; after bulk ${fmt(r.memoryAfterBulk?.vmRssMiB)}, after idle scans ${fmt(r.memoryAfterIdle?.vmRssMiB)})${limitMiB ? `; ${fmt((rss / limitMiB) * 100, 0)}% of the chart's limit ${fmt(limitMiB, 0)} MiB` : ""}`
        : "–",
      met(
        rss === undefined
          ? undefined
          : rss <= RSS_TARGET_MIB &&
              s.operatorNodeOptionsFromChart !== false &&
              !Object.keys(experimentEnv).length &&
              !r.error,
      ),
    ],
  ];
  for (const x of larger) {
    const xr = rssPeak(x);
    rows.push([
      `${fmt(x.settings.employees, 0)}: operator RSS inside the chart's limit at every sample`,
      xr !== undefined ? `peak **${fmt(xr)} MiB** of ${fmt(x.rss?.chartLimitMiB, 0)} MiB` : "–",
      met(xr === undefined || !x.rss ? undefined : xr <= x.rss.chartLimitMiB && !x.error),
    ]);
    // 30,000 / 10,000 ≤ 3.3: at most linear, with 10% to spare; the same proportion for other sizes.
    const limit = (GROWTH_TARGET / 3) * (x.settings.employees / n);
    for (const g of growth(r, x))
      rows.push([
        `Growth ${fmt(x.settings.employees, 0)} / ${fmt(n, 0)}: ${g.what} ≤ ${fmt(limit, 2)}×`,
        g.ratio === undefined ? "–" : `${g.small} → ${g.large}: **${fmt(g.ratio, 2)}×**`,
        met(g.ratio === undefined ? undefined : g.ratio <= limit),
      ]);
  }
  rows.push(
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
  );
  out.push(
    "## Targets",
    "",
    table(["Target", "Measured", ""], rows),
    "",
    n === 10000 ? "" : `Note: this run used ${fmt(n, 0)} Employees; the targets are stated for 10,000.\n`,
  );
  if (larger.length) out.push(...renderGrowth(r, larger));

  if (b) {
    out.push(
      "## Bulk joiners",
      "",
      `${fmt(n, 0)} Employees created with ${r.settings.createConcurrency} in flight (all created after ${fmt(b.createSeconds)} s); all Ready (phase Active, Ready True) after **${fmt(b.readySeconds)} s**, targets verified (${fmt(n, 0)} LDAP entries each in their groups, ${fmt(n, 0)} active SCIM users in their group) at ${fmt(b.targetsVerifiedSeconds)} s.`,
      "",
      table(
        ["", "accounts/s", "seconds", "work per account"],
        [
          [
            "Roster (LDAP + SCIM + Kubernetes)",
            fmt(b.accountsPerSecond),
            fmt(b.readySeconds),
            `${fmt(b.ldapRequestsPerAccount, 2)} LDAP connector calls, ${fmt(b.scimHttpRequestsPerAccount, 2)} SCIM requests, ${fmt((b as { apiWritesPerAccount?: number }).apiWritesPerAccount, 3)} Kubernetes writes`,
          ],
          r.ideal
            ? [
                `Ideal operator (bench/ideal.ts: writes only, ${r.ideal.concurrency} in flight)`,
                fmt(r.ideal.accountsPerSecond),
                fmt(r.ideal.seconds),
                `${r.ideal.perAccount.ldap} LDAP operations (add, ${r.ideal.perAccount.ldap - 1} × modify), ${r.ideal.perAccount.scim} SCIM requests (create, group add), ${r.ideal.perAccount.kubernetes} Kubernetes writes (create, finalizer, status)`,
              ]
            : ["Ideal operator", "skipped", "", ""],
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
      `Ratio Roster / ideal operator: **${fmt(b.ratioToIdeal, 3)}**; Roster / raw-ldapts ceiling: **${fmt(b.ratioToCeiling, 3)}**. Per account: ${fmt(b.ldapRequestsPerAccount, 2)} LDAP connector calls, ${fmt(b.scimHttpRequestsPerAccount, 2)} SCIM HTTP requests, ${fmt(b.employeeWritesPerAccount, 2)} Employee writes (MODIFIED events).`,
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
      `Full scans every ${idle.resyncInterval} of ${fmt(idle.accounts, 0)} accounts per Connector with nothing changed. listAccounts time is from roster_connector_request_duration_seconds; the full scan (listAccounts, the in-memory comparison and whatever the scan then corrects) from roster_drift_scan_duration_seconds, per scan. The cycle figure is the time between two listAccounts completions minus the resync interval (sampled every 100 ms): the scan plus any wait behind the other Connector's scan, since the operator runs one scan at a time.`,
      "",
      table(
        ["Connector", "scans", "listAccounts p50 / max ms", "full scan p50 / max ms", "cycle p50 / max ms"],
        Object.entries(idle.perConnector).map(([c, v]) => [
          c,
          v.scans,
          `${fmt(v.listAccountsSeconds.p50, 0)} / ${fmt(v.listAccountsSeconds.max, 0)}`,
          v.fullScanSeconds ? `${fmt(v.fullScanSeconds.p50, 0)} / ${fmt(v.fullScanSeconds.max, 0)}` : "–",
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
  if (r.rss)
    out.push(
      `RSS sampled every ${r.rss.sampleSeconds} s (${fmt(r.rss.samples, 0)} samples), peak per phase: ${Object.entries(
        r.rss.peakByPhaseMiB,
      )
        .map(([phase, v]) => `${phase} ${fmt(v)} MiB`)
        .join(
          ", ",
        )}; VmHWM ${fmt(r.rss.highWaterMiB)} MiB; the chart's limit ${fmt(r.rss.chartLimitMiB, 0)} MiB.`,
      "",
    );
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

type Growth = { what: string; small: string; large: string; ratio: number | undefined };

/** Bulk time, idle scan time and peak RSS of a larger run against the main one. */
function growth(r: Report, x: Report): Growth[] {
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && a > 0 ? Math.round((b / a) * 100) / 100 : undefined;
  const scanP50 = (y: Report) =>
    y.idle ? Math.max(...Object.values(y.idle.perConnector).map((c) => fullScan(c).p50 / 1000)) : undefined;
  return [
    {
      what: "bulk time",
      small: `${fmt(r.bulk?.readySeconds)} s`,
      large: `${fmt(x.bulk?.readySeconds)} s`,
      ratio: ratio(r.bulk?.readySeconds, x.bulk?.readySeconds),
    },
    {
      what: "idle full scan time (p50, slower Connector)",
      small: `${fmt(scanP50(r), 2)} s`,
      large: `${fmt(scanP50(x), 2)} s`,
      ratio: ratio(scanP50(r), scanP50(x)),
    },
    {
      what: "peak RSS",
      small: `${fmt(rssPeak(r))} MiB`,
      large: `${fmt(rssPeak(x))} MiB`,
      ratio: ratio(rssPeak(r), rssPeak(x)),
    },
  ];
}

/** The sizes side by side. */
function renderGrowth(r: Report, larger: Report[]): string[] {
  const all = [r, ...larger];
  const row = (label: string, value: (y: Report) => string) => [label, ...all.map(value)];
  const heapAfterGc = (y: Report) =>
    Math.max(y.memoryAfterBulk?.heapUsedAfterGcMiB ?? 0, y.memoryAfterIdle?.heapUsedAfterGcMiB ?? 0);
  const scan = (y: Report, stat: "p50" | "max") =>
    y.idle
      ? Object.entries(y.idle.perConnector)
          .map(([c, v]) => `${c} ${fmt(fullScan(v)[stat] / 1000, 2)}`)
          .join(", ")
      : "–";
  return [
    "## Growth",
    "",
    `Each size is a separate run on a fresh harness (control plane, slapd, SCIM server, operator), one after the other in one invocation.`,
    "",
    table(
      ["", ...all.map((y) => `${fmt(y.settings.employees, 0)} Employees`)],
      [
        row("bulk: all Ready after (s)", (y) => fmt(y.bulk?.readySeconds)),
        row("bulk: accounts/s", (y) => fmt(y.bulk?.accountsPerSecond)),
        row("bulk: ideal operator accounts/s (ratio)", (y) =>
          y.ideal ? `${fmt(y.ideal.accountsPerSecond)} (${fmt(y.bulk?.ratioToIdeal, 3)})` : "–",
        ),
        row("bulk: raw-ldapts ceiling accounts/s (ratio)", (y) =>
          y.ceiling ? `${fmt(y.ceiling.accountsPerSecond)} (${fmt(y.bulk?.ratioToCeiling, 3)})` : "–",
        ),
        row("bulk: operator CPU ms per account", (y) =>
          fmt(((y.bulk?.cpuSeconds.operator ?? NaN) * 1000) / y.settings.employees),
        ),
        row("idle full scan p50 (s)", (y) => scan(y, "p50")),
        row("idle full scan max (s)", (y) => scan(y, "max")),
        row("leaver p99 (ms)", (y) => fmt(y.leavers?.totalMs.p99)),
        row("operator RSS peak (MiB)", (y) => fmt(rssPeak(y))),
        row(
          "operator RSS after bulk / after idle (MiB)",
          (y) => `${fmt(y.memoryAfterBulk?.vmRssMiB)} / ${fmt(y.memoryAfterIdle?.vmRssMiB)}`,
        ),
        row("heap used after a full GC, largest (MiB)", (y) => fmt(heapAfterGc(y))),
        row("chart memory limit (MiB)", (y) => fmt(y.rss?.chartLimitMiB, 0)),
      ],
    ),
    "",
    ...larger.flatMap((x) => [
      `Ratios ${fmt(x.settings.employees, 0)} / ${fmt(r.settings.employees, 0)}: ` +
        growth(r, x)
          .map((g) => `${g.what} ${fmt(g.ratio, 2)}×`)
          .join(", ") +
        ".",
      "",
    ]),
  ];
}

/** Replaces {{path.to.figure}} in the findings with the figure from this run's report. */
function fillIn(text: string, report: Report): string {
  return text.replace(/\{\{([^{}]+)\}\}/g, (whole, path: string) => {
    let value: unknown = report;
    for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
    if (typeof value === "number") return fmt(value, Math.abs(value) < 10 ? 3 : 1);
    return value === undefined ? whole : String(value);
  });
}
