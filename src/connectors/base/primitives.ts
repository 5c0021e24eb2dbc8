// What a target implements so that createConnector (connector.ts) can run the TargetConnector
// contract over it: small reads and writes of one account or group, no policy.
//
// E is the target's raw account (an LDAP entry, a SCIM User resource), G a handle of one of its
// groups (the LDAP group name, a SCIM Group's id and displayName). The base decides ownership,
// idempotency, fencing, adoption, dangling members and membership inversion; primitives only say
// what the target holds and change it. Write primitives are fenced by the base and must send their
// requests right away (a transport that may hold a write back calls checkFence() before sending).
import type { AccountRef, ActualAccount, DesiredAccount } from "../types.ts";

/** A group as listed: its name and its members' account ids, as stored. */
export type GroupListing = { name: string; members: string[] };

/** What addAccount knows about the account it created. */
export type Created<E> = { id: string; entry?: E };

export interface TargetPrimitives<E, G> {
  // --- wording of logs and errors -------------------------------------------------------------
  /** Log prefix: "ldap", "scim". */
  readonly name: string;
  /** Log field that carries an account id: "dn", "id". */
  readonly idLabel: string;
  /** The target's name of the ownership attribute, for messages: "employeeNumber", "externalId". */
  readonly employeeIdAttribute: string;
  /** What several accounts are called, for the error about an employee owning more than one. */
  readonly accountsLabel: string;
  /** An account for messages, e.g. "entry uid=a,ou=people,..." or "SCIM user alice (2819c223)". */
  describe(id: string, username?: string): string;

  // --- the target --------------------------------------------------------------------------
  /** Reachable and the credentials accepted. */
  check(): Promise<void>;
  /** See TargetConnector.groupKey. */
  groupKey(name: string): string;
  close(): Promise<void>;
  /** A missing account or group (LDAP noSuchObject, SCIM 404). */
  isNotFound(err: unknown): boolean;
  /** The target refused to create something that already exists (LDAP entryAlreadyExists, SCIM 409). */
  isConflict(err: unknown): boolean;

  // --- reading accounts ----------------------------------------------------------------------
  /** The account with this id; may throw an isNotFound error or return undefined when it is missing. */
  readById(id: string): Promise<E | undefined>;
  /** Accounts that may carry employeeId; the base keeps only exact matches. */
  searchByEmployeeId(employeeId: string): Promise<E[]>;
  /** Accounts with this username, as the target compares usernames (any owner, or none). */
  searchByUsername(username: string): Promise<E[]>;
  /** Accounts whose primary email is this address, as the target compares it (any owner, or none). */
  searchByEmail(email: string): Promise<E[]>;
  /** Also look an account up by username when none is owned by employeeId (SCIM: userName). */
  readonly findsByUsername: boolean;
  /**
   * Every account in the managed scope, a page at a time to `onPage` (the next is read after it
   * returns); pageSize undefined: the target's default. Fails, rather than starting again, when
   * the listing breaks off after a page went out.
   */
  listAccounts(pageSize: number | undefined, onPage: (entries: E[]) => Promise<void>): Promise<void>;
  /**
   * listAccounts returns only accounts that carry an ownership key (SCIM: an app holds many users
   * Roster has nothing to do with): the base reads the members of the groups a listing is asked
   * about (membersOf) that it did not return by id. Absent: it returns every account in scope.
   */
  readonly listsOwnedOnly?: boolean;
  idOf(entry: E): string;
  /** The employeeIds the account carries (usually zero or one), as stored. */
  employeeIdsOf(entry: E): string[];
  toAccount(entry: E, groups: string[]): ActualAccount;
  /** Why an id is outside the managed scope (it is then never written to); undefined when inside. */
  outOfScope?(id: string): string | undefined;
  /** The id the account of `username` gets, for targets that derive it from the name (LDAP DNs). */
  expectedId?(username: string): string;
  /** A comparison key for ids: ids with equal keys are the same account (LDAP: normalized DN). */
  idKey(id: string): string;

  // --- writing accounts (fenced by the base) -------------------------------------------------
  /**
   * Creates the account with its attributes, initial password (if given) and, where the target
   * takes it at creation, its enabled state; fails with an isConflict error when it exists.
   * Resolves to what the target said about it, or undefined when it did not give the id.
   */
  addAccount(a: DesiredAccount, password?: string): Promise<Created<E> | undefined>;
  /** Throws for attribute names that the connector manages itself (before anything is read). */
  validateChanges(changes: Record<string, string[] | null>): void;
  /** Applies the changes to `entry` (read just before by the ownership guard). */
  modifyAttributes(ref: AccountRef, entry: E, changes: Record<string, string[] | null>): Promise<void>;
  /** Sets the enabled state; sends nothing when `entry` is already in that state. */
  setEnabled(ref: AccountRef, entry: E, enabled: boolean): Promise<void>;
  setPassword(ref: AccountRef, password: string): Promise<void>;
  /**
   * Writes the ownership key on `entry` (read just before, carrying none); the target refuses it
   * where it can when the key was set meanwhile (LDAP: an assertion that it is still absent).
   */
  writeOwnershipKey(id: string, entry: E, employeeId: string): Promise<void>;
  /** Deletes the account; may throw an isNotFound error when it is already gone. */
  removeAccount(ref: AccountRef): Promise<void>;

  // --- groups --------------------------------------------------------------------------------
  /** The managed groups that have the account as a member. */
  groupsOf(id: string): Promise<G[]>;
  /**
   * The names of the groups the entry itself says it is a direct member of (SCIM User `groups`),
   * when the target is known to fill that in; undefined: ask groupsOf. No I/O.
   */
  groupsFromEntry?(entry: E): string[] | undefined;
  groupName(group: G): string;
  /**
   * Every group of this name (none when there is none): targets whose group names are not unique
   * (SCIM displayName) may hold several, made by hand or by an older version.
   */
  findGroups(name: string): Promise<G[]>;
  /** Every managed group with its members (for membership inversion). */
  listGroups(pageSize: number | undefined): Promise<GroupListing[]>;
  /**
   * Adds a member to the group of this name (one picked the same way every time when there are
   * several); already a member is not an error. False, with nothing changed, when there is no such
   * group: the base then creates it, once per name however many workers add at the same time.
   */
  addMember(group: string, id: string): Promise<boolean>;
  /**
   * Adds several members in one request, as addMember does one; absent: one at a time. May throw
   * when any of them is refused (e.g. already a member): the base then adds them one by one.
   */
  addMembers?(group: string, ids: string[]): Promise<boolean>;
  /** The most members one addMembers or removeMembers request may carry (default 100). */
  maxMembersPerRequest?: number;
  /** Creates the group with its first member; fails with an isConflict error when it exists. */
  createGroup(group: string, id: string): Promise<void>;
  /** Names of groups the target was last seen to hold more than once, sorted. Absent: never. */
  duplicateGroups?(): string[];
  /** Removes a member; not a member (or the group gone) is not an error. */
  removeMember(group: G, id: string): Promise<void>;
  /**
   * Removes several members in one request; absent: one at a time. May throw when any of them
   * is refused (e.g. not a member, or the last one): the base then removes them one by one.
   */
  removeMembers?(group: G, ids: string[]): Promise<void>;
  /**
   * Whether group membership can be changed at all (SCIM only with PATCH); when it cannot,
   * deleteAccount deletes without removing memberships first. Absent: always.
   */
  canChangeMembers?(): Promise<boolean>;
}
