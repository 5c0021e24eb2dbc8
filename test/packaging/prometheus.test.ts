// The Prometheus alerting rules (promtool check and promtool's unit tests in rules.test.yaml) and
// the Grafana dashboard: every query in either names only metrics the operator exports.
import { describe, expect, it } from "vitest";
import { load } from "js-yaml";
import { check, readText, root } from "./tools.ts";

/** Metric names registered in src/observe/metrics.ts. */
function knownMetrics(): Set<string> {
  const source = readText("src/observe/metrics.ts");
  return new Set([...source.matchAll(/\bname: "([a-z_:][a-z0-9_:]*)"/g)].map((m) => m[1]!));
}

const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "inf",
  "nan",
  // aggregation operators, which may be followed by "by (...)" before their parentheses
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
]);

/** The metric names a PromQL expression selects (functions, keywords, labels and strings left out). */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // range and subquery windows
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1") // label lists
    .replace(/\$\w+/g, ""); // Grafana variables
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    const [token, call] = [match[0].replace(/\s*\($/, ""), match[1]];
    if (call || KEYWORDS.has(token.toLowerCase()) || /^\d/.test(token)) continue;
    names.push(token);
  }
  return names;
}

function unknownMetrics(exprs: string[]): string[] {
  const known = knownMetrics();
  const base = (name: string) => name.replace(/_(bucket|sum|count)$/, "");
  return exprs.flatMap(metricNames).filter((n) => !known.has(n) && !known.has(base(n)));
}

type RuleFile = { groups: { name: string; rules: { alert?: string; expr: string }[] }[] };
type Panel = { id: number; type: string; title: string; targets?: { expr: string }[]; panels?: Panel[] };
type Dashboard = {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
};

describe("Prometheus rules", () => {
  it("pass promtool check rules", () => {
    expect(check("promtool", ["check", "rules", `${root}/deploy/prometheus/rules.yaml`])).toContain(
      "SUCCESS: 9 rules found",
    );
  });

  it("pass their promtool unit tests (test/packaging/rules.test.yaml)", () => {
    expect(check("promtool", ["test", "rules", `${root}/test/packaging/rules.test.yaml`])).toContain(
      "SUCCESS",
    );
  });

  it("define the expected alerts on metrics the operator exports", () => {
    const file = load(readText("deploy/prometheus/rules.yaml")) as RuleFile;
    const rules = file.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert).sort()).toEqual(
      [
        "RosterConnectorErrors",
        "RosterDeprovisionsHeld",
        "RosterDriftPresent",
        "RosterImportFailing",
        "RosterImportRowsRefused",
        "RosterImportStale",
        "RosterLeaverDeprovisioningSlow",
        "RosterNoLeader",
        "RosterReconcileErrorsRising",
      ].sort(),
    );
    expect(unknownMetrics(rules.map((r) => r.expr))).toEqual([]);
  });
});

describe("Grafana dashboard", () => {
  const dashboard = JSON.parse(readText("deploy/grafana/roster-dashboard.json")) as Dashboard;
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it("parses and has panels with unique ids", () => {
    expect(dashboard.uid).toBe("roster-operator");
    expect(exprs.length).toBeGreaterThan(10);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((p) => p.type !== "row"))
      expect(p.targets?.length, `panel ${p.title} has no query`).toBeGreaterThan(0);
  });

  it("queries only metrics the operator exports", () => {
    const variables = dashboard.templating.list
      .filter((v) => v.type === "query")
      .map((v) => JSON.stringify(v.query).match(/label_values\((\w+)/)?.[1] ?? "");
    expect(unknownMetrics([...exprs, ...variables])).toEqual([]);
  });

  it("shows the metrics the alerts are about", () => {
    const all = exprs.join("\n");
    for (const name of [
      "roster_deprovisions_held",
      "roster_drift_accounts",
      "roster_connector_requests_total",
      "roster_provisioning_latency_seconds_bucket",
      "roster_managed_accounts",
      "roster_orphan_accounts",
      "controller_runtime_reconcile_errors_total",
      "leader_election_master_status",
    ])
      expect(all, name).toContain(name);
  });

  it("finds metric names in PromQL", () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (connector, le) (rate(roster_provisioning_latency_seconds_bucket{operation="disable"}[5m]))) > 60',
      ),
    ).toEqual(["roster_provisioning_latency_seconds_bucket"]);
    expect(
      metricNames('max(up{job="roster"}) < 1 or absent(nope_total{job="x"}) unless on (pod) other'),
    ).toEqual(["up", "nope_total", "other"]);
  });
});
