// `roster plan` as a pure function: given the objects as they are and as a pull request would
// make them, which accounts Roster would create, update, disable and delete, and which group
// memberships it would add and remove, per person and per connector; and whether the change
// would trip the mass-change brake. With what `roster plan --live` read from the targets, the
// planner runs on the accounts as they are (real ids, drift, adoption candidates, orphans).
import type { AccessPolicy, Connector, Employee, GroupRule } from "../api/types.ts";
import { rfc3339Seconds } from "../api/conditions.ts";
import type { ActualAccount } from "../connectors/types.ts";
import { evaluateAccess } from "../policy/evaluate.ts";
import { deprovisionLimit, managedAccountCount } from "./brake.ts";
import {
  accountMapping,
  accountOperations,
  adoptionApproved,
  connectorPaused,
  connectorsToVisit,
  planEmployee,
  protectedBy,
  type NamespaceObjects,
  type TargetRead,
} from "./employee.ts";
import type { Operation } from "./plan.ts";
import { compareScan, unmanagedMembers } from "./scan.ts";

export type RosterState = {
  employees: Employee[];
  policies: AccessPolicy[];
  rules: GroupRule[];
  connectors: Connector[];
};

export type PlannedChange = {
  employee: string;
  username: string;
  connector: string;
  action: "create" | "adopt" | "update" | "enable" | "disable" | "delete" | "none";
  attributes: string[];
  groupsAdded: string[];
  groupsRemoved: string[];
  reason: string;
  /** With --live: the account's id in the target (LDAP DN, SCIM id); none for one not made yet. */
  id?: string;
  /** With --live: each attribute the update writes, as the target holds it and as it will be. */
  attributeValues?: Record<string, { from: string[]; to: string[] }>;
  /** With --live: what was changed outside Roster and this change puts back (drift policy Correct). */
  drift?: string;
};

export type BrakeCheck = {
  connector: string;
  deprovisions: number;
  limit: number;
  managed: number;
  trips: boolean;
};

/** What `roster plan --live` read from one Connector's target. */
export type LiveTarget = {
  /** Every account in the managed scope (listAccounts). */
  accounts: readonly ActualAccount[];
  /** Adoption candidates (findUnowned) by Employee name, for the lookups adoptionLookups named. */
  candidates: ReadonlyMap<string, ActualAccount[]>;
};

/** Connector name -> what was read; a Connector missing here was not read (paused). */
export type LiveRead = ReadonlyMap<string, LiveTarget>;

/** An account made before Roster that matches a person (Connector spec.adoption) and is not linked. */
export type AdoptionCandidate = {
  employee: string;
  username: string;
  connector: string;
  id?: string;
  state: "Unlinked" | "Conflict" | "Protected";
  message: string;
};

/** An account no Employee owns, and what the scan does with it (Connector spec.orphans). */
export type OrphanAction = {
  connector: string;
  id: string;
  username: string;
  employeeId: string;
  action: "disable" | "delete" | "report";
  why: string;
};

/** What only the targets show: found by `roster plan --live`. */
export type LiveFindings = {
  /** Accounts whose drift stays as found (drift policy Report). */
  driftReported: { employee: string; username: string; connector: string; id?: string; drift: string }[];
  adoptionCandidates: AdoptionCandidate[];
  orphans: OrphanAction[];
  /** A person's account that could not be judged (e.g. two accounts carry their employeeId). */
  problems: { employee: string; connector: string; message: string }[];
};

/** Members of a group Roster hands out that Roster did not add (src/plan/scan.ts unmanagedMembers). */
export type UnmanagedFinding = {
  connector: string;
  group: string;
  /** remove: an active Authoritative GroupRule names the group (through the brake); keep: only shown. */
  action: "remove" | "keep";
  /** The GroupRules that remove them. */
  rules: string[];
  count: number;
  /** Live: every member with its id; from Connector status: the first 50 usernames. */
  members: { id?: string; username: string }[];
};

export type Preview = {
  changes: PlannedChange[];
  brake: BrakeCheck[];
  tripsBrake: boolean;
  live?: LiveFindings;
  /** Live from the targets; else from Connector status.unmanagedMembers, judged by the proposed rules. */
  unmanaged?: UnmanagedFinding[];
};

