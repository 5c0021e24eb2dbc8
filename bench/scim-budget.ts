// The SCIM request budget (issue 13): how many requests a metered SCIM service sees per hire (into
// a group that exists), per mover, per leaver and per idle minute, counted from the request log of
// the strict SCIM test server (test/harness/scim-strict.ts). Its own namespace, Connector and
// `roster operator` process; one change at a time, each window closed when the operator is idle
// again. Every request counts but the drift scan's own pages (listed apart): the Connector check's
// probe and discovery too, because a change may set one off (at 1ffee5e every hire, mover and leaver
// did). A periodic check may fall into one window by chance: the figure per operation is the median
// over the windows.
// Figures are reported, never asserted.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { API_VERSION, GROUP, VERSION } from "../src/api/schema.ts";
import type { EmployeeSpecT } from "../src/api/types.ts";
import type { ScimRequestLog } from "../test/harness/scim.ts";
import { startStrictScimServer, type StrictScimServer } from "../test/harness/scim-strict.ts";
import { waitFor } from "../test/harness/processes.ts";
import { createRoster, freshNamespace, getRoster, type Kube } from "../test/support/kube.ts";
import { metric, progress, settle, sleep, startOperator, type Operator } from "./support.ts";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";

type Counts = Record<string, number>;
export type BudgetWindow = {
  /** Requests in the window but the scan's pages. */
  requests: number;
  byKind: Counts;
  /** The drift scan's pages that fell in the window (not counted). */
  scan: Counts;
};
export type ScimBudget = {
  measuredAt: string;
  git?: string;
  server: string;
  settings: { hires: number; movers: number; leavers: number; idleSeconds: number; resyncInterval: string };
  hire: BudgetWindow[];
  mover: BudgetWindow[];
  leaver: BudgetWindow[];
  idle: BudgetWindow & { seconds: number; scans: number };
  perHire: number;
  perMover: number;
  perLeaver: number;
  perIdleMinute: number;
};

