// Which attributes a SCIM User gets from an Employee, and how the flat attribute map that the planner
// diffs is written to and read from SCIM resources (pure).
//
// Desired and actual attributes are flat maps: SCIM attribute path (RFC 7644 section 3.10) -> values.
// Supported paths: `attr`, `attr.sub`, `attr[sub eq "v"].sub` (one element of a multi-valued
// complex attribute, e.g. emails[type eq "work"].value), each optionally prefixed by a schema URN
// (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`). A valuePath without a
// sub-attribute means its `value`.
//
// The default mapping is merged with Connector.spec.scim.attributes: a spec entry replaces the
// default with the same path (compared case-insensitively, as SCIM names are), and mapping a path
// to "" removes it. userName (= username) and externalId (= employeeId, the ownership key) are always
// set and cannot be mapped; neither can id, meta, schemas, active (the enabled state), password or
// groups. Values that render empty or blank are omitted.
import type { EmployeeSpecT, ScimSpecT } from "../../api/types.ts";
import {
  attributeRendererOf,
  validateTemplate,
  type AttributeRenderer,
  type TemplateReferences,
} from "../template.ts";

export const CORE_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
export const CORE_GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
export const ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
export const PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/** The ownership key: SCIM externalId holds Employee.spec.employeeId. */
export const EMPLOYEE_ID_ATTRIBUTE = "externalId";
export const USERNAME_ATTRIBUTE = "userName";

export const DEFAULT_SCIM_TEMPLATES: Readonly<Record<string, string>> = {
  "name.givenName": "{{givenName}}",
  "name.familyName": "{{familyName}}",
  displayName: "{{displayName}}", // falls back to "givenName familyName"
  'emails[type eq "work"].value': "{{email}}",
  title: "{{title}}",
  [`${ENTERPRISE_USER_SCHEMA}:employeeNumber`]: "{{employeeId}}",
  [`${ENTERPRISE_USER_SCHEMA}:department`]: "{{department}}",
  [`${ENTERPRISE_USER_SCHEMA}:costCenter`]: "{{costCenter}}",
  // RFC 7643 section 4.3: the manager's SCIM id (of their account in this Connector), not a name.
  [`${ENTERPRISE_USER_SCHEMA}:manager.value`]: "{{managerId}}",
};

/** Attributes the connector sets itself or that are not plain data; never mappable. */
const RESERVED = new Set(["id", "meta", "schemas", "active", "password", "groups", "username", "externalid"]);

type Resource = Record<string, unknown>;

// --- paths ----------------------------------------------------------------------------------

export type ScimPath = {
  /** Schema URN of an extension attribute; undefined for core attributes. */
  schema?: string;
  attribute: string;
  /** Selects elements of a multi-valued attribute: [attribute eq "value"]. */
  filter?: { attribute: string; value: string };
  subAttribute?: string;
};

const NAME = "[A-Za-z][A-Za-z0-9_$-]*";
const ATTRIBUTE_PATH = new RegExp(
  `^(${NAME})(?:\\[\\s*(${NAME})\\s+eq\\s+("(?:[^"\\\\]|\\\\.)*")\\s*\\])?(?:\\.(${NAME}))?$`,
  "i",
);

/**
 * Parses a supported attribute path; throws with a readable message otherwise. The mapping's few
 * paths are parsed for every account of a scan, so parses are kept (frozen: callers share them).
 */
export function parseScimPath(path: string): ScimPath {
  let parsed = parsedPaths.get(path);
  if (!parsed) {
    parsed = parsePath(path);
    if (parsed.filter) Object.freeze(parsed.filter);
    Object.freeze(parsed);
    if (parsedPaths.size >= 1024) parsedPaths.clear();
    parsedPaths.set(path, parsed);
  }
  return parsed;
}

const parsedPaths = new Map<string, ScimPath>();

function parsePath(path: string): ScimPath {
  let schema: string | undefined;
  let rest = path.trim();
  if (/^urn:/i.test(rest)) {
    const bracket = rest.indexOf("[");
    const colon = rest.lastIndexOf(":", bracket === -1 ? rest.length : bracket);
    schema = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
    if (!/^urn:[A-Za-z0-9][A-Za-z0-9-]*:\S+$/.test(schema)) {
      throw new Error(`invalid SCIM attribute path ${JSON.stringify(path)}: bad schema URN`);
    }
  }
  const m = ATTRIBUTE_PATH.exec(rest);
  if (!m) {
    throw new Error(
      `invalid SCIM attribute path ${JSON.stringify(path)}: expected attr, attr.sub or attr[sub eq "value"].sub, optionally prefixed by a schema URN`,
    );
  }
  const out: ScimPath = { attribute: m[1]! };
  if (schema) out.schema = schema;
  if (m[2]) {
    out.filter = { attribute: m[2], value: JSON.parse(m[3]!) as string };
    out.subAttribute = m[4] ?? "value";
  } else if (m[4]) {
    out.subAttribute = m[4];
  }
  return out;
}

