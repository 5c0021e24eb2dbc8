// Selector and match semantics of AccessPolicy and GroupRule (api.md), as pure functions.
import type { Employee, LabelSelectorSpec, MatchRequirementSpec } from "../api/types.ts";

/** The value of a match key on an Employee: a spec field or attributes.<name>; undefined when absent. */
export function employeeField(employee: Employee, key: string): string | undefined {
  const spec = employee.spec;
  if (key.startsWith("attributes.")) return spec.attributes?.[key.slice("attributes.".length)];
  switch (key) {
    case "employmentType":
      return spec.employmentType ?? "Employee";
    case "employmentStatus":
      return spec.employmentStatus ?? "Active";
    case "department":
    case "title":
    case "location":
    case "costCenter":
    case "manager": {
      const value = spec[key];
      return value === undefined || value === "" ? undefined : value;
    }
    default:
      return undefined;
  }
}

export class InvalidRequirement extends Error {}

const regexCache = new Map<string, RegExp>();

/**
 * Compiles a Matches expression. Admission checks it with RE2 (CEL); here a leading inline
 * flag group such as (?i) becomes a JavaScript flag, since JavaScript lacks that form.
 * Matching is unanchored, as in CEL and Go: anchor with ^ and $ for a whole-value match.
 */
export function compilePattern(pattern: string): RegExp {
  let regex = regexCache.get(pattern);
  if (regex) return regex;
  const flagged = /^\(\?([imsU]+)\)/.exec(pattern);
  const flags = flagged ? [...new Set(flagged[1]!.replace("U", "").split(""))].join("") : "";
  try {
    regex = new RegExp(flagged ? pattern.slice(flagged[0].length) : pattern, flags + "u");
  } catch (error) {
    throw new InvalidRequirement(
      `invalid regular expression ${JSON.stringify(pattern)}: ${(error as Error).message}`,
    );
  }
  regexCache.set(pattern, regex);
  return regex;
}

export function requirementHolds(employee: Employee, requirement: MatchRequirementSpec): boolean {
  const value = employeeField(employee, requirement.key);
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Matches":
      return value !== undefined && values.some((pattern) => compilePattern(pattern).test(value));
  }
}

export function selectorMatches(
  labels: Record<string, string> | undefined,
  selector: LabelSelectorSpec | undefined,
): boolean {
  if (!selector) return true;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (have[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const value = have[expression.key];
    const values = expression.values ?? [];
    const holds =
      expression.operator === "In"
        ? value !== undefined && values.includes(value)
        : expression.operator === "NotIn"
          ? value === undefined || !values.includes(value)
          : expression.operator === "Exists"
            ? value !== undefined
            : value === undefined;
    if (!holds) return false;
  }
  return true;
}

/** Whether selector and every match requirement hold. Throws InvalidRequirement for a bad expression. */
export function employeeMatches(
  employee: Employee,
  selector: LabelSelectorSpec | undefined,
  match: MatchRequirementSpec[] | undefined,
): boolean {
  return (
    selectorMatches(employee.metadata.labels, selector) &&
    (match ?? []).every((r) => requirementHolds(employee, r))
  );
}

/** Problems in a selector/match that admission could not catch, for the object's status. */
export function requirementProblems(match: MatchRequirementSpec[] | undefined): string[] {
  const problems: string[] = [];
  for (const [index, requirement] of (match ?? []).entries()) {
    if (requirement.operator !== "Matches") continue;
    for (const pattern of requirement.values ?? []) {
      try {
        compilePattern(pattern);
      } catch (error) {
        problems.push(`match[${index}]: ${(error as Error).message}`);
      }
    }
  }
  return problems;
}
