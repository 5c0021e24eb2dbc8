// `roster import`: an HR export (CSV or JSON lines) -> Employee manifests in a directory, or
// server-side applied to a namespace. See HELP for flags and exit codes.
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Connector, Employee } from "../api/types.ts";
import type { TargetConnector } from "../connectors/types.ts";
import { readingClient } from "./targets.ts";
import {
  currentPeople,
  leaverLimit,
  planImport,
  type ExistingEmployee,
  type ImportPlan,
  type PlannedChange,
} from "../hr/diff.ts";
import { mapRecord, type MappedRecord } from "../hr/employee.ts";
import { manifestPath, readManifestDirectory, toManifest } from "../hr/manifest.ts";
import {
  buildMapping,
  mappingColumns,
  MappingError,
  parseMapFlags,
  parseMappingYaml,
  type Mapping,
} from "../hr/mapping.ts";
import { detectFormat, readRecords, SourceError } from "../hr/source.ts";
import { planJson, renderOutcomeText, renderPlanText, type ImportOutcome } from "../hr/summary.ts";
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
import { kubeRequest, listAll, rosterPath, serverSideApply } from "../kube/client.ts";
import { EventRecorder } from "../controller/events.ts";
import { BAMBOOHR_MAPPING, EXAMPLE_MAPPINGS, WORKDAY_MAPPING } from "../hr/examples.ts";
import { displayUrl, fetchExport, isUrl, type FetchAuth } from "../hr/fetch.ts";
import { importEvent, LeaverGuardError, rowCounts, type ImportEvent } from "../hr/outcome.ts";

export const FIELD_MANAGER = "roster-import";

/** Exit code when some rows were refused. */
export const EXIT_REFUSED = 3;

