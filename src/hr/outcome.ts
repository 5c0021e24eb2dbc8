// What a (scheduled) import tells the cluster about itself: one Event with its counts or its
// error, and the values of its metrics. Pure: the CLI writes them.
import type { ImportPlan } from "./diff.ts";
import { formatProblem } from "./employee.ts";
import { countsLine, type ImportOutcome } from "./summary.ts";

export type ImportEvent = { type: "Normal" | "Warning"; reason: string; message: string };

/** Why an import wrote nothing on purpose: the --max-leavers guard. */
export class LeaverGuardError extends Error {
  override name = "LeaverGuardError";
}

const MAX_REFUSALS_SHOWN = 3;

/** The Event for a finished import (plan and outcome) or a failed one (error). */
export function importEvent(
  source: string,
  result: { plan: ImportPlan; outcome: ImportOutcome } | { error: Error; plan?: ImportPlan },
): ImportEvent {
  if ("error" in result) {
    const counts = result.plan ? ` (${countsLine(result.plan)})` : "";
    if (result.error instanceof LeaverGuardError)
      return {
        type: "Warning",
        reason: "TooManyLeavers",
        message: `${source}${counts}: ${result.error.message}`,
      };
    return {
      type: "Warning",
      reason: "ImportFailed",
      message: `${source}: ${result.error.message}${result.error.message.includes("nothing") ? "" : "; nothing applied"}`,
    };
  }
  const { plan, outcome } = result;
  const written = outcome.dryRun
    ? "dry run, nothing written"
    : outcome.withheld
      ? `nothing written: ${outcome.withheld}`
      : `${outcome.written.length} written`;
  const head = `${source}: ${countsLine(plan)}; ${written}`;
  if (outcome.failed.length > 0)
    return {
      type: "Warning",
      reason: "ImportFailed",
      message: `${head}; ${outcome.failed.length} failed: ${outcome.failed
        .slice(0, MAX_REFUSALS_SHOWN)
        .map((f) => `${f.name}: ${f.message}`)
        .join("; ")}`,
    };
  if (plan.refused.length > 0) {
    const shown = plan.refused
      .slice(0, MAX_REFUSALS_SHOWN)
      .map((r) => formatProblem(source, r.line, r.problems[0] ?? { message: "refused" }));
    const more =
      plan.refused.length > MAX_REFUSALS_SHOWN
        ? `; and ${plan.refused.length - MAX_REFUSALS_SHOWN} more`
        : "";
    return {
      type: "Warning",
      reason: "RowsRefused",
      message: `${head}; refused: ${shown.join("; ")}${more}`,
    };
  }
  return { type: "Normal", reason: "Imported", message: head };
}

/** The row counts pushed as roster_import_rows{outcome}. */
export function rowCounts(plan: ImportPlan): Record<string, number> {
  return {
    hire: plan.hires.length,
    mover: plan.movers.length,
    leaver: plan.leavers.length,
    refused: plan.refused.length,
    unchanged: plan.unchanged,
    skipped: plan.skipped.length,
  };
}
