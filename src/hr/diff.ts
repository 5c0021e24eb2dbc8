// The import as a plan: the mapped records against the Employees that exist (in a directory or a
// namespace) -> new hires, movers (field by field), leavers (missing from the export: Terminated,
// never deleted), refused rows and the count of people left as they are.
import type { Employee } from "../api/types.ts";
import { ownValue } from "../api/records.ts";
import type { MappedRecord, RowProblem } from "./employee.ts";
import { employeeName } from "./employee.ts";
import { fieldPath, type FieldTarget, type Mapping } from "./mapping.ts";
import { explainsUsername, pickUsername } from "./username.ts";

export type ExistingEmployee = {
  employee: Employee;
  /** Directory mode: the file it was read from. */
  file?: string;
};

export type FieldChange = { field: string; old?: string; new?: string };

export type PlannedChange = {
  name: string;
  employeeId: string;
  username: string;
  /** The export's line (hires and movers). */
  line?: number;
  /** Movers and leavers: what changes, old -> new. */
  changes: FieldChange[];
  /** Merge mode: the whole object to write; apply mode: the server-side apply configuration. */
  object: Employee;
  existing?: ExistingEmployee;
};

export type Refusal = { line: number; employeeId?: string; username?: string; problems: RowProblem[] };

export type ImportPlan = {
  rows: number;
  hires: PlannedChange[];
  movers: PlannedChange[];
  leavers: PlannedChange[];
  refused: Refusal[];
  /** People in the export whose mapped fields already hold the exported values. */
  unchanged: number;
  /** Rows not imported on purpose: people Terminated in the export who do not exist yet. */
  skipped: { line: number; employeeId: string; reason: string }[];
  /** What the user should know but nothing to refuse: a kept username the name no longer gives. */
  notes: { line: number; employeeId: string; message: string }[];
};

export type PlanOptions = {
  /**
   * merge: the import owns the mapped fields of each whole object (files in a directory).
   * apply: server-side apply; a mapped field left empty is removed only where `fieldManager`
   * owns it, as the API server would.
   */
  mode: "merge" | "apply";
  fieldManager?: string;
  /**
   * Usernames a generated one must not take besides those of the existing Employees: Employees
   * outside a --selector, account names in the targets (--check-targets). Lower case.
   */
  reservedUsernames?: ReadonlySet<string>;
};

export class PlanError extends Error {
  override name = "PlanError";
}

const STATUS: FieldTarget = { kind: "spec", field: "employmentStatus" };

/** The fields the import sets: every mapped one, a generated username, and employmentStatus always. */
export function managedTargets(mapping: Mapping): FieldTarget[] {
  const targets = mapping.fields.map((m) => m.target);
  const has = (field: string) => targets.some((t) => t.kind === "spec" && t.field === field);
  // Server-side apply drops what a manager stops sending: a leaver's apply must carry the username.
  if (mapping.username && !has("username")) targets.push({ kind: "spec", field: "username" });
  if (!has("employmentStatus")) targets.push(STATUS);
  return targets;
}

export function getTarget(employee: Employee, target: FieldTarget): string | undefined {
  let value: unknown;
  if (target.kind === "spec") value = (employee.spec as Record<string, unknown>)[target.field];
  else if (target.kind === "attribute") value = ownValue(employee.spec.attributes, target.name);
  else if (target.kind === "annotation") value = ownValue(employee.metadata.annotations, target.key);
  else value = ownValue(employee.metadata.labels, target.key);
  if (value === undefined || value === null) return undefined;
  return typeof value === "string" ? value : String(value);
}

