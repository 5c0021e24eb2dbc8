// Usernames made from HR columns, as identity teams derive them (Entra's SelectUniqueValue, Okta's
// username formats): templates over the row's columns, tried in order, made to fit the username
// pattern (ASCII, lower case, only a-z 0-9 . _ -), then a numeric suffix when every one is taken.
import anyAscii from "any-ascii";
import { cell } from "./source.ts";

/** The Employee username pattern (src/api/schema.ts). */
export const USERNAME_PATTERN = /^[a-z][a-z0-9._-]{0,63}$/;
export const USERNAME_MAX = 64;

export type Filter =
  | { name: "first" | "last" | "word"; n: number }
  | { name: "before" | "after"; text: string }
  | { name: "initials" | "clean" };

export type TemplatePart = { text: string } | { column: string; filters: Filter[] };

export type UsernameTemplate = { source: string; parts: TemplatePart[] };

export type UsernameRule = {
  /** Tried in order; the first whose result is free wins. */
  templates: UsernameTemplate[];
  maxLength: number;
  /** When every template's result is taken: `numeric` adds 2, 3, ... to the first one; `none` refuses the row. */
  suffix: "numeric" | "none";
};

export class TemplateError extends Error {
  override name = "TemplateError";
}

const FILTERS_WITH_NUMBER = new Set(["first", "last", "word"]);
const FILTERS_WITH_TEXT = new Set(["before", "after"]);
const FILTERS_PLAIN = new Set(["initials", "clean"]);

function parseFilter(text: string, template: string): Filter {
  const colon = text.indexOf(":");
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  const arg = colon < 0 ? undefined : text.slice(colon + 1);
  if (FILTERS_WITH_NUMBER.has(name)) {
    const n = Number(arg);
    if (arg === undefined || !Number.isInteger(n) || n < 1)
      throw new TemplateError(`${JSON.stringify(template)}: "${name}" needs a positive number (${name}:2)`);
    return { name: name as "first" | "last" | "word", n };
  }
  if (FILTERS_WITH_TEXT.has(name)) {
    if (!arg) throw new TemplateError(`${JSON.stringify(template)}: "${name}" needs a text (${name}:@)`);
    return { name: name as "before" | "after", text: arg };
  }
  if (FILTERS_PLAIN.has(name) && arg === undefined) return { name: name as "initials" | "clean" };
  throw new TemplateError(
    `${JSON.stringify(template)}: unknown filter "${text}"; use first:N, last:N, word:N, initials, before:TEXT, after:TEXT or clean`,
  );
}

/** Parses `{Legal First Name|first:1}.{Legal Last Name}`: literal text and `{Column|filter|...}`. */
export function parseTemplate(source: string): UsernameTemplate {
  const parts: TemplatePart[] = [];
  let rest = source;
  while (rest.length > 0) {
    const open = rest.indexOf("{");
    if (open < 0) {
      if (rest.includes("}")) throw new TemplateError(`${JSON.stringify(source)}: "}" without "{"`);
      parts.push({ text: rest });
      break;
    }
    if (open > 0) {
      const text = rest.slice(0, open);
      if (text.includes("}")) throw new TemplateError(`${JSON.stringify(source)}: "}" without "{"`);
      parts.push({ text });
    }
    const close = rest.indexOf("}", open);
    if (close < 0) throw new TemplateError(`${JSON.stringify(source)}: "{" without "}"`);
    const [column, ...filters] = rest.slice(open + 1, close).split("|");
    if (!column || column.trim() === "")
      throw new TemplateError(`${JSON.stringify(source)}: "{}" names no column`);
    parts.push({ column: column.trim(), filters: filters.map((f) => parseFilter(f, source)) });
    rest = rest.slice(close + 1);
  }
  if (!parts.some((p) => "column" in p))
    throw new TemplateError(`${JSON.stringify(source)}: names no column (write columns as {Column})`);
  return { source, parts };
}

/** The columns a template reads. */
export function templateColumns(template: UsernameTemplate): string[] {
  return template.parts.flatMap((p) => ("column" in p ? [p.column] : []));
}

const words = (value: string) => value.split(/[\s-]+/).filter((w) => w !== "");

