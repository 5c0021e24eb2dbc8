// Selector and match semantics of AccessPolicy and GroupRule (api.md), as pure functions.
import { RE2JS } from "re2js";
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