const help = (
  cmd: string,
) => `Usage: ${cmd} import FILE|URL (--out DIR | --apply) (--mapping FILE | --map FIELD=COLUMN ...) [flags]

Reads an HR export and turns each row into an Employee (roster.dev/v1alpha1). FILE is a CSV file
with a header row or a JSON lines file (one object per line), told apart by the extension (.csv,
.jsonl, .ndjson, .json) or --format; "-" reads standard input (then --format is required).

Before writing, it prints what the import does: new hires, movers (each changed field, old ->
new), leavers and refused rows (file:line: field (column): reason). Leavers are people present in
the directory or namespace but missing from the export: they become employmentStatus Terminated,
never deleted; people already Terminated are left alone. People whose row was refused are never
taken for leavers. A row that is Terminated for someone who does not exist yet is skipped.

The import sets the mapped fields, and employmentStatus always (Active unless mapped); fields it
does not map (grants, other attributes and labels) are left as they are. Re-importing the same
export writes nothing: no file is rewritten and unchanged objects are not applied.

Where to:
  --out DIR                write one file per person, DIR/<metadata.name>.yaml (keys sorted);
                           names come from the username (DNS-safe; a short hash is added when the
                           username has to be changed to fit). Existing files are updated in place.
  --apply                  server-side apply to the cluster (PATCH, field manager ${FIELD_MANAGER})
${KUBE_FLAGS_HELP}
  --check-targets          with a generated username: also keep clear of the account names the
                           namespace's Connectors' targets hold (read, never written; a target
                           that cannot be read stops the import)
  -l, --selector SEL       with --apply: only Employees matching this label selector are compared
                           (and can become leavers); map a label (labels.<key>) that matches it

Mapping (Employee field -> column; the fields employeeId, username, givenName, familyName and
email are required; also displayName, department, title, location, costCenter, manager,
employmentType, employmentStatus, startDate, endDate, attributes.<name>, labels.<key>, and
annotations.roster.dev/adopt: the connectors whose existing account a row should be linked to,
e.g. {column: Has account, values: {yes: corp-ldap, no: ""}}; see "Adopting accounts"):
  --mapping FILE           YAML map, e.g.  employeeId: Employee ID
                                           attributes: {badge: Badge}
                                           labels.team: Team
  --map FIELD=COLUMN       one field (repeatable; added to or replacing --mapping entries)
  --example-mapping NAME   print a complete mapping (workday, bamboohr) to start from

In the YAML file a field may be a map instead of a column name:
  column: C                the column
  values: {HR: Roster}     a value map: only these HR values are accepted (trimmed, any case),
                           each becomes its Employee value; any other value refuses the row
                           (file:line, column and value). An empty cell stays unset.
  dateFormat: MM/DD/YYYY   startDate, endDate: the export's date format (YYYY, MM, M, DD, D);
                           YYYY-MM-DD is accepted too
  reference: employeeId    manager: the column holds the manager's employeeId or email (or
                           username, the default); it is resolved to the manager's username from
                           the export or the existing Employees; a row whose manager is unknown
                           is refused
  generate: TEMPLATE|LIST  username: generated from the row when HR carries none, e.g.
                           "{First Name|first:1}{Last Name}". Filters: first:N, last:N, word:N,
                           initials, before:TEXT, after:TEXT, clean. The result is transliterated
                           to ASCII (Zoë -> zoe, Łukasz -> lukasz, Иван -> ivan), lower-cased, and
                           stripped of what a username cannot hold. Templates are tried in order
                           (one with an empty column is skipped); the first username not taken
                           wins. Taken: the existing Employees' usernames (the whole namespace or
                           directory), earlier rows of the export.
  maxLength: N             username: at most N characters (default 64)
  suffix: numeric|none     username: when every template's result is taken, numeric (default)
                           adds 2, 3, ... to the first; none refuses the row
  With generate, a username column (column:) is used where its cell is set. Once an Employee
  exists its username is kept, even when the name in HR changed: the report notes it.

Workday-shaped export (Employee ID, Legal First Name, Legal Last Name, Work Email, Supervisory
Organization, Business Title, Location, Hire Date, Termination Date, Worker Status, Worker Type,
Manager):

${indent(WORKDAY_MAPPING)}
BambooHR-shaped export (Employee #, First Name, Middle Name, Last Name, Preferred Name, Work
Email, Department, Job Title, Location, Division, Hire Date, Termination Date, Status, Employment
Status, Supervisor Email):

${indent(BAMBOOHR_MAPPING)}
Input:
  FILE                     a path, "-" (standard input), or an http(s):// URL (a report URL)
  --format csv|jsonl       when the extension (or a URL's Content-Type) does not tell
  --delimiter CHAR         CSV field delimiter (default ",")
  --token-file FILE        URL: send "Authorization: Bearer <the file's content>"
  --user-file FILE, --password-file FILE
                           URL: basic auth with the user name and password in these files (a
                           mounted kubernetes.io/basic-auth Secret: .../username, .../password)
  --ca-file FILE           URL: trust this PEM CA bundle too
  --fetch-timeout SECONDS  URL: give up after this long (default 300)
  A URL's export is read in full before anything is written: an HTTP error, a connection that
  ends early or fewer bytes than Content-Length says is an error, and nothing is written.

Behaviour:
  --dry-run                print the report, write nothing
  --strict                 write nothing when any row is refused
  --max-leavers N|P%       refuse to run when more people would leave (default: 10% of the people
                           not yet Terminated, and never fewer than 10); guards against a
                           truncated export
  --no-force-conflicts     with --apply: fail on fields another manager owns instead of taking
                           them over
  -o, --output text|json   the report's format (default text)
  --progress               report progress on stderr (default: only when stderr is a terminal)
  --progress-every N       rows between progress lines (default 1000)
  -h, --help               this help

Reporting (for a scheduled import, e.g. the chart's CronJob):
  --event-for KIND/NAME    record the result as an Event on this CronJob, Job, Pod or ConfigMap:
                           Imported (Normal), RowsRefused, TooManyLeavers, ImportFailed (Warning)
  --event-namespace NS     the Event's namespace (default: the import's namespace)
  --pushgateway URL        push roster_import_last_run_timestamp_seconds,
                           roster_import_last_success_timestamp_seconds,
                           roster_import_last_run_success and roster_import_rows{outcome} to this
                           Prometheus Pushgateway (job roster-import, grouped by namespace);
                           deploy/prometheus/rules.yaml alerts on them

Values: cells are trimmed; an empty cell leaves the field unset. employmentType and
employmentStatus accept HR spellings ("on leave", "TERMINATED") unless they have a value map.
Dates are YYYY-MM-DD or RFC 3339 date-times (or dateFormat). Rows are refused for a missing
employee id, a bad date, a value not in its value map, an unknown manager, a duplicate employeeId
or username, an invalid username, a changed username (immutable) or any schema violation (named).

Exit codes:
  0  done (or nothing to do)
  1  error (unreadable file, API failure, too many leavers); nothing written for file errors
  2  usage error
  3  some rows were refused; the good rows were still written unless --strict

Examples:
  ${cmd} import hr.csv --mapping hr-mapping.yaml --out people/
  ${cmd} import hr.csv --out people/ --map employeeId="Employee ID" --map username=Login \\
      --map givenName="First Name" --map familyName="Last Name" --map email=Email \\
      --map department=Department --map attributes.badge=Badge --dry-run
  ${cmd} import export.jsonl --mapping hr-mapping.yaml --apply -n people -o json
  kubectl roster import hr.csv --mapping hr-mapping.yaml --apply --context prod -n people
  ${cmd} import --example-mapping workday > workday-mapping.yaml
  ${cmd} import https://hr.example.com/reports/workers.csv --token-file /var/run/hr/token \\
      --mapping workday-mapping.yaml --apply -n people --max-leavers 5 \\
      --event-for CronJob/roster-hr-import --event-namespace roster-system
`;

