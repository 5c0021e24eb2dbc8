// The connector base: the TargetConnector contract (types.ts) over a target's primitives
// (primitives.ts), so that what every target shares is written once.
//
// - Ownership guard: every write first reads the account and requires the exact employeeId of the
//   AccountRef (NotOwnedError otherwise; AccountNotFoundError when it is gone). Accounts outside
//   the target's managed scope are refused before they are read. A group membership write takes
//   a proof of ownership at most a second old instead of reading again (see `proofs` below).
// - Fencing: the fence is checked before every write primitive (and, through fence.ts, by the
//   transport right before each write request leaves).
// - Requests: findAccount looks up by employeeId only (the username only when creating or after a
//   conflict), and reads the recorded account's groups at the same time where the entry does not
//   list them; a create right after a findAccount that found nothing sends no second look-up, and
//   a fresh account is not read back.
// - createAccount: an account owned by the employee is returned as it is (after bringing its
//   enabled state and groups in line); when creating conflicts with an existing account, it is
//   adopted only when it is owned (a create whose answer was lost, a concurrent create), otherwise
//   NotOwnedError: an account with that name that is not Roster's is never taken over.
// - Groups: created once per name (single-flight: concurrent adds of a missing group wait for the
//   one creation); removeFromGroup removes from every group of the name (duplicates).
// - Dangling members: removeFromGroup still removes an account that no longer exists.
// - deleteAccount removes the account from its managed groups, then deletes it; missing is fine.
// - listAccounts inverts the groups' member lists, instead of asking for each account's groups;
//   where the target lists only owned accounts, it reads by id the members of the groups asked
//   about that the listing left out (hand-added ones), skipping dangling ones.
// - Secrets: no error leaves a method with a secret of the connector (its scrubber: bind password,
//   token) or the initial password given to createAccount in it (base/scrub.ts).
import { AccountNotFoundError, NotOwnedError, silentLogger } from "../types.ts";
import type {
  AccountRef,
  ActualAccount,
  ConnectorLogger,
  DesiredAccount,
  TargetConnector,
} from "../types.ts";
import { fencedWrite, type Fence } from "./fence.ts";
import type { Created, TargetPrimitives } from "./primitives.ts";
import { scrubberFor, type Scrubber } from "./scrub.ts";

/**
 * How long adds that follow a member request to the same group wait for more adds to join them.
 * Joiners do not notice 10 ms; a target that answers in a few ms would otherwise get nearly one
 * request per joiner during a bulk load.
 */
export const ADD_LINGER_MS = 10;

export type ConnectorBaseOptions = {
  logger?: ConnectorLogger;
  /** Called right before every write; throws (or exits) to stop it. */
  fence?: Fence;
  /**
   * Scrubs the connector's secrets out of every error a method throws (default: none, but the
   * initial password of createAccount is always scrubbed). Pass the logger already scrubbed.
   */
  scrubber?: Scrubber;
};