function putTarget(employee: Employee, target: FieldTarget, value: string | undefined): void {
  if (target.kind === "spec") {
    const spec = employee.spec as Record<string, unknown>;
    if (value === undefined) delete spec[target.field];
    else spec[target.field] = value;
    return;
  }
  const holder = target.kind === "attribute" ? employee.spec : employee.metadata;
  const mapKey =
    target.kind === "attribute" ? "attributes" : target.kind === "annotation" ? "annotations" : "labels";
  const name = target.kind === "attribute" ? target.name : target.key;
  const map = {
    ...((holder as unknown as Record<string, Record<string, string> | undefined>)[mapKey] ?? {}),
  };
  if (value === undefined) delete map[name];
  else map[name] = value;
  if (Object.keys(map).length > 0) (holder as Record<string, unknown>)[mapKey] = map;
  else delete (holder as Record<string, unknown>)[mapKey];
}

/**
 * The field paths (`spec.department`, `metadata.labels.team`) a manager owns through server-side
 * apply, read from metadata.managedFields (fieldsV1).
 */
export function appliedPaths(employee: Employee, manager: string): Set<string> {
  const paths = new Set<string>();
  const walk = (node: unknown, prefix: string[]) => {
    if (!node || typeof node !== "object") return;
    for (const [key, child] of Object.entries(node as Record<string, unknown>)) {
      if (!key.startsWith("f:")) continue;
      const path = [...prefix, key.slice(2)];
      paths.add(path.join("."));
      walk(child, path);
    }
  };
  const entries = (employee.metadata as { managedFields?: unknown[] }).managedFields ?? [];
  for (const entry of entries as { manager?: string; operation?: string; fieldsV1?: unknown }[]) {
    if (entry.manager === manager && entry.operation === "Apply") walk(entry.fieldsV1, []);
  }
  return paths;
}

const clone = <T>(value: T): T => structuredClone(value);

/** An object with only the given fields of `employee` (for a server-side apply configuration). */
export function projectEmployee(employee: Employee, targets: readonly FieldTarget[]): Employee {
  const out: Employee = {
    apiVersion: employee.apiVersion,
    kind: "Employee",
    metadata: { name: employee.metadata.name },
    spec: {} as Employee["spec"],
  };
  for (const t of targets) {
    const v = getTarget(employee, t);
    if (v !== undefined) putTarget(out, t, v);
  }
  return out;
}

/** API defaults: an absent value and the default mean the same. */
const DEFAULTS: Record<string, string> = { employmentStatus: "Active", employmentType: "Employee" };
const withDefault = (t: FieldTarget, v: string | undefined) =>
  v === undefined && t.kind === "spec" ? DEFAULTS[t.field] : v;

function compare(before: Employee, after: Employee, targets: readonly FieldTarget[]): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const t of targets) {
    const old = getTarget(before, t);
    const next = getTarget(after, t);
    if (withDefault(t, old) !== withDefault(t, next))
      changes.push({
        field: fieldPath(t),
        ...(old !== undefined ? { old } : {}),
        ...(next !== undefined ? { new: next } : {}),
      });
  }
  return changes;
}

/**
 * What needs the whole export: generated usernames (in line order, each the first free one, an
 * existing person's kept) and managers given by employee id or email (resolved to usernames from
 * the export or the existing Employees). Updates the records in place; a manager that cannot be
 * resolved refuses its row. Returns the notes for kept usernames the name no longer gives.
 */