const indent = (text: string) =>
  text
    .split("\n")
    .map((line) => (line === "" ? "" : `    ${line}`))
    .join("\n");

type Flags = {
  output: "text" | "json";
  dryRun: boolean;
  strict: boolean;
  progress: boolean;
  progressEvery: number;
};

export async function importCommand(args: string[]): Promise<number> {
  return runCli("import", () => run(args));
}

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  ...KUBE_FLAGS,
  out: { type: "string" },
  apply: { type: "boolean", default: false },
  selector: { type: "string", short: "l" },
  "check-targets": { type: "boolean", default: false },
  mapping: { type: "string" },
  map: { type: "string", multiple: true, default: [] as string[] },
  format: { type: "string" },
  delimiter: { type: "string" },
  "dry-run": { type: "boolean", default: false },
  strict: { type: "boolean", default: false },
  "max-leavers": { type: "string" },
  "force-conflicts": { type: "boolean", default: true },
  output: { type: "string", short: "o", default: "text" },
  progress: { type: "boolean" },
  "progress-every": { type: "string", default: "1000" },
  "token-file": { type: "string" },
  "user-file": { type: "string" },
  "password-file": { type: "string" },
  "ca-file": { type: "string" },
  "fetch-timeout": { type: "string", default: "300" },
  "event-for": { type: "string" },
  "event-namespace": { type: "string" },
  pushgateway: { type: "string" },
  "example-mapping": { type: "string" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

async function run(args: string[]): Promise<number> {
  const cmd = commandName();
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    allowNegative: true,
    options: OPTIONS,
  });
  if (values.help) {
    await writeOut(help(cmd));
    return 0;
  }
  if (values["example-mapping"] !== undefined) {
    const example = EXAMPLE_MAPPINGS[values["example-mapping"].toLowerCase()];
    if (!example)
      throw new CliUsageError(
        `--example-mapping ${values["example-mapping"]}: expected one of ${Object.keys(EXAMPLE_MAPPINGS).join(", ")}`,
      );
    await writeOut(example);
    return 0;
  }
  if (positionals.length !== 1)
    throw new CliUsageError(positionals.length ? "expected one FILE" : "missing FILE (the HR export)");
  const file = positionals[0]!;
  const source = file === "-" ? "<stdin>" : isUrl(file) ? displayUrl(file) : file;
  // From here on every outcome, errors included, is reported (Event, metrics) when asked.
  const reporter = new Reporter(values, source);
  const state: { plan?: ImportPlan } = {};
  try {
    const { plan, outcome, code } = await importOnce(cmd, file, source, values, state);
    await reporter.finished(plan, outcome);
    return code;
  } catch (error) {
    await reporter.failed(error as Error, state.plan);
    throw error;
  }
}

