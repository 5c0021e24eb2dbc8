// The access review behind `roster report`: per person, each connector account and group with
// the source that grants it, and the exceptions an auditor must look at. Pure: objects in,
// review out; reading the cluster and the targets is the command's job.
import { stringify } from "csv-stringify/sync";
import type { Connector, Employee } from "../api/types.ts";
import { lifecycleOf, parseDate } from "../policy/evaluate.ts";

export type GroupAccess = { name: string; sources: string[]; member: boolean };

export type AccountAccess = {
  connector: string;
  /** Empty when status lists no account in this connector (entitled, not yet created). */
  state: string;
  id: string;
  /** Why the person has the account at all (AccessPolicy/<name>, Grant). */
  sources: string[];
  groups: GroupAccess[];
};

export type PersonAccess = {
  namespace: string;
  name: string;
  username: string;
  employeeId: string;
  employmentStatus: string;
  /** What the operator makes of the record now: Scheduled, Active, Suspended or Terminated. */
  lifecycle: string;
  phase: string;
  accounts: AccountAccess[];
};

export const EXCEPTION_KINDS = [
  "LeaverWithAccess",
  "TargetUnreadable",
  "OrphanAccount",
  "Drifted",
  "DeprovisioningHeld",
  "ExpiringGrant",
  "AdoptionCandidate",
  "AdoptionConflict",
  "UnmanagedMembers",
] as const;
export type ExceptionKind = (typeof EXCEPTION_KINDS)[number];

export type ReviewException = {
  kind: ExceptionKind;
  namespace: string;
  employee?: string;
  connector?: string;
  /** The account: DN or SCIM id. */
  account?: string;
  detail: string;
};

/** What reading a leaver's entry directly in a target found (`--check-targets`). */
export type TargetCheck = {
  namespace: string;
  employee: string;
  connector: string;
  /** Set when the entry exists. */
  account?: { id: string; enabled: boolean };
  /** Set when the target could not be read. */
  error?: string;
};

export type Review = {
  generatedAt: string;
  /** "namespace <ns>" or "all namespaces". */
  scope: string;
  people: PersonAccess[];
  exceptions: ReviewException[];
  /** Things the review could not cover (e.g. targets that cannot be checked directly). */
  notes: string[];
};

export type ReviewInput = {
  employees: readonly Employee[];
  connectors: readonly Connector[];
  now: Date;
  scope: string;
  /** List grants whose `until` falls within this many milliseconds from now. */
  expiringWithinMs?: number;
  targetChecks?: readonly TargetCheck[];
  notes?: readonly string[];
};

const ns = (o: { metadata: { namespace?: string } }) => o.metadata.namespace ?? "";
const INACTIVE_STATES = new Set(["Disabled", "Deleted"]);

/** Terminated now: employmentStatus Terminated, endDate passed, or being deleted. */
export function isLeaver(employee: Employee, now: Date): boolean {
  return lifecycleOf(employee, now).lifecycle === "Terminated";
}

function personAccess(employee: Employee, now: Date): PersonAccess {
  const status = employee.status ?? {};
  const connectors = new Map<string, AccountAccess>();
  const account = (connector: string) => {
    let a = connectors.get(connector);
    if (!a) {
      a = { connector, state: "", id: "", sources: [], groups: [] };
      connectors.set(connector, a);
    }
    return a;
  };
  const group = (a: AccountAccess, name: string) => {
    let g = a.groups.find((x) => x.name === name);
    if (!g) {
      g = { name, sources: [], member: false };
      a.groups.push(g);
    }
    return g;
  };
  for (const s of status.accounts ?? []) {
    const a = account(s.connector);
    a.state = s.state;
    a.id = s.id ?? "";
    for (const name of s.groups ?? []) group(a, name).member = true;
  }
  for (const e of status.entitlements ?? []) {
    const a = account(e.connector);
    const list = e.group === undefined ? a.sources : group(a, e.group).sources;
    if (!list.includes(e.source)) list.push(e.source);
  }
  const accounts = [...connectors.values()].sort((a, b) => a.connector.localeCompare(b.connector));
  for (const a of accounts) a.groups.sort((x, y) => x.name.localeCompare(y.name));
  return {
    namespace: ns(employee),
    name: employee.metadata.name,
    username: String(employee.spec.username ?? ""),
    employeeId: String(employee.spec.employeeId ?? ""),
    employmentStatus: employee.spec.employmentStatus ?? "Active",
    lifecycle: lifecycleOf(employee, now).lifecycle,
    phase: status.phase ?? "",
    accounts,
  };
}

function condition(o: Employee | Connector, type: string) {
  return o.status?.conditions?.find((c) => c.type === type);
}

function formatDuration(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48
    ? `${Math.floor(hours / 24)}d`
    : hours >= 1
      ? `${Math.floor(hours)}h`
      : `${Math.max(1, Math.round(ms / 60_000))}m`;
}

