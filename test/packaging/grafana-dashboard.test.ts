// The Grafana dashboard checked by programs that consume it: Grafana's dashboard schema (strict
// decoding by the Grafana Foundation SDK, test/packaging/grafana) and Prometheus's PromQL parser
// (promtool check rules) on every panel's query as Grafana sends it, variables filled in. That
// every metric it names is in a live scrape of the operator is test/e2e/dashboard-metrics.test.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dump } from "js-yaml";
import { readText, root, run } from "./tools.ts";
import { dashboardQueries, type Dashboard } from "../support/grafana.ts";

let checker: string;
let dir: string;

beforeAll(() => {
  // Cached after the first build (scripts/setup-packaging.sh); a cold one takes about a minute.
  checker = execFileSync("bash", [join(root, "test/packaging/grafana/build.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .pop()!;
  dir = mkdtempSync(join(tmpdir(), "roster-grafana-"));
}, 15 * 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const source = readText("deploy/grafana/roster-dashboard.json");

function schemaCheck(dashboard: Dashboard | string) {
  const file = join(dir, "dashboard.json");
  writeFileSync(file, typeof dashboard === "string" ? dashboard : JSON.stringify(dashboard));
  return run(checker, [file]);
}

describe("Grafana's dashboard schema", () => {
  it("accepts roster-dashboard.json", () => {
    const result = schemaCheck(source);
    expect(result.stdout + result.stderr).toMatch(/: ok, 26 panels, schemaVersion \d+$/m);
    expect(result.status).toBe(0);
  });

  it("rejects an unknown field, a wrong type and a missing required option", () => {
    const dashboard = JSON.parse(source) as Dashboard & { panels: Record<string, unknown>[] };
    const stat = dashboard.panels.findIndex((p) => p.type === "stat");
    const timeseries = dashboard.panels.findIndex((p) => p.type === "timeseries");
    dashboard.panels[stat]!.targetz = [];
    (dashboard.panels[stat]!.options as Record<string, unknown>).wideLayout = "yes";
    delete (
      (dashboard.panels[timeseries]!.options as Record<string, unknown>).legend as Record<string, unknown>
    ).showLegend;
    const result = schemaCheck(dashboard);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(`panels[${stat}].options.wideLayout`);
    expect(result.stdout).toContain("targetz");
    expect(result.stdout).toContain(
      `panels[${timeseries}].options.legend.showLegend: required field is missing`,
    );
  });
});

describe("every panel's PromQL, parsed by promtool", () => {
  const queries = dashboardQueries(JSON.parse(source) as Dashboard);

  function promtoolCheck(exprs: string[]) {
    const file = join(dir, "queries.rules.yaml");
    const rules = exprs.map((expr, i) => ({ record: `roster_dashboard:query_${i}`, expr }));
    writeFileSync(file, dump({ groups: [{ name: "roster-dashboard", rules }] }));
    return run("promtool", ["check", "rules", file]);
  }

  it("parses, with the dashboard's variables as Grafana fills them in", () => {
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) expect(q.expr, q.panel).not.toMatch(/\$/);
    const result = promtoolCheck(queries.map((q) => q.expr));
    expect(result.stdout + result.stderr).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(result.status).toBe(0);
  });

  it("would fail on a query Prometheus cannot parse", () => {
    const result = promtoolCheck([
      ...queries.map((q) => q.expr),
      "sum by (connector (roster_managed_accounts)",
    ]);
    expect(result.status).toBe(1);
    expect(result.stdout + result.stderr).toMatch(/parse error/);
  });
});
