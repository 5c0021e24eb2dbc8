// Why a person has, or does not have, each account and group: `roster explain` as a pure function.
// The answer itself is evaluateAccess's (the operator's); this adds, for every AccessPolicy,
// GroupRule and grant that could give something, which selector and match entry held or failed
// and the value it saw (match.ts), the dates and lifecycle, and what a pause, the brake or a
// rule's membership mode does to it.
import type { AccessPolicy, AccountStatusT, Connector, Employee, GroupRule } from "../api/types.ts";
import { accountMapping, actingEmployee, connectorPaused } from "../plan/employee.ts";
import { evaluateAccess, isPaused, parseDate, type Lifecycle } from "./evaluate.ts";
import { explainMatch, requirementProblems, type EntryResult } from "./match.ts";

export type ExplainObjects = {
  employees: readonly Employee[];
  policies: readonly AccessPolicy[];
  rules: readonly GroupRule[];
  connectors: readonly Connector[];
};

/** One AccessPolicy, GroupRule or grant, as considered for this person. */
export type SourceCheck = {
  source: string;
  /** Whether it gives this person what it names (lifecycle aside: see the account's verdict). */
  holds: boolean;
  why: string;
  /** Every selector and match entry, evaluated. */
  entries: EntryResult[];
  /** A malformed match: the object grants nothing (its status says why). */
  problems?: string[];
  paused?: boolean;
  /** A grant's end. */
  until?: string;
  /** A GroupRule's membership mode. */
  membership?: "Authoritative" | "Additive";
};

export type GroupExplanation = {
  group: string;
  has: boolean;
  /** The sources that give it (evaluateAccess). */
  sources: string[];
  why: string;
  /** The AccessPolicies and grants (considered under the connector) that name this group. */
  grantedBy: string[];
  /** The GroupRules that push this group to the connector. */
  rules: SourceCheck[];
  /** How Roster treats members of this group who no longer get it. */
  membership: string;
  /** From status (cluster): whether the account is in this group now, and the change Roster makes. */
  recorded?: boolean;
  change?: "add" | "remove";
};

export type ConnectorExplanation = {
  connector: string;
  /** A Connector of this name exists. */
  known: boolean;
  /** What Roster wants here: an enabled account, a disabled one, or none. */
  account: "Active" | "Disabled" | "None";
  why: string;
  /** The AccessPolicies and grants that name this connector. */
  considered: SourceCheck[];
  groups: GroupExplanation[];
  /** The account as the Employee's status records it (cluster only). */
  recorded?: Pick<AccountStatusT, "state" | "id" | "groups" | "message">;
  /** What the Connector's state does to this (paused, the brake, protected, deprovisioning). */
  notes: string[];
};

export type Explanation = {
  employee: {
    name: string;
    namespace?: string;
    username: string;
    employeeId: string;
    employmentStatus: string;
    employmentType: string;
    startDate?: string;
    endDate?: string;
  };
  at: string;
  lifecycle: Lifecycle;
  /** Why the lifecycle is what it is. */
  reason: string;
  /** The next moment the answer changes by itself (startDate, endDate, a grant's until). */
  nextChangeAt?: string;
  notes: string[];
  connectors: ConnectorExplanation[];
};

const list = (values: readonly string[]) => `[${values.join(", ")}]`;
const seen = (value: string | undefined) => (value === undefined ? "no value" : JSON.stringify(value));

/** One entry in words: `match[1] employmentType NotIn [Vendor]: saw "Vendor"`. */
export function describeEntry(entry: EntryResult): string {
  const asks =
    entry.operator === "="
      ? `${entry.entry} ${entry.key}=${entry.values[0]}`
      : `${entry.entry} ${entry.key} ${entry.operator}${entry.values.length ? ` ${list(entry.values)}` : ""}`;
  return `${asks}: saw ${seen(entry.seen)}`;
}

/** Whether status records that `source` gave this (what a paused policy or rule keeps). */
function recordedEntitlement(employee: Employee, source: string, connector: string, group?: string): boolean {
  return (employee.status?.entitlements ?? []).some(
    (e) => e.source === source && e.connector === connector && e.group === group,
  );
}

