// Connector.spec.ldap with its defaults, and the directory layout derived from it (pure).
//
// Layout: person entries `<usernameAttribute>=<username>,<usersDN>` carrying employeeNumber =
// employeeId; groups `cn=<group>,<groupsDN>` (directly below groupsDN) of groupObjectClass whose
// `member` (groupOfUniqueNames: `uniqueMember`) values are changed one at a time, never replaced.
import type { LdapSpecT } from "../../api/types.ts";
import { childDN } from "./escape.ts";

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

export const GROUP_NAMING_ATTRIBUTE = "cn";

export type LdapLayout = {
  spec: LdapSettings;
  openLDAP: boolean;
  /** member, or uniqueMember for groupOfUniqueNames. */
  memberAttribute: string;
  /** groupOfNames / groupOfUniqueNames must have a member (see groups.ts for the placeholder). */
  groupNeedsMember: boolean;
  accountDN(username: string): string;
  groupDN(group: string): string;
};

export function ldapLayout(spec: LdapSettings): LdapLayout {
  const groupClass = spec.groupObjectClass.toLowerCase();
  return {
    spec,
    openLDAP: spec.flavor === "OpenLDAP",
    memberAttribute: groupClass === "groupofuniquenames" ? "uniqueMember" : "member",
    groupNeedsMember: groupClass === "groupofnames" || groupClass === "groupofuniquenames",
    accountDN: (username) => childDN(spec.usernameAttribute, username, spec.usersDN),
    groupDN: (group) => childDN(GROUP_NAMING_ATTRIBUTE, group, spec.groupsDN),
  };
}
