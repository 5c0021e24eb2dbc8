// The import's report: new hires, movers (old -> new), leavers, refused rows, as text for people
// and as JSON for machines.
import type { ImportPlan, PlannedChange } from "./diff.ts";
import { formatProblem } from "./employee.ts";

export type ImportOutcome = {
  /** The export's name as shown in messages (path or <stdin>). */
  source: string;
  /** Where the Employees go. */
  target: { directory: string } | { namespace: string };
  dryRun: boolean;
  /** Files written (directory) or objects applied (cluster). */
  written: string[];
  failed: { name: string; message: string }[];
  /** Why nothing was written although there were changes (--strict). */
  withheld?: string;
};

const show = (v: string | undefined) => (v === undefined ? "(none)" : JSON.stringify(v));
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function countsLine(plan: ImportPlan): string {
  return [
    plural(plan.hires.length, "new hire", "new hires"),
    plural(plan.movers.length, "mover", "movers"),
    plural(plan.leavers.length, "leaver", "leavers"),
    plural(plan.refused.length, "refused row", "refused rows"),
    `${plan.unchanged} unchanged`,
    ...(plan.skipped.length ? [`${plan.skipped.length} skipped`] : []),
  ].join(", ");
}

/** The report printed before anything is written. */
export function renderPlanText(plan: ImportPlan, source: string, target: ImportOutcome["target"]): string {
  const into = "directory" in target ? `${target.directory}/` : `namespace ${target.namespace}`;
  const lines = [`Import of ${source} (${plan.rows} rows) into ${into}: ${countsLine(plan)}`];
  const width = Math.max(0, ...[...plan.hires, ...plan.movers, ...plan.leavers].map((c) => c.name.length));
  const head = (mark: string, c: PlannedChange) =>
    `  ${mark} ${c.name.padEnd(width)}  ${c.employeeId}${c.line !== undefined ? `  (line ${c.line})` : ""}`;
  const section = (title: string, mark: string, list: PlannedChange[]) => {
    if (list.length === 0) return;
    lines.push("", `${title} (${list.length}):`);
    for (const c of list) {
      lines.push(head(mark, c));
      for (const ch of c.changes) lines.push(`      ${ch.field}: ${show(ch.old)} -> ${show(ch.new)}`);
    }
  };
  section("New hires", "+", plan.hires);
  section("Movers", "~", plan.movers);
  section("Leavers (employmentStatus -> Terminated)", "-", plan.leavers);
  if (plan.refused.length > 0) {
    lines.push("", `Refused rows (${plan.refused.length}):`);
    for (const r of plan.refused)
      for (const p of r.problems) lines.push(`  ${formatProblem(source, r.line, p)}`);
  }
  if (plan.skipped.length > 0) {
    lines.push("", `Skipped rows (${plan.skipped.length}):`);
    for (const s of plan.skipped) lines.push(`  ${source}:${s.line}: ${s.employeeId}: ${s.reason}`);
  }
  if (plan.notes.length > 0) {
    lines.push("", `Notes (${plan.notes.length}):`);
    for (const n of plan.notes) lines.push(`  ${source}:${n.line}: ${n.employeeId}: ${n.message}`);
  }
  return `${lines.join("\n")}\n`;
}

/** What happened after the plan, one or two lines. */
export function renderOutcomeText(plan: ImportPlan, outcome: ImportOutcome): string {
  const what = "directory" in outcome.target ? "file" : "object";
  const changes = plan.hires.length + plan.movers.length + plan.leavers.length;
  const lines: string[] = [];
  if (outcome.dryRun)
    lines.push(`Dry run: nothing written (${plural(changes, what, `${what}s`)} would change).`);
  else if (outcome.withheld) lines.push(`Nothing written: ${outcome.withheld}.`);
  else if ("directory" in outcome.target)
    lines.push(`Wrote ${plural(outcome.written.length, "file", "files")} in ${outcome.target.directory}.`);
  else
    lines.push(
      `Applied ${plural(outcome.written.length, "Employee", "Employees")} in namespace ${outcome.target.namespace} (field manager roster-import).`,
    );
  for (const f of outcome.failed) lines.push(`failed: ${f.name}: ${f.message}`);
  return `${lines.join("\n")}\n`;
}

const brief = (c: PlannedChange) => ({
  name: c.name,
  employeeId: c.employeeId,
  username: c.username,
  ...(c.line !== undefined ? { line: c.line } : {}),
});

/** The whole report as one JSON document. */
export function planJson(plan: ImportPlan, outcome: ImportOutcome): Record<string, unknown> {
  return {
    source: outcome.source,
    target: outcome.target,
    dryRun: outcome.dryRun,
    rows: plan.rows,
    counts: {
      hires: plan.hires.length,
      movers: plan.movers.length,
      leavers: plan.leavers.length,
      refused: plan.refused.length,
      unchanged: plan.unchanged,
      skipped: plan.skipped.length,
    },
    hires: plan.hires.map(brief),
    movers: plan.movers.map((c) => ({ ...brief(c), changes: c.changes })),
    leavers: plan.leavers.map((c) => ({ ...brief(c), changes: c.changes })),
    refused: plan.refused.map((r) => ({
      file: outcome.source,
      line: r.line,
      ...(r.employeeId !== undefined ? { employeeId: r.employeeId } : {}),
      ...(r.username !== undefined ? { username: r.username } : {}),
      problems: r.problems,
      messages: r.problems.map((p) => formatProblem(outcome.source, r.line, p)),
    })),
    skipped: plan.skipped,
    notes: plan.notes,
    written: outcome.written,
    failed: outcome.failed,
    ...(outcome.withheld ? { withheld: outcome.withheld } : {}),
  };
}
