// `roster report`: the access review of a namespace (or all), from Employee and Connector status
// and, with --check-targets, from the LDAP and SCIM targets themselves. See HELP for flags and
// exit codes.
import { tryParseDuration } from "../api/durations.ts";
import { parseArgs } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Connector, Employee } from "../api/types.ts";
import type { TargetConnector } from "../connectors/types.ts";
import { readingClient } from "./targets.ts";
import {
  buildReview,
  isLeaver,
  renderReviewCsv,
  renderReviewJson,
  renderReviewTable,
  type TargetCheck,
} from "../hr/review.ts";
import { renderReviewHtml } from "../hr/review-html.ts";
import {
  CliUsageError,
  commandName,
  eachLimited,
  KUBE_FLAGS,
  KUBE_FLAGS_HELP,
  loadKube,
  namespaceOf,
  runCli,
  writeOut,
} from "./kube.ts";
import { listAll, rosterPath } from "../kube/client.ts";
import type { AccountChange } from "../plan/audit.ts";

/** Exit code when the review found exceptions. */
export const EXIT_EXCEPTIONS = 4;

const help = (cmd: string) => `Usage: ${cmd} report [flags]

An access review from the live cluster: per person, each connector account (state, id) and each
group with the source that grants it (AccessPolicy/<name>, GroupRule/<name>, Grant), from
Employee status.accounts and status.entitlements; then the exceptions:

  LeaverWithAccess     a leaver (employmentStatus Terminated, or endDate passed) with an account
                       that is not Disabled or Deleted: from status, and with --check-targets also
                       from the target itself (an entry re-enabled by hand is found)
  TargetUnreadable     --check-targets could not read a leaver's entry (not taken as clean)
  OrphanAccount        accounts no Employee owns (Connector status.orphanAccounts)
  Drifted              Employees with condition Drifted=True; Connector status.driftedAccounts
  DeprovisioningHeld   Connector status.heldDeprovisions or condition DeprovisioningHeld=True
  ExpiringGrant        with --expiring-within: grants whose until falls within that time
  AdoptionCandidate    an account made before Roster that matches the person and waits to be
                       linked (state Unlinked; annotation roster.dev/adopt links it)
  AdoptionConflict     the person's account name is taken by an account Roster may not link
                       (state Conflict: ambiguous, another ownership key, or adoption off)
  UnmanagedMembers     members of a group Roster hands out that Roster did not add (Connector
                       status.unmanagedMembers): removed by an Authoritative GroupRule, else kept

Flags:
${KUBE_FLAGS_HELP}
  -A, --all-namespaces     review every namespace
  -o, --output FORMAT      table (default), csv (one file: record=access|exception), json, or
                           html (one self-contained page to open or print: counts, exceptions
                           first, then per connector and per person)
  --check-targets          read each leaver's account directly in every Connector of its
                           namespace, LDAP and SCIM (with the Connector's Secret; needs network
                           access to the targets and read access to the Secrets)
  --expiring-within DUR    list grants expiring within DUR (e.g. 14d, 36h, 2w)
  --history                instead of the review: each account's last changes (what, when, why,
                           and the change id of its audit record in the operator's log), per
                           person and connector, newest first, from status.accounts[].history
                           (the last 10 per account); -o table or json
  -h, --help               this help

Exit codes:
  0  the review is clean (no exceptions)
  1  error (cluster unreachable, objects unreadable)
  2  usage error
  4  the review lists exceptions

Examples:
  ${cmd} report -n people
  ${cmd} report -A --check-targets --expiring-within 14d
  ${cmd} report -n people -o csv > access-review.csv
  ${cmd} report -n people --check-targets -o html > access-review.html
  ${cmd} report -n people --history
  kubectl roster report --context prod -n people -o json
`;

export async function reportCommand(args: string[]): Promise<number> {
  return runCli("report", () => run(args));
}

