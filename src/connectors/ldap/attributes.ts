// Which attributes an LDAP person entry gets from an Employee (pure).
//
// The default mapping is merged with Connector.spec.ldap.attributes: a spec entry replaces the
// default of the same attribute (names compared case-insensitively), and mapping an attribute
// to "" removes it. employeeNumber (= employeeId, the ownership key) and the usernameAttribute
// (= username, the RDN) are always set and cannot be overridden. Values that render empty or
// blank are omitted.
//
// ActiveDirectory flavor: its own defaults (AD_LDAP_TEMPLATES: department instead of
// departmentNumber, userPrincipalName <username>@<the domain of usersDN>), sAMAccountName is the
// forced username, and cn names the entry (CN=<cn>): it is rendered for the create but is not a
// managed attribute, since AD changes it only by renaming the entry.
import type { EmployeeSpecT, LdapSpecT } from "../../api/types.ts";
import {
  attributeRendererOf,
  validateTemplate,
  type AttributeRenderer,
  type TemplateReferences,
} from "../template.ts";
import { dnsDomainOf, usernameAttributeOf } from "./settings.ts";

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

/** ActiveDirectory flavor's defaults (userPrincipalName is added from usersDN, see adTemplates). */
export const AD_LDAP_TEMPLATES: Readonly<Record<string, string>> = {
  cn: "{{displayName}}", // the RDN: CN=<display name>
  sn: "{{familyName}}",
  givenName: "{{givenName}}",
  displayName: "{{displayName}}",
  mail: "{{email}}",
  department: "{{department}}",
  title: "{{title}}",
  l: "{{location}}",
  employeeType: "{{employmentType}}",
};

/** The ownership key: LDAP employeeNumber holds Employee.spec.employeeId. */
export const EMPLOYEE_ID_ATTRIBUTE = "employeeNumber";

type TemplateSpec = Pick<LdapSpecT, "attributes" | "usernameAttribute"> &
  Partial<Pick<LdapSpecT, "flavor" | "usersDN">>;

const isAD = (spec: TemplateSpec) => spec.flavor === "ActiveDirectory";

/** The default templates of the spec's flavor. */
function defaultTemplates(spec: TemplateSpec): Record<string, string> {
  if (!isAD(spec)) return { ...DEFAULT_LDAP_TEMPLATES };
  const domain = dnsDomainOf(spec.usersDN);
  return { ...AD_LDAP_TEMPLATES, ...(domain ? { userPrincipalName: `{{username}}@${domain}` } : {}) };
}

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
  for (const [name, template] of Object.entries(defaultTemplates(spec))) put(name, template);
  for (const [name, template] of Object.entries(spec.attributes ?? {})) put(name, template);
  return merged;
}

/** Names of every attribute Roster manages on a person entry (including the forced ones). */
export function managedAttributeNames(spec: TemplateSpec): string[] {
  const names = [EMPLOYEE_ID_ATTRIBUTE, usernameAttributeOf(spec), ...Object.keys(ldapTemplates(spec))];
  // AD: cn is the entry's name, set when it is created (a modify cannot change it).
  return isAD(spec) ? names.filter((n) => n.toLowerCase() !== "cn") : names;
}

/** The desired attributes of the Employee's entry: attribute -> values, empty ones left out. */
export function ldapAttributes(
  employee: EmployeeSpecT,
  spec: TemplateSpec,
  references: TemplateReferences = {},
): Record<string, string[]> {
  return ldapAttributeRenderer(spec)(employee, references);
}

/** ldapAttributes with the spec's templates merged and compiled once, for many Employees. */
export function ldapAttributeRenderer(spec: TemplateSpec): AttributeRenderer {
  const usernameAttribute = usernameAttributeOf(spec);
  return attributeRendererOf(ldapTemplates(spec), (employee) => ({
    [EMPLOYEE_ID_ATTRIBUTE]: [employee.employeeId],
    [usernameAttribute]: [employee.username],
  }));
}

/** Problems with spec.attributes, as messages (for the Connector's status); empty when valid. */
export function validateLdapTemplates(spec: TemplateSpec): string[] {
  const forced = forcedKeys(spec);
  const problems: string[] = [];
  for (const [name, template] of Object.entries(spec.attributes ?? {})) {
    if (!/^[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*$/.test(name))
      problems.push(`attributes: invalid attribute name ${name}`);
    if (forced.has(name.toLowerCase())) problems.push(`attributes.${name}: set by Roster, cannot be mapped`);
    if (isAD(spec) && name.toLowerCase() === "cn" && template.trim() === "")
      problems.push(`attributes.cn: names Active Directory users (CN=<cn>), cannot be empty`);
    for (const p of validateTemplate(template)) problems.push(`attributes.${name}: ${p}`);
  }
  return problems;
}

function forcedKeys(spec: TemplateSpec): Set<string> {
  return new Set([EMPLOYEE_ID_ATTRIBUTE.toLowerCase(), usernameAttributeOf(spec).toLowerCase()]);
}
