// Attribute templates over Employee fields, shared by the LDAP and SCIM connectors (pure).
//
// A template is text with `{{field}}` placeholders (spaces inside the braces allowed):
//   "{{givenName}} {{familyName}}", "{{username}}@example.com", "{{attributes.badge}}".
// Fields are the string fields of Employee.spec (TEMPLATE_FIELDS) and `attributes.<name>`.
// Missing fields render as ""; `displayName` falls back to "givenName familyName",
// `employmentType` to Employee and `employmentStatus` to Active (the API defaults).
// References (REFERENCE_VARIABLES) are values from the target, resolved by the planner:
// `{{managerId}}` is the id of the manager's account in the same Connector (SCIM id, LDAP DN),
// "" while the manager has none.
import type { EmployeeSpecT } from "../api/types.ts";
import { EMPLOYEE_STRING_FIELDS } from "../api/schema.ts";

export const TEMPLATE_FIELDS = EMPLOYEE_STRING_FIELDS;

/** Template variables that are not Employee fields but ids in the target, resolved by the planner. */
export const REFERENCE_VARIABLES = ["managerId"] as const;

/** Values of the reference variables for one Employee and Connector (missing: unresolved). */
export type TemplateReferences = { managerId?: string };

const PLACEHOLDER = /\{\{\s*([^{}\s]*)\s*\}\}/g;
const ATTRIBUTE_NAME = /^attributes\.([A-Za-z0-9_.-]{1,63})$/;

/** The variables a template refers to, in order of appearance. */
export function templateVariables(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** Problems with a template (unknown variables), as messages; empty when it is valid. */
export function validateTemplate(template: string): string[] {
  return templateVariables(template)
    .filter(
      (v) =>
        !(TEMPLATE_FIELDS as readonly string[]).includes(v) &&
        !(REFERENCE_VARIABLES as readonly string[]).includes(v) &&
        !ATTRIBUTE_NAME.test(v),
    )
    .map(
      (v) =>
        `unknown template variable {{${v}}}; use one of ${[...TEMPLATE_FIELDS, ...REFERENCE_VARIABLES].join(", ")} or attributes.<name>`,
    );
}

/** The value of one template variable for an Employee ("" when unknown or unset). */
export function templateValue(
  employee: EmployeeSpecT,
  variable: string,
  references: TemplateReferences = {},
): string {
  const attr = ATTRIBUTE_NAME.exec(variable);
  if (attr) return employee.attributes?.[attr[1]!] ?? "";
  switch (variable) {
    case "managerId":
      return references.managerId ?? "";
    case "displayName":
      return employee.displayName || `${employee.givenName} ${employee.familyName}`;
    case "employmentType":
      return employee.employmentType ?? "Employee";
    case "employmentStatus":
      return employee.employmentStatus ?? "Active";
  }
  if (!(TEMPLATE_FIELDS as readonly string[]).includes(variable)) return "";
  const value = (employee as Record<string, unknown>)[variable];
  return typeof value === "string" ? value : "";
}

/** Renders a template for an Employee. Values are inserted verbatim (no escaping, no trimming). */
export function renderTemplate(
  template: string,
  employee: EmployeeSpecT,
  references: TemplateReferences = {},
): string {
  return template.replace(PLACEHOLDER, (_, variable: string) =>
    templateValue(employee, variable, references),
  );
}

/** Whether a template refers to a reference variable (e.g. managerId). */
export function refersTo(template: string, variable: (typeof REFERENCE_VARIABLES)[number]): boolean {
  return templateVariables(template).includes(variable);
}
