// `roster plan` as a pure function: given the objects as they are and as a pull request would
// make them, which accounts Roster would create, update, disable and delete, and which group
// memberships it would add and remove, per person and per connector; and whether the change
// would trip the mass-change brake.
import type { AccessPolicy, Connector, Employee, EmployeeSpecT, GroupRule } from "../api/types.ts";
import { evaluateAccess, managedGroups } from "../policy/evaluate.ts";
import { deprovisionLimit } from "./brake.ts";
import { attributeChanges, parseDuration } from "./plan.ts";

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
  action: "create" | "update" | "enable" | "disable" | "delete" | "none";
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

/** Attribute mapping per connector kind, so renamed or re-titled people show as updates. */
export type AttributeMapper = (connector: Connector, employee: EmployeeSpecT) => Record<string, string[]>;

export function previewPlan(
  current: RosterState,
  proposed: RosterState,
  mapAttributes: AttributeMapper,
  now: Date,
): Preview {
  const changes: PlannedChange[] = [];
  const proposedByName = new Map(proposed.employees.map((e) => [e.metadata.name, e]));
  const currentByName = new Map(current.employees.map((e) => [e.metadata.name, e]));
  const names = [...new Set([...proposedByName.keys(), ...currentByName.keys()])].sort();
  const connectors = new Map(proposed.connectors.map((c) => [c.metadata.name, c]));
  for (const c of current.connectors)
    if (!connectors.has(c.metadata.name)) connectors.set(c.metadata.name, c);

  for (const name of names) {
    const before = currentByName.get(name);
    const after = proposedByName.get(name);
    // What the person holds now: status as last synced by the operator.
    const held = new Map(
      (before?.status?.accounts ?? [])
        .filter((a) => a.state === "Active" || a.state === "Disabled")
        .map((a) => [a.connector, a]),
    );
    const access = after
      ? evaluateAccess(after, proposed.policies, proposed.rules, now)
      : { lifecycle: "Terminated" as const, accounts: new Map(), reason: "the Employee file is removed" };
    const reason = after ? access.reason : "the Employee is deleted";
    const spec = (after ?? before)!.spec;
    for (const connectorName of [...new Set([...access.accounts.keys(), ...held.keys()])].sort()) {
      const connector = connectors.get(connectorName);
      const wanted = access.accounts.get(connectorName);
      const have = held.get(connectorName);
      const change: PlannedChange = {
        employee: name,
        username: spec.username,
        connector: connectorName,
        action: "none",
        attributes: [],
        groupsAdded: [],
        groupsRemoved: [],
        reason,
      };
      const wantGroups = [...(wanted?.groups.keys() ?? [])].sort();
      const managed = managedGroups(connectorName, proposed.policies, proposed.rules, proposed.employees);
      for (const g of have?.groups ?? []) managed.add(g);
      if (wanted && !have) {
        change.action = "create";
        change.groupsAdded = wantGroups;
      } else if (wanted && have) {
        const enable = access.lifecycle === "Active";
        if (enable && have.state === "Disabled") change.action = "enable";
        else if (!enable && have.state === "Active") change.action = "disable";
        if (connector && before) {
          change.attributes = Object.keys(
            attributeChanges(
              mapAttributes(connector, spec),
              mapAttributes(connector, before.spec),
              Object.keys({ ...mapAttributes(connector, spec), ...mapAttributes(connector, before.spec) }),
            ),
          ).sort();
          if (change.attributes.length && change.action === "none") change.action = "update";
        }
        const haveGroups = new Set(have.groups ?? []);
        change.groupsAdded = wantGroups.filter((g) => !haveGroups.has(g));
        change.groupsRemoved = [...haveGroups].filter((g) => !wanted.groups.has(g) && managed.has(g)).sort();
      } else if (have) {
        const deprovisioning = connector?.spec.deprovisioning;
        const deleteNow =
          deprovisioning?.action === "Delete" && parseDuration(deprovisioning.deleteAfter ?? "720h") === 0;
        change.action = deleteNow ? "delete" : have.state === "Active" ? "disable" : "none";
        change.groupsRemoved = [...(have.groups ?? [])].filter((g) => managed.has(g)).sort();
      }
      if (change.action !== "none" || change.groupsAdded.length || change.groupsRemoved.length)
        changes.push(change);
    }
  }

  const brake: BrakeCheck[] = [];
  for (const [name, connector] of [...connectors].sort(([a], [b]) => a.localeCompare(b))) {
    const deprovisions = changes.filter(
      (c) =>
        c.connector === name &&
        (c.action === "disable" || c.action === "delete" || c.groupsRemoved.length > 0),
    ).length;
    const managed = current.employees.filter((e) =>
      e.status?.accounts?.some(
        (a) => a.connector === name && (a.state === "Active" || a.state === "Disabled"),
      ),
    ).length;
    const limit = deprovisionLimit(connector.spec.safety, managed);
    if (deprovisions > 0)
      brake.push({ connector: name, deprovisions, limit, managed, trips: deprovisions > limit });
  }
  return { changes, brake, tripsBrake: brake.some((b) => b.trips) };
}

const ACTION_WORDS: Record<PlannedChange["action"], string> = {
  create: "create account",
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
    `${count((c) => c.action === "create")} to create, ${count((c) => c.action === "update")} to update, ` +
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
