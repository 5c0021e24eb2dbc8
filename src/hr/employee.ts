// One HR record -> one Employee: the mapped columns, normalized (enums, dates) and validated
// against the Employee schema (ajv), with every problem naming the field and its column.
import { createHash } from "node:crypto";
import { Ajv, type ErrorObject } from "ajv";
import { API_VERSION, EMPLOYMENT_STATUSES, EMPLOYMENT_TYPES, EmployeeSpec } from "../api/schema.ts";
import type { Employee, EmployeeSpecT } from "../api/types.ts";
import {
  fieldPath,
  reformatDate,
  type FieldTarget,
  type ManagerReference,
  type Mapping,
  type MappedField,
} from "./mapping.ts";
import { cell, type SourceRecord } from "./source.ts";
import { usernameCandidates } from "./username.ts";

export type RowProblem = {
  /** Employee path (`spec.startDate`), when the problem is with one field. */
  field?: string;
  /** The export's column for that field. */
  column?: string;
  message: string;
};

export type MappedRecord = {
  line: number;
  /** Read even when the row is refused, so the person is not taken for a leaver. */
  employeeId?: string;
  username?: string;
  /** The Employee with the mapped fields only; absent when the row is refused. */
  employee?: Employee;
  problems: RowProblem[];
  /**
   * Set when the username is generated: the candidates in order. The plan picks the first free
   * one (or keeps an existing person's username) and sets username and metadata.name.
   */
  usernameCandidates?: string[];
  /** A manager given by employee id or email, resolved to a username by the plan. */
  managerRef?: { value: string; by: Exclude<ManagerReference, "username">; column: string };
};

const USERNAME_PATTERN = /^[a-z][a-z0-9._-]{0,63}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})(T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2})))?$/;

/**
 * The object name for a username: the username itself when it is already a DNS subdomain name,
 * otherwise a DNS-safe form plus a short hash of the username, so distinct usernames never share
 * a name and the same username always gets the same one.
 */
export function employeeName(username: string): string {
  if (username.length <= 253 && DNS_SUBDOMAIN.test(username)) return username;
  const base =
    username
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 53)
      .replace(/-+$/, "") || "employee";
  return `${base}-${createHash("sha256").update(username).digest("hex").slice(0, 8)}`;
}

/** True for an api.md date (YYYY-MM-DD) or RFC 3339 date-time that names a real moment. */
export function isValidDate(value: string): boolean {
  const m = DATE.exec(value);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCFullYear() !== year || probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day)
    return false;
  if (m[4]) {
    if (Number(m[5]) > 23 || Number(m[6]) > 59 || Number(m[7]) > 60) return false;
    if (m[10] !== undefined && (Number(m[10]) > 23 || Number(m[11]) > 59)) return false;
  }
  return true;
}

const dateValue = (value: string) => new Date(value.length === 10 ? `${value}T00:00:00Z` : value).getTime();

/** Matches an HR spelling of an enum value: case, spaces, `-` and `_` are ignored ("on leave" -> OnLeave). */
function normalizeEnum(value: string, allowed: readonly string[]): string | undefined {
  const key = value.toLowerCase().replace(/[\s_-]+/g, "");
  return allowed.find((a) => a.toLowerCase() === key);
}

const ajv = new Ajv({ strict: false, allErrors: true });
const validateSpec = ajv.compile<EmployeeSpecT>(EmployeeSpec);

function schemaProblem(error: ErrorObject, spec: Record<string, unknown>): { path: string; message: string } {
  const parts = error.instancePath.split("/").slice(1);
  if (error.keyword === "required") parts.push(String(error.params.missingProperty));
  const path = ["spec", ...parts].join(".");
  const value = parts.reduce<unknown>(
    (v, p) => (v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined),
    spec,
  );
  const shown =
    typeof value === "string"
      ? `${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)} `
      : "";
  if (error.keyword === "pattern") return { path, message: `${shown}must match ${error.params.pattern}` };
  if (error.keyword === "required") return { path, message: "is required (no column or an empty cell)" };
  return { path, message: `${shown}${error.message ?? "is invalid"}` };
}

function setTarget(employee: Employee, target: FieldTarget, value: string): void {
  switch (target.kind) {
    case "spec":
      (employee.spec as Record<string, unknown>)[target.field] = value;
      return;
    case "attribute":
      employee.spec.attributes = { ...employee.spec.attributes, [target.name]: value };
      return;
    case "label":
      employee.metadata.labels = { ...employee.metadata.labels, [target.key]: value };
      return;
    case "annotation":
      employee.metadata.annotations = { ...employee.metadata.annotations, [target.key]: value };
      return;
  }
}

function specColumn(mapping: Mapping, field: string): MappedField | undefined {
  return mapping.fields.find((m) => m.target.kind === "spec" && m.target.field === field);
}

