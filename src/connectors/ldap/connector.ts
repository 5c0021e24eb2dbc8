// The LDAP connector (OpenLDAP and Active Directory) on ldapts.
//
// Layout: person entries `<usernameAttribute>=<username>,<usersDN>` carrying employeeNumber =
// employeeId; groups `cn=<group>,<groupsDN>` (directly below groupsDN) of groupObjectClass whose
// `member` (groupOfUniqueNames: `uniqueMember`) values are changed one at a time, never replaced.
//
// Empty groups: groupOfNames/groupOfUniqueNames require a member. A group is created with its
// first member; when its last member is removed, the empty DN "" (the root DSE, which is never a
// person) is left as a placeholder member and is removed again when a real member is added.
// The placeholder is never reported as a member. Other group classes (AD `group`) may be empty.
//
// Enabled state: OpenLDAP flavor locks with ppolicy pwdAccountLockedTime = 000001010000Z
// (permanent lock) and unlocks by deleting exactly that value; an account is disabled iff it
// carries that value (a temporary lockout after failed binds is not Roster's and is left alone).
// ActiveDirectory flavor flips the ACCOUNTDISABLE bit (0x2) of userAccountControl, keeping the
// other bits, with a delete-old/add-new modification so that a concurrent change fails instead of
// being overwritten.
//
// Ownership: every write to a person entry first reads it and requires employeeNumber to equal the
// employeeId of the AccountRef exactly; with the OpenLDAP flavor the write also carries an LDAP
// assertion control (RFC 4528) on employeeNumber, so the server refuses it if the entry changed.
//
// Connection: one bound connection, re-established (connect, StartTLS, bind) before an operation
// when it was lost, and an operation that fails because the connection dropped is retried once on
// a fresh one. ldapts would silently reconnect without binding; each ldapts Client is limited to
// one socket instead, so no operation ever runs unauthenticated. The bind password is never logged.
import {
  AlreadyExistsError,
  AndFilter,
  Attribute,
  BerWriter,
  BusyError,
  Change,
  Client,
  Control,
  EqualityFilter,
  NoSuchAttributeError,
  NoSuchObjectError,
  ObjectClassViolationError,
  PresenceFilter,
  ResultCodeError,
  TypeOrValueExistsError,
  UnavailableError,
  type Entry,
  type Filter,
} from "ldapts";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import type { LdapSpecT } from "../../api/types.ts";
import {
  AccountNotFoundError,
  NotOwnedError,
  silentLogger,
  type AccountRef,
  type ActualAccount,
  type ConnectorLogger,
  type TargetConnector,
} from "../types.ts";
import { EMPLOYEE_ID_ATTRIBUTE, managedAttributeNames } from "./attributes.ts";
import { caseIgnoreKey, childDN, firstRDNValue, isDescendantOf, normalizeDN } from "./escape.ts";

/** Connector.spec.ldap with the API defaults applied. */
export type LdapSettings = LdapSpecT & {
  userObjectClasses: string[];
  groupObjectClass: string;
  usernameAttribute: string;
  flavor: "OpenLDAP" | "ActiveDirectory";
};

export function withLdapDefaults(spec: LdapSpecT): LdapSettings {
  return {
    ...spec,
    userObjectClasses: spec.userObjectClasses?.length ? spec.userObjectClasses : ["inetOrgPerson"],
    groupObjectClass: spec.groupObjectClass ?? "groupOfNames",
    usernameAttribute: spec.usernameAttribute ?? "uid",
    flavor: spec.flavor ?? "OpenLDAP",
  };
}

export type LdapConnectorOptions = {
  /** PEM CA bundle for ldaps:// and StartTLS (from caSecretRef). */
  ca?: string;
  logger?: ConnectorLogger;
  /** Called right before every add, modify, delete and modifyDN; throws (or exits) to stop it. */
  fence?: () => void;
  /** Per-operation timeout (default 30 s) and connect timeout (default 10 s). */
  timeoutMs?: number;
  connectTimeoutMs?: number;
};

export type LdapGroup = {
  name: string;
  dn: string;
  /** Member DNs as stored (placeholder left out). */
  members: string[];
};

export interface LdapConnector extends TargetConnector {
  /** Every group directly below groupsDN of groupObjectClass, with its members (paged search). */
  listGroups(pageSize?: number): Promise<LdapGroup[]>;
  /** The DN the account of `username` has or would get. */
  accountDN(username: string): string;
  groupDN(group: string): string;
}