async function importOnce(
  cmd: string,
  file: string,
  source: string,
  values: Values,
  state: { plan?: ImportPlan },
): Promise<{ plan: ImportPlan; outcome: ImportOutcome; code: number }> {
  if (!values.out === !values.apply) throw new CliUsageError("give exactly one of --out DIR or --apply");
  if (values.output !== "text" && values.output !== "json")
    throw new CliUsageError(`--output ${values.output}: expected text or json`);
  const url = isUrl(file);
  let format = detectFormat(file === "-" ? "" : url ? new URL(file).pathname : file, values.format);
  if (!format && (values.format || !url))
    throw new CliUsageError(
      values.format
        ? `--format ${values.format}: expected csv or jsonl`
        : `cannot tell the format of ${file} from its name: pass --format csv or --format jsonl`,
    );
  if (values.delimiter !== undefined && values.delimiter.length !== 1)
    throw new CliUsageError("--delimiter must be one character");
  const every = Number(values["progress-every"]);
  if (!Number.isInteger(every) || every < 1)
    throw new CliUsageError(`--progress-every must be a positive integer, got ${values["progress-every"]}`);
  const timeout = Number(values["fetch-timeout"]);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new CliUsageError(`--fetch-timeout must be a number of seconds, got ${values["fetch-timeout"]}`);
  if (!values.mapping && values.map.length === 0)
    throw new CliUsageError("no mapping: pass --mapping FILE or --map FIELD=COLUMN flags");
  for (const flag of ["selector", "namespace"] as const)
    if (values[flag] !== undefined && !values.apply)
      throw new CliUsageError(`--${flag} only applies with --apply`);
  for (const flag of ["context", "kubeconfig"] as const)
    if (values[flag] !== undefined && !values.apply && !values["event-for"])
      throw new CliUsageError(`--${flag} only applies with --apply or --event-for`);
  for (const flag of ["token-file", "user-file", "password-file", "ca-file"] as const)
    if (values[flag] !== undefined && !url)
      throw new CliUsageError(`--${flag} only applies when FILE is a URL`);
  if (values["token-file"] && (values["user-file"] || values["password-file"]))
    throw new CliUsageError("give either --token-file or --user-file and --password-file, not both");
  if (!values["user-file"] !== !values["password-file"])
    throw new CliUsageError("--user-file and --password-file go together");

  let mapping: Mapping;
  try {
    const pairs = values.mapping ? parseMappingYaml(await readMapping(values.mapping), values.mapping) : [];
    mapping = buildMapping([...pairs, ...parseMapFlags(values.map)]);
  } catch (error) {
    if (error instanceof MappingError) throw new CliUsageError(`mapping: ${error.message}`);
    throw error;
  }
  const flags: Flags = {
    output: values.output,
    dryRun: values["dry-run"],
    strict: values.strict,
    progress: values.progress ?? !!process.stderr.isTTY,
    progressEvery: every,
  };
  const progress = (message: string) => {
    if (flags.progress) process.stderr.write(`${cmd} import: ${message}\n`);
  };

  // What exists now.
  let existing: ExistingEmployee[];
  let texts = new Map<string, string>();
  let kc: KubeConfig | undefined;
  let namespace = "";
  let reserved: Set<string> | undefined;
  if (values.out) {
    const dir = await readManifestDirectory(values.out);
    existing = dir.employees;
    texts = dir.texts;
  } else {
    kc = loadKube(values);
    namespace = namespaceOf(kc, values.namespace);
    existing = (
      await listAll<Employee>(
        kc,
        rosterPath("employees", namespace),
        values.selector ? { labelSelector: values.selector } : {},
      )
    ).map((employee) => ({ employee }));
    // A selector narrows who is compared (and can leave), never whose usernames are taken.
    if (values.selector && mapping.username) {
      const all = await listAll<Employee>(kc, rosterPath("employees", namespace));
      reserved = new Set(
        all.flatMap((e) => (e.spec?.username === undefined ? [] : [String(e.spec.username)])),
      );
    }
    if (values["check-targets"] && mapping.username) {
      reserved ??= new Set();
      for (const name of await targetUsernames(kc, namespace)) reserved.add(name);
    }
  }
  const limit = leaverLimit(values["max-leavers"], currentPeople(existing));

  // Read and map every row: the whole export is read before anything is written.
  const records: MappedRecord[] = [];
  try {
    let input: Readable | string;
    if (file === "-") input = process.stdin;
    else if (url) {
      const fetched = await fetchExport(file, {
        ...(await readAuth(values)),
        ...(values["ca-file"] ? { ca: await readSecretFile("--ca-file", values["ca-file"]) } : {}),
        timeoutMs: timeout * 1000,
      });
      format ??= fetched.format;
      if (!format) {
        fetched.stream.destroy();
        throw new CliUsageError(
          `cannot tell the format of ${source} from its path or Content-Type: pass --format csv or --format jsonl`,
        );
      }
      input = fetched.stream;
    } else input = createReadStream(file);
    const rows = readRecords(input, {
      format: format!,
      ...(values.delimiter ? { delimiter: values.delimiter } : {}),
      onHeader: (columns, line) => {
        for (const m of mappingColumns(mapping)) {
          if (!columns.includes(m.column))
            throw new SourceError(
              `column ${JSON.stringify(m.column)} (mapped to ${m.feeds}) is not in the header`,
              line,
            );
        }
      },
    });
    for await (const record of rows) {
      records.push(mapRecord(record, mapping));
      if (records.length % flags.progressEvery === 0) progress(`${records.length} rows read`);
    }
  } catch (error) {
    if (error instanceof SourceError)
      throw new Error(`${source}${error.line !== undefined ? `:${error.line}` : ""}: ${error.message}`, {
        cause: error,
      });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR")
      throw new Error(`${source}: ${(error as Error).message}`, { cause: error });
    throw error;
  }
  if (records.length >= flags.progressEvery) progress(`${records.length} rows read`);

  // A PlanError (two files with one employeeId, ...) names the files; it exits 1.
  const plan: ImportPlan = planImport(existing, records, mapping, {
    mode: values.out ? "merge" : "apply",
    fieldManager: FIELD_MANAGER,
    ...(reserved ? { reservedUsernames: reserved } : {}),
  });
  state.plan = plan;
  const target: ImportOutcome["target"] = values.out ? { directory: values.out } : { namespace };
  const outcome: ImportOutcome = { source, target, dryRun: flags.dryRun, written: [], failed: [] };

  if (flags.output === "text") await writeOut(renderPlanText(plan, source, target));
  if (plan.leavers.length > limit) {
    const message = `${plan.leavers.length} leavers is more than --max-leavers allows (${limit}); nothing written. Check the export, or raise --max-leavers`;
    if (flags.output === "json")
      await writeOut(`${JSON.stringify({ ...planJson(plan, outcome), error: message }, null, 2)}\n`);
    throw new LeaverGuardError(message);
  }
  if (flags.strict && plan.refused.length > 0)
    outcome.withheld = `--strict and ${plan.refused.length} rows refused`;

  const changes = [...plan.hires, ...plan.movers, ...plan.leavers];
  if (!flags.dryRun && !outcome.withheld) {
    if (values.out) await writeDirectory(values.out, changes, texts, outcome, progress, flags);
    else await applyAll(kc!, namespace, changes, values["force-conflicts"], outcome, progress, flags);
  }

  if (flags.output === "json") await writeOut(`${JSON.stringify(planJson(plan, outcome), null, 2)}\n`);
  else await writeOut(renderOutcomeText(plan, outcome));
  const code = outcome.failed.length > 0 ? 1 : plan.refused.length > 0 ? EXIT_REFUSED : 0;
  return { plan, outcome, code };
}

