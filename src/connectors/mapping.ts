// How an Employee maps onto an account in a Connector's target, whatever its kind (pure).
import type { Connector, EmployeeSpecT } from "../api/types.ts";
import { ldapAttributeRenderer, ldapTemplates, managedAttributeNames } from "./ldap/attributes.ts";
import { scimAttributeRenderer, scimManagedAttributes, scimTemplates } from "./scim/attributes.ts";
import { refersTo, type AttributeRenderer, type TemplateReferences } from "./template.ts";

export function desiredAttributes(
  connector: Connector,
  employee: EmployeeSpecT,
  references: TemplateReferences = {},
): Record<string, string[]> {
  return attributeRenderer(connector)(employee, references);
}

/** desiredAttributes for one Connector, its mapping compiled once (a scan renders every Employee). */
export function attributeRenderer(connector: Connector): AttributeRenderer {
  if (connector.spec.ldap) return ldapAttributeRenderer(connector.spec.ldap);
  if (connector.spec.scim) return scimAttributeRenderer(connector.spec.scim);
  return () => ({});
}

export function managedAttributes(connector: Connector): string[] {
  if (connector.spec.ldap) return managedAttributeNames(connector.spec.ldap);
  if (connector.spec.scim) return scimManagedAttributes(connector.spec.scim);
  return [];
}

/** Whether the Connector's attribute mapping uses {{managerId}} (SCIM's default manager.value does). */
export function refersToManager(connector: Connector): boolean {
  const templates = connector.spec.ldap
    ? ldapTemplates(connector.spec.ldap)
    : connector.spec.scim
      ? scimTemplates(connector.spec.scim)
      : {};
  return Object.values(templates).some((t) => refersTo(t, "managerId"));
}