export function resolveRecords(
  existingList: readonly ExistingEmployee[],
  records: readonly MappedRecord[],
  mapping: Mapping,
  reserved: ReadonlySet<string> = new Set(),
): ImportPlan["notes"] {
  const notes: ImportPlan["notes"] = [];
  const byId = new Map<string, Employee>();
  const takenUsernames = new Set<string>(reserved);
  const takenNames = new Set<string>();
  for (const { employee } of existingList) {
    if (employee.spec?.employeeId !== undefined) byId.set(String(employee.spec.employeeId), employee);
    if (employee.spec?.username !== undefined) takenUsernames.add(String(employee.spec.username));
    takenNames.add(employee.metadata.name);
  }
  const ordered = [...records].sort((a, b) => a.line - b.line);
  // Usernames given in a column (rows that have one) are theirs, wherever in the file they come.
  for (const r of ordered) if (r.username !== undefined) takenUsernames.add(r.username);
  const isTaken = (u: string) => takenUsernames.has(u) || takenNames.has(employeeName(u));
  const seen = new Set<string>();
  const setUsername = (r: MappedRecord, username: string) => {
    r.username = username;
    r.employee!.spec.username = username;
    r.employee!.metadata.name = employeeName(username);
  };
  for (const r of ordered) {
    const first = r.employeeId !== undefined && !seen.has(r.employeeId);
    if (r.employeeId !== undefined) seen.add(r.employeeId);
    if (!r.usernameCandidates || !r.employee || !first) continue;
    const live = byId.get(r.employeeId!);
    if (live?.spec.username !== undefined) {
      // Usernames are immutable: a rehire or a renamed person keeps theirs.
      const kept = String(live.spec.username);
      setUsername(r, kept);
      if (!explainsUsername(r.usernameCandidates, kept))
        notes.push({
          line: r.line,
          employeeId: r.employeeId!,
          message: `username ${JSON.stringify(kept)} is kept (usernames are immutable); the export's name now gives ${JSON.stringify(r.usernameCandidates[0])}`,
        });
      continue;
    }
    const picked = mapping.username && pickUsername(mapping.username, r.usernameCandidates, isTaken);
    if (picked === undefined) {
      r.problems.push({
        field: "spec.username",
        message: `every generated username is taken (${r.usernameCandidates.map((c) => JSON.stringify(c)).join(", ")})`,
      });
      delete r.employee;
      continue;
    }
    setUsername(r, picked);
    takenUsernames.add(picked);
    takenNames.add(employeeName(picked));
  }

  // Managers by employee id or email: the export first (it is newer), then the existing Employees.
  type Ref = { username: string } | { refusedLine: number } | { ambiguous: true };
  const empty = () => ({ employeeId: new Map<string, Ref>(), email: new Map<string, Ref>() });
  const fromExport = empty();
  const fromCluster = empty();
  const add = (map: Map<string, Ref>, key: string | undefined, ref: Ref) => {
    if (key === undefined) return;
    const had = map.get(key);
    if (had === undefined) map.set(key, ref);
    // Two people with one email cannot be told apart.
    else if (!("username" in had && "username" in ref && had.username === ref.username))
      map.set(key, { ambiguous: true });
  };
  const firstRows = new Map<string, MappedRecord>();
  for (const r of ordered) {
    if (r.employeeId === undefined || firstRows.has(r.employeeId)) continue;
    firstRows.set(r.employeeId, r);
    const ref: Ref = r.employee ? { username: r.employee.spec.username } : { refusedLine: r.line };
    add(fromExport.employeeId, r.employeeId, ref);
    add(fromExport.email, r.employee?.spec.email?.toLowerCase(), ref);
  }
  for (const { employee } of existingList) {
    if (employee.spec?.username === undefined) continue;
    const ref: Ref = { username: String(employee.spec.username) };
    if (employee.spec.employeeId !== undefined)
      add(fromCluster.employeeId, String(employee.spec.employeeId), ref);
    if (employee.spec.email !== undefined)
      add(fromCluster.email, String(employee.spec.email).toLowerCase(), ref);
  }
  // Until nothing changes: a refused manager refuses the people who report to them, in any order.
  for (let changed = true; changed;) {
    changed = false;
    for (const r of ordered) {
      if (!r.managerRef || !r.employee) continue;
      const { value, by, column } = r.managerRef;
      const key = by === "email" ? value.toLowerCase() : value;
      const found = fromExport[by].get(key) ?? fromCluster[by].get(key);
      if (found && "username" in found) {
        r.employee.spec.manager = found.username;
        continue;
      }
      const what = `${by} ${JSON.stringify(value)}`;
      const message = !found
        ? `manager ${what} is neither in the export nor an existing Employee`
        : "refusedLine" in found
          ? `manager ${what} is on line ${found.refusedLine}, which was refused`
          : `manager ${what} belongs to more than one person`;
      r.problems.push({ field: "spec.manager", column, message });
      const email = r.employee.spec.email?.toLowerCase();
      delete r.employee;
      if (r.employeeId !== undefined && firstRows.get(r.employeeId) === r) {
        fromExport.employeeId.set(r.employeeId, { refusedLine: r.line });
        if (email !== undefined && fromExport.email.has(email))
          fromExport.email.set(email, { refusedLine: r.line });
      }
      changed = true;
    }
  }
  return notes;
}