function checkObject(
  employee: Employee,
  object: AccessPolicy | GroupRule,
  source: string,
  connector: string,
  group?: string,
): SourceCheck {
  const problems = requirementProblems(object.spec.match);
  const entries = problems.length ? [] : explainMatch(employee, object.spec.selector, object.spec.match);
  const failed = entries.filter((e) => !e.holds);
  const matches = problems.length === 0 && failed.length === 0;
  const membership =
    object.kind === "GroupRule" ? { membership: object.spec.membership ?? "Authoritative" } : {};
  const matchWords = problems.length
    ? `its match is invalid (${problems.join("; ")}), so it grants nothing`
    : failed.length
      ? `${failed.length === 1 ? "fails on" : `fails on ${failed.length} entries:`} ${failed.map(describeEntry).join("; ")}`
      : entries.length
        ? "every selector and match entry holds"
        : "no selector or match: it selects every Employee";
  if (isPaused(object)) {
    const keeps = recordedEntitlement(employee, source, connector, group);
    return {
      source,
      holds: keeps,
      why:
        `paused (roster.dev/paused): it keeps what it gave and grants nothing new; ` +
        `${keeps ? "status records that it gave this, so it stays" : "status records no such grant, so it gives nothing"} ` +
        `(unpaused, ${matchWords})`,
      entries,
      ...(problems.length ? { problems } : {}),
      paused: true,
      ...membership,
    };
  }
  return {
    source,
    holds: matches,
    why: matches ? `holds: ${matchWords}` : `does not hold: ${matchWords}`,
    entries,
    ...(problems.length ? { problems } : {}),
    ...membership,
  };
}

const MEMBERSHIP = {
  granted:
    "managed: handed out by an AccessPolicy or grant, so Roster removes it from an account that no longer gets it",
  Authoritative: "Authoritative rule: members who do not match are removed, also those added by hand",
  Additive:
    "Additive rule: Roster adds people who match and removes only members it added (status records them); memberships made by hand stay",
};

function connectorNames(employee: Employee, objects: ExplainObjects): string[] {
  const names = new Set(objects.connectors.map((c) => c.metadata.name));
  for (const p of objects.policies) for (const g of p.spec.grants) names.add(g.connector);
  for (const r of objects.rules) for (const c of r.spec.connectors) names.add(c);
  for (const g of employee.spec.grants ?? []) names.add(g.connector);
  for (const a of employee.status?.accounts ?? []) names.add(a.connector);
  return [...names].sort();
}

function deprovisioningWords(connector: Connector | undefined): string {
  const d = connector?.spec.deprovisioning;
  return d?.action === "Delete"
    ? `disabled at once and deleted after ${d.deleteAfter ?? "720h"} (Connector deprovisioning: Delete)`
    : "disabled (Connector deprovisioning: Disable; never deleted)";
}

/** What the Connector's state does to this person's account there. */
function connectorNotes(
  employee: Employee,
  name: string,
  connector: Connector | undefined,
  wanted: boolean,
  recorded: AccountStatusT | undefined,
): string[] {
  const notes: string[] = [];
  if (!connector) {
    if (wanted || recorded)
      notes.push(
        `no Connector ${name} here: Roster cannot create or change this account until it exists (ConnectorNotFound)`,
      );
    return notes;
  }
  if (connectorPaused(connector))
    notes.push(
      `the Connector is paused (${connector.spec.paused ? "spec.paused" : "roster.dev/paused"}): Roster reads and writes nothing here; ` +
        "a new account, a group change and a leaver's deprovisioning all wait until it is resumed",
    );
  if (connector.metadata.deletionTimestamp)
    notes.push("the Connector is being deleted: it serves the accounts it has and creates no new one");
  const username = employee.spec.username.toLowerCase();
  if (connector.spec.protected?.usernames?.some((u) => u.toLowerCase() === username))
    notes.push(
      `username ${employee.spec.username} is protected (Connector spec.protected): Roster never adopts, changes, disables or deletes this account`,
    );
  const key = `${employee.metadata.namespace ?? "default"}/${employee.spec.employeeId}`;
  const held = connector.status?.deprovisioning?.held ?? [];
  const count = connector.status?.heldDeprovisions ?? held.length;
  if (held.some((h) => h.account === key))
    notes.push(
      `this person's deprovisioning here is held by the mass-change brake (${count} held); it goes ahead once approved: ` +
        `kubectl annotate connector ${name} roster.dev/approve-deprovisioning=${count}`,
    );
  else {
    const condition = connector.status?.conditions?.find((c) => c.type === "DeprovisioningHeld");
    if (condition?.status === "True" || count > 0)
      notes.push(
        `the mass-change brake has tripped here (${count} held${condition?.message ? `: ${condition.message}` : ""}): ` +
          "until an approval, any change that takes access away (a disable, a delete, a group removal) is held too",
      );
  }
  return notes;
}

