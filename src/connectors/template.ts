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
import { ownValue } from "../api/records.ts";

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

type Reader = (employee: EmployeeSpecT, references: TemplateReferences) => string;

/** How one variable is read, decided once per variable instead of once per Employee. */
function variableReader(variable: string): Reader {
  const attr = ATTRIBUTE_NAME.exec(variable);
  if (attr) {
    const name = attr[1]!;
    return (e) => ownValue(e.attributes, name) ?? "";
  }
  switch (variable) {
    case "managerId":
      return (_, r) => r.managerId ?? "";
    case "displayName":
      return (e) => e.displayName || `${e.givenName} ${e.familyName}`;
    case "employmentType":
      return (e) => e.employmentType ?? "Employee";
    case "employmentStatus":
      return (e) => e.employmentStatus ?? "Active";
  }
  if (!(TEMPLATE_FIELDS as readonly string[]).includes(variable)) return () => "";
  return (e) => {
    const value = (e as Record<string, unknown>)[variable];
    return typeof value === "string" ? value : "";
  };
}

/** A template compiled: its text split around the placeholders once, rendered by concatenation. */
export type CompiledTemplate = (employee: EmployeeSpecT, references?: TemplateReferences) => string;

// A scan renders every mapped attribute of every Employee; the Connectors' few templates are
// compiled once and kept (cleared when a flood of distinct templates would grow it without bound).
const compiled = new Map<string, CompiledTemplate>();

export function compileTemplate(template: string): CompiledTemplate {
  let render = compiled.get(template);
  if (render) return render;
  const texts: string[] = [];
  const readers: Reader[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    texts.push(template.slice(last, m.index));
    readers.push(variableReader(m[1]!));
    last = m.index + m[0].length;
  }
  const tail = template.slice(last);
  render = (employee, references = {}) => {
    let out = "";
    for (let i = 0; i < readers.length; i++) out += texts[i]! + readers[i]!(employee, references);
    return out + tail;
  };
  if (compiled.size >= 1024) compiled.clear();
  compiled.set(template, render);
  return render;
}

/** Renders a template for an Employee. Values are inserted verbatim (no escaping, no trimming). */
export function renderTemplate(
  template: string,
  employee: EmployeeSpecT,
  references: TemplateReferences = {},
): string {
  return compileTemplate(template)(employee, references);
}

/** Whether a template refers to a reference variable (e.g. managerId). */
export function refersTo(template: string, variable: (typeof REFERENCE_VARIABLES)[number]): boolean {
  return templateVariables(template).includes(variable);
}

/** Attribute -> values for an Employee: the forced ones, then each template's non-blank rendering. */
export type AttributeRenderer = (
  employee: EmployeeSpecT,
  references?: TemplateReferences,
) => Record<string, string[]>;

/** An AttributeRenderer over a mapping's templates, compiled once for all the Employees it renders. */
export function attributeRendererOf(
  templates: Record<string, string>,
  forced: (employee: EmployeeSpecT) => Record<string, string[]>,
): AttributeRenderer {
  const compiledTemplates = Object.entries(templates).map(([name, t]) => [name, compileTemplate(t)] as const);
  return (employee, references = {}) => {
    const out = forced(employee);
    for (const [name, render] of compiledTemplates) {
      const value = render(employee, references);
      if (value.trim() !== "") out[name] = [value];
    }
    return out;
  };
}
