// Person entries: reading them as accounts, their enabled state by flavor, passwords, and the
// assertion that guards every write to one.
//
// Enabled state: OpenLDAP flavor locks with ppolicy pwdAccountLockedTime = 000001010000Z
// (permanent lock) and unlocks by deleting exactly that value; an account is disabled iff it
// carries that value (a temporary lockout after failed binds is not Roster's and is left alone).
// ActiveDirectory flavor sets userAccountControl to NORMAL_ACCOUNT (0x200), plus ACCOUNTDISABLE
// (0x2) when disabled, keeping other bits an admin set (DONT_EXPIRE_PASSWD, SMARTCARD_REQUIRED...)
// but never PASSWD_NOTREQD (0x20), which AD gives users added over LDAP (0x222): with it an
// enabled account may have an empty password. The modification is delete-old/add-new, so that a
// concurrent change fails instead of being overwritten.
//
// AD creates: `CN=<cn>,<usersDN>` (cn from the mapping; when that name is taken by another entry,
// `CN=<cn> (<username>)`), created disabled (0x202) with its password in the same add, so it never
// exists without one: the generated password, or with `credentials: None` a long random one that
// is never stored or shown (only single sign-on or a reset flow lets the person in). AD takes
// passwords (unicodePwd) only over TLS: ldaps:// or StartTLS, refused here before anything is sent.
//
// Ownership: with the OpenLDAP flavor every write to a person entry carries an LDAP assertion
// control (RFC 4528) on employeeNumber, so the server refuses it if the entry changed after the
// ownership guard read it.
import { randomBytes } from "node:crypto";
import {
  AlreadyExistsError,
  AndFilter,
  Attribute,
  BerWriter,
  Change,
  Control,
  EqualityFilter,
  NoSuchAttributeError,
  NoSuchObjectError,
  type Client,
  type Entry,
  type Filter,
} from "ldapts";
import { TerminalError } from "../../controller/errors.ts";
import type { AccountRef, ActualAccount } from "../types.ts";
import { EMPLOYEE_ID_ATTRIBUTE } from "./attributes.ts";
import { firstRDNValue } from "./escape.ts";
import { samAccountNameProblem, type LdapLayout } from "./settings.ts";

/** The permanent ppolicy lock (OpenLDAP): pwdAccountLockedTime with this value never expires. */
export const PERMANENT_LOCK = "000001010000Z";
const LOCK_ATTRIBUTE = "pwdAccountLockedTime";
const UAC_ATTRIBUTE = "userAccountControl";
const ACCOUNTDISABLE = 0x2;
const PASSWD_NOTREQD = 0x20;
const NORMAL_ACCOUNT = 0x200;
const PASSWORD_ATTRIBUTES = new Set(["userpassword", "unicodepwd", "authpassword"]);
/** What an AD account shows besides the managed attributes (userAccountControl shows as enabled). */
const AD_ACCOUNT_ATTRIBUTES = new Set(["objectclass", "cn", "userprincipalname", "mail"]);

/** userAccountControl for an AD user: NORMAL_ACCOUNT, ACCOUNTDISABLE as asked, never PASSWD_NOTREQD. */
export function userAccountControl(current: number, enabled: boolean): number {
  const bits = (current | NORMAL_ACCOUNT) & ~PASSWD_NOTREQD;
  return enabled ? bits & ~ACCOUNTDISABLE : bits | ACCOUNTDISABLE;
}

/**
 * A password nobody learns, for AD accounts with `credentials: None`: 48 random characters with
 * every character class AD's complexity rule counts (the rule needs three of them).
 */
export function unusablePassword(): string {
  return `${randomBytes(33).toString("base64url")}aZ7#~`;
}

const unicodePwd = (password: string) =>
  new Change({
    operation: "replace",
    modification: new Attribute({ type: "unicodePwd", values: [Buffer.from(`"${password}"`, "utf16le")] }),
  });

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

function values(v: Entry[string] | undefined): string[] {
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString("base64") : String(x)));
}

/** The values of an attribute, its name matched case-insensitively. */
export function entryValue(entry: Entry, name: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  return key ? values(entry[key]) : [];
}

export const replace = (type: string, vals: string[]) =>
  new Change({ operation: "replace", modification: new Attribute({ type, values: vals }) });
export const add = (type: string, vals: string[]) =>
  new Change({ operation: "add", modification: new Attribute({ type, values: vals }) });
export const del = (type: string, vals: string[]) =>
  new Change({ operation: "delete", modification: new Attribute({ type, values: vals }) });

