// Group entries: `cn=<group>,<groupsDN>` of groupObjectClass, members changed one value at a time.
//
// Empty groups: groupOfNames/groupOfUniqueNames require a member. A group is created with its
// first member; when its last member is removed, the empty DN "" (the root DSE, which is never a
// person) is left as a placeholder member and is removed again when a real member is added.
// The placeholder is never reported as a member. Other group classes (AD `group`) may be empty.
//
// Active Directory: groups are created with sAMAccountName (= the name) and groupType (global
// security); AD answers entryAlreadyExists to adding a member it has and unwillingToPerform to
// removing one it has not, which are checked and taken for "done". AD returns at most MaxValRange
// (1,500) values of `member` per read, as `member;range=0-1499`: every read of members here asks
// for the next ranges until the server says `*` (readMembers), so a large group never reads short.
import {
  AlreadyExistsError,
  AndFilter,
  EqualityFilter,
  NoSuchAttributeError,
  NoSuchObjectError,
  ObjectClassViolationError,
  TypeOrValueExistsError,
  UnwillingToPerformError,
  type Client,
  type Entry,
} from "ldapts";
import type { ConnectorLogger } from "../types.ts";
import { add, del, entryValue } from "./entries.ts";
import { firstRDNValue } from "./escape.ts";
import { GROUP_NAMING_ATTRIBUTE, type LdapLayout } from "./settings.ts";

/** groupType of an AD global security group (ADS_GROUP_TYPE_GLOBAL_GROUP | SECURITY_ENABLED). */
export const AD_GLOBAL_SECURITY_GROUP = String(0x80000002 | 0);

/** The placeholder member of an otherwise empty groupOfNames / groupOfUniqueNames. */
export const EMPTY_GROUP_PLACEHOLDER = "";

export type LdapGroup = {
  name: string;
  dn: string;
  /** Member DNs as stored (placeholder left out). */
  members: string[];
};

export type GroupEntries = {
  /** Names of the managed groups (directly below groupsDN) that have dn as a member, sorted. */
  groupsOf(c: Client, dn: string): Promise<string[]>;
  /** Every managed group with its members (paged search), by name. */
  list(c: Client, pageSize: number): Promise<LdapGroup[]>;
  /** Adds dn; already a member is fine. False when the group does not exist (nothing changed). */
  addMember(c: Client, group: string, dn: string): Promise<boolean>;
  /** Adds several in one modify; throws when any already is a member (the server does not say which). */
  addMembers(c: Client, group: string, dns: string[]): Promise<boolean>;
  /** Creates the group with dn as its first member; AlreadyExistsError when it exists. */
  createGroup(c: Client, group: string, dn: string): Promise<void>;
  /** Removes dn, leaving the placeholder when it was the last member; not a member is fine. */
  removeMember(c: Client, group: string, dn: string): Promise<void>;
  /** Removes several in one modify; throws when any is no member or they were the last. */
  removeMembers(c: Client, group: string, dns: string[]): Promise<void>;
};