function applyFilter(value: string, filter: Filter): string {
  switch (filter.name) {
    case "first":
      return [...value].slice(0, filter.n).join("");
    case "last":
      return [...value].slice(-filter.n).join("");
    case "word":
      return words(value)[filter.n - 1] ?? "";
    case "initials":
      return words(value)
        .map((w) => w.charAt(0))
        .join("");
    case "before": {
      const at = value.indexOf(filter.text);
      return at < 0 ? value : value.slice(0, at);
    }
    case "after": {
      const at = value.indexOf(filter.text);
      return at < 0 ? "" : value.slice(at + filter.text.length);
    }
    case "clean":
      return value.replace(/[^A-Za-z0-9._-]/g, "");
  }
}

/**
 * Makes a string fit the username pattern: ASCII transliteration (any-ascii: "Zoë" -> "Zoe",
 * "Łukasz" -> "Lukasz", "Иван" -> "Ivan"), lower case, only a-z 0-9 . _ -, starting with a
 * letter, no runs or trailing separators, at most maxLength characters. Undefined when nothing
 * is left.
 */
export function normalizeUsername(raw: string, maxLength: number = USERNAME_MAX): string | undefined {
  const out = anyAscii(raw)
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, "")
    .replace(/([._-])[._-]+/g, "$1")
    .replace(/^[^a-z]+/, "")
    .slice(0, Math.min(maxLength, USERNAME_MAX))
    .replace(/[._-]+$/, "");
  return out === "" ? undefined : out;
}

export type Candidates = {
  /** Normalized results of the templates that could be filled, in template order, without repeats. */
  candidates: string[];
  /** Columns that were empty, for the refusal when no template could be filled. */
  empty: string[];
};

/** The row's username candidates. A template with an empty column (after filters) is skipped. */
export function usernameCandidates(rule: UsernameRule, values: Record<string, unknown>): Candidates {
  const candidates: string[] = [];
  const empty = new Set<string>();
  for (const template of rule.templates) {
    let raw = "";
    let filled = true;
    for (const part of template.parts) {
      if ("text" in part) {
        raw += part.text;
        continue;
      }
      const value = cell(values, part.column);
      // Transliterate first, so that first:1 of "Élodie" is "E" and word splits see ASCII.
      const piece = part.filters.reduce(applyFilter, anyAscii(value ?? "")).trim();
      // A column with nothing usable in it (empty, or only punctuation) makes the template unusable.
      if (piece.toLowerCase().replace(/[^a-z0-9]/g, "") === "") {
        empty.add(part.column);
        filled = false;
        break;
      }
      raw += piece;
    }
    if (!filled) continue;
    const name = normalizeUsername(raw, rule.maxLength);
    if (name !== undefined && !candidates.includes(name)) candidates.push(name);
  }
  return { candidates, empty: [...empty] };
}

/**
 * The first free candidate, else (suffix numeric) the first candidate with the lowest free number
 * from 2 on, cut so that it still fits maxLength. Undefined when nothing is free.
 */
export function pickUsername(
  rule: Pick<UsernameRule, "maxLength" | "suffix">,
  candidates: readonly string[],
  isTaken: (username: string) => boolean,
): string | undefined {
  const free = candidates.find((c) => !isTaken(c));
  if (free !== undefined || rule.suffix === "none" || candidates.length === 0) return free;
  const base = candidates[0]!;
  const max = Math.min(rule.maxLength, USERNAME_MAX);
  for (let n = 2; n < 100_000; n++) {
    const suffix = String(n);
    const stem = base.slice(0, max - suffix.length).replace(/[._-]+$/, "");
    if (stem === "") return undefined;
    const name = `${stem}${suffix}`;
    if (!isTaken(name)) return name;
  }
  return undefined;
}

/**
 * True when `username` is what the rule gives (or gave, with a suffix) for these candidates: an
 * existing username that is not is reported, since it is kept (usernames are immutable).
 */
export function explainsUsername(candidates: readonly string[], username: string): boolean {
  if (candidates.includes(username)) return true;
  const stem = username.replace(/\d+$/, "").replace(/[._-]+$/, "");
  return stem !== username && stem !== "" && candidates.some((c) => c.startsWith(stem));
}
