// Which attributes an LDAP person entry gets from an Employee (pure).
//
// The default mapping is merged with Connector.spec.ldap.attributes: a spec entry replaces the
// default of the same attribute (names compared case-insensitively), and mapping an attribute
// to "" removes it. employeeNumber (= employeeId, the ownership key) and the usernameAttribute
// (= username, the RDN) are always set and cannot be overridden. Values that render empty or
// blank are omitted.
import type { EmployeeSpecT, LdapSpecT } from "../../api/types.ts";
import { renderTemplate, validateTemplate } from "../template.ts";

export const DEFAULT_LDAP_TEMPLATES: Readonly<Record<string, string>> = {
  cn: "{{displayName}}", // displayName falls back to "givenName familyName"
  sn: "{{familyName}}",
  givenName: "{{givenName}}",
  mail: "{{email}}",
  displayName: "{{displayName}}",
  departmentNumber: "{{department}}",
  title: "{{title}}",
  l: "{{location}}",
  employeeType: "{{employmentType}}",
};

/** The ownership key: LDAP employeeNumber holds Employee.spec.employeeId. */
export const EMPLOYEE_ID_ATTRIBUTE = "employeeNumber";

type TemplateSpec = Pick<LdapSpecT, "attributes" | "usernameAttribute">;

/** Attribute -> template after merging the defaults with spec.attributes (forced keys excluded). */
export function ldapTemplates(spec: TemplateSpec): Record<string, string> {
  const forced = forcedKeys(spec);
  const merged: Record<string, string> = {};
  const put = (name: string, template: string) => {
    if (forced.has(name.toLowerCase())) return;
    for (const existing of Object.keys(merged)) {
      if (existing.toLowerCase() === name.toLowerCase()) delete merged[existing];
    }
    merged[name] = template;
  };
  for (const [name, template] of Object.entries(DEFAULT_LDAP_TEMPLATES)) put(name, template);
  for (const [name, template] of Object.entries(spec.attributes ?? {})) put(name, template);
  return merged;
}

/** Names of every attribute Roster manages on a person entry (including the forced ones). */
export function managedAttributeNames(spec: TemplateSpec): string[] {
  return [EMPLOYEE_ID_ATTRIBUTE, spec.usernameAttribute ?? "uid", ...Object.keys(ldapTemplates(spec))];
}

/** The desired attributes of the Employee's entry: attribute -> values, empty ones left out. */
export function ldapAttributes(employee: EmployeeSpecT, spec: TemplateSpec): Record<string, string[]> {
  const out: Record<string, string[]> = {
    [EMPLOYEE_ID_ATTRIBUTE]: [employee.employeeId],
    [spec.usernameAttribute ?? "uid"]: [employee.username],
  };
  for (const [name, template] of Object.entries(ldapTemplates(spec))) {
    const value = renderTemplate(template, employee);
    if (value.trim() !== "") out[name] = [value];
  }
  return out;
}

/** Problems with spec.attributes, as messages (for the Connector's status); empty when valid. */
export function validateLdapTemplates(spec: TemplateSpec): string[] {
  const forced = forcedKeys(spec);
  const problems: string[] = [];
  for (const [name, template] of Object.entries(spec.attributes ?? {})) {
    if (!/^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$/.test(name))
      problems.push(`attributes: invalid attribute name ${name}`);
    if (forced.has(name.toLowerCase())) problems.push(`attributes.${name}: set by Roster, cannot be mapped`);
    for (const p of validateTemplate(template)) problems.push(`attributes.${name}: ${p}`);
  }
  return problems;
}

function forcedKeys(spec: TemplateSpec): Set<string> {
  return new Set([EMPLOYEE_ID_ATTRIBUTE.toLowerCase(), (spec.usernameAttribute ?? "uid").toLowerCase()]);
}
