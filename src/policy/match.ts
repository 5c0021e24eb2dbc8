// Selector and match semantics of AccessPolicy and GroupRule (api.md), as pure functions.
import { RE2JS } from "re2js";
import type { Employee, LabelSelectorSpec, MatchRequirementSpec } from "../api/types.ts";
import { ownValue } from "../api/records.ts";

/** The value of a match key on an Employee: a spec field or attributes.<name>; undefined when absent. */
export function employeeField(employee: Employee, key: string): string | undefined {
  const spec = employee.spec;
  if (key.startsWith("attributes.")) return ownValue(spec.attributes, key.slice("attributes.".length));
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

/**
 * Compiled Matches expressions, or why one is invalid, least recently used first. Bounded, so that
 * patterns edited away over the life of the process do not pile up (each compiled RE2 also keeps
 * its own bounded DFA state cache).
 */
const CACHE_SIZE = 256;
const patternCache = new Map<string, RE2JS | { invalid: string }>();

/**
 * Compiles a Matches expression with RE2 (re2js, a port of RE2/J with Go's regexp syntax), the
 * engine admission checks it with (CEL `matches`): the same syntax, inline flags such as (?i) and
 * errors, and matching in time linear in the input, so no pattern or value can stall the operator
 * (api.md). Matching is unanchored, as in CEL and Go: anchor with ^ and $ for a whole-value match.
 * Every evaluation of a pattern goes through here. Throws InvalidRequirement for a pattern RE2
 * rejects (backreferences, lookaround and the like).
 */
export function compilePattern(pattern: string): RE2JS {
  let compiled = patternCache.get(pattern);
  if (compiled) {
    patternCache.delete(pattern);
  } else {
    try {
      compiled = RE2JS.compile(pattern);
    } catch (error) {
      compiled = {
        invalid: `invalid regular expression ${JSON.stringify(pattern)}: ${(error as Error).message}`,
      };
    }
    if (patternCache.size >= CACHE_SIZE) patternCache.delete(patternCache.keys().next().value!);
  }
  patternCache.set(pattern, compiled);
  if (!(compiled instanceof RE2JS)) throw new InvalidRequirement(compiled.invalid);
  return compiled;
}

/** Whether a match requirement holds for the value it sees (undefined: the field is absent). */
function fieldRequirementHolds(value: string | undefined, requirement: MatchRequirementSpec): boolean {
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

type LabelRequirement = NonNullable<LabelSelectorSpec["matchExpressions"]>[number];

/** Whether a label selector expression holds for the label value it sees (undefined: no such label). */
function labelRequirementHolds(value: string | undefined, expression: LabelRequirement): boolean {
  // Its operators are match's without Matches, with the same meaning.
  return fieldRequirementHolds(value, expression);
}

export function requirementHolds(employee: Employee, requirement: MatchRequirementSpec): boolean {
  return fieldRequirementHolds(employeeField(employee, requirement.key), requirement);
}

export function selectorMatches(
  labels: Record<string, string> | undefined,
  selector: LabelSelectorSpec | undefined,
): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (ownValue(labels, key) !== value) return false;
  for (const expression of selector.matchExpressions ?? [])
    if (!labelRequirementHolds(ownValue(labels, expression.key), expression)) return false;
  return true;
}

/** One selector or match entry as evaluated for one Employee: what it asks, what it saw, and whether it held. */
export type EntryResult = {
  /** Where the entry is: selector.matchLabels, selector.matchExpressions[i] or match[i]. */
  entry: string;
  key: string;
  /** "=" for a matchLabels entry, else the entry's operator. */
  operator: string;
  values: string[];
  /** The label or field value the entry saw; undefined when the Employee has none. */
  seen: string | undefined;
  holds: boolean;
};

/**
 * Every entry of a selector and match, each evaluated (not stopping at the first that fails), for
 * explanations; the same rules as employeeMatches. Throws InvalidRequirement for a bad expression.
 */
export function explainMatch(
  employee: Employee,
  selector: LabelSelectorSpec | undefined,
  match: MatchRequirementSpec[] | undefined,
): EntryResult[] {
  const label = (key: string) => ownValue(employee.metadata.labels, key);
  const results: EntryResult[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {}))
    results.push({
      entry: "selector.matchLabels",
      key,
      operator: "=",
      values: [value],
      seen: label(key),
      holds: label(key) === value,
    });
  for (const [index, expression] of (selector?.matchExpressions ?? []).entries())
    results.push({
      entry: `selector.matchExpressions[${index}]`,
      key: expression.key,
      operator: expression.operator,
      values: expression.values ?? [],
      seen: label(expression.key),
      holds: labelRequirementHolds(label(expression.key), expression),
    });
  for (const [index, requirement] of (match ?? []).entries()) {
    const seen = employeeField(employee, requirement.key);
    results.push({
      entry: `match[${index}]`,
      key: requirement.key,
      operator: requirement.operator,
      values: requirement.values ?? [],
      seen,
      holds: fieldRequirementHolds(seen, requirement),
    });
  }
  return results;
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