/** The canonical string form of a path (filter value JSON-quoted). */
export function formatScimPath(p: ScimPath, withSubAttribute = true): string {
  let out = p.schema ? `${p.schema}:${p.attribute}` : p.attribute;
  if (p.filter) out += `[${p.filter.attribute} eq ${JSON.stringify(p.filter.value)}]`;
  if (withSubAttribute && p.subAttribute) out += `.${p.subAttribute}`;
  return out;
}

/** A comparison key for paths: SCIM names (and canonical values like "work") ignore case. */
export function scimPathKey(path: string): string {
  try {
    return formatScimPath(parseScimPath(path)).toLowerCase();
  } catch {
    return path.trim().toLowerCase();
  }
}

// --- templates ------------------------------------------------------------------------------

type TemplateSpec = Pick<ScimSpecT, "attributes">;

/** Path -> template after merging the defaults with spec.attributes (reserved paths excluded). */
export function scimTemplates(spec: TemplateSpec): Record<string, string> {
  const merged = new Map<string, { path: string; template: string }>();
  const put = (path: string, template: string) => {
    if (isReserved(path)) return;
    merged.set(scimPathKey(path), { path, template });
  };
  for (const [path, template] of Object.entries(DEFAULT_SCIM_TEMPLATES)) put(path, template);
  for (const [path, template] of Object.entries(spec.attributes ?? {})) put(path, template);
  const out: Record<string, string> = {};
  for (const { path, template } of merged.values()) if (template !== "") out[path] = template;
  return out;
}

/** Paths of every attribute Roster manages on a SCIM User (including userName and externalId). */
export function scimManagedAttributes(spec: TemplateSpec): string[] {
  return [USERNAME_ATTRIBUTE, EMPLOYEE_ID_ATTRIBUTE, ...Object.keys(scimTemplates(spec))];
}

/** The desired attributes of the Employee's SCIM User: path -> values, empty ones left out. */
export function scimAttributes(
  employee: EmployeeSpecT,
  spec: TemplateSpec,
  references: TemplateReferences = {},
): Record<string, string[]> {
  return scimAttributeRenderer(spec)(employee, references);
}

/** scimAttributes with the spec's templates merged and compiled once, for many Employees. */
export function scimAttributeRenderer(spec: TemplateSpec): AttributeRenderer {
  return attributeRendererOf(scimTemplates(spec), (employee) => ({
    [USERNAME_ATTRIBUTE]: [employee.username],
    [EMPLOYEE_ID_ATTRIBUTE]: [employee.employeeId],
  }));
}

/** Problems with spec.attributes, as messages (for the Connector's status); empty when valid. */
export function validateScimTemplates(spec: TemplateSpec): string[] {
  const problems: string[] = [];
  for (const [path, template] of Object.entries(spec.attributes ?? {})) {
    try {
      parseScimPath(path);
    } catch (err) {
      problems.push(`attributes: ${(err as Error).message}`);
      continue;
    }
    if (isReserved(path)) problems.push(`attributes.${path}: set by Roster, cannot be mapped`);
    for (const p of validateTemplate(template)) problems.push(`attributes.${path}: ${p}`);
  }
  return problems;
}

function isReserved(path: string): boolean {
  try {
    const p = parseScimPath(path);
    const core = !p.schema || p.schema.toLowerCase() === CORE_USER_SCHEMA.toLowerCase();
    return core && RESERVED.has(p.attribute.toLowerCase());
  } catch {
    return false;
  }
}

// --- reading and writing resources ------------------------------------------------------------

const isObject = (v: unknown): v is Resource => typeof v === "object" && v !== null && !Array.isArray(v);

/** The key of obj matching name case-insensitively (SCIM attribute names are case-insensitive). */
export function keyOf(obj: Resource, name: string): string | undefined {
  if (name in obj) return name;
  const lower = name.toLowerCase();
  // Lengths first: a scan looks up every mapped path, often absent, in every User.
  return Object.keys(obj).find((k) => k.length === name.length && k.toLowerCase() === lower);
}

