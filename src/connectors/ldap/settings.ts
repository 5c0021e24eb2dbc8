// Connector.spec.ldap with its defaults, and the directory layout derived from it (pure).
//
// Layout: person entries `<usernameAttribute>=<username>,<usersDN>` carrying employeeNumber =
// employeeId; groups `cn=<group>,<groupsDN>` (directly below groupsDN) of groupObjectClass whose
// `member` (groupOfUniqueNames: `uniqueMember`) values are changed one at a time, never replaced.
//
// ActiveDirectory flavor: users are `user` objects named `CN=<cn>,<usersDN>` (cn from the mapping,
// by default the display name: AD refuses any other naming attribute for a user), the username is
// sAMAccountName (an ordinary attribute), groups are `group` objects. Its defaults differ, hence
// none in the CRD schema: userObjectClasses [user], groupObjectClass group, usernameAttribute
// sAMAccountName.
import type { LdapSpecT } from "../../api/types.ts";
import { childDN, formatDN, parseDN, type ParsedDN } from "./escape.ts";

/** Connector.spec.ldap with the API defaults applied. */
export type LdapSettings = LdapSpecT & {
  userObjectClasses: string[];
  groupObjectClass: string;
  usernameAttribute: string;
  flavor: "OpenLDAP" | "ActiveDirectory";
};

export function withLdapDefaults(spec: LdapSpecT): LdapSettings {
  const ad = spec.flavor === "ActiveDirectory";
  return {
    ...spec,
    userObjectClasses: spec.userObjectClasses?.length
      ? spec.userObjectClasses
      : [ad ? "user" : "inetOrgPerson"],
    groupObjectClass: spec.groupObjectClass ?? (ad ? "group" : "groupOfNames"),
    usernameAttribute: spec.usernameAttribute ?? (ad ? "sAMAccountName" : "uid"),
    flavor: spec.flavor ?? "OpenLDAP",
  };
}

/** The username attribute with the flavor's default (for callers holding a raw spec). */
export function usernameAttributeOf(spec: Pick<LdapSpecT, "usernameAttribute" | "flavor">): string {
  return spec.usernameAttribute ?? (spec.flavor === "ActiveDirectory" ? "sAMAccountName" : "uid");
}

/** The attribute person entries are named by: the username's, except in AD (always cn). */
export function personNamingAttributeOf(spec: Pick<LdapSpecT, "usernameAttribute" | "flavor">): string {
  return spec.flavor === "ActiveDirectory" ? "CN" : usernameAttributeOf(spec);
}

/** AD's limits on sAMAccountName (pre-Windows 2000 logon name). */
export const SAM_ACCOUNT_NAME_MAX = 20;
const SAM_ACCOUNT_NAME_FORBIDDEN = /["/\\[\]:;|=,+*?<>]/;

/** Why `username` cannot be an AD sAMAccountName, or undefined when it can. */
export function samAccountNameProblem(username: string): string | undefined {
  if ([...username].length > SAM_ACCOUNT_NAME_MAX)
    return `username ${username} has ${[...username].length} characters; Active Directory's sAMAccountName allows at most ${SAM_ACCOUNT_NAME_MAX}`;
  if (SAM_ACCOUNT_NAME_FORBIDDEN.test(username))
    return `username ${username} contains a character Active Directory does not allow in sAMAccountName`;
  if (/^[. ]*$/.test(username) || username.endsWith("."))
    return `username ${username} cannot be a sAMAccountName (empty, only dots or spaces, or ending in a dot)`;
  return undefined;
}

export const GROUP_NAMING_ATTRIBUTE = "cn";
/** AD's default MaxPageSize (lDAPAdminLimits of the Default Query Policy). */
export const AD_MAX_PAGE_SIZE = 1000;

export type LdapLayout = {
  spec: LdapSettings;
  openLDAP: boolean;
  activeDirectory: boolean;
  /** The RDN attribute of person entries: usernameAttribute, or cn in AD. */
  personNamingAttribute: string;
  /** Person entries are named by the username, so its DN follows from it (not in AD). */
  usernameIsRDN: boolean;
  /** The domain's DNS name from usersDN's DC= parts (AD's default UPN suffix), e.g. corp.example.com. */
  dnsDomain: string | undefined;
  /** The domain's root DN: usersDN's trailing DC= RDNs. */
  domainDN: string | undefined;
  /** DN of a person entry named by `rdnValue` (the username, or the cn in AD). */
  personDN(rdnValue: string): string;
  /** The page size to ask for: AD answers at most MaxPageSize (1,000 by default) per page. */
  pageSize(requested: number): number;
  /** member, or uniqueMember for groupOfUniqueNames. */
  memberAttribute: string;
  /** groupOfNames / groupOfUniqueNames must have a member (see groups.ts for the placeholder). */
  groupNeedsMember: boolean;
  /** The DN the account of `username` gets when usernameIsRDN; in AD that of its cn instead. */
  accountDN(username: string): string;
  groupDN(group: string): string;
};

export function ldapLayout(spec: LdapSettings): LdapLayout {
  const groupClass = spec.groupObjectClass.toLowerCase();
  const personNamingAttribute = personNamingAttributeOf(spec);
  const domainRDNs = trailingDomainComponents(spec.usersDN);
  return {
    spec,
    openLDAP: spec.flavor === "OpenLDAP",
    activeDirectory: spec.flavor === "ActiveDirectory",
    personNamingAttribute,
    usernameIsRDN: personNamingAttribute.toLowerCase() === spec.usernameAttribute.toLowerCase(),
    dnsDomain: dnsDomainOf(spec.usersDN),
    domainDN: domainRDNs.length ? formatDN(domainRDNs) : undefined,
    personDN: (rdnValue) => childDN(personNamingAttribute, rdnValue, spec.usersDN),
    pageSize: (requested) =>
      spec.flavor === "ActiveDirectory" ? Math.min(requested, AD_MAX_PAGE_SIZE) : requested,
    memberAttribute: groupClass === "groupofuniquenames" ? "uniqueMember" : "member",
    groupNeedsMember: groupClass === "groupofnames" || groupClass === "groupofuniquenames",
    accountDN: (username) => childDN(personNamingAttribute, username, spec.usersDN),
    groupDN: (group) => childDN(GROUP_NAMING_ATTRIBUTE, group, spec.groupsDN),
  };
}

/** The trailing run of single-valued DC= RDNs of dn (empty when dn cannot be parsed). */
function trailingDomainComponents(dn: string): ParsedDN {
  let rdns: ParsedDN;
  try {
    rdns = parseDN(dn);
  } catch {
    return [];
  }
  let i = rdns.length;
  while (i > 0 && rdns[i - 1]!.length === 1 && rdns[i - 1]![0]!.type.toLowerCase() === "dc") i--;
  return rdns.slice(i);
}

/** corp.example.com from OU=People,DC=corp,DC=example,DC=com (its trailing DC= parts). */
export function dnsDomainOf(dn: string | undefined): string | undefined {
  const dcs = dn === undefined ? [] : trailingDomainComponents(dn);
  return dcs.length ? dcs.map((r) => r[0]!.value).join(".") : undefined;
}