async function run(args: string[]): Promise<number> {
  const cmd = commandName();
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      ...KUBE_FLAGS,
      "all-namespaces": { type: "boolean", short: "A", default: false },
      output: { type: "string", short: "o", default: "table" },
      "check-targets": { type: "boolean", default: false },
      "expiring-within": { type: "string" },
      history: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    await writeOut(help(cmd));
    return 0;
  }
  if (positionals.length > 0)
    throw new CliUsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const output = values.output;
  if (output !== "table" && output !== "csv" && output !== "json" && output !== "html")
    throw new CliUsageError(`--output ${output}: expected table, csv, json or html`);
  if (values["all-namespaces"] && values.namespace)
    throw new CliUsageError("give --namespace or --all-namespaces, not both");
  if (values.history && (output === "csv" || output === "html"))
    throw new CliUsageError(`--history prints table or json, not ${output}`);
  if (values.history && (values["check-targets"] || values["expiring-within"] !== undefined))
    throw new CliUsageError(
      "--history prints the history only: give it without --check-targets and --expiring-within",
    );
  let expiringWithinMs: number | undefined;
  if (values["expiring-within"] !== undefined) {
    expiringWithinMs = tryParseDuration(values["expiring-within"]);
    if (expiringWithinMs === undefined)
      throw new CliUsageError(
        `--expiring-within ${values["expiring-within"]}: expected a duration like 14d or 36h`,
      );
  }

  const kc = loadKube(values);
  const all = values["all-namespaces"];
  const namespace = all ? undefined : namespaceOf(kc, values.namespace);
  if (values.history) {
    const history = accountHistory(await listAll<Employee>(kc, rosterPath("employees", namespace)));
    const scope = all ? "all namespaces" : `namespace ${namespace}`;
    await writeOut(output === "json" ? renderHistoryJson(scope, history) : renderHistoryText(scope, history));
    return 0;
  }
  const [employees, connectors] = await Promise.all([
    listAll<Employee>(kc, rosterPath("employees", namespace)),
    listAll<Connector>(kc, rosterPath("connectors", namespace)),
  ]);
  const now = new Date();
  const notes: string[] = [];
  const targetChecks = values["check-targets"]
    ? await checkTargets(kc, employees, connectors, now, notes)
    : [];
  const review = buildReview({
    employees,
    connectors,
    now,
    scope: all ? "all namespaces" : `namespace ${namespace}`,
    ...(expiringWithinMs !== undefined ? { expiringWithinMs } : {}),
    targetChecks,
    notes,
  });
  if (output === "json") await writeOut(renderReviewJson(review));
  else if (output === "html") {
    const cluster = `${kc.getCurrentContext()} (${kc.getCurrentCluster()?.server ?? "in-cluster"})`;
    await writeOut(renderReviewHtml(review, { cluster }, { allNamespaces: all }));
  } else if (output === "csv") await writeOut(renderReviewCsv(review));
  else await writeOut(renderReviewTable(review, { allNamespaces: all }));
  return review.exceptions.length > 0 ? EXIT_EXCEPTIONS : 0;
}

/** One account's recorded changes (status.accounts[].history), newest first. */
export type AccountHistory = {
  namespace: string;
  employee: string;
  username: string;
  employeeId: string;
  connector: string;
  id?: string;
  state: string;
  changes: AccountChange[];
};

/** Every account that recorded changes, per person (by namespace and name) and connector. */
export function accountHistory(employees: readonly Employee[]): AccountHistory[] {
  const people = [...employees].sort(
    (a, b) =>
      (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  return people.flatMap((e) =>
    [...(e.status?.accounts ?? [])]
      .filter((a) => (a.history ?? []).length > 0)
      .sort((a, b) => a.connector.localeCompare(b.connector))
      .map((a) => ({
        namespace: e.metadata.namespace ?? "default",
        employee: e.metadata.name,
        username: String(e.spec.username),
        employeeId: String(e.spec.employeeId),
        connector: a.connector,
        ...(a.id ? { id: a.id } : {}),
        state: a.state,
        changes: [...(a.history ?? [])],
      })),
  );
}

export function renderHistoryText(scope: string, history: readonly AccountHistory[]): string {
  const out = [`ACCOUNT HISTORY (${scope}), newest first`];
  if (history.length === 0) out.push("", "No account has recorded changes.");
  for (const account of history) {
    out.push(
      "",
      `${account.namespace}/${account.employee} (${account.username}, employeeId ${account.employeeId})  ` +
        `${account.connector}  ${account.id ?? "(no id)"}  ${account.state}`,
    );
    for (const c of account.changes) {
      const why = c.source ? `${c.reason}: ${c.source}` : c.reason;
      out.push(`  ${c.time}  ${c.operation.padEnd(12)}  ${c.detail}  (${why})  change ${c.changeId}`);
    }
  }
  return `${out.join("\n")}\n`;
}

export function renderHistoryJson(scope: string, history: readonly AccountHistory[]): string {
  return `${JSON.stringify({ scope, accounts: history }, null, 2)}\n`;
}

/** Reads every leaver's account directly in each Connector (LDAP or SCIM) of its namespace. */
async function checkTargets(
  kc: KubeConfig,
  employees: Employee[],
  connectors: Connector[],
  now: Date,
  notes: string[],
): Promise<TargetCheck[]> {
  const checks: TargetCheck[] = [];
  const leavers = employees.filter((e) => isLeaver(e, now));
  for (const connector of connectors) {
    const namespace = connector.metadata.namespace ?? "default";
    const name = connector.metadata.name;
    const mine = leavers.filter((e) => (e.metadata.namespace ?? "default") === namespace);
    if (mine.length === 0) continue;
    if (!connector.spec.ldap && !connector.spec.scim) {
      notes.push(
        `Connector ${namespace}/${name} has neither spec.ldap nor spec.scim: its leavers were checked from status only`,
      );
      continue;
    }
    const check = (e: Employee) => ({ namespace, employee: e.metadata.name, connector: name });
    let client: TargetConnector;
    try {
      client = await readingClient(kc, connector);
    } catch (error) {
      for (const e of mine) checks.push({ ...check(e), error: (error as Error).message });
      continue;
    }
    try {
      await eachLimited(mine, 4, async (e) => {
        // The id the operator recorded (a SCIM id, a DN) is read directly when the target allows.
        const recorded = e.status?.accounts?.find((a) => a.connector === name)?.id;
        try {
          const found = await client.findAccount(
            String(e.spec.employeeId),
            String(e.spec.username),
            recorded,
          );
          checks.push({
            ...check(e),
            ...(found ? { account: { id: found.id, enabled: found.enabled } } : {}),
          });
        } catch (error) {
          checks.push({ ...check(e), error: (error as Error).message });
        }
      });
    } finally {
      await client.close().catch(() => {});
    }
  }
  return checks;
}
