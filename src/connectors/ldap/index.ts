// The LDAP connector: see connector.ts for the behaviour (over base/), attributes.ts for the attribute
// mapping, client.ts for the connection, entries.ts and groups.ts for person and group entries.
export {
  createLdapConnector,
  withLdapDefaults,
  PERMANENT_LOCK,
  EMPTY_GROUP_PLACEHOLDER,
  type LdapConnector,
  type LdapConnectorOptions,
  type LdapGroup,
  type LdapSettings,
} from "./connector.ts";
export {
  ldapAttributes,
  ldapTemplates,
  managedAttributeNames,
  validateLdapTemplates,
  DEFAULT_LDAP_TEMPLATES,
} from "./attributes.ts";
export { escapeDNValue, escapeFilterValue, parseDN, normalizeDN, dnEquals } from "./escape.ts";
