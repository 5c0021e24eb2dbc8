// The column mapping of an HR export: which column feeds which Employee field. Given as
// `--map field=Column` flags or a YAML file (Employee field -> column), with `attributes.<name>`
// and `labels.<key>` for free-form fields. In the YAML file a field may also be a map: a value
// map (`values`), a manager given by reference (`reference`), or generated usernames
// (`generate`), since HR systems carry neither usernames nor Roster's vocabulary.
import { load } from "js-yaml";
import { EMPLOYEE_STRING_FIELDS, EMPLOYMENT_STATUSES, EMPLOYMENT_TYPES } from "../api/schema.ts";
import { parseTemplate, TemplateError, USERNAME_MAX, type UsernameRule } from "./username.ts";

/** Employee spec fields that take one string from one column. */
export const SPEC_FIELDS = EMPLOYEE_STRING_FIELDS;
export type SpecField = (typeof SPEC_FIELDS)[number];

/** Fields every Employee needs (the schema's required fields). */
export const REQUIRED_FIELDS: readonly SpecField[] = [
  "employeeId",
  "username",
  "givenName",
  "familyName",
  "email",
];

const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,63}$/;
// A Kubernetes label key: optional DNS subdomain prefix and a name of at most 63 characters.
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** One mapped field: where it goes (`spec.department`, `spec.attributes.badge`, `metadata.labels.team`). */
export type FieldTarget =
  | { kind: "spec"; field: SpecField }
  | { kind: "attribute"; name: string }
  | { kind: "label"; key: string }
  /** Only roster.dev/adopt: rows an export marks as having an account already (api.md "Adopting"). */
  | { kind: "annotation"; key: string };

/** The one annotation an import may set: which connectors' existing accounts to link. */
export const ADOPT_ANNOTATION = "roster.dev/adopt";

/** HR value -> Employee value; keys are compared trimmed and without regard to case. */
export type ValueMap = { byKey: ReadonlyMap<string, string>; keys: readonly string[] };

/** What the manager column holds: the manager's username (default), employee id or email. */
export type ManagerReference = "username" | "employeeId" | "email";
export const MANAGER_REFERENCES: readonly ManagerReference[] = ["username", "employeeId", "email"];

export type MappedField = {
  /** As the user wrote it: `department`, `attributes.badge`, `labels.team`. */
  key: string;
  column: string;
  target: FieldTarget;
  /** Only these HR values are accepted, each turned into its Employee value. */
  values?: ValueMap;
  /** manager only: resolved to the manager's username from the export or the existing Employees. */
  reference?: ManagerReference;
  /** startDate, endDate: the export's date format (`MM/DD/YYYY`), turned into YYYY-MM-DD. */
  dateFormat?: DateFormat;
};

export type DateFormat = { source: string; pattern: RegExp; order: ("Y" | "M" | "D")[] };

export type Mapping = {
  fields: MappedField[];
  /** Usernames generated from the row when no username column is mapped or its cell is empty. */
  username?: UsernameRule;
};

/** One field's mapping as written: a column name, or a map with the column and its options. */
export type FieldSpec =
  | string
  | {
      column?: string;
      values?: Record<string, string>;
      reference?: string;
      generate?: string | string[];
      maxLength?: number;
      suffix?: string;
      dateFormat?: string;
    };

const OPTION_KEYS = [
  "column",
  "values",
  "reference",
  "generate",
  "maxLength",
  "suffix",
  "dateFormat",
] as const;

/** `MM/DD/YYYY`, `DD.MM.YYYY`, `D/M/YYYY`: YYYY, MM or M, DD or D, and separators. */
export function parseDateFormat(source: string): DateFormat {
  const order: DateFormat["order"] = [];
  let pattern = "";
  for (const token of source.match(/YYYY|MM|DD|M|D|[^YMD]+|[YMD]+/g) ?? []) {
    if (token === "YYYY") pattern += "(\\d{4})";
    else if (token === "MM" || token === "DD") pattern += "(\\d{2})";
    else if (token === "M" || token === "D") pattern += "(\\d{1,2})";
    else if (/^[^YMD]+$/.test(token)) {
      pattern += token.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      continue;
    } else
      throw new MappingError(`date format ${JSON.stringify(source)}: "${token}" is not YYYY, MM, M, DD or D`);
    order.push(token.charAt(0) as "Y" | "M" | "D");
  }
  if (order.length !== 3 || new Set(order).size !== 3)
    throw new MappingError(`date format ${JSON.stringify(source)}: needs YYYY, a month and a day, once each`);
  return { source, pattern: new RegExp(`^${pattern}$`), order };
}

/** The date as YYYY-MM-DD when it is in the format; undefined otherwise. */
export function reformatDate(value: string, format: DateFormat): string | undefined {
  const m = format.pattern.exec(value);
  if (!m) return undefined;
  const part = (which: "Y" | "M" | "D") => m[format.order.indexOf(which) + 1]!;
  return `${part("Y")}-${part("M").padStart(2, "0")}-${part("D").padStart(2, "0")}`;
}

