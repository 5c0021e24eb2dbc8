// Deletions a Connector does for Employees that are gone. With deprovisioning.action Delete, an
// Employee deleted before its account's deleteAfter passed hands the deletion over (it is kept in
// the Connector's status with the brake) and its finalizer goes; the Connector deletes the account
// when it is due, through the brake, unless the person is back (an Employee with that employeeId
// exists again and manages the account) or the account changed meanwhile.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { API_VERSION } from "../api/schema.ts";
import type { Connector, Employee } from "../api/types.ts";
import { NotOwnedError } from "../connectors/types.ts";
import { dueDeletions, type ScheduledDeletion } from "../plan/brake.ts";
import type { BrakeGate } from "./brake.ts";
import type { EventRecorder } from "./events.ts";
import type { Target } from "./targets.ts";
import { classify } from "./errors.ts";
import { changeRecord, errorClass } from "../plan/audit.ts";
import { emitAudit } from "../observe/audit.ts";

export type DeletionDeps = {
  brake: BrakeGate;
  target: Target;
  events: EventRecorder;
  logger: Logger;
  /** The namespace's Employees that carry this employeeId. */
  employeesWith(namespace: string, employeeId: string): readonly Employee[];
  now(): number;
};

/**
 * Runs the deletions that are due. Returns how long until the next one (undefined: none left).
 * A deletion that fails stays scheduled and is tried again on the Connector's next check.
 */
export async function runDueDeletions(connector: Connector, deps: DeletionDeps): Promise<number | undefined> {
  const namespace = connector.metadata.namespace ?? "default";
  const { due, nextInMs } = dueDeletions(deps.brake.state(connector), deps.now());
  const subject = { ...connector, kind: "Connector", apiVersion: API_VERSION };
  let retryIn = nextInMs;
  for (const entry of due) {
    try {
      const outcome = await deleteOne(connector, namespace, entry, deps);
      if (outcome === "held") continue;
      await deps.brake.unschedule(connector, entry.account);
      if (outcome === "deleted")
        void deps.events.record(
          subject,
          "Normal",
          "AccountDeleted",
          `deleted ${entry.id} (employeeId ${entry.employeeId}), deleteAfter passed since its Employee was deleted`,
        );
      else
        void deps.events.record(
          subject,
          "Warning",
          "ScheduledDeletionDropped",
          `${entry.id}: ${outcome.dropped}`,
        );
    } catch (error) {
      deps.logger.warn(
        {
          connector: `${namespace}/${connector.metadata.name}`,
          id: entry.id,
          error: (error as Error).message,
        },
        "scheduled deletion failed; retrying later",
      );
      retryIn = Math.min(retryIn ?? Infinity, 30_000);
    }
  }
  return retryIn;
}

async function deleteOne(
  connector: Connector,
  namespace: string,
  entry: ScheduledDeletion,
  deps: DeletionDeps,
): Promise<"deleted" | "held" | { dropped: string }> {
  if (deps.employeesWith(namespace, entry.employeeId).length > 0)
    return {
      dropped: `not deleted: an Employee with employeeId ${entry.employeeId} exists again and manages it`,
    };
  let account;
  try {
    account = await deps.target.client.findAccount(entry.employeeId, entry.username, entry.id);
  } catch (error) {
    if (error instanceof NotOwnedError) return { dropped: `not deleted: ${error.message}` };
    throw error;
  }
  if (!account) return { dropped: "already gone" };
  if (account.enabled) return { dropped: "not deleted: the account was enabled again since it was disabled" };
  const decision = await deps.brake.request(connector, entry.account);
  if (!decision.allowed) return "held";
  // The delete, done or refused, is an audit record (src/observe/audit.ts); the Employee is gone.
  const audited = (failure?: { class: string; reason: string }) =>
    emitAudit(
      deps.logger,
      changeRecord({
        changeId: randomUUID(),
        time: new Date(deps.now()),
        op: { op: "delete" },
        before: account,
        id: account.id,
        employee: { namespace, employeeId: entry.employeeId, username: entry.username },
        connector: connector.metadata.name,
        reason: "scheduled deletion",
        ...(failure ? { failure } : {}),
      }),
    );
  try {
    await deps.target.client.deleteAccount(account);
  } catch (error) {
    audited({ class: errorClass(error), reason: classify(error).reason });
    throw error;
  }
  audited();
  return "deleted";
}
