// The audit trail: every change Roster makes to a target, or tries to, is one JSON line on the
// log stream from the logger "roster.audit" with `audit: true`, written whatever --log-level says
// (createAuditLogger), and counted in roster_changes_total. Events expire after an hour; these
// lines last as long as the log store keeps them. The records are built by src/plan/audit.ts.
import type { Logger } from "pino";
import type { AuditRecord } from "../plan/audit.ts";
import { createAuditLogger } from "./logger.ts";
import { targetChanges } from "./metrics.ts";

/** One audit logger per operator logger (they share its stream). */
const trails = new WeakMap<Logger, Logger>();

export function emitAudit(logger: Logger, record: AuditRecord): void {
  let trail = trails.get(logger);
  if (!trail) {
    trail = createAuditLogger(logger);
    trails.set(logger, trail);
  }
  const failed = record.outcome === "failed" ? ` (failed: ${record.error?.reason ?? "error"})` : "";
  const account = record.target ? `${record.connector} ${record.target}` : record.connector;
  trail.info(record, `${account}: ${record.detail}${failed}`);
  targetChanges.inc({
    connector: `${record.employee.namespace}/${record.connector}`,
    operation: record.operation,
    outcome: record.outcome,
  });
}