/** A request as a person reading the service's access log would name it. */
export function kindOf(r: ScimRequestLog): string {
  const url = new URL(r.path, "http://x");
  const path = url.pathname.replace(/^\/scim\/v2/, "");
  const filter = url.searchParams.get("filter") ?? "";
  const resource = path.split("/")[1] ?? "";
  if (r.method === "GET") {
    if (/^\/(ServiceProviderConfig|ResourceTypes|Schemas)/.test(path)) return "discovery";
    if (path.split("/").length > 2) return `read ${resource} by id`;
    if (/^externalId eq /i.test(filter)) return "Users by externalId";
    if (/^userName eq /i.test(filter)) return "Users by userName";
    if (/^displayName eq /i.test(filter)) return "Groups by displayName";
    if (/^members\[value eq /i.test(filter)) return "Groups by member";
    if (/ pr$/i.test(filter) || (!filter && url.searchParams.get("count") !== "1")) return `scan ${resource}`;
    if (!filter) return "probe";
    return `GET ${resource} ${filter}`;
  }
  return `${r.method} ${resource}${r.status >= 400 || r.status === 0 ? ` (${r.status})` : ""}`;
}

function window(requests: ScimRequestLog[]): BudgetWindow {
  const byKind: Counts = {};
  const scan: Counts = {};
  for (const r of requests) {
    const k = kindOf(r);
    const into = k.startsWith("scan ") ? scan : byKind;
    into[k] = (into[k] ?? 0) + 1;
  }
  return { requests: Object.values(byKind).reduce((a, v) => a + v, 0), byKind, scan };
}

const median = (ws: BudgetWindow[]) => {
  const sorted = ws.map((w) => w.requests).sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return !sorted.length ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function measureScimBudget(opts: {
  kube: Kube;
  kubeconfigPath: string;
  dir: string;
  git?: string;
  hires?: number;
  movers?: number;
  leavers?: number;
  idleSeconds?: number;
}): Promise<ScimBudget> {
  const hires = opts.hires ?? 5;
  const movers = Math.min(opts.movers ?? 2, hires);
  const leavers = Math.min(opts.leavers ?? 2, hires);
  const idleSeconds = opts.idleSeconds ?? 60;
  const resyncInterval = "30s";
  const { kube } = opts;
  const scim: StrictScimServer = await startStrictScimServer();
  const namespace = await freshNamespace(kube, "scim-budget");
  let operator: Operator | undefined;
  try {
    // The groups exist before anyone is hired into them.
    for (const g of ["eng", "support"]) await scim.putGroup({ id: `g-${g}`, displayName: g });
    await kube.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "scim-token" }, stringData: { token: scim.token } },
    });
    await createRoster(kube, namespace, {
      apiVersion: API_VERSION,
      kind: "Connector",
      metadata: { name: "apps" },
      spec: {
        scim: {
          baseURL: scim.baseURL,
          tokenSecretRef: { name: "scim-token", key: "token" },
          requestsPerSecond: 100,
        },
        drift: { policy: "Correct", resyncInterval },
      },
    });
    await createRoster(kube, namespace, {
      apiVersion: API_VERSION,
      kind: "AccessPolicy",
      metadata: { name: "base" },
      spec: { grants: [{ connector: "apps" }] },
    });
    for (const [name, department] of [
      ["eng", "Engineering"],
      ["support", "Support"],
    ] as const) {
      await createRoster(kube, namespace, {
        apiVersion: API_VERSION,
        kind: "AccessPolicy",
        metadata: { name },
        spec: {
          match: [{ key: "department", operator: "In", values: [department] }],
          grants: [{ connector: "apps", groups: [name] }],
        },
      });
    }
    operator = await startOperator({
      kubeconfigPath: opts.kubeconfigPath,
      namespace,
      workers: 4,
      // Its own log, apart from the main bench operator's.
      dir: mkdtempSync(join(opts.dir, "scim-budget-")),
      logLevel: "warn",
    });
    const op = operator;
    // Warm: the Connector checked and scanned once, nothing left to do.
    await waitFor(
      async () =>
        metric(await op.samples(), "roster_connector_request_duration_seconds_count", {
          operation: "listAccounts",
        }) > 0,
      60_000,
      () => `the first scan did not happen:\n${op.tail(20)}`,
      200,
    );
    await settle(op, 60_000, 1500);

    type Emp = { metadata: { generation: number }; status?: Record<string, unknown> };
    const account = (e: Emp) =>
      (e.status?.accounts as { connector: string; state: string; groups?: string[] }[] | undefined)?.find(
        (a) => a.connector === "apps",
      );
    const ready = (e: Emp) =>
      e.status?.observedGeneration === e.metadata.generation &&
      !!(e.status?.conditions as { type: string; status: string }[] | undefined)?.some(
        (c) => c.type === "Ready" && c.status === "True",
      );
    const until = (name: string, what: string, check: (e: Emp) => boolean) =>
      waitFor(
        async () => check((await getRoster(kube, namespace, "Employee", name)) as unknown as Emp),
        60_000,
        () => `${name}: not ${what}:\n${op.tail(20)}`,
        50,
      );
    const measure = async (change: () => Promise<void>, done: () => Promise<void>) => {
      const mark = await scim.requestCount();
      await change();
      await done();
      await settle(op, 60_000, 1500);
      return window(await scim.requests(mark));
    };
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    const patch = (name: string, spec: Partial<EmployeeSpecT>) =>
      kube.custom.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: "employees", name, body: { spec } },
        merge,
      );

    const people = Array.from({ length: hires }, (_, i) => `p${i + 1}`);
    const budget: Omit<ScimBudget, "idle" | "perHire" | "perMover" | "perLeaver" | "perIdleMinute"> = {
      measuredAt: new Date().toISOString(),
      ...(opts.git ? { git: opts.git } : {}),
      server: "test/harness/scim-strict.ts (elimity-com/scim)",
      settings: { hires, movers, leavers, idleSeconds, resyncInterval },
      hire: [],
      mover: [],
      leaver: [],
    };
    for (const name of people) {
      budget.hire.push(
        await measure(
          async () => {
            await createRoster(kube, namespace, {
              apiVersion: API_VERSION,
              kind: "Employee",
              metadata: { name },
              spec: {
                employeeId: `E-${name}`,
                username: name,
                givenName: "Budget",
                familyName: name,
                email: `${name}@example.com`,
                department: "Engineering",
              },
            });
          },
          () => until(name, "hired into eng", (e) => ready(e) && account(e)?.groups?.join() === "eng"),
        ),
      );
    }
    progress(`scim budget: ${hires} hires, ${median(budget.hire)} requests each`);
    for (const name of people.slice(0, movers)) {
      budget.mover.push(
        await measure(
          async () => void (await patch(name, { department: "Support" })),
          () => until(name, "moved to support", (e) => ready(e) && account(e)?.groups?.join() === "support"),
        ),
      );
    }
    for (const name of people.slice(hires - leavers)) {
      budget.leaver.push(
        await measure(
          async () => void (await patch(name, { employmentStatus: "Terminated" })),
          () => until(name, "disabled", (e) => ready(e) && account(e)?.state === "Disabled"),
        ),
      );
    }
    progress(
      `scim budget: movers ${median(budget.mover)}, leavers ${median(budget.leaver)}; idle ${idleSeconds} s`,
    );
    const mark = await scim.requestCount();
    const started = performance.now();
    await sleep(idleSeconds * 1000);
    const idleLog = await scim.requests(mark);
    const seconds = (performance.now() - started) / 1000;
    const idle = window(idleLog);
    // A scan starts with the first page of its Users listing.
    const scans = idleLog.filter(
      (r) => kindOf(r) === "scan Users" && new URL(r.path, "http://x").searchParams.get("startIndex") === "1",
    ).length;
    return {
      ...budget,
      idle: { ...idle, seconds: Math.round(seconds), scans },
      perHire: median(budget.hire),
      perMover: median(budget.mover),
      perLeaver: median(budget.leaver),
      perIdleMinute: Math.round(((idle.requests * 60) / seconds) * 10) / 10,
    };
  } finally {
    await operator?.stop(10_000);
    // The namespace stays: its Employees' finalizers would hold it with the operator gone.
    await scim.stop();
  }
}