/** The permanent ppolicy lock (OpenLDAP): pwdAccountLockedTime with this value never expires. */
export const PERMANENT_LOCK = "000001010000Z";
const LOCK_ATTRIBUTE = "pwdAccountLockedTime";
const UAC_ATTRIBUTE = "userAccountControl";
const ACCOUNTDISABLE = 0x2;
/** The placeholder member of an otherwise empty groupOfNames / groupOfUniqueNames. */
export const EMPTY_GROUP_PLACEHOLDER = "";
const PASSWORD_ATTRIBUTES = new Set(["userpassword", "unicodepwd", "authpassword"]);
const GROUP_NAMING_ATTRIBUTE = "cn";

/** LDAP assertion control (RFC 4528): the operation only runs if the entry matches the filter. */
export class AssertionControl extends Control {
  static readonly oid = "1.3.6.1.1.12";
  assertion: Filter;
  constructor(assertion: Filter) {
    super(AssertionControl.oid, { critical: true });
    this.assertion = assertion;
  }
  protected override writeControl(writer: BerWriter): void {
    const value = new BerWriter();
    this.assertion.write(value);
    writer.writeBuffer(value.buffer, 0x04);
  }
}

class ConnectionLostError extends Error {
  override name = "ConnectionLostError";
}

/** Wraps a connect function so that it opens one socket; later calls fail as a lost connection. */
function onlyOnce<F extends (...args: never[]) => unknown>(connectFn: F): F {
  let used = false;
  return ((...args: Parameters<F>) => {
    if (used) throw new ConnectionLostError("ldap: connection lost (not reconnecting this client)");
    used = true;
    return connectFn(...args);
  }) as F;
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
]);

/** Errors after which a fresh connection may succeed (not LDAP result codes, not our own errors). */
function isConnectionError(err: unknown): boolean {
  if (err instanceof UnavailableError || err instanceof BusyError || err instanceof ConnectionLostError)
    return true;
  if (!(err instanceof Error) || err instanceof ResultCodeError) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && NETWORK_CODES.has(code)) return true;
  return /connection closed|socket error|connection timeout|timed out|connection not established/i.test(
    err.message,
  );
}

function values(v: Entry[string] | undefined): string[] {
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString("base64") : String(x)));
}

const replace = (type: string, vals: string[]) =>
  new Change({ operation: "replace", modification: new Attribute({ type, values: vals }) });
const add = (type: string, vals: string[]) =>
  new Change({ operation: "add", modification: new Attribute({ type, values: vals }) });
const del = (type: string, vals: string[]) =>
  new Change({ operation: "delete", modification: new Attribute({ type, values: vals }) });

