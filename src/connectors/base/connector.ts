// The connector base: the TargetConnector contract (types.ts) over a target's primitives
// (primitives.ts), so that what every target shares is written once.
//
// - Ownership guard: every write first reads the account and requires the exact employeeId of the
//   AccountRef (NotOwnedError otherwise; AccountNotFoundError when it is gone). Accounts outside
//   the target's managed scope are refused before they are read.
// - Fencing: the fence is checked before every write primitive (and, through fence.ts, by the
//   transport right before each write request leaves).
// - Requests: findAccount looks up by employeeId only (the username only when creating or after a
//   conflict); a create right after a findAccount that found nothing sends no second look-up, and
//   a fresh account is not read back.
// - createAccount: an account owned by the employee is returned as it is (after bringing its
//   enabled state and groups in line); when creating conflicts with an existing account, it is
//   adopted only when it is owned (a create whose answer was lost, a concurrent create), otherwise
//   NotOwnedError: an account with that name that is not Roster's is never taken over.
// - Groups: created once per name (single-flight: concurrent adds of a missing group wait for the
//   one creation); removeFromGroup removes from every group of the name (duplicates).
// - Dangling members: removeFromGroup still removes an account that no longer exists.
// - deleteAccount removes the account from its managed groups, then deletes it; missing is fine.
// - listAccounts inverts the groups' member lists, instead of asking for each account's groups.
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

  /** The ownership guard: reads the account and requires that it is owned by ref.employeeId. */
  async function owned(ref: AccountRef): Promise<E> {
    if (!ref.employeeId)
      throw new NotOwnedError(`refusing to modify ${p.describe(ref.id)}: no employeeId given`);
    const outside = p.outOfScope?.(ref.id);
    if (outside !== undefined) throw new NotOwnedError(outside);
    const entry = await read(ref.id);
    if (entry === undefined) throw new AccountNotFoundError(`${p.describe(ref.id)} does not exist`);
    if (!owns(entry, ref.employeeId)) {
      throw new NotOwnedError(`${p.describe(ref.id)} is not owned by Roster for employee ${ref.employeeId}`);
    }
    return entry;
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
  // while it is in flight go in the next request, up to the target's batch size (no timer: a
  // leaver's removal never waits for a batch to fill). A batch that fails is retried one member at
  // a time, so each caller gets its own answer and one bad member does not fail the others.
  function coalesced(
    sendBatch: ((group: string, ids: string[]) => Promise<boolean>) | undefined,
    sendOne: (group: string, id: string) => Promise<void>,
  ): (group: string, id: string) => Promise<void> {
    if (!sendBatch) return sendOne;
    type Pending = { id: string; done: (error?: unknown) => void };
    const queued = new Map<string, { group: string; items: Pending[] }>();
    const flushing = new Set<string>();
    async function flush(key: string): Promise<void> {
      flushing.add(key);
      try {
        for (let q = queued.get(key); q?.items.length; q = queued.get(key)) {
          const { group } = q;
          const batch = q.items.splice(0, p.maxMembersPerRequest ?? 100);
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

  const connector: TargetConnector = {
    groupKey: (name) => p.groupKey(name),
    check: () => p.check(),
    close: () => p.close(),

    async findAccount(employeeId, _username, recordedId) {
      // By employeeId only: the username is looked up when creating or resolving a conflict.
      let entry = await findOwned(employeeId, undefined);
      if (entry === undefined && recordedId) {
        // A search that finds nothing proves nothing (a filter that no longer matches, ACLs, a
        // service that ignores the filter): only a direct read of the recorded id does.
        const recorded = await read(recordedId);
        if (recorded !== undefined) {
          if (!owns(recorded, employeeId))
            throw new NotOwnedError(
              `${p.describe(recordedId)}, recorded as this Employee's account, no longer carries ${p.employeeIdAttribute} ${employeeId}; not taking it for gone`,
            );
          log.warn(
            { [p.idLabel]: recordedId, employeeId },
            `${p.name}: account found by its recorded id only; the lookup does not find it (check the Connector's scope and object classes)`,
          );
          entry = recorded;
        }
      }
      if (entry === undefined) {
        notFound.set(employeeId, Date.now());
        return undefined;
      }
      notFound.delete(employeeId);
      return p.toAccount(entry, await groupsOfEntry(entry));
    },

    async createAccount(a, password) {
      const found: E | undefined = foundNothingJustNow(a.employeeId)
        ? undefined
        : await findOwned(a.employeeId, a.username);
      const expected = p.expectedId?.(a.username);
      if (found !== undefined && expected !== undefined && p.idKey(p.idOf(found)) !== p.idKey(expected)) {
        throw new Error(
          `employee ${a.employeeId} already has ${p.describe(p.idOf(found))}; not creating ${expected}`,
        );
      }
      const { entry, fresh } =
        found !== undefined ? { entry: found, fresh: false } : await create(a, password);
      const ref = { id: p.idOf(entry), employeeId: a.employeeId };
      // The account has the password when this returns: an account found or adopted (perhaps
      // created by an attempt whose answer was lost) gets it now.
      if (password !== undefined && !fresh) await write(() => p.setPassword(ref, password));
      const current = entry;
      await write(() => p.setEnabled(ref, current, a.enabled));
      for (const group of a.groups) await addMember(group, ref.id);
      // A fresh account is as the target answered the create, in the groups just added: reading it
      // back would only repeat that. One that existed (adopted) is read again.
      if (fresh) return { ...p.toAccount(entry, [...new Set(a.groups)].sort()), enabled: a.enabled };
      const after = await owned(ref);
      return p.toAccount(after, await groupsOfEntry(after));
    },

    async updateAttributes(ref, changes) {
      p.validateChanges(changes);
      if (!Object.keys(changes).length) return;
      const entry = await owned(ref);
      await write(() => p.modifyAttributes(ref, entry, changes));
    },

    async setEnabled(ref, enabled) {
      const entry = await owned(ref);
      await write(() => p.setEnabled(ref, entry, enabled));
      log.info({ [p.idLabel]: ref.id, enabled }, `${p.name}: set enabled`);
    },

    async setPassword(ref, password) {
      await owned(ref);
      await write(() => p.setPassword(ref, password));
      log.info({ [p.idLabel]: ref.id }, `${p.name}: set the generated password`);
    },

    async addToGroup(group, ref) {
      await owned(ref);
      await addMember(group, ref.id);
    },

    async removeFromGroup(group, ref) {
      try {
        await owned(ref);
      } catch (err) {
        // A dangling member (the account is gone) may still be removed.
        if (!(err instanceof AccountNotFoundError)) throw err;
      }
      await removeMember(group, ref.id);
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

    async listAccounts(pageSize, onPage): Promise<ActualAccount[]> {
      // Whoever owns them: the full scan reports accounts that are not Roster's as orphans. The
      // groups are read whole first (member id -> group names), the accounts page by page.
      const membership = new Map<string, string[]>();
      for (const g of await p.listGroups(pageSize)) {
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
        }
      }
      const all: ActualAccount[] = [];
      await p.listAccounts(pageSize, async (entries) => {
        const page = entries.map((e) =>
          p.toAccount(e, [...new Set(membership.get(p.idKey(p.idOf(e))) ?? [])].sort()),
        );
        if (onPage) await onPage(page);
        else all.push(...page);
      });
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