/** Maps and validates one record. The result's employee holds only the mapped fields. */
export function mapRecord(record: SourceRecord, mapping: Mapping): MappedRecord {
  const problems: RowProblem[] = [];
  const result: MappedRecord = { line: record.line, problems };
  const employee: Employee = {
    apiVersion: API_VERSION,
    kind: "Employee",
    metadata: { name: "" },
    spec: {} as EmployeeSpecT,
  };
  const columnOf = new Map<string, string>();
  for (const m of mapping.fields) {
    const path = fieldPath(m.target);
    columnOf.set(path, m.column);
    let value: string | undefined;
    try {
      value = cell(record.values, m.column);
    } catch (error) {
      problems.push({ field: path, column: m.column, message: (error as Error).message });
      continue;
    }
    if (m.values) {
      // A value map is a closed list: an HR value it does not name is refused, not guessed.
      const mapped = m.values.byKey.get((value ?? "").toLowerCase());
      if (mapped === undefined && value !== undefined) {
        problems.push({
          field: path,
          column: m.column,
          message: `${JSON.stringify(value)} is not in the value map (${m.values.keys.map((k) => JSON.stringify(k)).join(", ")})`,
        });
        continue;
      }
      value = mapped === "" ? undefined : mapped;
    }
    if (value !== undefined && m.dateFormat && !isValidDate(value)) {
      const iso = reformatDate(value, m.dateFormat);
      if (iso === undefined) {
        problems.push({
          field: path,
          column: m.column,
          message: `${JSON.stringify(value)} is not a date in the format ${m.dateFormat.source} (or YYYY-MM-DD)`,
        });
        continue;
      }
      value = iso;
    }
    if (value !== undefined && m.reference && m.reference !== "username") {
      result.managerRef = { value, by: m.reference, column: m.column };
      continue;
    }
    if (value !== undefined) setTarget(employee, m.target, value);
  }
  const spec = employee.spec as unknown as Record<string, string | undefined>;
  if (spec.employeeId !== undefined) result.employeeId = spec.employeeId;
  if (spec.username !== undefined) result.username = spec.username;
  else if (mapping.username) {
    const { candidates, empty } = usernameCandidates(mapping.username, record.values);
    if (candidates.length > 0) {
      result.usernameCandidates = candidates;
      // Stands in for schema validation; the plan replaces it with the one it picks.
      spec.username = candidates[0];
    } else
      problems.push({
        field: "spec.username",
        message: `cannot generate a username: ${empty.map((c) => `column ${JSON.stringify(c)}`).join(", ") || "every template"} ${empty.length === 1 ? "is" : "are"} empty`,
      });
  }
  if (record.problem) {
    problems.unshift({ message: record.problem });
    return result;
  }

  const flagged = new Set(problems.map((p) => p.field));
  const problem = (field: string, message: string) => {
    if (flagged.has(`spec.${field}`)) return;
    flagged.add(`spec.${field}`);
    problems.push({ field: `spec.${field}`, column: columnOf.get(`spec.${field}`), message });
  };
  if (spec.employeeId === undefined) problem("employeeId", "missing employee id (empty cell)");
  if (spec.username !== undefined && !USERNAME_PATTERN.test(spec.username))
    problem(
      "username",
      `${JSON.stringify(spec.username)} is not a valid username (${USERNAME_PATTERN.source})`,
    );
  for (const field of ["startDate", "endDate"] as const) {
    const value = spec[field];
    if (value !== undefined && !isValidDate(value))
      problem(field, `${JSON.stringify(value)} is not a valid date (YYYY-MM-DD or RFC 3339 date-time)`);
  }
  if (
    spec.startDate &&
    spec.endDate &&
    !flagged.has("spec.startDate") &&
    !flagged.has("spec.endDate") &&
    dateValue(spec.endDate) < dateValue(spec.startDate)
  )
    problem("endDate", `${spec.endDate} is before startDate ${spec.startDate}`);
  // Enums: HR spellings are accepted; an empty cell gets the API default.
  const enums = [
    ["employmentType", EMPLOYMENT_TYPES],
    ["employmentStatus", EMPLOYMENT_STATUSES],
  ] as const;
  for (const [field, allowed] of enums) {
    const value = spec[field];
    if (value === undefined) {
      // employmentStatus is always set: presence in the export means Active unless it says otherwise.
      if (field === "employmentStatus" || specColumn(mapping, field)) spec[field] = allowed[0];
      continue;
    }
    const normalized = normalizeEnum(value, allowed);
    if (normalized) spec[field] = normalized;
    else problem(field, `${JSON.stringify(value)} is not one of ${allowed.join(", ")}`);
  }
  for (const [key, value] of Object.entries(employee.metadata.labels ?? {})) {
    if (value.length > 63 || !LABEL_VALUE.test(value)) {
      const path = `metadata.labels.${key}`;
      problems.push({
        field: path,
        column: columnOf.get(path),
        message: `${JSON.stringify(value)} is not a valid label value (at most 63 characters: letters, digits, -, _, .)`,
      });
    }
  }
  if (!validateSpec(employee.spec)) {
    for (const error of validateSpec.errors ?? []) {
      const { path, message } = schemaProblem(error, employee.spec as Record<string, unknown>);
      const top = path.split(".").slice(0, 2).join(".");
      if (flagged.has(path) || flagged.has(top)) continue;
      flagged.add(path);
      problems.push({ field: path, column: columnOf.get(path) ?? columnOf.get(top), message });
    }
  }
  if (problems.length > 0) return result;
  employee.metadata.name = employeeName(employee.spec.username);
  result.employee = employee;
  return result;
}

/** `file:line: field (column "X"): message` */
export function formatProblem(file: string, line: number, p: RowProblem): string {
  const where = p.field ? `${p.field}${p.column ? ` (column ${JSON.stringify(p.column)})` : ""}: ` : "";
  return `${file}:${line}: ${where}${p.message}`;
}