export function explainAccess(employee: Employee, objects: ExplainObjects, now: Date): Explanation {
  const access = evaluateAccess(employee, objects.policies, objects.rules, now);
  const actor = actingEmployee(employee, objects.employees, now);
  const duplicate = actor !== employee.metadata.name;
  const granted = access.lifecycle === "Active" || access.lifecycle === "Suspended";
  const spec = employee.spec;
  const notes: string[] = [];
  if (isPaused(employee))
    notes.push(
      'the Employee is paused (roster.dev/paused: "true"): Roster makes no change for this person until the annotation is removed; below is what it would do then',
    );
  if (duplicate)
    notes.push(
      `Employee ${actor} has the same employeeId (${spec.employeeId}) and acts on the targets: this one changes nothing`,
    );
  for (const g of access.expiredGrants)
    notes.push(
      `a grant on ${g.connector}${g.groups.length ? ` (${g.groups.join(", ")})` : ""} expired at ${g.until}`,
    );
  const ready = employee.status?.conditions?.find((c) => c.type === "Ready");
  if (ready?.status === "False") notes.push(`status: Ready is False (${ready.reason}): ${ready.message}`);

  const connectors = connectorNames(employee, objects).map((name): ConnectorExplanation => {
    const connector = objects.connectors.find((c) => c.metadata.name === name);
    const recorded = employee.status?.accounts?.find((a) => a.connector === name);
    const wanted = duplicate ? undefined : access.accounts.get(name);
    const groupKey = connector ? accountMapping(connector, objects).groupKey : (g: string) => g;

    const considered: SourceCheck[] = [];
    const grantedBy = new Map<string, string[]>();
    const names = (group: string, source: string) => {
      const sources = grantedBy.get(group) ?? [];
      if (!sources.includes(source)) sources.push(source);
      grantedBy.set(group, sources);
    };
    for (const policy of [...objects.policies].sort((a, b) =>
      a.metadata.name.localeCompare(b.metadata.name),
    )) {
      const grants = policy.spec.grants.filter((g) => g.connector === name);
      if (grants.length === 0) continue;
      const source = `AccessPolicy/${policy.metadata.name}`;
      considered.push(checkObject(employee, policy, source, name));
      for (const g of grants) for (const group of g.groups ?? []) names(group, source);
    }
    for (const grant of spec.grants ?? []) {
      if (grant.connector !== name) continue;
      const expired = !!grant.until && parseDate(grant.until).getTime() <= now.getTime();
      considered.push({
        source: "Grant",
        holds: !expired,
        why: expired
          ? `does not hold: its until ${grant.until} has passed`
          : `holds: the Employee's own grant${grant.until ? `, until ${grant.until}` : ", with no end"}`,
        entries: [],
        ...(grant.until ? { until: grant.until } : {}),
      });
      for (const group of grant.groups ?? []) names(group, "Grant");
    }

    let account: ConnectorExplanation["account"] = "None";
    let why: string;
    const giving = considered.filter((c) => c.holds).map((c) => c.source);
    if (duplicate) why = `Employee ${actor} has the same employeeId and acts on the targets`;
    else if (wanted) {
      account = access.lifecycle === "Active" ? "Active" : "Disabled";
      why =
        `from ${wanted.sources.join(", ")}` +
        (account === "Disabled" ? `; disabled while ${access.reason} (groups are kept)` : "");
    } else {
      const parts = granted ? [] : [access.reason];
      if (considered.length === 0)
        parts.push(`no AccessPolicy or grant names ${name} (a GroupRule never creates an account)`);
      else if (giving.length === 0)
        parts.push(
          considered.length === 1
            ? `${considered[0]!.source}, the only AccessPolicy or grant that names ${name}, does not hold`
            : `none of the ${considered.length} AccessPolicies and grants that name ${name} holds (${considered.map((c) => c.source).join(", ")})`,
        );
      else if (access.lifecycle === "Scheduled") parts.push(`then ${giving.join(", ")} gives one`);
      else parts.push(`${giving.join(", ")} would give one otherwise`);
      why = `${access.lifecycle === "Scheduled" ? "not yet: " : ""}${parts.join("; ")}`;
      const existing = recorded ? recorded.state !== "Deleted" : !employee.status && giving.length > 0;
      if (existing && access.lifecycle !== "Scheduled")
        why += `; an existing account is ${deprovisioningWords(connector)}`;
    }

    const rulesHere = objects.rules
      .filter((r) => r.spec.connectors.includes(name))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const groupNames = new Set<string>([...grantedBy.keys(), ...rulesHere.map((r) => r.spec.group)]);
    for (const g of wanted?.groups.keys() ?? []) groupNames.add(g);
    for (const g of recorded?.groups ?? [])
      if (![...groupNames].some((n) => groupKey(n) === groupKey(g))) groupNames.add(g);
    const inStatus = recorded && recorded.state !== "Deleted" ? recorded.groups : undefined;

    const groups = [...groupNames].sort().map((group): GroupExplanation => {
      const sources = wanted?.groups.get(group) ?? [];
      const has = sources.length > 0;
      const rules = rulesHere
        .filter((r) => r.spec.group === group)
        .map((r) => checkObject(employee, r, `GroupRule/${r.metadata.name}`, name, group));
      const by = grantedBy.get(group) ?? [];
      const membership = by.length
        ? MEMBERSHIP.granted
        : rules.some((r) => r.membership === "Authoritative")
          ? MEMBERSHIP.Authoritative
          : rules.length
            ? MEMBERSHIP.Additive
            : "not handed out by any policy, rule or grant here (only status records it)";
      let groupWhy: string;
      if (has) groupWhy = `from ${sources.join(", ")}`;
      else if (!wanted) {
        const ruleHolds = rules.filter((r) => r.holds).map((r) => r.source);
        groupWhy = `no account in ${name}${ruleHolds.length ? ` (${ruleHolds.join(", ")} holds, but a GroupRule only adds groups to an account that an AccessPolicy or grant gives)` : ""}`;
      } else {
        const failing = [
          ...by.map((source) =>
            considered.some((c) => c.source === source && c.holds && c.paused)
              ? `${source} is paused and status records no such group, so it grants it no more`
              : `${source} does not hold`,
          ),
          ...rules.map((r) => `${r.source} ${r.why}`),
        ];
        groupWhy = failing.length ? failing.join("; ") : "nothing gives it";
      }
      const recordedIn = inStatus ? inStatus.some((g) => groupKey(g) === groupKey(group)) : undefined;
      const change =
        recordedIn === undefined || account === "None"
          ? undefined
          : has && !recordedIn
            ? "add"
            : !has && recordedIn
              ? "remove"
              : undefined;
      return {
        group,
        has,
        sources,
        why: groupWhy,
        grantedBy: by,
        rules,
        membership,
        ...(recordedIn !== undefined ? { recorded: recordedIn } : {}),
        ...(change ? { change } : {}),
      };
    });

    return {
      connector: name,
      known: !!connector,
      account,
      why,
      considered,
      groups,
      ...(recorded
        ? {
            recorded: {
              state: recorded.state,
              ...(recorded.id ? { id: recorded.id } : {}),
              groups: recorded.groups ?? [],
              ...(recorded.message ? { message: recorded.message } : {}),
            },
          }
        : {}),
      notes: connectorNotes(employee, name, connector, !!wanted, recorded),
    };
  });

  return {
    employee: {
      name: employee.metadata.name,
      ...(employee.metadata.namespace ? { namespace: employee.metadata.namespace } : {}),
      username: spec.username,
      employeeId: spec.employeeId,
      employmentStatus: spec.employmentStatus ?? "Active",
      employmentType: spec.employmentType ?? "Employee",
      ...(spec.startDate ? { startDate: spec.startDate } : {}),
      ...(spec.endDate ? { endDate: spec.endDate } : {}),
    },
    at: now.toISOString(),
    lifecycle: access.lifecycle,
    reason: access.reason,
    ...(access.nextChangeAt ? { nextChangeAt: access.nextChangeAt.toISOString() } : {}),
    notes,
    connectors,
  };
}