const list = (c: Counts) =>
  Object.entries(c)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "none";

/** The budget as a section of bench/results/summary.md. */
export function renderScimBudget(b: ScimBudget): string[] {
  const row = (label: string, w: BudgetWindow) =>
    `| ${label} | ${w.requests} | ${list(w.byKind)} | ${list(w.scan)} |`;
  const rows = (label: string, ws: BudgetWindow[]) => ws.map((w, i) => row(`${label} ${i + 1}`, w));
  return [
    "## SCIM request budget",
    "",
    `Measured ${b.measuredAt}${b.git ? ` (commit ${b.git})` : ""} by bench/scim-budget.ts (part of \`npm run bench\`; alone: \`npm run bench -- --scim-budget\`) against ${b.server}, from its request log: one Connector (drift.resyncInterval ${b.settings.resyncInterval}; the operator checks each Connector every 30 s), ${b.settings.hires} hires one at a time into the existing group \`eng\` (an AccessPolicy by department), ${b.settings.movers} movers Engineering → Support (out of \`eng\`, into the existing \`support\`), ${b.settings.leavers} leavers (Terminated: disabled and out of their group), then ${b.settings.idleSeconds} s with nothing changed. Each window closes when the operator is idle again. Every request counts but the drift scan's own pages; a periodic Connector check may fall into a window by chance, so the figure per operation is the median over its windows.`,
    "",
    "| | requests | by kind | scan pages (not counted) |",
    "| --- | --- | --- | --- |",
    ...rows("hire", b.hire),
    ...rows("mover", b.mover),
    ...rows("leaver", b.leaver),
    row(`idle ${b.idle.seconds} s (${b.idle.scans} scans)`, b.idle),
    "",
    `Per hire into an existing group **${b.perHire}** (target ≤ 3), per mover **${b.perMover}**, per leaver **${b.perLeaver}**, per idle minute beyond the scan's pages **${b.perIdleMinute}** (target 0).`,
    "",
  ];
}
