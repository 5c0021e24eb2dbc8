// Group entries: `cn=<group>,<groupsDN>` of groupObjectClass, members changed one value at a time.
//
// Empty groups: groupOfNames/groupOfUniqueNames require a member. A group is created with its
// first member; when its last member is removed, the empty DN "" (the root DSE, which is never a
// person) is left as a placeholder member and is removed again when a real member is added.
// The placeholder is never reported as a member. Other group classes (AD `group`) may be empty.
import {
  AlreadyExistsError,
  AndFilter,
  EqualityFilter,
  NoSuchAttributeError,
  NoSuchObjectError,
  ObjectClassViolationError,
  TypeOrValueExistsError,
  type Client,
} from "ldapts";
import type { ConnectorLogger } from "../types.ts";
import { add, del, entryValue } from "./entries.ts";
import { firstRDNValue } from "./escape.ts";
import { GROUP_NAMING_ATTRIBUTE, type LdapLayout } from "./settings.ts";

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
  /** Adds dn, creating the group with it when missing; already a member is fine. */
  addMember(c: Client, group: string, dn: string): Promise<void>;
  /** Removes dn, leaving the placeholder when it was the last member; not a member is fine. */
  removeMember(c: Client, group: string, dn: string): Promise<void>;
};

export function groupEntries(layout: LdapLayout, log: ConnectorLogger): GroupEntries {
  const { spec, memberAttribute, groupNeedsMember, groupDN } = layout;

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
    },

    async addMember(c, group, dn) {
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
    },

    async removeMember(c, group, dn) {
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
    },
  };
}
