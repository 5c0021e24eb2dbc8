// Person entries: reading them as accounts, their enabled state by flavor, passwords, and the
// assertion that guards every write to one.
//
// Enabled state: OpenLDAP flavor locks with ppolicy pwdAccountLockedTime = 000001010000Z
// (permanent lock) and unlocks by deleting exactly that value; an account is disabled iff it
// carries that value (a temporary lockout after failed binds is not Roster's and is left alone).
// ActiveDirectory flavor flips the ACCOUNTDISABLE bit (0x2) of userAccountControl, keeping the
// other bits, with a delete-old/add-new modification so that a concurrent change fails instead of
// being overwritten.
//
// Ownership: with the OpenLDAP flavor every write to a person entry carries an LDAP assertion
// control (RFC 4528) on employeeNumber, so the server refuses it if the entry changed after the
// ownership guard read it.
import {
  AndFilter,
  Attribute,
  BerWriter,
  Change,
  Control,
  EqualityFilter,
  NoSuchAttributeError,
  type Client,
  type Entry,
  type Filter,
} from "ldapts";
import type { AccountRef, ActualAccount } from "../types.ts";
import { EMPLOYEE_ID_ATTRIBUTE } from "./attributes.ts";
import { firstRDNValue } from "./escape.ts";
import type { LdapLayout } from "./settings.ts";

/** The permanent ppolicy lock (OpenLDAP): pwdAccountLockedTime with this value never expires. */
export const PERMANENT_LOCK = "000001010000Z";
const LOCK_ATTRIBUTE = "pwdAccountLockedTime";
const UAC_ATTRIBUTE = "userAccountControl";
const ACCOUNTDISABLE = 0x2;
const PASSWORD_ATTRIBUTES = new Set(["userpassword", "unicodepwd", "authpassword"]);

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
  setPassword(c: Client, dn: string, password: string): Promise<void>;
  setEnabled(c: Client, ref: AccountRef, entry: Entry, enabled: boolean): Promise<void>;
};

export function personEntries(layout: LdapLayout, managed: string[]): PersonEntries {
  const { spec, openLDAP } = layout;
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

  const ownerAssertion = (employeeId: string) =>
    openLDAP
      ? [new AssertionControl(new EqualityFilter({ attribute: EMPLOYEE_ID_ATTRIBUTE, value: employeeId }))]
      : [];

  return {
    readAttributes: openLDAP ? ["*", LOCK_ATTRIBUTE] : ["*"],
    ownerAssertion,

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
      const bits = current === undefined ? 0x200 : Number.parseInt(current, 10);
      if (Number.isNaN(bits)) throw new Error(`${ref.id}: unexpected userAccountControl ${current}`);
      const next = enabled ? bits & ~ACCOUNTDISABLE : bits | ACCOUNTDISABLE;
      if (next === bits && current !== undefined) return;
      const changes =
        current === undefined
          ? [replace(UAC_ATTRIBUTE, [String(next)])]
          : [del(UAC_ATTRIBUTE, [current]), add(UAC_ATTRIBUTE, [String(next)])];
      await c.modify(ref.id, changes, controls);
    },
  };
}