export function planImport(
  existingList: readonly ExistingEmployee[],
  records: readonly MappedRecord[],
  mapping: Mapping,
  options: PlanOptions,
): ImportPlan {
  const notes = resolveRecords(existingList, records, mapping, options.reservedUsernames);
  const targets = managedTargets(mapping);
  const byId = new Map<string, ExistingEmployee>();
  const byUsername = new Map<string, ExistingEmployee>();
  const byName = new Map<string, ExistingEmployee>();
  const where = (e: ExistingEmployee) => e.file ?? `Employee ${e.employee.metadata.name}`;
  for (const e of existingList) {
    const id = e.employee.spec?.employeeId;
    if (id === undefined) continue;
    const other = byId.get(String(id));
    if (other)
      throw new PlanError(`${where(other)} and ${where(e)} both hold employeeId ${JSON.stringify(id)}`);
    byId.set(String(id), e);
    if (e.employee.spec.username !== undefined) byUsername.set(String(e.employee.spec.username), e);
    byName.set(e.employee.metadata.name, e);
  }

  const plan: ImportPlan = {
    rows: records.length,
    hires: [],
    movers: [],
    leavers: [],
    refused: [],
    unchanged: 0,
    skipped: [],
    notes,
  };
  const seenIds = new Map<string, number>();
  const seenUsernames = new Map<string, { line: number; employeeId?: string }>();
  const protectedIds = new Set<string>();
  const protectedUsernames = new Set<string>();
  const refuse = (r: MappedRecord, problems: RowProblem[]) => {
    plan.refused.push({
      line: r.line,
      ...(r.employeeId !== undefined ? { employeeId: r.employeeId } : {}),
      ...(r.username !== undefined ? { username: r.username } : {}),
      problems,
    });
    if (r.employeeId !== undefined) protectedIds.add(r.employeeId);
    if (r.username !== undefined) protectedUsernames.add(r.username);
  };

  for (const r of [...records].sort((a, b) => a.line - b.line)) {
    const firstId = r.employeeId !== undefined ? seenIds.get(r.employeeId) : undefined;
    const firstUser = r.username !== undefined ? seenUsernames.get(r.username) : undefined;
    if (r.employeeId !== undefined && firstId === undefined) seenIds.set(r.employeeId, r.line);
    if (r.username !== undefined && firstUser === undefined)
      seenUsernames.set(r.username, { line: r.line, ...(r.employeeId ? { employeeId: r.employeeId } : {}) });
    if (!r.employee) {
      refuse(r, r.problems);
      continue;
    }
    if (firstId !== undefined) {
      refuse(r, [
        {
          field: "spec.employeeId",
          message: `duplicate employeeId ${JSON.stringify(r.employeeId)} (first on line ${firstId})`,
        },
      ]);
      continue;
    }
    if (firstUser !== undefined) {
      refuse(r, [
        {
          field: "spec.username",
          message: `duplicate username ${JSON.stringify(r.username)} (first on line ${firstUser.line})`,
        },
      ]);
      continue;
    }
    const imported = r.employee;
    const id = imported.spec.employeeId;
    const username = imported.spec.username;
    const existing = byId.get(id);
    if (existing && String(existing.employee.spec.username) !== username) {
      refuse(r, [
        {
          field: "spec.username",
          message: `username is immutable: ${where(existing)} (employeeId ${id}) has ${JSON.stringify(existing.employee.spec.username)}, the export says ${JSON.stringify(username)}`,
        },
      ]);
      continue;
    }
    const holder = byUsername.get(username);
    if (!existing && holder) {
      refuse(r, [
        {
          field: "spec.username",
          message: `username ${JSON.stringify(username)} belongs to employeeId ${JSON.stringify(holder.employee.spec.employeeId)} (${where(holder)})`,
        },
      ]);
      continue;
    }
    const name = existing?.employee.metadata.name ?? employeeName(username);
    const nameHolder = byName.get(name);
    if (!existing && nameHolder) {
      refuse(r, [
        {
          message: `object name ${name} is taken by employeeId ${JSON.stringify(nameHolder.employee.spec.employeeId)} (${where(nameHolder)})`,
        },
      ]);
      continue;
    }
    imported.metadata.name = name;

    if (!existing) {
      if (imported.spec.employmentStatus === "Terminated") {
        plan.skipped.push({
          line: r.line,
          employeeId: id,
          reason: "Terminated in the export and not present",
        });
        continue;
      }
      plan.hires.push({ name, employeeId: id, username, line: r.line, changes: [], object: imported });
      continue;
    }

    const live = existing.employee;
    let object: Employee;
    let expected: Employee;
    if (options.mode === "merge") {
      object = clone(live);
      for (const t of targets) putTarget(object, t, getTarget(imported, t));
      expected = object;
    } else {
      object = imported;
      expected = clone(live);
      const owned = appliedPaths(live, options.fieldManager ?? "roster-import");
      for (const t of targets) {
        const v = getTarget(imported, t);
        if (v !== undefined || owned.has(fieldPath(t))) putTarget(expected, t, v);
      }
    }
    const changes = compare(live, expected, targets);
    if (changes.length === 0) {
      plan.unchanged++;
      continue;
    }
    plan.movers.push({ name, employeeId: id, username, line: r.line, changes, object, existing });
  }

  for (const e of existingList) {
    const live = e.employee;
    const id = live.spec?.employeeId === undefined ? undefined : String(live.spec.employeeId);
    if (id === undefined || seenIds.has(id) || protectedIds.has(id)) continue;
    if (protectedUsernames.has(String(live.spec.username))) continue;
    if (live.spec.employmentStatus === "Terminated" || live.metadata.deletionTimestamp) continue;
    const object = options.mode === "merge" ? clone(live) : projectEmployee(live, targets);
    putTarget(object, STATUS, "Terminated");
    plan.leavers.push({
      name: live.metadata.name,
      employeeId: id,
      username: String(live.spec.username),
      changes: [
        {
          field: fieldPath(STATUS),
          ...(live.spec.employmentStatus ? { old: live.spec.employmentStatus } : {}),
          new: "Terminated",
        },
      ],
      object,
      existing: e,
    });
  }
  const byNameOrder = (a: PlannedChange, b: PlannedChange) => a.name.localeCompare(b.name);
  plan.hires.sort(byNameOrder);
  plan.movers.sort(byNameOrder);
  plan.leavers.sort(byNameOrder);
  return plan;
}

/**
 * The most leavers one import may make: `N` people or `P%` of the people not yet Terminated;
 * by default 10% of them and never fewer than 10. Guards against a truncated or empty export.
 */
export function leaverLimit(spec: string | undefined, current: number): number {
  if (spec === undefined) return Math.max(10, Math.ceil(current * 0.1));
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(spec);
  if (percent) return Math.floor((current * Number(percent[1])) / 100);
  if (/^\d+$/.test(spec)) return Number(spec);
  throw new PlanError(`--max-leavers ${JSON.stringify(spec)}: expected a number or a percentage like 10%`);
}

/** People the leaver limit is measured against: present and not Terminated. */
export function currentPeople(existing: readonly ExistingEmployee[]): number {
  return existing.filter((e) => e.employee.spec?.employmentStatus !== "Terminated").length;
}