/** obj[name], case-insensitively. */
export function field(obj: unknown, name: string): unknown {
  if (!isObject(obj)) return undefined;
  const key = keyOf(obj, name);
  return key === undefined ? undefined : obj[key];
}

function scalar(v: unknown): string | undefined {
  if (typeof v === "string") return v === "" ? undefined : v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/** The container of a path's attribute: the resource itself or its extension object. */
function container(resource: Resource, p: ScimPath): unknown {
  if (!p.schema || p.schema.toLowerCase() === CORE_USER_SCHEMA.toLowerCase()) return resource;
  return field(resource, p.schema);
}

function matches(element: unknown, filter: NonNullable<ScimPath["filter"]>): boolean {
  const v = field(element, filter.attribute);
  // Canonical values such as "work" are compared case-insensitively (servers differ in case).
  return typeof v === "string" && v.toLowerCase() === filter.value.toLowerCase();
}

/** The values at a path of a resource, as strings (numbers and booleans stringified). */
export function readPath(resource: Resource, path: ScimPath): string[] {
  const value = field(container(resource, path), path.attribute);
  if (value === undefined || value === null) return [];
  const pick = (v: unknown, sub: string | undefined): string[] => {
    if (Array.isArray(v)) return v.flatMap((x) => pick(x, sub));
    // A complex attribute without sub-attribute means its value; a plain value given where a
    // complex one was expected (manager: "id", as some services send it) is taken as its value.
    if (isObject(v)) return pick(field(v, sub ?? "value"), undefined);
    if (sub !== undefined && sub.toLowerCase() !== "value") return [];
    const s = scalar(v);
    return s === undefined ? [] : [s];
  };
  if (path.filter) {
    const elements = (Array.isArray(value) ? value : [value]).filter((e) => matches(e, path.filter!));
    return elements.flatMap((e) => pick(field(e, path.subAttribute ?? "value"), undefined));
  }
  return pick(value, path.subAttribute);
}

/** Reads the given paths (spelled as given) from a resource; paths without values are left out. */
export function readAttributes(resource: Resource, paths: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const path of paths) {
    let values: string[];
    try {
      values = readPath(resource, parseScimPath(path));
    } catch {
      continue;
    }
    if (values.length) out[path] = values;
  }
  return out;
}

function slot(obj: Resource, name: string): string {
  return keyOf(obj, name) ?? name;
}

function valueOf(values: string[]): string | string[] {
  return values.length === 1 ? values[0]! : values;
}

/** Writes values at a path of resource (in place), creating containers and elements as needed. */
export function writePath(resource: Resource, p: ScimPath, values: string[]): void {
  let target: Resource = resource;
  if (p.schema && p.schema.toLowerCase() !== CORE_USER_SCHEMA.toLowerCase()) {
    const key = slot(resource, p.schema);
    if (!isObject(resource[key])) resource[key] = {};
    target = resource[key] as Resource;
    const schemasKey = slot(resource, "schemas");
    const schemas = Array.isArray(resource[schemasKey]) ? (resource[schemasKey] as string[]) : [];
    if (!schemas.some((s) => s.toLowerCase() === p.schema!.toLowerCase())) {
      resource[schemasKey] = [...schemas, p.schema];
    }
  }
  const key = slot(target, p.attribute);
  if (p.filter) {
    const list = Array.isArray(target[key]) ? (target[key] as unknown[]) : [];
    let element = list.find((e) => matches(e, p.filter!)) as Resource | undefined;
    if (!element) {
      element = { [p.filter.attribute]: p.filter.value };
      // The first element of a multi-valued attribute without a primary one becomes primary.
      if (!list.some((e) => field(e, "primary") === true || field(e, "primary") === "true")) {
        element.primary = true;
      }
      list.push(element);
    }
    element[slot(element, p.subAttribute ?? "value")] = valueOf(values);
    target[key] = list;
  } else if (p.subAttribute) {
    if (!isObject(target[key])) target[key] = {};
    const obj = target[key] as Resource;
    obj[slot(obj, p.subAttribute)] = valueOf(values);
  } else {
    target[key] = valueOf(values);
  }
}