const normalizeKey = (value: string) => value.trim().toLowerCase();

export class MappingError extends Error {
  override name = "MappingError";
}

export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !LABEL_PREFIX.test(prefix))) return false;
  return LABEL_NAME.test(name);
}

/** Parses one mapping key; throws MappingError naming the key when it is not a mappable field. */
export function parseFieldKey(key: string): FieldTarget {
  if ((SPEC_FIELDS as readonly string[]).includes(key)) return { kind: "spec", field: key as SpecField };
  if (key.startsWith("attributes.")) {
    const name = key.slice("attributes.".length);
    if (!ATTRIBUTE_NAME.test(name))
      throw new MappingError(`"${key}": attribute names must match ${ATTRIBUTE_NAME.source}`);
    return { kind: "attribute", name };
  }
  if (key === `annotations.${ADOPT_ANNOTATION}`) return { kind: "annotation", key: ADOPT_ANNOTATION };
  if (key.startsWith("labels.")) {
    const labelKey = key.slice("labels.".length);
    if (!isLabelKey(labelKey)) throw new MappingError(`"${key}": "${labelKey}" is not a valid label key`);
    return { kind: "label", key: labelKey };
  }
  throw new MappingError(
    `"${key}" is not an Employee field; use one of ${SPEC_FIELDS.join(", ")}, attributes.<name>, labels.<key> or annotations.${ADOPT_ANNOTATION}`,
  );
}

const ENUMS: Record<string, readonly string[]> = {
  employmentType: EMPLOYMENT_TYPES,
  employmentStatus: EMPLOYMENT_STATUSES,
};

function buildValueMap(key: string, raw: unknown): ValueMap {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw new MappingError(`"${key}": values: expected a map of HR value -> Employee value`);
  const byKey = new Map<string, string>();
  const keys: string[] = [];
  const allowed = ENUMS[key];
  for (const [from, to] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof to !== "string" && typeof to !== "number" && typeof to !== "boolean")
      throw new MappingError(`"${key}": values: "${from}": expected a value, got ${JSON.stringify(to)}`);
    const value = String(to);
    if (allowed && !allowed.includes(value))
      throw new MappingError(
        `"${key}": values: "${from}" maps to "${value}", which is not one of ${allowed.join(", ")}`,
      );
    const k = normalizeKey(from);
    if (byKey.has(k)) throw new MappingError(`"${key}": values: "${from}" is given twice`);
    byKey.set(k, value);
    keys.push(from);
  }
  if (keys.length === 0) throw new MappingError(`"${key}": values: the map is empty`);
  return { byKey, keys };
}

function buildUsernameRule(key: string, spec: Exclude<FieldSpec, string>): UsernameRule {
  const sources = typeof spec.generate === "string" ? [spec.generate] : spec.generate;
  if (!Array.isArray(sources) || sources.length === 0 || sources.some((t) => typeof t !== "string"))
    throw new MappingError(`"${key}": generate: expected a template or a list of templates`);
  const maxLength = spec.maxLength ?? USERNAME_MAX;
  if (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > USERNAME_MAX)
    throw new MappingError(`"${key}": maxLength: expected a whole number from 2 to ${USERNAME_MAX}`);
  const suffix = spec.suffix ?? "numeric";
  if (suffix !== "numeric" && suffix !== "none")
    throw new MappingError(`"${key}": suffix: expected numeric or none, got ${JSON.stringify(suffix)}`);
  try {
    return { templates: sources.map(parseTemplate), maxLength, suffix };
  } catch (error) {
    if (error instanceof TemplateError) throw new MappingError(`"${key}": generate: ${error.message}`);
    throw error;
  }
}

/**
 * Builds a mapping from `field -> column` (or `field -> options`) pairs; later pairs replace
 * earlier ones for the same field.
 */