/**
 * What the targets hold, as far as the cluster knows: status as last synced by the operator, with
 * the attributes the operator wrote from the Employee as it was. `roster plan` reads no target.
 */
function recordedAccount(
  employee: Employee | undefined,
  connector: Connector,
  current: Pick<NamespaceObjects, "employees">,
): ActualAccount | undefined {
  const account = employee?.status?.accounts?.find((a) => a.connector === connector.metadata.name);
  // A held account is as it was before its deprovisioning was held.
  if (!employee || !account || !["Active", "Disabled", "Held"].includes(account.state)) return undefined;
  return {
    id: account.id ?? "",
    employeeId: employee.spec.employeeId,
    username: employee.spec.username,
    attributes: accountMapping(connector, current).desiredAttributes(employee.spec),
    enabled: account.state !== "Disabled",
    groups: account.groups ?? [],
  };
}

/** What a preview shows for one account, from the operations the planner chose. */
export function changeOf(
  ops: readonly Operation[],
): Pick<PlannedChange, "action" | "attributes" | "groupsAdded" | "groupsRemoved"> {
  const has = (op: Operation["op"]) => ops.some((o) => o.op === op);
  const create = ops.find((o) => o.op === "create");
  const update = ops.find((o) => o.op === "update");
  return {
    // The strongest change names the row: a create or delete over a disable, and so on; linking an
    // existing account over what linking brings along.
    action: has("link")
      ? "adopt"
      : ((["create", "delete", "disable", "enable", "update"] as const).find(has) ?? "none"),
    attributes: update?.op === "update" ? Object.keys(update.changes).sort() : [],
    groupsAdded:
      create?.op === "create"
        ? [...create.account.groups].sort()
        : ops.flatMap((o) => (o.op === "group_add" ? [o.group] : [])).sort(),
    groupsRemoved: ops.flatMap((o) => (o.op === "group_remove" ? [o.group] : [])).sort(),
  };
}

/** A change that takes access away: what the brake counts (as the operator does, the corrections linking brings too). */
export function takesAccess(change: PlannedChange): boolean {
  return (
    change.action === "disable" ||
    change.action === "delete" ||
    change.groupsRemoved.length > 0 ||
    (change.action === "adopt" && change.attributes.length > 0)
  );
}