export type PersonEntries = {
  /** What to read of a person entry (the lock state too, with OpenLDAP). */
  readAttributes: string[];
  /** Person entries (of every userObjectClass) that also match `extra`. */
  accountFilter(extra: Filter): Filter;
  /** Entries with this username, as the directory compares it (any owner, or none). */
  findByUsername(c: Client, username: string): Promise<Entry[]>;
  /** The controls for a write to the entry of employeeId. */
  ownerAssertion(employeeId: string): Control[];
  toAccount(entry: Entry, groups: string[]): ActualAccount;
  /** The entry's attributes for an add: objectClass, employeeNumber and the username forced. */
  newEntry(a: {
    employeeId: string;
    username: string;
    attributes: Record<string, string[]>;
  }): Record<string, string[]>;
  /** Replace modifications for updateAttributes; throws for attributes the connector manages. */
  attributeChanges(changes: Record<string, string[] | null>): Change[];
  /**
   * Adds the entry of a new account (AD: disabled, with its password) and sets the password given
   * (OpenLDAP: afterwards); fails with AlreadyExistsError when the account exists. Returns its DN.
   */
  add(c: Client, a: NewAccount, password: string | undefined): Promise<string>;
  setPassword(c: Client, dn: string, password: string): Promise<void>;
  setEnabled(c: Client, ref: AccountRef, entry: Entry, enabled: boolean): Promise<void>;
};

type NewAccount = { employeeId: string; username: string; attributes: Record<string, string[]> };