export function buildMapping(pairs: readonly (readonly [string, FieldSpec])[]): Mapping {
  const byKey = new Map<string, MappedField>();
  let username: UsernameRule | undefined;
  for (const [key, spec] of pairs) {
    const target = parseFieldKey(key);
    const options = typeof spec === "string" ? { column: spec } : spec;
    if (!options || typeof options !== "object" || Array.isArray(options))
      throw new MappingError(`"${key}": expected a column name or a map with column`);
    const unknown = Object.keys(options).filter((k) => !(OPTION_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0)
      throw new MappingError(
        `"${key}": unknown option(s) ${unknown.join(", ")}; use column, values${key === "manager" ? ", reference" : ""}${key === "username" ? ", generate, maxLength, suffix" : ""}${key.endsWith("Date") ? ", dateFormat" : ""}`,
      );
    const isUsername = target.kind === "spec" && target.field === "username";
    if (!isUsername && (options.generate !== undefined || options.maxLength !== undefined || options.suffix))
      throw new MappingError(`"${key}": generate, maxLength and suffix apply to username only`);
    if (options.reference !== undefined && key !== "manager")
      throw new MappingError(`"${key}": reference applies to manager only`);
    if (options.dateFormat !== undefined && key !== "startDate" && key !== "endDate")
      throw new MappingError(`"${key}": dateFormat applies to startDate and endDate only`);
    if (isUsername) {
      if (options.values !== undefined)
        throw new MappingError(`"${key}": values do not apply to username; use generate`);
      username = options.generate !== undefined ? buildUsernameRule(key, options) : undefined;
      if (options.column === undefined) {
        byKey.delete(key);
        if (!username) throw new MappingError(`"${key}": expected a column or generate`);
        continue;
      }
    }
    const column = options.column;
    if (typeof column !== "string" && typeof column !== "number")
      throw new MappingError(`"${key}": expected a column name, got ${JSON.stringify(column)}`);
    if (String(column).trim() === "") throw new MappingError(`"${key}": the column name is empty`);
    const field: MappedField = { key, column: String(column), target };
    if (options.values !== undefined) field.values = buildValueMap(key, options.values);
    if (options.reference !== undefined) {
      if (!(MANAGER_REFERENCES as readonly string[]).includes(options.reference))
        throw new MappingError(
          `"${key}": reference: expected one of ${MANAGER_REFERENCES.join(", ")}, got ${JSON.stringify(options.reference)}`,
        );
      field.reference = options.reference as ManagerReference;
    }
    if (options.dateFormat !== undefined) {
      try {
        field.dateFormat = parseDateFormat(String(options.dateFormat));
      } catch (error) {
        throw new MappingError(`"${key}": ${(error as Error).message}`);
      }
    }
    byKey.set(key, field);
  }
  const fields = [...byKey.values()];
  const missing = REQUIRED_FIELDS.filter(
    (f) =>
      !fields.some((m) => m.target.kind === "spec" && m.target.field === f) &&
      !(f === "username" && username),
  );
  if (missing.length > 0)
    throw new MappingError(`no column is mapped to the required field(s) ${missing.join(", ")}`);
  return username ? { fields, username } : { fields };
}

/** Every column the mapping reads, with what it feeds (for the header check). */
export function mappingColumns(mapping: Mapping): { column: string; feeds: string }[] {
  const out = mapping.fields.map((m) => ({ column: m.column, feeds: fieldPath(m.target) }));
  for (const t of mapping.username?.templates ?? [])
    for (const part of t.parts)
      if ("column" in part && !out.some((o) => o.column === part.column))
        out.push({ column: part.column, feeds: "spec.username (generate)" });
  return out;
}

/** Parses `--map field=Column` values into pairs. */
export function parseMapFlags(values: readonly string[]): [string, string][] {
  return values.map((value) => {
    const eq = value.indexOf("=");
    if (eq <= 0) throw new MappingError(`--map ${JSON.stringify(value)}: expected field=Column`);
    return [value.slice(0, eq).trim(), value.slice(eq + 1).trim()];
  });
}

/**
 * Parses a YAML mapping file: a map of Employee field -> column, or field -> options (column,
 * values, reference, generate, ...). `attributes` and `labels` may be nested maps or dotted keys
 * (`attributes.badge: Badge`).
 */
export function parseMappingYaml(text: string, file: string): [string, FieldSpec][] {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (error) {
    throw new MappingError(`${file}: ${(error as Error).message}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc))
    throw new MappingError(`${file}: expected a map of Employee field -> column name`);
  const pairs: [string, FieldSpec][] = [];
  const spec = (key: string, value: unknown): FieldSpec => {
    if (typeof value === "string" || typeof value === "number") return String(value);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as FieldSpec;
    throw new MappingError(`${file}: "${key}": expected a column name, got ${JSON.stringify(value)}`);
  };
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if ((key === "attributes" || key === "labels") && value && typeof value === "object") {
      if (Array.isArray(value)) throw new MappingError(`${file}: "${key}": expected a map of name -> column`);
      for (const [name, col] of Object.entries(value as Record<string, unknown>))
        pairs.push([`${key}.${name}`, spec(`${key}.${name}`, col)]);
      continue;
    }
    pairs.push([key, spec(key, value)]);
  }
  try {
    for (const [key] of pairs) parseFieldKey(key);
  } catch (error) {
    throw new MappingError(`${file}: ${(error as Error).message}`);
  }
  return pairs;
}

/** Reads a mapping file's pairs and builds the mapping, naming the file in every error. */
export function mappingFromYaml(
  text: string,
  file: string,
  extra: readonly [string, string][] = [],
): Mapping {
  const pairs = parseMappingYaml(text, file);
  try {
    return buildMapping([...pairs, ...extra]);
  } catch (error) {
    if (error instanceof MappingError) throw new MappingError(`${file}: ${error.message}`);
    throw error;
  }
}

/** The path of a mapped field in an Employee object, for messages and diffs. */
export function fieldPath(target: FieldTarget): string {
  switch (target.kind) {
    case "spec":
      return `spec.${target.field}`;
    case "attribute":
      return `spec.attributes.${target.name}`;
    case "label":
      return `metadata.labels.${target.key}`;
    case "annotation":
      return `metadata.annotations.${target.key}`;
  }
}
