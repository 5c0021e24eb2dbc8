// Tolerant reading of SCIM responses (pure): services differ from RFC 7643/7644 in small ways that
// must not break Roster.
// - Attribute and message field names are matched case-insensitively (SCIM names are), so
//   "Resources"/"resources", "totalResults"/"TotalResults" and "Operations" with capitalised op
//   names ("Replace") all read the same.
// - Booleans may come as strings ("true", "True", "FALSE").
// - A ListResponse may leave out `Resources` when totalResults is 0.
// - Ids may come as numbers; ids are opaque strings and are turned into strings as sent, never
//   parsed or compared loosely.
import { field } from "./attributes.ts";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A boolean from true/false or their string forms in any case; undefined otherwise. */
export function toBoolean(value: unknown): boolean | undefined {
  if (typeof value === "boolean") return value;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (v === "true") return true;
    if (v === "false") return false;
  }
  return undefined;
}

/** An opaque id as a string: strings as they are, numbers (and bigints) in their decimal form. */
/**
 * The ownership key as the service sent it: only a JSON string counts. A number is never read as
 * one (1001 and "1001" are different values, and 1e21 would not even print back the same).
 */
export function ownershipKey(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function toId(value: unknown): string | undefined {
  if (typeof value === "string") return value === "" ? undefined : value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "bigint") return value.toString();
  return undefined;
}

/** A non-negative integer from a number or numeric string; undefined otherwise. */
export function toCount(value: unknown): number | undefined {
  const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : undefined;
}

export type ListPage = {
  resources: Json[];
  /** undefined when the service did not say. */
  totalResults: number | undefined;
  startIndex: number | undefined;
  itemsPerPage: number | undefined;
};

/** Reads a ListResponse; throws when it is not one (a page is never silently taken as empty). */
export function readListResponse(body: unknown): ListPage {
  if (!isObject(body)) throw new Error("SCIM: expected a ListResponse object");
  const totalResults = toCount(field(body, "totalResults"));
  const raw = field(body, "Resources");
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) {
    throw new Error("SCIM: ListResponse Resources is not a list");
  }
  if ((raw === undefined || raw === null) && totalResults !== 0) {
    throw new Error("SCIM: ListResponse without Resources and with totalResults other than 0");
  }
  const resources = ((raw as unknown[] | null | undefined) ?? []).filter(isObject);
  return {
    resources,
    totalResults,
    startIndex: toCount(field(body, "startIndex")),
    itemsPerPage: toCount(field(body, "itemsPerPage")),
  };
}

export type PatchOperationRead = { op: "add" | "replace" | "remove"; path?: string; value?: unknown };

/** Reads a PatchOp message (e.g. echoed by a service or logged), op names in any case. */
export function readPatchOperations(body: unknown): PatchOperationRead[] {
  const ops = field(body, "Operations");
  if (!Array.isArray(ops)) throw new Error("SCIM: PatchOp without Operations");
  return ops.map((o, i) => {
    const op = field(o, "op");
    const name = typeof op === "string" ? op.toLowerCase() : "";
    if (name !== "add" && name !== "replace" && name !== "remove") {
      throw new Error(`SCIM: PatchOp operation ${i} has an unknown op ${JSON.stringify(op)}`);
    }
    const out: PatchOperationRead = { op: name };
    const path = field(o, "path");
    if (typeof path === "string") out.path = path;
    const value = field(o, "value");
    if (value !== undefined) out.value = value;
    return out;
  });
}

/** The readable parts of a SCIM error response (RFC 7644 section 3.12). */
export function readError(body: unknown): { scimType?: string; detail?: string } {
  const out: { scimType?: string; detail?: string } = {};
  const scimType = field(body, "scimType");
  const detail = field(body, "detail") ?? field(body, "message") ?? field(body, "error_description");
  if (typeof scimType === "string" && scimType) out.scimType = scimType;
  if (typeof detail === "string" && detail) out.detail = detail;
  return out;
}

export type ScimResourceType = {
  name: string;
  endpoint: string;
  schema: string;
  schemaExtensions: string[];
};

/** What discovery found, as reported in the Connector's status.capabilities. */
export type ScimCapabilities = {
  /** false when /ServiceProviderConfig could not be read (defaults assumed). */
  discovered: boolean;
  patch: boolean;
  filter: boolean;
  maxResults?: number;
  sort: boolean;
  etag: boolean;
  bulk: boolean;
  changePassword: boolean;
  authenticationSchemes: string[];
  resourceTypes: ScimResourceType[];
};

/** Capabilities from a ServiceProviderConfig (RFC 7643 section 5); PATCH assumed when unknown. */
export function readServiceProviderConfig(body: unknown): Omit<ScimCapabilities, "resourceTypes"> {
  const supported = (name: string, fallback: boolean) =>
    toBoolean(field(field(body, name), "supported")) ?? fallback;
  const schemes = field(body, "authenticationSchemes");
  const out: Omit<ScimCapabilities, "resourceTypes"> = {
    discovered: isObject(body),
    patch: supported("patch", true),
    filter: supported("filter", true),
    sort: supported("sort", false),
    etag: supported("etag", false),
    bulk: supported("bulk", false),
    changePassword: supported("changePassword", false),
    authenticationSchemes: Array.isArray(schemes)
      ? schemes.map((s) => field(s, "type")).filter((t): t is string => typeof t === "string")
      : [],
  };
  const maxResults = toCount(field(field(body, "filter"), "maxResults"));
  if (maxResults !== undefined) out.maxResults = maxResults;
  return out;
}

/** Resource types from a /ResourceTypes response (a ListResponse or, from some services, a list). */
export function readResourceTypes(body: unknown): ScimResourceType[] {
  const list = Array.isArray(body) ? body : readListResponse(body).resources;
  return list.filter(isObject).map((r) => {
    const extensions = field(r, "schemaExtensions");
    return {
      name: String(field(r, "name") ?? field(r, "id") ?? ""),
      endpoint: String(field(r, "endpoint") ?? ""),
      schema: String(field(r, "schema") ?? ""),
      schemaExtensions: Array.isArray(extensions)
        ? extensions.map((e) => field(e, "schema")).filter((s): s is string => typeof s === "string")
        : [],
    };
  });
}