export function groupEntries(layout: LdapLayout, log: ConnectorLogger): GroupEntries {
  const { spec, memberAttribute, groupNeedsMember, groupDN, activeDirectory } = layout;

  /** Whether dn is (still) a member of the group gdn, as the server matches DNs. */
  async function isMember(c: Client, gdn: string, dn: string): Promise<boolean> {
    const res = await c.search(gdn, {
      scope: "base",
      filter: new EqualityFilter({ attribute: memberAttribute, value: dn }),
      attributes: ["1.1"],
    });
    return res.searchEntries.length > 0;
  }

  // Groups this connection saw holding a real member: no placeholder to look for when adding
  // (saves a compare per add). A group emptied by hand whose placeholder was put back by hand may
  // keep the placeholder beside the new member, which is harmless: it is never listed.
  const holdsMembers = new Set<string>();
  const groupKey = (gdn: string) => gdn.toLowerCase();

  async function addMembers(c: Client, group: string, dns: string[]): Promise<boolean> {
    const gdn = groupDN(group);
    let hasPlaceholder: boolean;
    try {
      hasPlaceholder =
        groupNeedsMember &&
        !holdsMembers.has(groupKey(gdn)) &&
        (await c.compare(gdn, memberAttribute, EMPTY_GROUP_PLACEHOLDER));
    } catch (err) {
      if (err instanceof NoSuchObjectError) return false;
      throw err;
    }
    try {
      const changes = [add(memberAttribute, dns)];
      if (hasPlaceholder) changes.push(del(memberAttribute, [EMPTY_GROUP_PLACEHOLDER]));
      await c.modify(gdn, changes);
    } catch (err) {
      const exists =
        err instanceof TypeOrValueExistsError || (activeDirectory && err instanceof AlreadyExistsError);
      // Already a member; of several, the server does not say which: the caller adds them one by one.
      if (exists && dns.length === 1) {
        holdsMembers.add(groupKey(gdn));
        return true;
      }
      if (exists) throw err;
      if (err instanceof NoSuchObjectError) return false; // deleted in between
      if (hasPlaceholder && err instanceof NoSuchAttributeError) {
        // The placeholder went away in between: just add.
        await c.modify(gdn, add(memberAttribute, dns)).catch((e2) => {
          if (!(e2 instanceof TypeOrValueExistsError) || dns.length > 1) throw e2;
        });
        holdsMembers.add(groupKey(gdn));
        return true;
      }
      throw err;
    }
    holdsMembers.add(groupKey(gdn));
    return true;
  }

  return {
    async groupsOf(c, dn) {
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
    },

    async list(c, pageSize) {
      const res = await c.search(spec.groupsDN, {
        scope: "one",
        filter: new EqualityFilter({ attribute: "objectClass", value: spec.groupObjectClass }),
        attributes: [memberAttribute],
        paged: { pageSize: layout.pageSize(pageSize) },
      });
      const groups: LdapGroup[] = [];
      for (const e of res.searchEntries) {
        const name = firstRDNValue(e.dn, GROUP_NAMING_ATTRIBUTE);
        if (name === undefined) continue;
        const values = await readMembers(c, e, memberAttribute);
        const members = values.filter((m) => m !== EMPTY_GROUP_PLACEHOLDER);
        if (members.length === values.length && members.length) holdsMembers.add(groupKey(e.dn));
        else holdsMembers.delete(groupKey(e.dn));
        groups.push({ name, dn: e.dn, members });
      }
      return groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    addMember: (c, group, dn) => addMembers(c, group, [dn]),
    addMembers,

    async createGroup(c, group, dn) {
      const gdn = groupDN(group);
      await c.add(gdn, {
        objectClass: [spec.groupObjectClass],
        [GROUP_NAMING_ATTRIBUTE]: [group],
        [memberAttribute]: [dn],
        ...(activeDirectory ? { sAMAccountName: [group], groupType: [AD_GLOBAL_SECURITY_GROUP] } : {}),
      });
      holdsMembers.add(groupKey(gdn));
      log.info({ group: gdn }, "ldap: created group");
    },

    // Any refusal (one is no member, or they were the last) throws: the caller goes one by one.
    removeMembers: (c, group, dns) => c.modify(groupDN(group), del(memberAttribute, dns)),

    async removeMember(c, group, dn) {
      const gdn = groupDN(group);
      try {
        await c.modify(gdn, del(memberAttribute, [dn]));
      } catch (err) {
        if (err instanceof NoSuchAttributeError || err instanceof NoSuchObjectError) return; // not a member
        // AD refuses to remove a value it does not hold: fine when dn is indeed no member.
        if (activeDirectory && err instanceof UnwillingToPerformError && !(await isMember(c, gdn, dn)))
          return;
        if (!(groupNeedsMember && err instanceof ObjectClassViolationError)) throw err;
        // It was the last member: leave the placeholder in the same modification.
        holdsMembers.delete(groupKey(gdn));
        try {
          await c.modify(gdn, [add(memberAttribute, [EMPTY_GROUP_PLACEHOLDER]), del(memberAttribute, [dn])]);
        } catch (e2) {
          if (e2 instanceof NoSuchAttributeError) return;
          throw e2;
        }
      }
    },
  };
}

/** A ranged attribute description, `member;range=1500-2999` or `member;range=3000-*`. */
export type ValueRange = { low: number; high: number | "*" };

/**
 * The range of `key` if it is `<attribute>;range=<low>-<high|*>` (options compared as AD does:
 * case-insensitively, in any order among other options); undefined for anything else.
 */
export function parseRange(key: string, attribute: string): ValueRange | undefined {
  const [name, ...options] = key.split(";");
  if (name!.toLowerCase() !== attribute.toLowerCase()) return undefined;
  for (const option of options) {
    const m = /^range=(\d+)-(\d+|\*)$/i.exec(option);
    if (m) return { low: Number(m[1]), high: m[2] === "*" ? "*" : Number(m[2]) };
  }
  return undefined;
}

/** The entry's values of `attribute`, plain or as a range: the range found, if any. */
export function valuesOf(entry: Entry, attribute: string): { values: string[]; range?: ValueRange } {
  for (const key of Object.keys(entry)) {
    const range = parseRange(key, attribute);
    if (range) return { values: entryValue(entry, key), range };
  }
  return { values: entryValue(entry, attribute) };
}

/**
 * Every value of `attribute` of `entry`: when the server answered with a range (AD's MaxValRange),
 * asks for `<attribute>;range=<next>-*` until it says the range ends with `*`.
 */
export async function readMembers(c: Client, entry: Entry, attribute: string): Promise<string[]> {
  let { values, range } = valuesOf(entry, attribute);
  const all = [...values];
  for (let rounds = 0; range && range.high !== "*"; rounds++) {
    if (range.high < range.low || values.length === 0 || rounds > 100_000)
      throw new Error(`ldap: ${entry.dn}: unexpected range ${range.low}-${range.high} of ${attribute}`);
    const next = range.high + 1;
    const res = await c.search(entry.dn, {
      scope: "base",
      attributes: [`${attribute};range=${next}-*`],
    });
    const e = res.searchEntries[0];
    if (!e) throw new Error(`ldap: ${entry.dn} went away while its ${attribute} values were read`);
    ({ values, range } = valuesOf(e, attribute));
    // Nothing past the last range (Samba leaves the attribute out; Windows sends it empty).
    if (!range && values.length === 0) break;
    // The server must go on where we asked; anything else would silently skip or repeat members.
    if (!range || range.low !== next)
      throw new Error(
        `ldap: ${entry.dn}: asked for ${attribute} from ${next}, got ${range ? range.low : "no range"}`,
      );
    all.push(...values);
  }
  return all;
}