export function createLdapConnector(
  specIn: LdapSpecT,
  bindPassword: string,
  opts: LdapConnectorOptions = {},
): LdapConnector {
  const spec = withLdapDefaults(specIn);
  const log = opts.logger ?? silentLogger;
  const openLDAP = spec.flavor === "OpenLDAP";
  const memberAttribute =
    spec.groupObjectClass.toLowerCase() === "groupofuniquenames" ? "uniqueMember" : "member";
  const groupNeedsMember = ["groupofnames", "groupofuniquenames"].includes(
    spec.groupObjectClass.toLowerCase(),
  );
  const managed = managedAttributeNames(spec);
  const managedByLower = new Map(managed.map((name) => [name.toLowerCase(), name]));
  const readAttributes = openLDAP ? ["*", LOCK_ATTRIBUTE] : ["*"];
  const tls: ConnectionOptions = {
    ...(opts.ca ? { ca: [opts.ca] } : {}),
    rejectUnauthorized: !spec.insecureSkipTLSVerify,
  };
  const secureURL = spec.url.toLowerCase().startsWith("ldaps://");

  let client: Client | undefined;
  let connecting: Promise<Client> | undefined;
  let closed = false;

  const discard = (c: Client | undefined) => {
    if (!c) return;
    if (client === c) client = undefined;
    c.unbind().catch(() => {});
  };

  async function connect(): Promise<Client> {
    const c = new Client({
      url: spec.url,
      timeout: opts.timeoutMs ?? 30_000,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      ...(secureURL ? { tlsOptions: tls } : {}),
      // One socket per Client: ldapts would otherwise reconnect transparently without binding
      // (and without StartTLS), and the next operation would run anonymously.
      createConnection: onlyOnce(netConnect),
      createSecureConnection: onlyOnce(tlsConnect),
    });
    try {
      if (spec.startTLS && !secureURL) await c.startTLS({ ...tls });
      await c.bind(spec.bindDN, bindPassword);
    } catch (err) {
      await c.unbind().catch(() => {});
      throw err;
    }
    log.debug({ url: spec.url, bindDN: spec.bindDN }, "ldap: connected and bound");
    const fence = opts.fence;
    if (fence) {
      for (const method of ["add", "modify", "del", "modifyDN"] as const) {
        const original = c[method].bind(c) as (...args: unknown[]) => Promise<void>;
        (c as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          fence();
          return original(...args);
        };
      }
    }
    return c;
  }

  async function getClient(): Promise<Client> {
    if (closed) throw new Error("ldap connector is closed");
    if (client?.isBound) return client;
    discard(client);
    connecting ??= connect().finally(() => (connecting = undefined));
    client = await connecting;
    return client;
  }

  /** Runs fn on a bound client; on a lost connection reconnects and runs it once more. */
  async function withClient<T>(what: string, fn: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let c: Client | undefined;
      try {
        c = await getClient();
        const result = await fn(c);
        if (!c.isBound) throw new ConnectionLostError(`ldap: connection lost during ${what}`);
        return result;
      } catch (err) {
        if (attempt >= 2 || closed || !isConnectionError(err)) throw err;
        discard(c);
        log.info({ op: what, err: (err as Error).message }, "ldap: connection lost, reconnecting");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  const accountDN = (username: string) => childDN(spec.usernameAttribute, username, spec.usersDN);
  const groupDN = (group: string) => childDN(GROUP_NAMING_ATTRIBUTE, group, spec.groupsDN);
  const ownerAssertion = (employeeId: string) =>
    openLDAP
      ? [new AssertionControl(new EqualityFilter({ attribute: EMPLOYEE_ID_ATTRIBUTE, value: employeeId }))]
      : [];
  const accountFilter = (extra: Filter) =>
    new AndFilter({
      filters: [
        ...spec.userObjectClasses.map((oc) => new EqualityFilter({ attribute: "objectClass", value: oc })),
        extra,
      ],
    });

  function entryValue(entry: Entry, name: string): string[] {
    const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
    return key ? values(entry[key]) : [];
  }

  function isEnabled(entry: Entry): boolean {
    if (openLDAP) return !entryValue(entry, LOCK_ATTRIBUTE).includes(PERMANENT_LOCK);
    const uac = entryValue(entry, UAC_ATTRIBUTE)[0];
    return uac === undefined || (Number.parseInt(uac, 10) & ACCOUNTDISABLE) === 0;
  }

  function toAccount(entry: Entry, groups: string[]): ActualAccount {
    const attributes: Record<string, string[]> = {};
    for (const [key, v] of Object.entries(entry)) {
      const lower = key.toLowerCase();
      if (key === "dn" || PASSWORD_ATTRIBUTES.has(lower) || lower === LOCK_ATTRIBUTE.toLowerCase()) continue;
      const vals = values(v);
      if (vals.length) attributes[managedByLower.get(lower) ?? key] = vals;
    }
    const username =
      firstRDNValue(entry.dn, spec.usernameAttribute) ?? entryValue(entry, spec.usernameAttribute)[0] ?? "";
    return {
      id: entry.dn,
      employeeId: entryValue(entry, EMPLOYEE_ID_ATTRIBUTE)[0] ?? "",
      username,
      attributes,
      enabled: isEnabled(entry),
      groups,
    };
  }

  async function readEntry(c: Client, dn: string): Promise<Entry | undefined> {
    try {
      const res = await c.search(dn, { scope: "base", attributes: readAttributes });
      return res.searchEntries[0];
    } catch (err) {
      if (err instanceof NoSuchObjectError) return undefined;
      throw err;
    }
  }

  /** Reads the entry and requires that it is below usersDN and owned by ref.employeeId. */
  async function ownedEntry(c: Client, ref: AccountRef): Promise<Entry> {
    if (!ref.employeeId) throw new NotOwnedError(`refusing to modify ${ref.id}: no employeeId given`);
    if (!isDescendantOf(ref.id, spec.usersDN)) {
      throw new NotOwnedError(
        `entry ${ref.id} is outside usersDN ${spec.usersDN} and is not managed by Roster`,
      );
    }
    const entry = await readEntry(c, ref.id);
    if (!entry) throw new AccountNotFoundError(`entry ${ref.id} does not exist`);
    if (!entryValue(entry, EMPLOYEE_ID_ATTRIBUTE).includes(ref.employeeId)) {
      throw new NotOwnedError(`entry ${ref.id} is not owned by Roster for employee ${ref.employeeId}`);
    }
    return entry;
  }

  /** Names of the managed groups (directly below groupsDN) that have dn as a member. */
  async function groupsOf(c: Client, dn: string): Promise<string[]> {
    const res = await c.search(spec.groupsDN, {
      scope: "one",
      filter: new AndFilter({
        filters: [
          new EqualityFilter({ attribute: "objectClass", value: spec.groupObjectClass }),
          new EqualityFilter({ attribute: memberAttribute, value: dn }),
        ],
      }),
      attributes: ["1.1"],
    });
    return res.searchEntries
      .map((e) => firstRDNValue(e.dn, GROUP_NAMING_ATTRIBUTE))
      .filter((name): name is string => name !== undefined)
      .sort();
  }

  async function find(c: Client, employeeId: string): Promise<ActualAccount | undefined> {
    const res = await c.search(spec.usersDN, {
      scope: "sub",
      filter: accountFilter(new EqualityFilter({ attribute: EMPLOYEE_ID_ATTRIBUTE, value: employeeId })),
      attributes: readAttributes,
    });
    // The server matches employeeNumber case-insensitively; ownership is an exact match.
    const owned = res.searchEntries.filter((e) => entryValue(e, EMPLOYEE_ID_ATTRIBUTE).includes(employeeId));
    if (owned.length > 1) {
      throw new Error(
        `employee ${employeeId} owns ${owned.length} entries under ${spec.usersDN}: ${owned.map((e) => e.dn).join("; ")}`,
      );
    }
    const entry = owned[0];
    return entry ? toAccount(entry, await groupsOf(c, entry.dn)) : undefined;
  }

  async function setPassword(c: Client, dn: string, password: string): Promise<void> {
    if (openLDAP) {
      // Password Modify extended operation (RFC 3062): the server hashes with its own scheme.
      const w = new BerWriter();
      w.startSequence();
      w.writeString(dn, 0x80);
      w.writeString(password, 0x82);
      w.endSequence();
      await c.exop("1.3.6.1.4.1.4203.1.11.1", w.buffer);
    } else {
      await c.modify(
        dn,
        new Change({
          operation: "replace",
          modification: new Attribute({
            type: "unicodePwd",
            values: [Buffer.from(`"${password}"`, "utf16le")],
          }),
        }),
      );
    }
  }

  async function modifyEnabled(c: Client, ref: AccountRef, entry: Entry, enabled: boolean): Promise<void> {
    const controls = ownerAssertion(ref.employeeId);
    if (openLDAP) {
      const locked = entryValue(entry, LOCK_ATTRIBUTE).includes(PERMANENT_LOCK);
      if (enabled === !locked) return;
      try {
        if (enabled) await c.modify(ref.id, del(LOCK_ATTRIBUTE, [PERMANENT_LOCK]), controls);
        else await c.modify(ref.id, replace(LOCK_ATTRIBUTE, [PERMANENT_LOCK]), controls);
      } catch (err) {
        if (!(enabled && err instanceof NoSuchAttributeError)) throw err;
      }
      return;
    }
    const current = entryValue(entry, UAC_ATTRIBUTE)[0];
    const bits = current === undefined ? 0x200 : Number.parseInt(current, 10);
    if (Number.isNaN(bits)) throw new Error(`${ref.id}: unexpected userAccountControl ${current}`);
    const next = enabled ? bits & ~ACCOUNTDISABLE : bits | ACCOUNTDISABLE;
    if (next === bits && current !== undefined) return;
    const changes =
      current === undefined
        ? [replace(UAC_ATTRIBUTE, [String(next)])]
        : [del(UAC_ATTRIBUTE, [current]), add(UAC_ATTRIBUTE, [String(next)])];
    await c.modify(ref.id, changes, controls);
  }

  async function addMember(c: Client, group: string, dn: string): Promise<void> {
    const gdn = groupDN(group);
    let hasPlaceholder: boolean;
    try {
      hasPlaceholder = groupNeedsMember && (await c.compare(gdn, memberAttribute, EMPTY_GROUP_PLACEHOLDER));
    } catch (err) {
      if (!(err instanceof NoSuchObjectError)) throw err;
      try {
        await c.add(gdn, {
          objectClass: [spec.groupObjectClass],
          [GROUP_NAMING_ATTRIBUTE]: [group],
          [memberAttribute]: [dn],
        });
        log.info({ group: gdn }, "ldap: created group");
        return;
      } catch (addErr) {
        if (!(addErr instanceof AlreadyExistsError)) throw addErr;
        hasPlaceholder = false; // created concurrently: fall through to a plain add
      }
    }
    try {
      const changes = [add(memberAttribute, [dn])];
      if (hasPlaceholder) changes.push(del(memberAttribute, [EMPTY_GROUP_PLACEHOLDER]));
      await c.modify(gdn, changes);
    } catch (err) {
      if (err instanceof TypeOrValueExistsError) return; // already a member
      if (hasPlaceholder && err instanceof NoSuchAttributeError) {
        // The placeholder went away in between: just add.
        await c.modify(gdn, add(memberAttribute, [dn])).catch((e2) => {
          if (!(e2 instanceof TypeOrValueExistsError)) throw e2;
        });
        return;
      }
      throw err;
    }
  }

  async function removeMember(c: Client, group: string, dn: string): Promise<void> {
    const gdn = groupDN(group);
    try {
      await c.modify(gdn, del(memberAttribute, [dn]));
    } catch (err) {
      if (err instanceof NoSuchAttributeError || err instanceof NoSuchObjectError) return; // not a member
      if (!(groupNeedsMember && err instanceof ObjectClassViolationError)) throw err;
      // It was the last member: leave the placeholder in the same modification.
      try {
        await c.modify(gdn, [add(memberAttribute, [EMPTY_GROUP_PLACEHOLDER]), del(memberAttribute, [dn])]);
      } catch (e2) {
        if (e2 instanceof NoSuchAttributeError) return;
        throw e2;
      }
    }
  }

  async function listGroupsWith(c: Client, pageSize: number): Promise<LdapGroup[]> {
    const res = await c.search(spec.groupsDN, {
      scope: "one",
      filter: new EqualityFilter({ attribute: "objectClass", value: spec.groupObjectClass }),
      attributes: [memberAttribute],
      paged: { pageSize },
    });
    const groups: LdapGroup[] = [];
    for (const e of res.searchEntries) {
      const name = firstRDNValue(e.dn, GROUP_NAMING_ATTRIBUTE);
      if (name === undefined) continue;
      groups.push({
        name,
        dn: e.dn,
        members: entryValue(e, memberAttribute).filter((m) => m !== EMPTY_GROUP_PLACEHOLDER),
      });
    }
    return groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  const connector: LdapConnector = {
    accountDN,
    groupDN,
    groupKey: caseIgnoreKey,

    async check() {
      await withClient("check", async (c) => {
        await c.search(spec.usersDN, { scope: "base", attributes: ["1.1"] });
      });
    },

    async findAccount(employeeId) {
      return withClient("findAccount", (c) => find(c, employeeId));
    },

    async createAccount(a, password) {
      const dn = accountDN(a.username);
      return withClient("createAccount", async (c) => {
        const existing = await find(c, a.employeeId);
        if (existing && normalizeDN(existing.id) !== normalizeDN(dn)) {
          throw new Error(
            `employee ${a.employeeId} already has the entry ${existing.id}; not creating ${dn}`,
          );
        }
        if (!existing) {
          const attributes: Record<string, string[]> = {};
          for (const [name, vals] of Object.entries(a.attributes)) {
            const nonEmpty = vals.filter((v) => v !== "");
            if (nonEmpty.length) attributes[name] = nonEmpty;
          }
          for (const key of Object.keys(attributes)) {
            const lower = key.toLowerCase();
            if (
              lower === "objectclass" ||
              lower === EMPLOYEE_ID_ATTRIBUTE.toLowerCase() ||
              lower === spec.usernameAttribute.toLowerCase()
            ) {
              delete attributes[key];
            }
          }
          attributes.objectClass = spec.userObjectClasses;
          attributes[EMPLOYEE_ID_ATTRIBUTE] = [a.employeeId];
          attributes[spec.usernameAttribute] = [a.username];
          try {
            await c.add(dn, attributes);
            log.info({ dn, employeeId: a.employeeId }, "ldap: created account");
          } catch (err) {
            if (!(err instanceof AlreadyExistsError)) throw err;
            const entry = await readEntry(c, dn);
            const ids = entry ? entryValue(entry, EMPLOYEE_ID_ATTRIBUTE) : [];
            if (!ids.includes(a.employeeId)) {
              throw new NotOwnedError(
                `entry ${dn} exists and is not owned by Roster (it has ${ids.length ? "another" : "no"} ${EMPLOYEE_ID_ATTRIBUTE}); not adopting it`,
                { cause: err },
              );
            }
          }
        }
        const ref = { id: existing?.id ?? dn, employeeId: a.employeeId };
        const entry = await ownedEntry(c, ref);
        if (password !== undefined && !existing) await setPassword(c, ref.id, password);
        await modifyEnabled(c, ref, entry, a.enabled);
        for (const group of a.groups) await addMember(c, group, ref.id);
        const created = await find(c, a.employeeId);
        if (!created) throw new Error(`entry ${dn} vanished right after it was created`);
        return created;
      });
    },

    async updateAttributes(ref, changes) {
      const mods: Change[] = [];
      for (const [name, vals] of Object.entries(changes)) {
        const lower = name.toLowerCase();
        if (
          lower === EMPLOYEE_ID_ATTRIBUTE.toLowerCase() ||
          lower === spec.usernameAttribute.toLowerCase() ||
          lower === "objectclass"
        ) {
          throw new Error(`updateAttributes: ${name} is managed by the connector and cannot be changed`);
        }
        mods.push(replace(name, vals === null ? [] : vals.filter((v) => v !== "")));
      }
      if (!mods.length) return;
      await withClient("updateAttributes", async (c) => {
        await ownedEntry(c, ref);
        await c.modify(ref.id, mods, ownerAssertion(ref.employeeId));
      });
    },

    async setEnabled(ref, enabled) {
      await withClient("setEnabled", async (c) => {
        const entry = await ownedEntry(c, ref);
        await modifyEnabled(c, ref, entry, enabled);
        log.info({ dn: ref.id, enabled }, "ldap: set enabled");
      });
    },

    async addToGroup(group, ref) {
      await withClient("addToGroup", async (c) => {
        await ownedEntry(c, ref);
        await addMember(c, group, ref.id);
      });
    },

    async removeFromGroup(group, ref) {
      await withClient("removeFromGroup", async (c) => {
        try {
          await ownedEntry(c, ref);
        } catch (err) {
          // A dangling member (the entry is gone) may still be removed.
          if (!(err instanceof AccountNotFoundError)) throw err;
        }
        await removeMember(c, group, ref.id);
      });
    },

    async deleteAccount(ref) {
      await withClient("deleteAccount", async (c) => {
        try {
          await ownedEntry(c, ref);
        } catch (err) {
          if (err instanceof AccountNotFoundError) return;
          throw err;
        }
        for (const group of await groupsOf(c, ref.id)) await removeMember(c, group, ref.id);
        try {
          await c.del(ref.id, ownerAssertion(ref.employeeId));
          log.info({ dn: ref.id, employeeId: ref.employeeId }, "ldap: deleted account");
        } catch (err) {
          if (!(err instanceof NoSuchObjectError)) throw err;
        }
      });
    },

    async listAccounts(pageSize = 500) {
      return withClient("listAccounts", async (c) => {
        const res = await c.search(spec.usersDN, {
          scope: "sub",
          // Unowned entries too (employeeId ""): the full scan reports them as orphans.
          filter: accountFilter(new PresenceFilter({ attribute: "objectClass" })),
          attributes: readAttributes,
          paged: { pageSize },
        });
        const membership = new Map<string, string[]>();
        for (const g of await listGroupsWith(c, pageSize)) {
          for (const m of g.members) {
            let key: string;
            try {
              key = normalizeDN(m);
            } catch {
              continue;
            }
            membership.set(key, [...(membership.get(key) ?? []), g.name]);
          }
        }
        return res.searchEntries.map((e) => toAccount(e, (membership.get(normalizeDN(e.dn)) ?? []).sort()));
      });
    },

    async listGroups(pageSize = 500) {
      return withClient("listGroups", (c) => listGroupsWith(c, pageSize));
    },

    async close() {
      closed = true;
      const c = client ?? (await connecting?.catch(() => undefined));
      client = undefined;
      await c?.unbind().catch(() => {});
    },
  };
  return connector;
}
