// The LDAP connector (OpenLDAP and Active Directory) on ldapts: the connector base
// (base/connector.ts: ownership, idempotency, fencing, adoption, membership inversion) over LDAP
// primitives. settings.ts has the layout, client.ts the connection, entries.ts person entries
// (enabled state, passwords, assertions), groups.ts group entries and the empty-group placeholder.
//
// Ownership on top of the base: only entries below usersDN are ever written to, and every write to
// a person entry carries an assertion on its employeeNumber (OpenLDAP flavor, see entries.ts).
//
// The bind password is checked before it is used (base/credentials.ts) and never put into an error
// or a log line: both are scrubbed of it (base/scrub.ts), as of initial passwords.
import {
  AlreadyExistsError,
  EqualityFilter,
  NoSuchObjectError,
  NotFilter,
  PresenceFilter,
  type Entry,
} from "ldapts";
import type { LdapSpecT } from "../../api/types.ts";
import { createConnector } from "../base/connector.ts";
import { bindPassword as usableBindPassword } from "../base/credentials.ts";
import type { TargetPrimitives } from "../base/primitives.ts";
import { nonCertificateText, scrubberFor } from "../base/scrub.ts";
import { silentLogger, type ConnectorLogger, type TargetConnector } from "../types.ts";
import { EMPLOYEE_ID_ATTRIBUTE, managedAttributeNames } from "./attributes.ts";
import { createLdapClient } from "./client.ts";
import { add, AssertionControl, entryValue, personEntries } from "./entries.ts";
import { caseIgnoreKey, isDescendantOf, normalizeDN } from "./escape.ts";
import { groupEntries, type LdapGroup } from "./groups.ts";
import { ldapLayout, withLdapDefaults } from "./settings.ts";

export { withLdapDefaults, type LdapSettings } from "./settings.ts";
export { AssertionControl, PERMANENT_LOCK } from "./entries.ts";
export { EMPTY_GROUP_PLACEHOLDER, type LdapGroup } from "./groups.ts";

export type LdapConnectorOptions = {
  /** PEM CA bundle for ldaps:// and StartTLS (from caSecretRef). */
  ca?: string;
  logger?: ConnectorLogger;
  /** Called right before every write (add, modify, delete, Password Modify); throws (or exits) to stop it. */
  fence?: () => void;
  /** Per-operation timeout (default 30 s) and connect timeout (default 10 s). */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** How long a write may wait for its answer before its connection is dropped (default: timeoutMs). */
  writeTimeoutMs?: number;
};

export interface LdapConnector extends TargetConnector {
  /** Every group directly below groupsDN of groupObjectClass, with its members (paged search). */
  listGroups(pageSize?: number): Promise<LdapGroup[]>;
  /** The DN the account of `username` has or would get. */
  accountDN(username: string): string;
  groupDN(group: string): string;
}

const DEFAULT_PAGE_SIZE = 500;

