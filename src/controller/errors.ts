// One error policy for every controller (kube-rs `error_policy`): each error is classified once,
// here, as terminal (a condition with its own reason, no retry loop; the key runs again when the
// object or its Connector changes), throttled (wait as long as the target asked) or transient
// (exponential backoff per key).
import { NotOwnedError } from "../connectors/types.ts";
import { ScimHttpError, ScimUnavailableError } from "../connectors/scim/client.ts";
import type { Failure } from "../plan/employee.ts";

/** An error that retrying cannot fix until something changes (controller-runtime's TerminalError). */
export class TerminalError extends Error {
  readonly reason: string;
  constructor(message: string, options?: ErrorOptions & { reason?: string }) {
    super(message, options);
    this.name = "TerminalError";
    this.reason = options?.reason ?? "TerminalError";
  }
}

/** A Connector that cannot work as written (missing Secret, unsupported kind): no retry helps until it changes. */
export class ConfigurationError extends TerminalError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, { ...options, reason: "ConfigurationError" });
    this.name = "ConfigurationError";
  }
}

/** The reconcile did not finish for some accounts; status already says which. Retried with backoff. */
export class PartialFailure extends Error {
  override name = "PartialFailure";
}

/** Target error text is cut before it reaches a status field: a long SCIM `detail` would make the status patch fail. */
export const MAX_MESSAGE = 1024;

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}

export function classify(error: unknown): Failure {
  const message = messageOf(error);
  if (error instanceof NotOwnedError) return { kind: "terminal", reason: "NotOwned", message };
  if (error instanceof TerminalError) return { kind: "terminal", reason: error.reason, message };
  // SCIM 409 uniqueness (or a 409 that gives no scimType): the name is taken by an account Roster
  // may not touch, or cannot see; posting again cannot help until the Employee or Connector changes.
  if (
    error instanceof ScimHttpError &&
    error.status === 409 &&
    (error.scimType === undefined || error.scimType === "uniqueness")
  )
    return { kind: "terminal", reason: "NotOwned", message };
  if (error instanceof ScimUnavailableError && error.retryAfterMs !== undefined)
    return { kind: "throttled", reason: "Throttled", message, retryAfterMs: error.retryAfterMs };
  return { kind: "transient", reason: "TargetError", message };
}