export function buildReview(input: ReviewInput): Review {
  const { now } = input;
  const order = <T extends { metadata: { name: string; namespace?: string } }>(list: readonly T[]) =>
    [...list].sort((a, b) => ns(a).localeCompare(ns(b)) || a.metadata.name.localeCompare(b.metadata.name));
  const employees = order(input.employees);
  const connectors = order(input.connectors);
  const exceptions: ReviewException[] = [];
  const checks = input.targetChecks ?? [];

  for (const employee of employees) {
    const where = { namespace: ns(employee), employee: employee.metadata.name };
    const life = lifecycleOf(employee, now);
    if (life.lifecycle === "Terminated") {
      const evidence = new Map<string, { account?: string; found: string[] }>();
      const note = (connector: string, account: string | undefined, text: string) => {
        const e = evidence.get(connector) ?? { found: [] };
        if (account && !e.account) e.account = account;
        e.found.push(text);
        evidence.set(connector, e);
      };
      for (const a of employee.status?.accounts ?? []) {
        if (!INACTIVE_STATES.has(a.state)) note(a.connector, a.id, `status says the account is ${a.state}`);
      }
      for (const c of checks) {
        if (c.namespace !== where.namespace || c.employee !== where.employee) continue;
        if (c.error !== undefined) {
          exceptions.push({
            kind: "TargetUnreadable",
            ...where,
            connector: c.connector,
            detail: `could not check the leaver's entry in the target: ${c.error}`,
          });
        } else if (c.account?.enabled) {
          note(c.connector, c.account.id, "the entry in the target is enabled (read directly)");
        }
      }
      for (const [connector, e] of [...evidence].sort(([a], [b]) => a.localeCompare(b))) {
        exceptions.push({
          kind: "LeaverWithAccess",
          ...where,
          connector,
          ...(e.account ? { account: e.account } : {}),
          detail: `${life.reason}, but ${e.found.join("; ")}`,
        });
      }
    }
    for (const a of employee.status?.accounts ?? []) {
      if (a.state === "Conflict") {
        exceptions.push({
          kind: "AdoptionConflict",
          ...where,
          connector: a.connector,
          ...(a.id ? { account: a.id } : {}),
          detail: `the account name is taken by an account Roster may not link: ${a.message ?? "see the Employee's status"}`,
        });
        continue;
      }
      if (a.state !== "Unlinked") continue;
      exceptions.push({
        kind: "AdoptionCandidate",
        ...where,
        connector: a.connector,
        ...(a.id ? { account: a.id } : {}),
        detail: `an account that existed before Roster matches this person and is not linked; link it with the annotation roster.dev/adopt: "${a.connector}"`,
      });
    }
    const drifted = condition(employee, "Drifted");
    if (drifted?.status === "True")
      exceptions.push({ kind: "Drifted", ...where, detail: drifted.message || drifted.reason });
    if (input.expiringWithinMs !== undefined) {
      for (const grant of employee.spec.grants ?? []) {
        if (!grant.until) continue;
        const left = parseDate(grant.until).getTime() - now.getTime();
        if (left <= 0 || left > input.expiringWithinMs) continue;
        const groups = grant.groups?.length ? ` (groups ${grant.groups.join(", ")})` : "";
        exceptions.push({
          kind: "ExpiringGrant",
          ...where,
          connector: grant.connector,
          detail: `grant${groups} expires ${grant.until}, in ${formatDuration(left)}`,
        });
      }
    }
  }

  for (const connector of connectors) {
    const where = { namespace: ns(connector), connector: connector.metadata.name };
    const status = connector.status ?? {};
    const orphans = status.orphanAccounts;
    if (orphans && orphans.count > 0) {
      const ids = orphans.ids ?? [];
      for (const id of ids)
        exceptions.push({
          kind: "OrphanAccount",
          ...where,
          account: id,
          detail: "no Employee owns this account",
        });
      if (orphans.count > ids.length)
        exceptions.push({
          kind: "OrphanAccount",
          ...where,
          detail: `${orphans.count - ids.length} ${ids.length ? "more " : ""}orphan accounts (not listed in status)`,
        });
    }
    if ((status.driftedAccounts ?? 0) > 0)
      exceptions.push({
        kind: "Drifted",
        ...where,
        detail: `${status.driftedAccounts} accounts changed outside the operator`,
      });
    for (const g of status.unmanagedMembers ?? []) {
      const listed =
        g.members.join(", ") + (g.count > g.members.length ? `, and ${g.count - g.members.length} more` : "");
      exceptions.push({
        kind: "UnmanagedMembers",
        ...where,
        detail:
          g.action === "Remove"
            ? `group ${g.group}: ${g.count} ${g.count === 1 ? "member" : "members"} Roster did not add, which an Authoritative GroupRule removes through the mass-change brake: ${listed}`
            : `group ${g.group}: ${g.count} ${g.count === 1 ? "member" : "members"} Roster did not add, kept: ${listed}`,
      });
    }
    const held = condition(connector, "DeprovisioningHeld");
    if ((status.heldDeprovisions ?? 0) > 0 || held?.status === "True") {
      const count = status.heldDeprovisions
        ? `${status.heldDeprovisions} deprovisions held`
        : "deprovisioning held";
      exceptions.push({
        kind: "DeprovisioningHeld",
        ...where,
        detail: `${count}${held?.message ? `: ${held.message}` : ""}; approve with the annotation roster.dev/approve-deprovisioning`,
      });
    }
  }

  const rank = (k: ExceptionKind) => EXCEPTION_KINDS.indexOf(k);
  exceptions.sort(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      a.namespace.localeCompare(b.namespace) ||
      (a.employee ?? "").localeCompare(b.employee ?? "") ||
      (a.connector ?? "").localeCompare(b.connector ?? "") ||
      (a.account ?? "").localeCompare(b.account ?? ""),
  );
  return {
    generatedAt: now.toISOString(),
    scope: input.scope,
    people: employees.map((e) => personAccess(e, now)),
    exceptions,
    notes: [...(input.notes ?? [])],
  };
}

