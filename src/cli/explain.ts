// `roster explain emp/NAME`: why a person has, or does not have, each account and group, from the
// cluster (with status: what is recorded, paused Connectors, the brake) or from a directory of
// manifests. Reads only; see HELP for flags and exit codes.
import { parseArgs } from "node:util";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../api/types.ts";
import {
  describeEntry,
  explainAccess,
  type ExplainObjects,
  type Explanation,
  type SourceCheck,
} from "../policy/explain.ts";
import { listAll, rosterPath } from "../kube/client.ts";
import {
  CliUsageError,
  commandName,
  KUBE_FLAGS,
  KUBE_FLAGS_HELP,
  loadKube,
  nowFlag,
  namespaceOf,
  runCli,
  writeOut,
} from "./kube.ts";
import { loadManifests, manifestObjects } from "./plan.ts";

const HELP = (cmd: string) => `Usage: ${cmd} explain emp/NAME [flags]
       ${cmd} explain emp/NAME --dir DIR [--dir DIR...] [flags]

Says, for each connector and group, why the Employee NAME has it or not: the lifecycle (startDate,
endDate, OnLeave, Terminated), every AccessPolicy, GroupRule and grant that names it, which
selector and match entry held or failed and the value it saw, a grant's until, whether a rule is
Authoritative or Additive, and what a paused Connector or Employee or a deprovision held by the
mass-change brake does. The answer is the operator's own evaluation. Reads only.

Against the cluster (the default), the Employee's status adds what is recorded now (account
state and groups, and so what Roster is about to add or remove) and Connector status adds the
brake. With --dir, the manifests in DIR (what a pull request would merge; YAML, searched
recursively, several --dir read as one set) are explained with no cluster.

NAME may be given as emp/NAME, employee/NAME or NAME.

Flags:
${KUBE_FLAGS_HELP}
  --dir DIR                explain from the manifests in DIR instead of the cluster (repeatable)
  -o, --output FORMAT      text (default) or json
  --now RFC3339            judge dates at this moment (default: now)
  -h, --help               this help

Exit codes: 0 explained, 1 error (the Employee is not found, the cluster or a file is
unreadable), 2 usage error.

Examples:
  ${cmd} explain emp/ada -n people
  kubectl roster explain emp/ada -n people -o json
  ${cmd} explain emp/ada --dir people/ --now 2026-12-31
`;

/** emp/NAME, employee/NAME, employees/NAME (optionally .roster.dev), or NAME. */
export function employeeName(target: string): string {
  const match = /^(?:(emp|employee|employees)(?:\.roster\.dev)?\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(
    target,
  );
  if (!match) throw new CliUsageError(`expected emp/NAME, got ${JSON.stringify(target)}`);
  return match[2]!;
}

function checkLines(check: SourceCheck, indent: string): string[] {
  const mode = check.membership ? ` (${check.membership})` : "";
  return [
    `${indent}${check.source}${mode}: ${check.why}`,
    ...check.entries.map((e) => `${indent}  ${e.holds ? "held  " : "FAILED"}  ${describeEntry(e)}`),
  ];
}

export function renderExplanation(x: Explanation): string {
  const e = x.employee;
  const lines = [
    `Employee ${e.name} (username ${e.username}, employeeId ${e.employeeId})` +
      `${e.namespace ? ` in namespace ${e.namespace}` : ""}, at ${x.at}`,
    `  employmentStatus ${e.employmentStatus}, employmentType ${e.employmentType}, ` +
      `startDate ${e.startDate ?? "none"}, endDate ${e.endDate ?? "none"}`,
    `  lifecycle ${x.lifecycle}: ${x.reason}`,
    ...(x.nextChangeAt ? [`  changes by itself at ${x.nextChangeAt} (a date or a grant's until)`] : []),
    ...x.notes.map((n) => `  note: ${n}`),
  ];
  for (const c of x.connectors) {
    const account =
      c.account === "None" ? "no account" : `account (${c.account === "Active" ? "enabled" : "disabled"})`;
    lines.push("", `${c.connector}: ${account}: ${c.why}`);
    if (c.recorded)
      lines.push(
        `  status: ${c.recorded.state}${c.recorded.id ? ` ${c.recorded.id}` : ""}` +
          `${c.recorded.groups?.length ? `, groups ${c.recorded.groups.join(", ")}` : ""}` +
          `${c.recorded.message ? ` (${c.recorded.message})` : ""}`,
      );
    for (const n of c.notes) lines.push(`  note: ${n}`);
    for (const check of c.considered) lines.push(...checkLines(check, "  "));
    if (c.groups.length) lines.push("  groups:");
    for (const g of c.groups) {
      const change = g.change === "add" ? " (to be added)" : g.change === "remove" ? " (to be removed)" : "";
      lines.push(`    ${g.group}: ${g.has ? "yes" : "no"}${change}: ${g.why}`);
      if (g.rules.length) {
        lines.push(`      ${g.membership}`);
        for (const rule of g.rules) lines.push(...checkLines(rule, "      "));
      }
    }
  }
  return lines.join("\n") + "\n";
}

async function clusterObjects(values: {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}): Promise<ExplainObjects & { namespace: string }> {
  const kc = loadKube(values);
  const namespace = namespaceOf(kc, values.namespace);
  const [employees, policies, rules, connectors] = await Promise.all([
    listAll<Employee>(kc, rosterPath("employees", namespace)),
    listAll<AccessPolicy>(kc, rosterPath("accesspolicies", namespace)),
    listAll<GroupRule>(kc, rosterPath("grouprules", namespace)),
    listAll<Connector>(kc, rosterPath("connectors", namespace)),
  ]);
  return { employees, policies, rules, connectors, namespace };
}

export async function explainCommand(args: string[]): Promise<number> {
  return runCli("explain", async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...KUBE_FLAGS,
        help: { type: "boolean", short: "h" },
        dir: { type: "string", multiple: true },
        output: { type: "string", short: "o", default: "text" },
        now: { type: "string" },
      },
    });
    if (values.help) {
      await writeOut(HELP(commandName()));
      return 0;
    }
    if (positionals.length !== 1) throw new CliUsageError("expected exactly one Employee, as emp/NAME");
    const name = employeeName(positionals[0]!);
    if (!["text", "json"].includes(values.output!))
      throw new CliUsageError(`--output must be text or json, got ${values.output}`);
    const now = nowFlag(values.now);
    const dirs = values.dir ?? [];
    if (dirs.length && (values.kubeconfig || values.context || values.namespace))
      throw new CliUsageError(
        "--dir explains files with no cluster: give it without --kubeconfig, --context and --namespace",
      );

    let objects: ExplainObjects;
    let where: string;
    if (dirs.length) {
      objects = manifestObjects(dirs.flatMap((dir) => loadManifests(dir)));
      where = dirs.join(", ");
    } else {
      const cluster = await clusterObjects(values);
      objects = cluster;
      where = `namespace ${cluster.namespace}`;
    }
    const employee = objects.employees.find((e) => e.metadata.name === name);
    if (!employee) throw new Error(`Employee ${name} not found in ${where}`);
    const explanation = explainAccess(employee, objects, now);
    await writeOut(
      values.output === "json" ? JSON.stringify(explanation, null, 2) + "\n" : renderExplanation(explanation),
    );
    return 0;
  });
}
