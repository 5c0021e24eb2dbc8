// The target-independent interface between the controller and a target system (LDAP, SCIM).
//
// Contract for every implementation:
// - Ownership: a connector only ever writes to accounts that carry the employeeId being handled
//   (LDAP employeeNumber, SCIM externalId, compared as exact strings). Every write takes an
//   AccountRef ({id, employeeId}) and fails with NotOwnedError when the target's entry carries a
//   different or no employeeId. An ActualAccount is an AccountRef, so pass what findAccount or
//   createAccount returned.
// - Reads never guess: a failed, partial or unauthenticated read throws; it is never reported as
//   "no account" or as an empty list.
// - Writes are idempotent where the target allows it (adding a member twice, removing a missing
//   member, deleting a deleted account succeed), so the controller can retry with backoff.
// - A dropped connection is re-established once per operation; other errors are thrown.

/** What an account should look like, computed from an Employee and the Connector. */
export type DesiredAccount = {
  employeeId: string;
  username: string;
  /** Target attribute -> values (rendered templates); empty values are already omitted. */
  attributes: Record<string, string[]>;
  enabled: boolean;
  /** Names of the managed groups the account should be in. */
  groups: string[];
};

/** Identifies an account the controller handles: the target's id and the employee that owns it. */
export type AccountRef = {
  /** LDAP DN or SCIM id: an opaque string. */
  id: string;
  employeeId: string;
};

/** An account as read from the target. */
export type ActualAccount = AccountRef & {
  username: string;
  /** The entry's attributes (passwords and lock state left out); names use the managed spelling. */
  attributes: Record<string, string[]>;
  enabled: boolean;
  /** Names of the managed groups it is in. */
  groups: string[];
};

/** Takes one page of a listing; the next page is read after it returns. */
export type AccountPageHandler = (page: ActualAccount[]) => void | Promise<void>;

export interface TargetConnector {
  /** Checks that the target is reachable and the credentials are accepted (Connector Ready). */
  check(): Promise<void>;
  /**
   * The account owned by employeeId (exact match), or undefined; throws when several are found.
   * With `recordedId` (the id status recorded), undefined means a direct read of that id answered
   * that it does not exist (LDAP noSuchObject, SCIM 404): a search that finds nothing is not enough.
   */
  findAccount(employeeId: string, username: string, recordedId?: string): Promise<ActualAccount | undefined>;
  /**
   * Creates the account (with its groups, enabled state and, if given, its initial password) and
   * returns it as read back. Fails with NotOwnedError when an account with that name exists and
   * belongs to someone else; returns the existing account when it already belongs to employeeId.
   * When it returns, the account has `password` (an existing account gets it too).
   */
  createAccount(a: DesiredAccount, password?: string): Promise<ActualAccount>;
  /** Replaces the given attributes; null deletes an attribute. */
  updateAttributes(ref: AccountRef, changes: Record<string, string[] | null>): Promise<void>;
  setEnabled(ref: AccountRef, enabled: boolean): Promise<void>;
  /**
   * Sets the account's password (a generated one whose setting failed after the account was
   * created). The password is never put into an error or a log line.
   */
  setPassword(ref: AccountRef, password: string): Promise<void>;
  /**
   * Accounts in the managed scope that carry no ownership key and whose username (`Username`) or
   * primary email (`Email`) equals `value` as the target compares it: candidates for adoption.
   */
  findUnowned(match: "Username" | "Email", value: string): Promise<ActualAccount[]>;
  /**
   * Links an account made before Roster to employeeId: writes the ownership key, refused
   * (NotOwnedError) when the account carries one by then. Returns the account as read back.
   */
  linkAccount(id: string, employeeId: string): Promise<ActualAccount>;
  /** Adds the account to a managed group, creating the group when missing. */
  addToGroup(group: string, ref: AccountRef): Promise<void>;
  removeFromGroup(group: string, ref: AccountRef): Promise<void>;
  /**
   * Removes a member Roster did not add (an account without an ownership key, in the managed
   * scope) from every group of that name: what an Authoritative GroupRule does to hand-added
   * members. Writes to the groups only; refused (NotOwnedError) for an account outside the
   * managed scope or one that carries an ownership key (its Employee's reconcile owns its groups).
   */
  removeUnownedMember(group: string, id: string): Promise<void>;
  /** Removes the account from its managed groups and deletes it; a missing account is not an error. */
  deleteAccount(ref: AccountRef): Promise<void>;
  /**
   * The key under which the target identifies a group: names with equal keys are the same group
   * (LDAP: case and insignificant spaces are ignored). Compare desired and actual groups by key.
   */
  groupKey(name: string): string;
  /**
   * Every account in the managed scope, read in pages (full scans, drift and orphans). Entries
   * that carry no employeeId have employeeId "": Roster never writes to them. With `onPage`,
   * each page goes to it as it is read (once, in order; a listing interrupted after a page has
   * gone out fails instead of starting again) and the result is empty: a full scan of a large
   * directory never holds it whole. `membersOf`: groups whose members must all be listed (the
   * full scan names those Roster hands out, to see who was added by hand); a target whose listing
   * leaves out accounts without an ownership key (SCIM) reads those members one by one (one that
   * no longer exists, a dangling member, is left out).
   */
  listAccounts(
    pageSize?: number,
    onPage?: AccountPageHandler,
    membersOf?: readonly string[],
  ): Promise<ActualAccount[]>;
  /**
   * Names of managed groups the target holds more than once (SCIM displayName is not unique), as
   * last seen by a listing or a lookup; sorted, no I/O. Roster adds to one of them and removes
   * from all of them.
   */
  duplicateGroups(): string[];
  close(): Promise<void>;
}

/** The target holds an entry the operator must not touch (another or no employeeId). */
export class NotOwnedError extends Error {
  override name = "NotOwnedError";
}

/** The account an AccountRef points to does not exist (any more). */
export class AccountNotFoundError extends Error {
  override name = "AccountNotFoundError";
}

/** The minimal logger the connectors use (pino's Logger fits). */
export type ConnectorLogger = {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
};

export const silentLogger: ConnectorLogger = { debug() {}, info() {}, warn() {} };