export function personEntries(layout: LdapLayout, managed: string[]): PersonEntries {
  const { spec, openLDAP, activeDirectory } = layout;
  const overTLS = spec.url.toLowerCase().startsWith("ldaps://") || spec.startTLS === true;
  const requireTLS = () => {
    if (!overTLS)
      throw new TerminalError(
        "Active Directory takes passwords only over TLS: use an ldaps:// URL or startTLS on this Connector",
        { reason: "InsecureTransport" },
      );
  };
  const managedByLower = new Map(managed.map((name) => [name.toLowerCase(), name]));
  const connectorOwned = new Set([
    "objectclass",
    EMPLOYEE_ID_ATTRIBUTE.toLowerCase(),
    spec.usernameAttribute.toLowerCase(),
  ]);

  function isEnabled(entry: Entry): boolean {
    if (openLDAP) return !entryValue(entry, LOCK_ATTRIBUTE).includes(PERMANENT_LOCK);
    const uac = entryValue(entry, UAC_ATTRIBUTE)[0];
    return uac === undefined || (Number.parseInt(uac, 10) & ACCOUNTDISABLE) === 0;
  }

  const readAttributes = openLDAP ? ["*", LOCK_ATTRIBUTE] : ["*"];

  /** Entries with this username: a read of its DN, or in AD a search of the whole domain. */
  async function findByUsername(c: Client, username: string): Promise<Entry[]> {
    if (layout.usernameIsRDN) {
      try {
        const res = await c.search(layout.accountDN(username), { scope: "base", attributes: readAttributes });
        return res.searchEntries;
      } catch (err) {
        if (err instanceof NoSuchObjectError) return [];
        throw err;
      }
    }
    // sAMAccountName is unique in the whole domain, not only below usersDN.
    const res = await c.search(layout.domainDN ?? spec.usersDN, {
      scope: "sub",
      filter: new EqualityFilter({ attribute: spec.usernameAttribute, value: username }),
      attributes: readAttributes,
    });
    return res.searchEntries;
  }
  const usernameTaken = async (c: Client, username: string) => (await findByUsername(c, username)).length > 0;

  const ownerAssertion = (employeeId: string) =>
    openLDAP
      ? [new AssertionControl(new EqualityFilter({ attribute: EMPLOYEE_ID_ATTRIBUTE, value: employeeId }))]
      : [];

  return {
    readAttributes,
    ownerAssertion,
    findByUsername,

    accountFilter: (extra) =>
      new AndFilter({
        filters: [
          ...spec.userObjectClasses.map((oc) => new EqualityFilter({ attribute: "objectClass", value: oc })),
          extra,
        ],
      }),

    toAccount(entry, groups) {
      const attributes: Record<string, string[]> = {};
      for (const [key, v] of Object.entries(entry)) {
        const lower = key.toLowerCase();
        if (key === "dn" || PASSWORD_ATTRIBUTES.has(lower) || lower === LOCK_ATTRIBUTE.toLowerCase())
          continue;
        // AD returns with `*` what it maintains itself (memberOf, uSNChanged, whenChanged,
        // pwdLastSet, logon counters...), which every write or bind changes: not the account's.
        if (activeDirectory && !managedByLower.has(lower) && !AD_ACCOUNT_ATTRIBUTES.has(lower)) continue;
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
    },

    newEntry(a) {
      const attributes: Record<string, string[]> = {};
      for (const [name, vals] of Object.entries(a.attributes)) {
        const nonEmpty = vals.filter((v) => v !== "");
        if (nonEmpty.length && !connectorOwned.has(name.toLowerCase())) attributes[name] = nonEmpty;
      }
      attributes.objectClass = spec.userObjectClasses;
      attributes[EMPLOYEE_ID_ATTRIBUTE] = [a.employeeId];
      attributes[spec.usernameAttribute] = [a.username];
      return attributes;
    },

    async add(c, a, password) {
      if (!activeDirectory) {
        const dn = layout.accountDN(a.username);
        await c.add(dn, this.newEntry(a));
        // The lock state is set afterwards (setEnabled): the add carries only user attributes.
        if (password !== undefined) await this.setPassword(c, dn, password);
        return dn;
      }
      if (spec.usernameAttribute.toLowerCase() === "samaccountname") {
        const problem = samAccountNameProblem(a.username);
        if (problem) throw new TerminalError(problem, { reason: "InvalidUsername" });
      }
      requireTLS();
      const attributes: Record<string, string[] | Buffer[]> = this.newEntry(a);
      const cn = attributes.cn?.[0]?.toString() || a.username;
      // Disabled until setEnabled, and never without a password (see the top of this file).
      attributes[UAC_ATTRIBUTE] = [String(userAccountControl(0, false))];
      attributes.unicodePwd = [Buffer.from(`"${password ?? unusablePassword()}"`, "utf16le")];
      for (const name of [cn, `${cn} (${a.username})`]) {
        const dn = layout.personDN(name);
        try {
          const all = { ...attributes, cn: [name] };
          await c.add(
            dn,
            Object.entries(all).map(([type, vals]) => new Attribute({ type, values: vals })),
          );
          return dn;
        } catch (err) {
          // The CN is taken by another entry (a namesake); a taken sAMAccountName is a conflict.
          if (!(err instanceof AlreadyExistsError) || name !== cn || (await usernameTaken(c, a.username)))
            throw err;
        }
      }
      throw new Error("unreachable");
    },

    attributeChanges(changes) {
      return Object.entries(changes).map(([name, vals]) => {
        if (connectorOwned.has(name.toLowerCase())) {
          throw new Error(`updateAttributes: ${name} is managed by the connector and cannot be changed`);
        }
        return replace(name, vals === null ? [] : vals.filter((v) => v !== ""));
      });
    },

    async setPassword(c, dn, password) {
      if (openLDAP) {
        // Password Modify extended operation (RFC 3062): the server hashes with its own scheme.
        const w = new BerWriter();
        w.startSequence();
        w.writeString(dn, 0x80);
        w.writeString(password, 0x82);
        w.endSequence();
        await c.exop("1.3.6.1.4.1.4203.1.11.1", w.buffer);
      } else {
        requireTLS();
        // An administrator's reset: a replace of unicodePwd, the password quoted, in UTF-16LE.
        await c.modify(dn, unicodePwd(password));
      }
    },

    async setEnabled(c, ref, entry, enabled) {
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
      const bits = current === undefined ? NORMAL_ACCOUNT : Number.parseInt(current, 10);
      if (Number.isNaN(bits)) throw new Error(`${ref.id}: unexpected userAccountControl ${current}`);
      const next = activeDirectory
        ? userAccountControl(bits, enabled)
        : enabled
          ? bits & ~ACCOUNTDISABLE
          : bits | ACCOUNTDISABLE;
      if (next === bits && current !== undefined) return;
      // An account that never had a password (made by hand, or by an older Roster with 0x222)
      // gets one nobody knows before PASSWD_NOTREQD goes: AD refuses to require a missing one.
      if (activeDirectory && enabled && entryValue(entry, "pwdLastSet")[0] === "0") {
        requireTLS();
        await c.modify(ref.id, unicodePwd(unusablePassword()), controls);
      }
      const changes =
        current === undefined
          ? [replace(UAC_ATTRIBUTE, [String(next)])]
          : [del(UAC_ATTRIBUTE, [current]), add(UAC_ATTRIBUTE, [String(next)])];
      await c.modify(ref.id, changes, controls);
    },
  };
}