/** Throws CredentialError (never quoting the password) when `bindPassword` cannot be used. */
export function createLdapConnector(
  specIn: LdapSpecT,
  bindPassword: string,
  opts: LdapConnectorOptions = {},
): LdapConnector {
  usableBindPassword(bindPassword);
  const secrets = scrubberFor([bindPassword, nonCertificateText(opts.ca)]);
  const spec = withLdapDefaults(specIn);
  const log = secrets.logger(opts.logger ?? silentLogger);
  const layout = ldapLayout(spec);
  const ldap = createLdapClient(spec, bindPassword, {
    logger: log,
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.writeTimeoutMs !== undefined ? { writeTimeoutMs: opts.writeTimeoutMs } : {}),
  });
  const people = personEntries(layout, managedAttributeNames(spec));
  const groups = groupEntries(layout, log);
  const { accountDN, groupDN } = layout;

  const readEntry = (dn: string) =>
    ldap.run("read", async (c) => {
      const res = await c.search(dn, { scope: "base", attributes: people.readAttributes });
      return res.searchEntries[0];
    });
  const listGroups = (pageSize = DEFAULT_PAGE_SIZE) =>
    ldap.run("listGroups", (c) => groups.list(c, pageSize));

  // Groups are handled by name (G = string): a DN follows from it, no look-up needed.
  const primitives: TargetPrimitives<Entry, string> = {
    name: "ldap",
    idLabel: "dn",
    employeeIdAttribute: EMPLOYEE_ID_ATTRIBUTE,
    accountsLabel: `entries under ${spec.usersDN}`,
    describe: (dn) => `entry ${dn}`,

    async check() {
      await ldap.run("check", (c) => c.search(spec.usersDN, { scope: "base", attributes: ["1.1"] }));
    },
    groupKey: caseIgnoreKey,
    close: () => ldap.close(),
    isNotFound: (err) => err instanceof NoSuchObjectError,
    isConflict: (err) => err instanceof AlreadyExistsError,

    readById: readEntry,
    searchByEmployeeId: (employeeId) =>
      ldap.run("findAccount", async (c) => {
        const res = await c.search(spec.usersDN, {
          scope: "sub",
          filter: people.accountFilter(
            new EqualityFilter({ attribute: EMPLOYEE_ID_ATTRIBUTE, value: employeeId }),
          ),
          attributes: people.readAttributes,
        });
        // The server matches employeeNumber case-insensitively; the base keeps exact matches.
        return res.searchEntries;
      }),
    searchByUsername: (username) => ldap.run("findByUsername", (c) => people.findByUsername(c, username)),
    searchByEmail: (email) =>
      ldap.run("findByEmail", async (c) => {
        const res = await c.search(spec.usersDN, {
          scope: "sub",
          filter: people.accountFilter(new EqualityFilter({ attribute: "mail", value: email })),
          attributes: people.readAttributes,
        });
        return res.searchEntries;
      }),
    writeOwnershipKey: (dn, _entry, employeeId) =>
      ldap.run("linkAccount", (c) =>
        // The server refuses it should the key have been set since the entry was read.
        c.modify(dn, add(EMPLOYEE_ID_ATTRIBUTE, [employeeId]), [
          new AssertionControl(
            new NotFilter({ filter: new PresenceFilter({ attribute: EMPLOYEE_ID_ATTRIBUTE }) }),
          ),
        ]),
      ),
    findsByUsername: false,
    listAccounts: (pageSize = DEFAULT_PAGE_SIZE, onPage) =>
      ldap.run("listAccounts", async (c) => {
        let delivered = 0;
        try {
          for await (const res of c.searchPaginated(spec.usersDN, {
            scope: "sub",
            filter: people.accountFilter(new PresenceFilter({ attribute: "objectClass" })),
            attributes: people.readAttributes,
            paged: { pageSize: layout.pageSize(pageSize) },
          })) {
            delivered++;
            await onPage(res.searchEntries);
          }
        } catch (err) {
          // Not retried on a new connection: the pages already taken would be taken twice.
          if (delivered === 0) throw err;
          throw new Error(`ldap: the listing broke off after ${delivered} pages: ${(err as Error).message}`, {
            cause: err,
          });
        }
      }),
    idOf: (entry) => entry.dn,
    employeeIdsOf: (entry) => entryValue(entry, EMPLOYEE_ID_ATTRIBUTE),
    toAccount: people.toAccount,
    outOfScope: (dn) =>
      isDescendantOf(dn, spec.usersDN)
        ? undefined
        : `entry ${dn} is outside usersDN ${spec.usersDN} and is not managed by Roster`,
    // In AD the DN follows from the cn, not the username.
    ...(layout.usernameIsRDN ? { expectedId: accountDN } : {}),
    idKey: normalizeDN,

    addAccount: (a, password) =>
      ldap.run("createAccount", async (c) => ({ id: await people.add(c, a, password) })),
    validateChanges: (changes) => void people.attributeChanges(changes),
    async modifyAttributes(ref, _entry, changes) {
      const mods = people.attributeChanges(changes);
      await ldap.run("updateAttributes", (c) =>
        c.modify(ref.id, mods, people.ownerAssertion(ref.employeeId)),
      );
    },
    setEnabled: (ref, entry, enabled) =>
      ldap.run("setEnabled", (c) => people.setEnabled(c, ref, entry, enabled)),
    setPassword: (ref, password) => ldap.run("setPassword", (c) => people.setPassword(c, ref.id, password)),
    removeAccount: (ref) =>
      ldap.run("deleteAccount", (c) => c.del(ref.id, people.ownerAssertion(ref.employeeId))),

    groupsOf: (dn) => ldap.run("groupsOf", (c) => groups.groupsOf(c, dn)),
    groupName: (name) => name,
    findGroups: async (name: string) => [name], // a DN names one group
    listGroups,
    addMember: (group, dn) => ldap.run("addToGroup", (c) => groups.addMember(c, group, dn)),
    addMembers: (group, dns) => ldap.run("addToGroup", (c) => groups.addMembers(c, group, dns)),
    createGroup: (group, dn) => ldap.run("addToGroup", (c) => groups.createGroup(c, group, dn)),
    removeMember: (group, dn) => ldap.run("removeFromGroup", (c) => groups.removeMember(c, group, dn)),
    removeMembers: (group, dns) => ldap.run("removeFromGroup", (c) => groups.removeMembers(c, group, dns)),
  };

  return {
    ...createConnector(primitives, { logger: log, fence: opts.fence, scrubber: secrets }),
    listGroups: secrets.guard(listGroups),
    accountDN,
    groupDN,
  };
}
