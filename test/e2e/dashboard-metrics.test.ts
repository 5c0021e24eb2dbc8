// The Grafana dashboard against a live operator: every metric its panels and variables query is
// in a scrape of the operator's /metrics (with a joiner, a mover and a leaver behind it), and that
// scrape passes promtool's own lint.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "../harness/processes.ts";
import { dashboardQueries, metricNames, type Dashboard } from "../support/grafana.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";
import { run } from "../packaging/tools.ts";

const info = inject("harness");
let s: Scenario;
let operator: OperatorProcess;

const dashboard = JSON.parse(
  readFileSync(join(import.meta.dirname, "../../deploy/grafana/roster-dashboard.json"), "utf8"),
) as Dashboard;

beforeAll(async () => {
  s = await scenario(info, "dashboard");
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  operator = await startOperator({ namespace: s.namespace });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

/** Metric families in an exposition: from `# TYPE` lines and from samples. */
function families(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      names.add(type[1]!);
      if (type[2] === "histogram")
        for (const suffix of ["_bucket", "_sum", "_count"]) names.add(`${type[1]}${suffix}`);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

describe("the Grafana dashboard on a live operator", () => {
  it("queries only metrics a live /metrics scrape has", async () => {
    await s.apply("Employee", "una", person("D1", "una"));
    await s.until("una", "Active", (e) => e.status?.phase === "Active");
    await s.apply("Employee", "una", person("D1", "una", { employmentStatus: "Terminated" }));
    await s.until("una", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");

    const queried = new Set(dashboardQueries(dashboard).flatMap((q) => metricNames(q.expr)));
    for (const v of dashboard.templating.list) {
      const metric = /label_values\((\w+)/.exec(JSON.stringify(v.query ?? ""))?.[1];
      if (metric) queried.add(metric);
    }
    expect(queried.size).toBeGreaterThan(10);

    let missing: string[] = [];
    await waitFor(
      async () => {
        const scraped = families(await operator.metrics());
        missing = [...queried].filter((name) => !scraped.has(name)).sort();
        return missing.length === 0;
      },
      20_000,
      () => `the dashboard queries metrics the operator does not export: ${missing.join(", ")}`,
    );
  });

  it("serves metrics that pass promtool check metrics (prom-client's nodejs_ and process_ defaults aside)", async () => {
    // prom-client's default gauges nodejs_active_handles_total & co. break the _total convention;
    // they are the library's, not Roster's.
    const own = (await operator.metrics())
      .split("\n")
      .filter((line) => !/^(# (HELP|TYPE) )?(nodejs|process)_/.test(line))
      .join("\n");
    expect(own).toContain("roster_managed_accounts");
    const result = run("promtool", ["check", "metrics"], own);
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});