export function previewPlan(
  current: RosterState,
  proposed: RosterState,
  now: Date,
  live?: LiveRead,
): Preview {
  const changes: PlannedChange[] = [];
  const proposedByName = new Map(proposed.employees.map((e) => [e.metadata.name, e]));
  const currentByName = new Map(current.employees.map((e) => [e.metadata.name, e]));
  const names = [...new Set([...proposedByName.keys(), ...currentByName.keys()])].sort();
  const connectors = new Map(proposed.connectors.map((c) => [c.metadata.name, c]));
  for (const c of current.connectors)
    if (!connectors.has(c.metadata.name)) connectors.set(c.metadata.name, c);
  const objects: NamespaceObjects = { ...proposed, connectors: [...connectors.values()] };
  // Files carry no status: references (a manager's account id) resolve from the cluster's.
  const resolving = {
    employees: proposed.employees.map((e) => ({
      ...e,
      status: e.status ?? currentByName.get(e.metadata.name)?.status,
    })),
  };
  // A removed file is a leaver: the Employee as it is now, being deleted.
  const planned = new Map(
    names.map((name): [string, Employee] => {
      const before = currentByName.get(name);
      const proposedEmployee = proposedByName.get(name);
      return [
        name,
        proposedEmployee
          ? { ...proposedEmployee, status: before?.status }
          : { ...before!, metadata: { ...before!.metadata, deletionTimestamp: rfc3339Seconds(now) } },
      ];
    }),
  );
  const scanned = live
    ? scanLive(live, current, { ...objects, employees: [...planned.values()] }, now)
    : undefined;
  const unmanaged = scanned?.unmanaged ?? unmanagedFromStatus(current, objects, now);

  for (const name of names) {
    const before = currentByName.get(name);
    const proposedEmployee = proposedByName.get(name);
    const employee = planned.get(name)!;
    if (scanned) {
      changes.push(...liveChanges(employee, !proposedEmployee, scanned));
      continue;
    }
    const access = evaluateAccess(employee, objects.policies, objects.rules, now);
    const reason = proposedEmployee ? access.reason : "the Employee is deleted";
    for (const connectorName of connectorsToVisit(employee, objects, now)) {
      const connector = connectors.get(connectorName);
      if (!connector) continue;
      // An account made before Roster that the change links (annotation or Automatic): listed as
      // its own kind of change; what linking corrects on it is known only once the target is read.
      const unlinked = before?.status?.accounts?.find(
        (a) => a.connector === connectorName && a.state === "Unlinked" && a.id,
      );
      if (unlinked) {
        const links =
          access.accounts.has(connectorName) &&
          (connector.spec.adoption?.mode === "Automatic" || adoptionApproved(employee, connectorName));
        if (links)
          changes.push({
            employee: name,
            username: employee.spec.username,
            connector: connectorName,
            action: "adopt",
            attributes: [],
            groupsAdded: [...access.accounts.get(connectorName)!.groups.keys()].sort(),
            groupsRemoved: [],
            reason: `links the existing account ${unlinked.id}, then brings its attributes and groups to policy (through the brake)`,
          });
        continue;
      }
      const actual = recordedAccount(before, connector, current);
      // Only what status records is known: a leaver without a recorded account changes nothing.
      if (!actual && !access.accounts.has(connectorName)) continue;
      const { ops } = accountOperations({
        employee,
        access,
        connector,
        mapping: accountMapping(connector, resolving),
        actual,
        objects,
        now,
      });
      const change = changeOf(ops);
      if (change.action !== "none" || change.groupsAdded.length || change.groupsRemoved.length)
        changes.push({
          employee: name,
          username: employee.spec.username,
          connector: connectorName,
          ...change,
          reason,
        });
    }
  }

  const brake: BrakeCheck[] = [];
  for (const [name, connector] of [...connectors].sort(([a], [b]) => a.localeCompare(b))) {
    // Live, orphans disabled or deleted count too, each as one person, as the scan asks the brake.
    const deprovisions =
      changes.filter((c) => c.connector === name && takesAccess(c)).length +
      (scanned?.findings.orphans.filter((o) => o.connector === name && o.action !== "report").length ?? 0) +
      (unmanaged.removals.get(name) ?? 0);
    const recorded =
      scanned?.managed.get(name) ??
      current.connectors.find((c) => c.metadata.name === name)?.status?.managedAccounts;
    const managed = managedAccountCount(name, current.employees, recorded);
    const limit = deprovisionLimit(connector.spec.safety, managed);
    if (deprovisions > 0)
      brake.push({ connector: name, deprovisions, limit, managed, trips: deprovisions > limit });
  }
  return {
    changes,
    brake,
    tripsBrake: brake.some((b) => b.trips),
    ...(scanned ? { live: scanned.findings } : {}),
    ...(unmanaged.groups.length ? { unmanaged: unmanaged.groups } : {}),
  };
}

type Unmanaged = {
  groups: UnmanagedFinding[];
  /** Connector -> hand-added members this plan removes (one brake count each, as the scan asks). */
  removals: Map<string, number>;
};

/**
 * Without --live, what the last full scan recorded (Connector status.unmanagedMembers), judged by
 * the proposed objects with the scan's own rule: a change that makes a rule Authoritative shows
 * who it removes, and those removals (only those: the others were under way already) count
 * against the brake. Beyond the 50 usernames status keeps, members are known by count only.
 */
