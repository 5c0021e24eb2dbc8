// The queries of the Grafana dashboard (deploy/grafana) as Grafana sends them to Prometheus, and
// the metric names they select.

export type Panel = {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId?: string }[];
  panels?: Panel[];
};
export type Variable = {
  name: string;
  type: string;
  query?: unknown;
  allValue?: string;
  current?: { text?: unknown; value?: unknown };
};
export type Dashboard = { title: string; uid: string; panels: Panel[]; templating: { list: Variable[] } };
export type Query = { panel: string; expr: string };

/** The value Grafana puts in for a variable as the dashboard opens ("All" is allValue). */
function variableValue(variable: Variable): string {
  const current = variable.current?.value;
  if (current === "$__all" || (Array.isArray(current) && current.includes("$__all")))
    return variable.allValue ?? ".*";
  if (typeof current === "string") return current;
  if (typeof variable.query === "string") return variable.query;
  return ".*";
}

/** Every panel's queries, with Grafana's variables filled in ($__rate_interval as 5m). */
export function dashboardQueries(dashboard: Dashboard): Query[] {
  const values = new Map(dashboard.templating.list.map((v) => [v.name, variableValue(v)]));
  for (const builtin of ["__rate_interval", "__interval", "__range"]) values.set(builtin, "5m");
  const fill = (expr: string) =>
    expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
      const value = values.get((braced ?? bare)!);
      return value ?? whole;
    });
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: `${p.title} (${t.refId ?? "A"})`, expr: fill(t.expr) })),
  );
}

const KEYWORDS = new Set(
  [
    "by without on ignoring group_left group_right and or unless bool offset inf nan",
    // aggregation operators, which may be followed by "by (...)" before their parentheses
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile",
  ]
    .join(" ")
    .split(" "),
);

/** The metric names a PromQL expression selects (functions, keywords, labels and strings left out). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // range and subquery windows
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1"); // label lists
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    const [token, call] = [match[0].replace(/\s*\($/, ""), match[1]];
    if (call || KEYWORDS.has(token.toLowerCase()) || /^\d/.test(token)) continue;
    names.push(token);
  }
  return [...new Set(names)];
}