async function readSecretFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    // The path only: the error never quotes the content.
    throw new CliUsageError(`${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
}

async function readAuth(values: Values): Promise<{ auth?: FetchAuth }> {
  if (values["token-file"]) {
    const token = (await readSecretFile("--token-file", values["token-file"])).trim();
    if (token === "" || /[\r\n]/.test(token))
      throw new CliUsageError(`--token-file ${values["token-file"]}: expected one line holding the token`);
    return { auth: { token } };
  }
  if (values["user-file"] && values["password-file"]) {
    const username = (await readSecretFile("--user-file", values["user-file"])).trim();
    const password = (await readSecretFile("--password-file", values["password-file"])).replace(/\r?\n$/, "");
    if (username.includes(":"))
      throw new CliUsageError(`--user-file ${values["user-file"]}: a basic-auth user name cannot hold ":"`);
    return { auth: { username, password } };
  }
  return {};
}

/**
 * Tells the cluster how an import went, when asked: an Event on --event-for (a CronJob, Job, Pod
 * or ConfigMap) and the metrics pushed to --pushgateway. Neither ever fails the import: a report
 * that cannot be written is a warning on stderr.
 */
class Reporter {
  private readonly values: Values;
  private readonly source: string;
  constructor(values: Values, source: string) {
    this.values = values;
    this.source = source;
  }

  finished(plan: ImportPlan, outcome: ImportOutcome): Promise<void> {
    return this.report(
      importEvent(this.source, { plan, outcome }),
      plan,
      !outcome.withheld && !outcome.failed.length,
    );
  }

  failed(error: Error, plan: ImportPlan | undefined): Promise<void> {
    // A usage error before anything was read is reported too: a broken mapping ConfigMap is news.
    return this.report(importEvent(this.source, { error, ...(plan ? { plan } : {}) }), undefined, false);
  }

  private async report(event: ImportEvent, plan: ImportPlan | undefined, success: boolean): Promise<void> {
    const warn = (what: string, error: unknown) =>
      process.stderr.write(
        `${commandName()} import: warning: could not ${what}: ${(error as Error).message}\n`,
      );
    if (this.values["event-for"]) await this.event(event).catch((error) => warn("record the Event", error));
    if (this.values.pushgateway)
      await this.push(plan, success).catch((error) => warn("push metrics to the Pushgateway", error));
  }

  private namespace(kc: KubeConfig): string {
    return this.values["event-namespace"] ?? namespaceOf(kc, this.values.namespace);
  }

  private async event(event: ImportEvent): Promise<void> {
    const spec = this.values["event-for"]!;
    const slash = spec.indexOf("/");
    const kind = slash > 0 ? spec.slice(0, slash) : "";
    const name = spec.slice(slash + 1);
    const api = EVENT_KINDS[kind.toLowerCase()];
    if (!api || name === "")
      throw new Error(
        `--event-for ${spec}: expected KIND/NAME with KIND one of CronJob, Job, Pod, ConfigMap`,
      );
    const kc = loadKube(this.values);
    const namespace = this.namespace(kc);
    // The uid ties the Event to the object, so `kubectl describe` shows it; without it, it still lists.
    const object = await kubeRequest<{ metadata?: { uid?: string } }>(
      kc,
      "GET",
      `${api.prefix}/namespaces/${namespace}/${api.plural}/${name}`,
    ).catch(() => undefined);
    // EventRecorder never throws; its logger hears of a failure, which is passed on as a warning.
    let failure: unknown;
    const logger = { warn: (context: { err?: unknown }) => (failure = context.err) } as unknown as Logger;
    await new EventRecorder(kc, {
      component: "roster-import",
      reportingComponent: "roster.dev/import",
      logger,
    }).record(
      {
        apiVersion: api.apiVersion,
        kind: api.kind,
        metadata: { name, namespace, ...(object?.metadata?.uid ? { uid: object.metadata.uid } : {}) },
      },
      event.type,
      event.reason,
      event.message,
    );
    if (failure) throw failure;
  }

  private async push(plan: ImportPlan | undefined, success: boolean): Promise<void> {
    const metrics = await import("../observe/metrics.ts");
    const { Pushgateway, Registry } = await import("prom-client");
    const now = Date.now() / 1000;
    // Only what this run knows is pushed (POST replaces those names only): a failed run keeps the
    // last success time and row counts of the run before it.
    const registry = new Registry();
    metrics.importLastRun.set(now);
    metrics.importSucceeded.set(success ? 1 : 0);
    registry.registerMetric(metrics.importLastRun);
    registry.registerMetric(metrics.importSucceeded);
    if (success && plan) {
      metrics.importLastSuccess.set(now);
      for (const [outcome, n] of Object.entries(rowCounts(plan))) metrics.importRows.set({ outcome }, n);
      registry.registerMetric(metrics.importLastSuccess);
      registry.registerMetric(metrics.importRows);
    }
    const namespace = this.values.apply
      ? namespaceOf(loadKube(this.values), this.values.namespace)
      : (this.values.out ?? "");
    const gateway = new Pushgateway(this.values.pushgateway!, { timeout: 10_000 }, registry);
    await gateway.pushAdd({
      jobName: "roster-import",
      groupings: this.values.apply ? { namespace } : { directory: namespace },
    });
  }
}

const EVENT_KINDS: Record<string, { apiVersion: string; kind: string; prefix: string; plural: string }> = {
  cronjob: { apiVersion: "batch/v1", kind: "CronJob", prefix: "/apis/batch/v1", plural: "cronjobs" },
  job: { apiVersion: "batch/v1", kind: "Job", prefix: "/apis/batch/v1", plural: "jobs" },
  pod: { apiVersion: "v1", kind: "Pod", prefix: "/api/v1", plural: "pods" },
  configmap: { apiVersion: "v1", kind: "ConfigMap", prefix: "/api/v1", plural: "configmaps" },
};

async function readMapping(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new CliUsageError(`--mapping ${path}: ${(error as Error).message}`);
  }
}

async function writeDirectory(
  dir: string,
  changes: PlannedChange[],
  texts: Map<string, string>,
  outcome: ImportOutcome,
  progress: (m: string) => void,
  flags: Flags,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  let done = 0;
  for (const change of changes) {
    const path = manifestPath(dir, change);
    const content = toManifest(change.object);
    done++;
    if (done % flags.progressEvery === 0) progress(`${done}/${changes.length} files checked`);
    if (texts.get(path) === content) continue;
    if (!change.existing && existsSync(path)) {
      outcome.failed.push({
        name: change.name,
        message: `${path} exists and holds something else; not overwritten`,
      });
      continue;
    }
    const temporary = join(dir, `.${change.name}.yaml.tmp-${process.pid}`);
    await writeFile(temporary, content);
    await rename(temporary, path);
    outcome.written.push(path);
  }
}

async function applyAll(
  kc: KubeConfig,
  namespace: string,
  changes: PlannedChange[],
  force: boolean,
  outcome: ImportOutcome,
  progress: (m: string) => void,
  flags: Flags,
): Promise<void> {
  let done = 0;
  await eachLimited(changes, 8, async (change) => {
    try {
      await serverSideApply(
        kc,
        rosterPath("employees", namespace, change.name),
        change.object,
        FIELD_MANAGER,
        force,
      );
      outcome.written.push(change.name);
    } catch (error) {
      outcome.failed.push({ name: change.name, message: (error as Error).message });
    }
    done++;
    if (
      done % flags.progressEvery === 0 ||
      (done === changes.length && changes.length >= flags.progressEvery)
    )
      progress(`${done}/${changes.length} applied`);
  });
  outcome.written.sort();
}

/**
 * The account names every Connector of the namespace holds (lower case, as usernames are compared),
 * whoever owns them: a generated username must not take one made by hand before Roster.
 */
async function targetUsernames(kc: KubeConfig, namespace: string): Promise<string[]> {
  const names: string[] = [];
  for (const connector of await listAll<Connector>(kc, rosterPath("connectors", namespace))) {
    let client: TargetConnector | undefined;
    try {
      client = await readingClient(kc, connector);
      for (const account of await client.listAccounts(500)) names.push(account.username.toLowerCase());
    } catch (error) {
      throw new Error(
        `--check-targets: Connector ${namespace}/${connector.metadata.name} could not be read: ${(error as Error).message}`,
        { cause: error },
      );
    } finally {
      await client?.close().catch(() => {});
    }
  }
  return names;
}