function unmanagedFromStatus(current: RosterState, objects: NamespaceObjects, now: Date): Unmanaged {
  const result: Unmanaged = { groups: [], removals: new Map() };
  for (const before of current.connectors) {
    const recorded = before.status?.unmanagedMembers ?? [];
    const name = before.metadata.name;
    const connector = objects.connectors.find((c) => c.metadata.name === name);
    if (!recorded.length || !connector) continue;
    const { groupKey } = accountMapping(connector, { employees: [] });
    const groupsOf = new Map<string, string[]>();
    for (const g of recorded)
      for (const u of g.members) groupsOf.set(u, [...(groupsOf.get(u) ?? []), g.group]);
    const accounts = [...groupsOf].map(([username, groups]): ActualAccount => ({
      id: username,
      employeeId: "",
      username,
      attributes: {},
      enabled: true,
      groups,
    }));
    const judged = unmanagedMembers({ connector, objects, accounts, now });
    for (const g of recorded) {
      const after = judged.find((j) => groupKey(j.group) === groupKey(g.group));
      // Members the change makes Employees' (their username or email) are no longer unmanaged.
      const members = after?.members.map((m) => ({ username: m.username })) ?? [];
      const count = g.count - (g.members.length - members.length);
      if (count <= 0) continue;
      const action = after?.remove ? "remove" : "keep";
      result.groups.push({
        connector: name,
        group: g.group,
        action,
        rules: after?.rules ?? [],
        count,
        members,
      });
      if (action === "remove" && g.action !== "Remove")
        result.removals.set(name, (result.removals.get(name) ?? 0) + count);
    }
  }
  return result;
}

type LiveScan = {
  live: LiveRead;
  /** The objects as the operator sees them once the change is applied (leavers being deleted). */
  objects: NamespaceObjects;
  /** Employee name -> connector -> drift the scan finds now, as the Employee controller gets it. */
  drift: Map<string, Map<string, string>>;
  /** Connector -> accounts owned by an Employee, as the scan counts them (the brake's percentage). */
  managed: Map<string, number>;
  findings: LiveFindings;
  unmanaged: Unmanaged;
  now: Date;
};

/**
 * The full scan over what was read, as src/controller/scan.ts runs it: drift against the cluster
 * as it is (what the operator put there), orphans against the objects once the change is applied,
 * and what `orphans: Disable | Delete` does with them (only keyed orphans, never protected ones).
 */
function scanLive(live: LiveRead, current: RosterState, objects: NamespaceObjects, now: Date): LiveScan {
  const scan: LiveScan = {
    live,
    objects,
    drift: new Map(),
    managed: new Map(),
    findings: { driftReported: [], adoptionCandidates: [], orphans: [], problems: [] },
    unmanaged: { groups: [], removals: new Map() },
    now,
  };
  for (const [name, target] of [...live].sort(([a], [b]) => a.localeCompare(b))) {
    const connector = objects.connectors.find((c) => c.metadata.name === name);
    if (!connector) continue;
    const before = current.connectors.find((c) => c.metadata.name === name) ?? connector;
    const asItIs = compareScan({ connector: before, objects: current, accounts: target.accounts, now });
    scan.managed.set(name, asItIs.managed.Active + asItIs.managed.Disabled);
    for (const d of asItIs.drift) {
      const byConnector = scan.drift.get(d.employee) ?? new Map<string, string>();
      scan.drift.set(d.employee, byConnector.set(name, d.detail));
    }
    const after = compareScan({ connector, objects, accounts: target.accounts, now });
    const removed = new Set<string>();
    for (const g of after.unmanaged) {
      scan.unmanaged.groups.push({
        connector: name,
        group: g.group,
        action: g.remove ? "remove" : "keep",
        rules: g.rules,
        count: g.members.length,
        members: g.members,
      });
      if (g.remove) for (const m of g.members) removed.add(m.id);
    }
    if (removed.size) scan.unmanaged.removals.set(name, removed.size);
    const action = connector.spec.orphans ?? "Report";
    if (action === "Ignore") continue;
    const byId = new Map(target.accounts.map((a) => [a.id, a]));
    const groupKey = accountMapping(connector, { employees: [] }).groupKey;
    for (const orphan of after.orphans) {
      const account = byId.get(orphan.id)!;
      const guarded = protectedBy(connector, account, groupKey);
      const acts = (action === "Disable" || action === "Delete") && orphan.employeeId !== "" && !guarded;
      const outcome: Pick<OrphanAction, "action" | "why"> =
        orphan.employeeId === ""
          ? { action: "report", why: "no employeeId: never Roster's, only reported" }
          : guarded
            ? { action: "report", why: `${guarded}: never touched (Connector spec.protected)` }
            : !acts
              ? {
                  action: "report",
                  why: `employeeId ${orphan.employeeId} belongs to no Employee (orphans: Report)`,
                }
              : action === "Disable" && !account.enabled
                ? { action: "report", why: "already disabled" }
                : {
                    action: action === "Delete" ? "delete" : "disable",
                    why: `employeeId ${orphan.employeeId} belongs to no Employee (orphans: ${action}); once two scans in a row found it, through the brake`,
                  };
      scan.findings.orphans.push({
        connector: name,
        id: orphan.id,
        username: account.username,
        employeeId: orphan.employeeId,
        ...outcome,
      });
    }
  }
  return scan;
}

