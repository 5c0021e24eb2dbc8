// How an Employee maps onto an account in a Connector's target, whatever its kind (pure).
import type { Connector, EmployeeSpecT } from "../api/types.ts";
import { ldapAttributes, managedAttributeNames } from "./ldap/attributes.ts";
import { scimAttributes, scimManagedAttributes } from "./scim/attributes.ts";

export function desiredAttributes(connector: Connector, employee: EmployeeSpecT): Record<string, string[]> {
  if (connector.spec.ldap) return ldapAttributes(employee, connector.spec.ldap);
  if (connector.spec.scim) return scimAttributes(employee, connector.spec.scim);
  return {};
}

export function managedAttributes(connector: Connector): string[] {
  if (connector.spec.ldap) return managedAttributeNames(connector.spec.ldap);
  if (connector.spec.scim) return scimManagedAttributes(connector.spec.scim);
  return [];
}