export function createConnector<E, G>(
  p: TargetPrimitives<E, G>,
  options: ConnectorBaseOptions = {},
): TargetConnector {
  const log = options.logger ?? silentLogger;
  const fence = options.fence ?? (() => {});
  const write = <T>(fn: () => Promise<T>) => fencedWrite(fence, fn);

  async function read(id: string): Promise<E | undefined> {
    try {
      return await p.readById(id);
    } catch (err) {
      if (p.isNotFound(err)) return undefined;
      throw err;
    }
  }

  const owns = (entry: E, employeeId: string) => p.employeeIdsOf(entry).includes(employeeId);

  // Proofs of ownership: accounts this connector read (or created, or linked) and saw carrying
  // the employeeId, with when. A group membership write needs no more than such a proof, and the
  // guard's re-read never gave more: it was not atomic with the write either (a group modify
  // cannot assert anything about the member's entry), so an account could always change hands
  // between the read and the write. A proof at most PROOF_FRESH_MS old widens that window by as
  // much and saves a read per group: a leaver's group removals right after the disable's read send
  // none. Writes to the entry itself still read it first, as they build on its current values
  // (and LDAP's carry an assertion on the key). A failed write, a delete or a link drops the proof.
  const PROOF_FRESH_MS = 1_000;
  const proofs = new Map<string, { employeeId: string; at: number }>();
  const proofKey = (id: string) => {
    try {
      return p.idKey(id);
    } catch {
      return id; // not an id of this target: the read will say so
    }
  };
  function prove(id: string, employeeId: string, at: number): void {
    const key = proofKey(id);
    proofs.delete(key); // to the end: the map stays (roughly) in the order proofs were taken
    proofs.set(key, { employeeId, at });
    const now = performance.now();
    for (const [k, proof] of proofs) {
      if (now - proof.at < PROOF_FRESH_MS) break;
      proofs.delete(k);
    }
  }
  /** Drops the proofs of the account and of every account proved for its employeeId. */
  function forget(ref: { id?: string | undefined; employeeId?: string | undefined }): void {
    if (ref.id !== undefined) proofs.delete(proofKey(ref.id));
    if (ref.employeeId)
      for (const [k, proof] of proofs) if (proof.employeeId === ref.employeeId) proofs.delete(k);
  }
  function proven(ref: AccountRef): boolean {
    const proof = proofs.get(proofKey(ref.id));
    return (
      proof !== undefined &&
      proof.employeeId === ref.employeeId &&
      performance.now() - proof.at < PROOF_FRESH_MS
    );
  }
  /** Runs a write on the account; when it fails, the account may not be as last seen. */
  async function forgetting<T>(ref: Partial<AccountRef>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      forget(ref);
      throw err;
    }
  }

  function refuseUnguarded(ref: AccountRef): void {
    if (!ref.employeeId)
      throw new NotOwnedError(`refusing to modify ${p.describe(ref.id)}: no employeeId given`);
    const outside = p.outOfScope?.(ref.id);
    if (outside !== undefined) throw new NotOwnedError(outside);
  }

  /** The ownership guard: reads the account and requires that it is owned by ref.employeeId. */
  async function owned(ref: AccountRef): Promise<E> {
    refuseUnguarded(ref);
    const at = performance.now();
    const entry = await forgetting(ref, () => read(ref.id));
    if (entry === undefined) {
      forget(ref);
      throw new AccountNotFoundError(`${p.describe(ref.id)} does not exist`);
    }
    if (!owns(entry, ref.employeeId)) {
      forget(ref);
      throw new NotOwnedError(`${p.describe(ref.id)} is not owned by Roster for employee ${ref.employeeId}`);
    }
    prove(ref.id, ref.employeeId, at);
    return entry;
  }

  /** The guard of a group membership write: a fresh proof of ownership, else the read. */
  async function ownedForMembership(ref: AccountRef): Promise<void> {
    refuseUnguarded(ref);
    if (!proven(ref)) await owned(ref);
  }

  /**
   * The account owned by employeeId (exact match): by employeeId, then (if the target does, and
   * only when creating or resolving a conflict) by username.
   */
  async function findOwned(employeeId: string, username: string | undefined): Promise<E | undefined> {
    const lookups = [() => p.searchByEmployeeId(employeeId)];
    if (p.findsByUsername && username) lookups.push(() => p.searchByUsername(username));
    for (const lookup of lookups) {
      const found = (await lookup()).filter((e) => owns(e, employeeId));
      if (found.length > 1) {
        throw new Error(
          `employee ${employeeId} owns ${found.length} ${p.accountsLabel}: ${found.map(p.idOf).join("; ")}`,
        );
      }
      if (found.length === 1) return found[0];
    }
    return undefined;
  }

  /** findAccount's look-up: by employeeId, else (to tell gone from not found) the recorded id. */
  async function findOwnedOrRecorded(
    employeeId: string,
    recordedId: string | undefined,
  ): Promise<E | undefined> {
    // By employeeId only: the username is looked up when creating or resolving a conflict.
    const entry = await findOwned(employeeId, undefined);
    if (entry !== undefined || !recordedId) return entry;
    // A search that finds nothing proves nothing (a filter that no longer matches, ACLs, a
    // service that ignores the filter): only a direct read of the recorded id does.
    const recorded = await read(recordedId);
    if (recorded === undefined) return undefined;
    if (!owns(recorded, employeeId))
      throw new NotOwnedError(
        `${p.describe(recordedId)}, recorded as this Employee's account, no longer carries ${p.employeeIdAttribute} ${employeeId}; not taking it for gone`,
      );
    log.warn(
      { [p.idLabel]: recordedId, employeeId },
      `${p.name}: account found by its recorded id only; the lookup does not find it (check the Connector's scope and object classes)`,
    );
    return recorded;
  }

  async function groupNames(id: string): Promise<string[]> {
    return [...new Set((await p.groupsOf(id)).map((g) => p.groupName(g)))].sort();
  }

  /** The account's groups: as the entry itself lists them when the target says, else looked up. */
  async function groupsOfEntry(entry: E): Promise<string[]> {
    return p.groupsFromEntry?.(entry) ?? (await groupNames(p.idOf(entry)));
  }

  // A reconcile reads (findAccount) and then creates: a create right after a read that found
  // nothing needs no second look-up; a conflicting POST says if the account exists after all.
  const NOT_FOUND_FRESH_MS = 30_000;
  const notFound = new Map<string, number>();
  const foundNothingJustNow = (employeeId: string) => {
    const at = notFound.get(employeeId);
    notFound.delete(employeeId);
    return at !== undefined && Date.now() - at < NOT_FOUND_FRESH_MS;
  };

  // One group per name: the first add to a missing group creates it; adds of the same name in the
  // meantime wait for that creation and then add to the group it made (targets whose group names
  // are not unique, SCIM displayName, would otherwise get one group per concurrent worker).
  const creating = new Map<string, Promise<void>>();
  /** Group key -> how many creations of it have finished (a look-up older than one may miss it). */
  const creations = new Map<string, number>();
  const MAX_GROUP_ATTEMPTS = 5;

  // Changes to one group's members are sent together: the first goes at once, those that arrive
  // while it is in flight go in the next request, up to the target's batch size. Removals never
  // wait for a batch to fill (a leaver's access goes at once); adds that follow a request still in
  // flight wait `lingerMs` more, so that a fast target does not get one request per joiner under
  // load. A batch that fails is retried one member at a time, so each caller gets its own answer
  // and one bad member does not fail the others.
  function coalesced(
    sendBatch: ((group: string, ids: string[]) => Promise<boolean>) | undefined,
    sendOne: (group: string, id: string) => Promise<void>,
    lingerMs = 0,
  ): (group: string, id: string) => Promise<void> {
    if (!sendBatch) return sendOne;
    type Pending = { id: string; done: (error?: unknown) => void };
    const queued = new Map<string, { group: string; items: Pending[] }>();
    const flushing = new Set<string>();
    const maxBatch = p.maxMembersPerRequest ?? 100;
    async function flush(key: string): Promise<void> {
      flushing.add(key);
      try {
        for (let q = queued.get(key), first = true; q?.items.length; q = queued.get(key), first = false) {
          if (!first && lingerMs > 0 && q.items.length < maxBatch) {
            await new Promise((resolve) => setTimeout(resolve, lingerMs));
          }
          const { group } = q;
          const batch = q.items.splice(0, maxBatch);
          if (!q.items.length) queued.delete(key);
          const ids = [...new Set(batch.map((a) => a.id))];
          let sent = false;
          if (ids.length > 1) {
            try {
              sent = await sendBatch!(group, ids);
            } catch (err) {
              log.debug({ group, error: (err as Error).message }, `${p.name}: batch refused; one by one`);
            }
          }
          if (sent) for (const a of batch) a.done();
          else
            await Promise.all(
              batch.map((a) =>
                sendOne(group, a.id).then(
                  () => a.done(),
                  (err: unknown) => a.done(err ?? new Error(`${p.name}: member change failed`)),
                ),
              ),
            );
        }
      } finally {
        flushing.delete(key);
      }
    }
    return (group, id) => {
      const key = p.groupKey(group);
      return new Promise<void>((resolve, reject) => {
        let q = queued.get(key);
        if (!q) queued.set(key, (q = { group, items: [] }));
        q.items.push({ id, done: (error) => (error === undefined ? resolve() : reject(error)) });
        if (!flushing.has(key)) void flush(key);
      });
    };
  }

  const addMember = coalesced(
    p.addMembers &&
      (async (group, ids) =>
        !creating.has(p.groupKey(group)) && (await write(() => p.addMembers!(group, ids)))),
    addMemberAlone,
    ADD_LINGER_MS,
  );

  // Out of every group of that name: duplicates (made by hand or by an older version) must not
  // keep access that Roster removes, nor make the removal fail.
  const removeMember = coalesced(
    p.removeMembers &&
      (async (group, ids) => {
        for (const found of await p.findGroups(group)) await write(() => p.removeMembers!(found, ids));
        return true;
      }),
    async (group, id) => {
      for (const found of await p.findGroups(group)) await write(() => p.removeMember(found, id));
    },
  );

  async function addMemberAlone(group: string, id: string): Promise<void> {
    const key = p.groupKey(group);
    for (let attempt = 1; ; attempt++) {
      await creating.get(key);
      const seen = creations.get(key) ?? 0;
      if (await write(() => p.addMember(group, id))) return;
      // Created by another worker while this one looked: add to that group instead.
      if (creating.has(key) || (creations.get(key) ?? 0) !== seen) continue;
      if (attempt >= MAX_GROUP_ATTEMPTS)
        throw new Error(`${p.name}: group ${JSON.stringify(group)} is neither found nor created`);
      let done!: () => void;
      creating.set(key, new Promise<void>((resolve) => (done = resolve)));
      try {
        await write(() => p.createGroup(group, id));
        log.info({ group }, `${p.name}: created group`);
        return;
      } catch (err) {
        if (!p.isConflict(err)) throw err; // exists after all (made elsewhere): add to it
      } finally {
        creations.set(key, seen + 1);
        creating.delete(key);
        done();
      }
    }
  }

  /** After a create conflicted: the existing account if it is owned, NotOwnedError if it is not. */
  async function adopt(employeeId: string, username: string, conflict: unknown): Promise<E> {
    // By employeeId, then one look-up by username (an owned account among those first).
    const existing =
      (await findOwned(employeeId, undefined)) ??
      (await p.searchByUsername(username)).sort(
        (a, b) => Number(owns(b, employeeId)) - Number(owns(a, employeeId)),
      )[0];
    if (existing === undefined) throw conflict;
    const ids = p.employeeIdsOf(existing);
    if (!ids.includes(employeeId)) {
      throw new NotOwnedError(
        `${p.describe(p.idOf(existing), username)} exists and is not owned by Roster (it has ${ids.length ? "another" : "no"} ${p.employeeIdAttribute}); not adopting it`,
        { cause: conflict },
      );
    }
    log.info({ [p.idLabel]: p.idOf(existing), employeeId }, `${p.name}: adopting owned account`);
    return existing;
  }

  /**
   * Creates the account and reads it back; adopts or refuses an existing one on a conflict.
   * `fresh`: created now (not adopted).
   */
  async function create(
    a: DesiredAccount,
    password: string | undefined,
  ): Promise<{ entry: E; fresh: boolean }> {
    let created: Created<E> | undefined;
    try {
      created = await write(() => p.addAccount(a, password));
    } catch (err) {
      if (!p.isConflict(err)) throw err;
      return { entry: await adopt(a.employeeId, a.username, err), fresh: false };
    }
    log.info({ [p.idLabel]: created?.id, employeeId: a.employeeId }, `${p.name}: created account`);
    if (created?.entry !== undefined) return { entry: created.entry, fresh: true };
    const entry =
      created !== undefined
        ? await owned({ id: created.id, employeeId: a.employeeId })
        : await findOwned(a.employeeId, a.username);
    if (entry === undefined)
      throw new Error(`${p.name}: account ${a.username} was created but cannot be found`);
    return { entry, fresh: true };
  }

  /** TargetConnector.createAccount (see the top of this file). */
  async function createAccount(a: DesiredAccount, password: string | undefined): Promise<ActualAccount> {
    const at = performance.now();
    const found: E | undefined = foundNothingJustNow(a.employeeId)
      ? undefined
      : await findOwned(a.employeeId, a.username);
    const expected = p.expectedId?.(a.username);
    if (found !== undefined && expected !== undefined && p.idKey(p.idOf(found)) !== p.idKey(expected)) {
      throw new Error(
        `employee ${a.employeeId} already has ${p.describe(p.idOf(found))}; not creating ${expected}`,
      );
    }
    const { entry, fresh } = found !== undefined ? { entry: found, fresh: false } : await create(a, password);
    const ref = { id: p.idOf(entry), employeeId: a.employeeId };
    // Found owned, adopted as owned, or made now with the key.
    prove(ref.id, a.employeeId, at);
    // The account has the password when this returns: an account found or adopted (perhaps
    // created by an attempt whose answer was lost) gets it now.
    if (password !== undefined && !fresh) await write(() => p.setPassword(ref, password));
    const current = entry;
    await write(() => p.setEnabled(ref, current, a.enabled));
    // Different groups: the adds go together (each is batched with other people's adds to it);
    // all have answered before this returns, so a failure leaves nothing running.
    const added = await Promise.allSettled([...new Set(a.groups)].map((group) => addMember(group, ref.id)));
    const refused = added.find((r) => r.status === "rejected");
    if (refused) throw refused.reason;
    // A fresh account is as the target answered the create, in the groups just added: reading it
    // back would only repeat that. One that existed (adopted) is read again.
    if (fresh) return { ...p.toAccount(entry, [...new Set(a.groups)].sort()), enabled: a.enabled };
    const after = await owned(ref);
    return p.toAccount(after, await groupsOfEntry(after));
  }

  const connector: TargetConnector = {
    groupKey: (name) => p.groupKey(name),
    check: () => p.check(),
    close: () => p.close(),

    async findAccount(employeeId, _username, recordedId) {
      const at = performance.now();
      // A target whose entry does not list its groups (LDAP) reads the recorded account's groups
      // alongside the look-up: one round trip, not two, while it is still that account.
      const recordedGroups =
        recordedId && !p.groupsFromEntry
          ? groupNames(recordedId).then(
              (groups) => ({ groups }),
              (error: unknown) => ({ error }),
            )
          : undefined;
      try {
        const entry = await findOwnedOrRecorded(employeeId, recordedId);
        if (entry === undefined) {
          notFound.set(employeeId, Date.now());
          forget({ id: recordedId, employeeId });
          return undefined;
        }
        notFound.delete(employeeId);
        let groups: string[];
        if (recordedGroups && proofKey(p.idOf(entry)) === proofKey(recordedId!)) {
          const read = await recordedGroups;
          if ("error" in read) throw read.error;
          groups = read.groups;
        } else groups = await groupsOfEntry(entry);
        prove(p.idOf(entry), employeeId, at);
        return p.toAccount(entry, groups);
      } catch (err) {
        forget({ id: recordedId, employeeId });
        throw err;
      }
    },

    createAccount: (a, password) =>
      forgetting({ employeeId: a.employeeId }, () => createAccount(a, password)),

    async updateAttributes(ref, changes) {
      p.validateChanges(changes);
      if (!Object.keys(changes).length) return;
      await forgetting(ref, async () => {
        const entry = await owned(ref);
        await write(() => p.modifyAttributes(ref, entry, changes));
      });
    },

    async setEnabled(ref, enabled) {
      await forgetting(ref, async () => {
        const entry = await owned(ref);
        await write(() => p.setEnabled(ref, entry, enabled));
      });
      log.info({ [p.idLabel]: ref.id, enabled }, `${p.name}: set enabled`);
    },

    async setPassword(ref, password) {
      await forgetting(ref, async () => {
        await owned(ref);
        await write(() => p.setPassword(ref, password));
      });
      log.info({ [p.idLabel]: ref.id }, `${p.name}: set the generated password`);
    },

    async addToGroup(group, ref) {
      await forgetting(ref, async () => {
        await ownedForMembership(ref);
        await addMember(group, ref.id);
      });
    },

    async removeFromGroup(group, ref) {
      await forgetting(ref, async () => {
        try {
          await ownedForMembership(ref);
        } catch (err) {
          // A dangling member (the account is gone) may still be removed.
          if (!(err instanceof AccountNotFoundError)) throw err;
        }
        await removeMember(group, ref.id);
      });
    },

    async removeUnownedMember(group, id) {
      const outside = p.outOfScope?.(id);
      if (outside !== undefined) throw new NotOwnedError(outside);
      const entry = await read(id);
      if (entry !== undefined && p.employeeIdsOf(entry).length > 0)
        throw new NotOwnedError(
          `${p.describe(id)} carries an ownership key: not removing it as a hand-added member`,
        );
      await removeMember(group, id);
      log.info({ [p.idLabel]: id, group }, `${p.name}: removed a member Roster did not add`);
    },

    async deleteAccount(ref) {
      try {
        await owned(ref);
      } catch (err) {
        if (err instanceof AccountNotFoundError) return;
        throw err;
      } finally {
        forget(ref); // whatever comes of it, the account is not to be taken for as it was
      }
      if ((await p.canChangeMembers?.()) ?? true) {
        for (const group of await p.groupsOf(ref.id)) await write(() => p.removeMember(group, ref.id));
      }
      try {
        await write(() => p.removeAccount(ref));
        log.info({ [p.idLabel]: ref.id, employeeId: ref.employeeId }, `${p.name}: deleted account`);
      } catch (err) {
        if (!p.isNotFound(err)) throw err;
      }
    },

    async findUnowned(match, value) {
      const found = match === "Username" ? await p.searchByUsername(value) : await p.searchByEmail(value);
      const unowned = found.filter((e) => p.employeeIdsOf(e).length === 0 && !p.outOfScope?.(p.idOf(e)));
      return Promise.all(unowned.map(async (e) => p.toAccount(e, await groupsOfEntry(e))));
    },

    async linkAccount(id, employeeId) {
      const outside = p.outOfScope?.(id);
      if (outside !== undefined) throw new NotOwnedError(outside);
      forget({ id }); // its owner changes here: proved again by the read at the end
      const entry = await read(id);
      if (entry === undefined) throw new AccountNotFoundError(`${p.describe(id)} does not exist`);
      const keys = p.employeeIdsOf(entry);
      if (keys.length > 0 && !keys.includes(employeeId))
        throw new NotOwnedError(
          `${p.describe(id)} carries ${p.employeeIdAttribute} ${keys.join(", ")} by now; not linking it to ${employeeId}`,
        );
      if (keys.length === 0) await write(() => p.writeOwnershipKey(id, entry, employeeId));
      log.info({ [p.idLabel]: id, employeeId }, `${p.name}: linked an existing account`);
      const linked = await owned({ id, employeeId });
      return p.toAccount(linked, await groupsOfEntry(linked));
    },

    async listAccounts(pageSize, onPage, membersOf): Promise<ActualAccount[]> {
      // Whoever owns them: the full scan reports accounts that are not Roster's as orphans. The
      // groups are read whole first (member id -> group names), the accounts page by page.
      const membership = new Map<string, string[]>();
      const asked =
        p.listsOwnedOnly && membersOf?.length ? new Set(membersOf.map((g) => p.groupKey(g))) : undefined;
      /** Key -> id of the members of the groups asked about that the listing has not returned (yet). */
      const unlisted = new Map<string, string>();
      for (const g of await p.listGroups(pageSize)) {
        const wanted = asked?.has(p.groupKey(g.name));
        for (const member of g.members) {
          let key: string;
          try {
            key = p.idKey(member);
          } catch {
            continue; // a member value that is no id of this target (e.g. a malformed DN)
          }
          const names = membership.get(key);
          if (names) names.push(g.name);
          else membership.set(key, [g.name]);
          if (wanted) unlisted.set(key, member);
        }
      }
      const all: ActualAccount[] = [];
      const deliver = async (entries: E[]) => {
        const page = entries.map((e) => {
          const key = p.idKey(p.idOf(e));
          unlisted.delete(key);
          return p.toAccount(e, [...new Set(membership.get(key) ?? [])].sort());
        });
        if (onPage) await onPage(page);
        else all.push(...page);
      };
      await p.listAccounts(pageSize, deliver);
      // One read per member the listing left out (added by hand, without a key): what it costs
      // grows with those, not with the accounts of the target. A dangling one reads as missing.
      const found: E[] = [];
      for (const id of [...unlisted.values()]) {
        const entry = await read(id);
        if (entry !== undefined) found.push(entry);
        if (found.length >= (pageSize ?? 100)) await deliver(found.splice(0));
      }
      if (found.length) await deliver(found);
      return all;
    },

    duplicateGroups: () => p.duplicateGroups?.() ?? [],
  };
  return withoutSecrets(connector, options.scrubber ?? scrubberFor([]));
}

/** The connector with every method guarded by `scrubber`, createAccount also for its password. */
function withoutSecrets(c: TargetConnector, scrubber: Scrubber): TargetConnector {
  const guarded = Object.fromEntries(
    Object.entries(c).map(([name, fn]) => [name, scrubber.guard(fn as (...args: unknown[]) => unknown)]),
  ) as unknown as TargetConnector;
  return {
    ...guarded,
    createAccount: (a, password) => scrubber.with([password]).guard(c.createAccount)(a, password),
    setPassword: (ref, password) => scrubber.with([password]).guard(c.setPassword)(ref, password),
  };
}