/** The planner on the accounts as read: what the operator does for this person once the change is applied. */
function liveChanges(employee: Employee, leaving: boolean, scan: LiveScan): PlannedChange[] {
  const name = employee.metadata.name;
  const reads = new Map<string, TargetRead>();
  for (const connector of connectorsToVisit(employee, scan.objects, scan.now)) {
    const target = scan.live.get(connector);
    if (!target) continue; // not read (paused): the planner decides nothing there
    const owned = target.accounts.filter((a) => a.employeeId === employee.spec.employeeId);
    if (owned.length > 1) {
      scan.findings.problems.push({
        employee: name,
        connector,
        message: `${owned.length} accounts carry employeeId ${employee.spec.employeeId} (${owned.map((a) => a.id).join(", ")}): the operator changes none of them`,
      });
      continue;
    }
    const candidates = target.candidates.get(name);
    reads.set(connector, { status: "read", actual: owned[0], ...(candidates ? { candidates } : {}) });
  }
  const drift = scan.drift.get(name);
  const plan = planEmployee({
    employee,
    objects: scan.objects,
    targets: reads,
    ...(drift ? { drift } : {}),
    now: scan.now,
  });
  const changes: PlannedChange[] = [];
  for (const account of plan.accounts) {
    const read = reads.get(account.connector);
    const actual = read?.status === "read" ? read.actual : undefined;
    const status = account.status;
    const who = { employee: name, username: employee.spec.username, connector: account.connector };
    if (!actual && status && ["Unlinked", "Conflict", "Protected"].includes(status.state))
      scan.findings.adoptionCandidates.push({
        ...who,
        ...(status.id ? { id: status.id } : {}),
        state: status.state as AdoptionCandidate["state"],
        message: status.message ?? "",
      });
    if (account.driftReported !== undefined)
      scan.findings.driftReported.push({
        ...who,
        ...(actual ? { id: actual.id } : {}),
        drift: account.driftReported,
      });
    const change = changeOf(account.ops);
    if (change.action === "none" && !change.groupsAdded.length && !change.groupsRemoved.length) continue;
    const update = account.ops.find((o) => o.op === "update");
    const id = status?.id ?? actual?.id;
    changes.push({
      ...who,
      ...change,
      reason:
        account.driftCorrected !== undefined
          ? `puts back what was changed outside Roster: ${account.driftCorrected}`
          : leaving
            ? "the Employee is deleted"
            : plan.access.reason,
      ...(id ? { id } : {}),
      ...(update?.op === "update"
        ? {
            attributeValues: Object.fromEntries(
              Object.entries(update.changes)
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([key, to]) => [key, { from: actual?.attributes[key] ?? [], to: to ?? [] }]),
            ),
          }
        : {}),
      ...(account.driftCorrected !== undefined ? { drift: account.driftCorrected } : {}),
    });
  }
  return changes;
}

/**
 * The adoption look-ups (findUnowned) the operator makes on a Connector: for each person entitled
 * to an account there that the target holds none of theirs.
 */