/** Removes the attribute at a path (in place); for a valuePath, the matching elements. */
export function removePath(resource: Resource, p: ScimPath): void {
  const target = container(resource, p);
  if (!isObject(target)) return;
  const key = keyOf(target, p.attribute);
  if (key === undefined) return;
  if (p.filter) {
    const list = target[key];
    if (!Array.isArray(list)) return;
    const kept = list.filter((e) => !matches(e, p.filter!));
    if (kept.length) target[key] = kept;
    else delete target[key];
  } else if (p.subAttribute) {
    const obj = target[key];
    if (!isObject(obj)) {
      if (p.subAttribute.toLowerCase() === "value") delete target[key];
      return;
    }
    const sub = keyOf(obj, p.subAttribute);
    if (sub !== undefined) delete obj[sub];
    if (!Object.keys(obj).length || p.subAttribute.toLowerCase() === "value") delete target[key];
  } else {
    delete target[key];
  }
}

/** A User resource (without id and meta) holding the given flat attributes. */
export function buildResource(attributes: Record<string, string[]>): Resource {
  const resource: Resource = { schemas: [CORE_USER_SCHEMA] };
  for (const [path, values] of Object.entries(attributes)) {
    const nonEmpty = values.filter((v) => v !== "");
    if (nonEmpty.length) writePath(resource, parseScimPath(path), nonEmpty);
  }
  return resource;
}

/** The resource with changes applied (for PUT); null removes. The input is not changed. */
export function applyChanges(resource: Resource, changes: Record<string, string[] | null>): Resource {
  const out = structuredClone(resource);
  for (const [path, values] of Object.entries(changes)) {
    const p = parseScimPath(path);
    const nonEmpty = values?.filter((v) => v !== "") ?? [];
    if (nonEmpty.length) writePath(out, p, nonEmpty);
    else removePath(out, p);
  }
  return out;
}

// --- PATCH ----------------------------------------------------------------------------------

export type PatchOperation = { op: "add" | "replace" | "remove"; path?: string; value?: unknown };

/**
 * RFC 7644 PATCH operations (lowercase op names) that take `current` to the changed state.
 * - `attr`, `attr.sub` (core): replace / remove at that path.
 * - valuePath `attr[x eq "v"].sub`: replace at that path when an element matches, otherwise add a
 *   new element to `attr`; removal removes the matching elements.
 * - extension `urn:...:attr.sub`: replace `urn:...:attr` with `{sub: value}` (the sub-attributes
 *   not given are kept, RFC 7644 section 3.5.2.3), the form services accept most widely; removing
 *   a `value` sub-attribute removes the complex attribute.
 * Removals of attributes the resource does not have are left out.
 */
export function patchOperations(
  current: Resource,
  changes: Record<string, string[] | null>,
): PatchOperation[] {
  const ops: PatchOperation[] = [];
  for (const [path, values] of Object.entries(changes)) {
    const p = parseScimPath(path);
    const nonEmpty = values?.filter((v) => v !== "") ?? [];
    const present = readPath(current, p).length > 0;
    const extension = !!p.schema && p.schema.toLowerCase() !== CORE_USER_SCHEMA.toLowerCase();
    if (!nonEmpty.length) {
      if (!present) continue;
      // A valuePath removes its elements; an extension's complex attribute goes with its value.
      const whole = !!p.filter || (extension && p.subAttribute?.toLowerCase() === "value");
      ops.push({ op: "remove", path: formatScimPath(p, !whole) });
      continue;
    }
    const value = valueOf(nonEmpty);
    if (p.filter) {
      const elements = field(container(current, p), p.attribute);
      const exists = Array.isArray(elements) && elements.some((e) => matches(e, p.filter!));
      if (exists) {
        ops.push({ op: "replace", path: formatScimPath(p), value });
      } else {
        const existing = Array.isArray(elements) ? elements : [];
        const scratch: Resource = { list: structuredClone(existing) };
        writePath(scratch, { attribute: "list", filter: p.filter, subAttribute: p.subAttribute }, nonEmpty);
        const added = (scratch.list as unknown[]).slice(existing.length);
        ops.push({
          op: "add",
          path: formatScimPath({ schema: p.schema, attribute: p.attribute }),
          value: added,
        });
      }
    } else if (extension && p.subAttribute) {
      ops.push({
        op: "replace",
        path: formatScimPath(p, false),
        value: { [p.subAttribute]: value },
      });
    } else {
      ops.push({ op: "replace", path: formatScimPath(p), value });
    }
  }
  return ops;
}
