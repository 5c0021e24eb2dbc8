// The column mapping of an HR export: which column feeds which Employee field. Given as
// `--map field=Column` flags or a YAML file (Employee field -> column), with `attributes.<name>`
// and `labels.<key>` for free-form fields.
import { load } from "js-yaml";
import { EMPLOYEE_STRING_FIELDS } from "../api/schema.ts";

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
  { kind: "spec"; field: SpecField } | { kind: "attribute"; name: string } | { kind: "label"; key: string };

export type MappedField = {
  /** As the user wrote it: `department`, `attributes.badge`, `labels.team`. */
  key: string;
  column: string;
  target: FieldTarget;
};

export type Mapping = { fields: MappedField[] };

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
  if (key.startsWith("labels.")) {
    const labelKey = key.slice("labels.".length);
    if (!isLabelKey(labelKey)) throw new MappingError(`"${key}": "${labelKey}" is not a valid label key`);
    return { kind: "label", key: labelKey };
  }
  throw new MappingError(
    `"${key}" is not an Employee field; use one of ${SPEC_FIELDS.join(", ")}, attributes.<name> or labels.<key>`,
  );
}

/** Builds a mapping from `field -> column` pairs; later pairs replace earlier ones for the same field. */
export function buildMapping(pairs: readonly (readonly [string, string])[]): Mapping {
  const byKey = new Map<string, MappedField>();
  for (const [key, column] of pairs) {
    const target = parseFieldKey(key);
    if (column.trim() === "") throw new MappingError(`"${key}": the column name is empty`);
    byKey.set(key, { key, column, target });
  }
  const fields = [...byKey.values()];
  const missing = REQUIRED_FIELDS.filter(
    (f) => !fields.some((m) => m.target.kind === "spec" && m.target.field === f),
  );
  if (missing.length > 0)
    throw new MappingError(`no column is mapped to the required field(s) ${missing.join(", ")}`);
  return { fields };
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
 * Parses a YAML mapping file: a map of Employee field -> column. `attributes` and `labels` may be
 * nested maps or dotted keys (`attributes.badge: Badge`).
 */
export function parseMappingYaml(text: string, file: string): [string, string][] {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (error) {
    throw new MappingError(`${file}: ${(error as Error).message}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc))
    throw new MappingError(`${file}: expected a map of Employee field -> column name`);
  const pairs: [string, string][] = [];
  const column = (key: string, value: unknown): string => {
    if (typeof value === "string" || typeof value === "number") return String(value);
    throw new MappingError(`${file}: "${key}": expected a column name, got ${JSON.stringify(value)}`);
  };
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if ((key === "attributes" || key === "labels") && value && typeof value === "object") {
      if (Array.isArray(value)) throw new MappingError(`${file}: "${key}": expected a map of name -> column`);
      for (const [name, col] of Object.entries(value as Record<string, unknown>))
        pairs.push([`${key}.${name}`, column(`${key}.${name}`, col)]);
      continue;
    }
    pairs.push([key, column(key, value)]);
  }
  try {
    for (const [key] of pairs) parseFieldKey(key);
  } catch (error) {
    throw new MappingError(`${file}: ${(error as Error).message}`);
  }
  return pairs;
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
  }
}