export function adoptionLookups(
  proposed: Pick<RosterState, "employees" | "policies" | "rules">,
  connector: Connector,
  accounts: readonly ActualAccount[],
  now: Date,
): { employee: string; match: "Username" | "Email"; value: string }[] {
  const match = connector.spec.adoption?.match;
  if (!match || match === "None" || connectorPaused(connector)) return [];
  const owned = new Set(accounts.map((a) => a.employeeId).filter((id) => id !== ""));
  return proposed.employees.flatMap((e) => {
    const value = match === "Email" ? e.spec.email : e.spec.username;
    const access = evaluateAccess(e, proposed.policies, proposed.rules, now);
    return value && !owned.has(e.spec.employeeId) && access.accounts.has(connector.metadata.name)
      ? [{ employee: e.metadata.name, match, value }]
      : [];
  });
}

/**
 * A tree of manifests as the operator leaves it once reconciled (`roster plan --base`): each
 * Employee with the status the planner records once every account it is entitled to exists as it
 * should. No target is read, so no account id is known.
 */
export function convergedState(tree: RosterState, now: Date): RosterState {
  const employees = tree.employees.map((employee) => {
    const targets = new Map<string, TargetRead>(
      connectorsToVisit(employee, tree, now).map((name) => [name, { status: "read", actual: undefined }]),
    );
    return { ...employee, status: planEmployee({ employee, objects: tree, targets, now }).status };
  });
  return { ...tree, employees };
}

const ACTION_WORDS: Record<PlannedChange["action"], string> = {
  create: "create account",
  adopt: "link existing account",
  update: "update",
  enable: "enable",
  disable: "disable",
  delete: "delete account",
  none: "",
};

/** A table cell: a value read from a target may hold what would break the row. */
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

function shownValues(values: string[]): string {
  if (values.length === 0) return "(none)";
  return values.length === 1
    ? JSON.stringify(values[0])
    : `[${values.map((v) => JSON.stringify(v)).join(", ")}]`;
}

/** What the change column says: the action, and live the values an update writes over. */
function changeWords(c: PlannedChange): string {
  if (c.attributeValues && Object.keys(c.attributeValues).length > 0 && c.action === "update")
    return cell(
      "update " +
        Object.entries(c.attributeValues)
          .map(([name, v]) => `${name}: ${shownValues(v.from)} → ${shownValues(v.to)}`)
          .join("; "),
    );
  return [ACTION_WORDS[c.action], c.attributes.length ? `(${c.attributes.join(", ")})` : ""]
    .filter(Boolean)
    .join(" ");
}

