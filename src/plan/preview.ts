// `roster plan` as a pure function: given the objects as they are and as a pull request would
// make them, which accounts Roster would create, update, disable and delete, and which group
// memberships it would add and remove, per person and per connector; and whether the change
// would trip the mass-change brake.
import type { AccessPolicy, Connector, Employee, GroupRule } from "../api/types.ts";
import { rfc3339Seconds } from "../api/conditions.ts";
import type { ActualAccount } from "../connectors/types.ts";
import { evaluateAccess } from "../policy/evaluate.ts";
import { deprovisionLimit, managedAccountCount } from "./brake.ts";
import {
  accountMapping,
  accountOperations,
  adoptionApproved,
  connectorsToVisit,
  type NamespaceObjects,
} from "./employee.ts";
import type { Operation } from "./plan.ts";

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
};

export type BrakeCheck = {
  connector: string;
  deprovisions: number;
  limit: number;
  managed: number;
  trips: boolean;
};

export type Preview = { changes: PlannedChange[]; brake: BrakeCheck[]; tripsBrake: boolean };

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
    // The strongest change names the row: a create or delete over a disable, and so on.
    action: (["create", "delete", "disable", "enable", "update"] as const).find(has) ?? "none",
    attributes: update?.op === "update" ? Object.keys(update.changes).sort() : [],
    groupsAdded:
      create?.op === "create"
        ? [...create.account.groups].sort()
        : ops.flatMap((o) => (o.op === "group_add" ? [o.group] : [])).sort(),
    groupsRemoved: ops.flatMap((o) => (o.op === "group_remove" ? [o.group] : [])).sort(),
  };
}

/** A change that takes access away: what the brake counts. */
export function takesAccess(change: PlannedChange): boolean {
  return change.action === "disable" || change.action === "delete" || change.groupsRemoved.length > 0;
}

export function previewPlan(current: RosterState, proposed: RosterState, now: Date): Preview {
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

  for (const name of names) {
    const before = currentByName.get(name);
    const proposedEmployee = proposedByName.get(name);
    // A removed file is a leaver: the Employee as it is now, being deleted.
    const employee: Employee = proposedEmployee
      ? { ...proposedEmployee, status: before?.status }
      : { ...before!, metadata: { ...before!.metadata, deletionTimestamp: rfc3339Seconds(now) } };
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
    const deprovisions = changes.filter((c) => c.connector === name && takesAccess(c)).length;
    const recorded = current.connectors.find((c) => c.metadata.name === name)?.status?.managedAccounts;
    const managed = managedAccountCount(name, current.employees, recorded);
    const limit = deprovisionLimit(connector.spec.safety, managed);
    if (deprovisions > 0)
      brake.push({ connector: name, deprovisions, limit, managed, trips: deprovisions > limit });
  }
  return { changes, brake, tripsBrake: brake.some((b) => b.trips) };
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

/** Markdown, fit for a pull-request comment. */
export function renderPreview(preview: Preview): string {
  const lines: string[] = ["## Roster plan", ""];
  if (preview.changes.length === 0) {
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
  for (const connector of [...new Set(preview.changes.map((c) => c.connector))].sort()) {
    lines.push(
      `### Connector ${connector}`,
      "",
      "| person | change | groups added | groups removed | why |",
      "| --- | --- | --- | --- | --- |",
    );
    for (const c of preview.changes.filter((x) => x.connector === connector)) {
      const what = [ACTION_WORDS[c.action], c.attributes.length ? `(${c.attributes.join(", ")})` : ""]
        .filter(Boolean)
        .join(" ");
      lines.push(
        `| ${c.employee} (${c.username}) | ${what || "groups"} | ${c.groupsAdded.join(", ")} | ${c.groupsRemoved.join(", ")} | ${c.reason} |`,
      );
    }
    lines.push("");
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