// --- rendering ------------------------------------------------------------------------------

export type AccessRow = {
  namespace: string;
  employee: string;
  username: string;
  employeeId: string;
  employmentStatus: string;
  phase: string;
  connector: string;
  accountState: string;
  accountId: string;
  group: string;
  source: string;
};

/** One row per person, connector and group (a row without a group for accounts with none). */
export function accessRows(review: Review): AccessRow[] {
  const rows: AccessRow[] = [];
  for (const p of review.people) {
    const base = {
      namespace: p.namespace,
      employee: p.name,
      username: p.username,
      employeeId: p.employeeId,
      employmentStatus: p.employmentStatus,
      phase: p.phase,
    };
    if (p.accounts.length === 0)
      rows.push({ ...base, connector: "", accountState: "", accountId: "", group: "", source: "" });
    for (const a of p.accounts) {
      const account = { connector: a.connector, accountState: a.state, accountId: a.id };
      if (a.groups.length === 0) rows.push({ ...base, ...account, group: "", source: a.sources.join(", ") });
      for (const g of a.groups) {
        const source = g.sources.length ? g.sources.join(", ") : "(no entitlement)";
        rows.push({ ...base, ...account, group: g.name, source: g.member ? source : `${source} (pending)` });
      }
    }
  }
  return rows;
}

function table(headers: string[], rows: string[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === "" ? "-" : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...cells.map(line)].join("\n");
}

export function renderReviewTable(review: Review, options: { allNamespaces: boolean }): string {
  const withNs = options.allNamespaces;
  const out = [`ACCESS REVIEW (${review.scope}, ${review.generatedAt})`, ""];
  if (review.people.length === 0) out.push("No Employees.");
  else {
    const headers = [
      "EMPLOYEE",
      "USERNAME",
      "EMPLOYEE ID",
      "STATUS",
      "PHASE",
      "CONNECTOR",
      "ACCOUNT",
      "ACCOUNT ID",
      "GROUP",
      "SOURCE",
    ];
    const rows = accessRows(review).map((r) => [
      ...(withNs ? [r.namespace] : []),
      r.employee,
      r.username,
      r.employeeId,
      r.employmentStatus,
      r.phase,
      r.connector,
      r.accountState,
      r.accountId,
      r.group,
      r.source,
    ]);
    out.push(table([...(withNs ? ["NAMESPACE"] : []), ...headers], rows));
  }
  out.push("");
  if (review.exceptions.length === 0) out.push("EXCEPTIONS: none");
  else {
    out.push(`EXCEPTIONS (${review.exceptions.length})`);
    const rows = review.exceptions.map((e) => [
      e.kind,
      ...(withNs ? [e.namespace] : []),
      e.employee ?? "",
      e.connector ?? "",
      e.account ?? "",
      e.detail,
    ]);
    out.push(
      table(["KIND", ...(withNs ? ["NAMESPACE"] : []), "EMPLOYEE", "CONNECTOR", "ACCOUNT", "DETAIL"], rows),
    );
  }
  for (const n of review.notes) out.push("", `note: ${n}`);
  return `${out.join("\n")}\n`;
}

export const CSV_COLUMNS = [
  "record",
  "namespace",
  "employee",
  "username",
  "employeeId",
  "employmentStatus",
  "phase",
  "connector",
  "accountState",
  "accountId",
  "group",
  "source",
  "exception",
  "detail",
] as const;

/** One CSV: `record` is `access` for the access rows and `exception` for the exceptions. */
export function renderReviewCsv(review: Review): string {
  const records: Record<string, string>[] = [
    ...accessRows(review).map((r) => ({ record: "access", ...r })),
    ...review.exceptions.map((e) => ({
      record: "exception",
      namespace: e.namespace,
      employee: e.employee ?? "",
      connector: e.connector ?? "",
      accountId: e.account ?? "",
      exception: e.kind,
      detail: e.detail,
    })),
  ];
  return stringify(records, { header: true, columns: [...CSV_COLUMNS] });
}

export function renderReviewJson(review: Review): string {
  return `${JSON.stringify(review, null, 2)}\n`;
}