/** Markdown, fit for a pull-request comment. */
export function renderPreview(preview: Preview): string {
  const lines: string[] = ["## Roster plan", ""];
  const live = preview.live;
  if (live) lines.push("Read live from the targets: drift, adoption candidates and orphans included.", "");
  const acted = live?.orphans.filter((o) => o.action !== "report") ?? [];
  const liveItems =
    (live?.adoptionCandidates.length ?? 0) +
    acted.length +
    (live?.driftReported.length ?? 0) +
    (live?.problems.length ?? 0);
  const unmanaged = preview.unmanaged ?? [];
  if (preview.changes.length === 0 && liveItems === 0 && unmanaged.length === 0) {
    lines.push("No changes: every account and group stays as it is.");
    return lines.join("\n") + "\n";
  }
  const count = (pred: (c: PlannedChange) => boolean) => preview.changes.filter(pred).length;
  lines.push(
    `${count((c) => c.action === "create")} to create, ` +
      (count((c) => c.action === "adopt") ? `${count((c) => c.action === "adopt")} to link, ` : "") +
      `${count((c) => c.action === "update")} to update, ` +
      `${count((c) => c.action === "enable")} to enable, ${count((c) => c.action === "disable")} to disable, ` +
      `${count((c) => c.action === "delete")} to delete; ` +
      `${preview.changes.reduce((n, c) => n + c.groupsAdded.length, 0)} group memberships added, ` +
      `${preview.changes.reduce((n, c) => n + c.groupsRemoved.length, 0)} removed.`,
    "",
  );
  if (live)
    lines.push(
      `${count((c) => c.drift !== undefined)} drift corrections, ${live.adoptionCandidates.length} adoption candidates, ` +
        `${acted.length} orphans to disable or delete.`,
      "",
    );
  const connectors = new Set(preview.changes.map((c) => c.connector));
  for (const item of [
    ...(live?.adoptionCandidates ?? []),
    ...acted,
    ...(live?.driftReported ?? []),
    ...(live?.problems ?? []),
  ])
    connectors.add(item.connector);
  for (const g of unmanaged) connectors.add(g.connector);
  for (const connector of [...connectors].sort()) {
    lines.push(`### Connector ${connector}`, "");
    const rows = preview.changes.filter((x) => x.connector === connector);
    if (rows.length > 0) {
      lines.push(
        live
          ? "| person | account | change | groups added | groups removed | why |"
          : "| person | change | groups added | groups removed | why |",
        live ? "| --- | --- | --- | --- | --- | --- |" : "| --- | --- | --- | --- | --- |",
      );
      for (const c of rows)
        lines.push(
          `| ${c.employee} (${c.username}) | ${live ? `${c.id ? `\`${cell(c.id)}\`` : "(new)"} | ` : ""}${changeWords(c) || "groups"} | ${c.groupsAdded.join(", ")} | ${c.groupsRemoved.join(", ")} | ${cell(c.reason)} |`,
        );
      lines.push("");
    }
    if (live) renderLive(lines, live, connector);
    const groups = unmanaged.filter((g) => g.connector === connector);
    if (groups.length > 0)
      lines.push(
        `Members Roster did not add, of groups it hands out (${live ? "read live" : "as the last full scan saw"}):`,
        "",
        "| group | members | what happens |",
        "| --- | --- | --- |",
        ...groups.map((g) => {
          const shown = g.members.map((m) =>
            m.id && live ? `${m.username} (\`${cell(m.id)}\`)` : m.username,
          );
          const more = g.count > shown.length ? ` and ${g.count - shown.length} more` : "";
          return `| ${cell(g.group)} | ${cell(shown.join(", ") + more)} | ${
            g.action === "remove"
              ? `removed by ${g.rules.join(", ")} (Authoritative), through the brake`
              : "kept (no Authoritative GroupRule names the group)"
          } |`;
        }),
        "",
      );
  }
  for (const b of preview.brake) {
    if (b.trips)
      lines.push(
        `**Mass-change brake**: ${b.deprovisions} deprovisions in ${b.connector} exceed its limit of ${b.limit} per hour ` +
          `(${b.managed} managed accounts); Roster would hold ${b.deprovisions - b.limit} until approved.`,
      );
  }
  return lines.join("\n") + "\n";
}

/** The findings of --live for one connector, below its changes. */
function renderLive(lines: string[], live: LiveFindings, connector: string): void {
  const mine = <T extends { connector: string }>(list: T[]) => list.filter((x) => x.connector === connector);
  const id = (value: string | undefined) => (value ? `\`${cell(value)}\`` : "");
  const candidates = mine(live.adoptionCandidates);
  if (candidates.length > 0) {
    lines.push(
      "Adoption candidates (accounts made before Roster; nothing is written to them until linked):",
      "",
      "| person | account | state | note |",
      "| --- | --- | --- | --- |",
      ...candidates.map(
        (a) => `| ${a.employee} (${a.username}) | ${id(a.id)} | ${a.state} | ${cell(a.message)} |`,
      ),
      "",
    );
  }
  const orphans = mine(live.orphans);
  const acted = orphans.filter((o) => o.action !== "report");
  if (acted.length > 0)
    lines.push(
      "Orphans the scan acts on:",
      "",
      "| account | employeeId | action | why |",
      "| --- | --- | --- | --- |",
      ...acted.map((o) => `| ${id(o.id)} | ${cell(o.employeeId)} | ${o.action} | ${cell(o.why)} |`),
      "",
    );
  if (orphans.length > acted.length)
    lines.push(
      `${orphans.length - acted.length} ${acted.length ? "further " : ""}orphans are only reported (no employeeId, protected, already disabled, or orphans: Report).`,
      "",
    );
  for (const d of mine(live.driftReported))
    lines.push(
      `Drift left as found (drift policy Report): ${d.employee} (${d.username}) ${id(d.id)}: ${cell(d.drift)}.`,
      "",
    );
  for (const p of mine(live.problems)) lines.push(`Not judged: ${p.employee}: ${cell(p.message)}.`, "");
}
