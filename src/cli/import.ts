// `roster import`: an HR export (CSV or JSON lines) -> Employee manifests in a directory, or
// server-side applied to a namespace. See HELP for flags and exit codes.
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Employee } from "../api/types.ts";
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
  fieldPath,
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
import { listAll, rosterPath, serverSideApply } from "../kube/client.ts";

export const FIELD_MANAGER = "roster-import";

/** Exit code when some rows were refused. */
export const EXIT_REFUSED = 3;

const help = (
  cmd: string,
) => `Usage: ${cmd} import FILE (--out DIR | --apply) (--mapping FILE | --map FIELD=COLUMN ...) [flags]

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
  -l, --selector SEL       with --apply: only Employees matching this label selector are compared
                           (and can become leavers); map a label (labels.<key>) that matches it

Mapping (Employee field -> column; the fields employeeId, username, givenName, familyName and
email are required; also displayName, department, title, location, costCenter, manager,
employmentType, employmentStatus, startDate, endDate, attributes.<name>, labels.<key>):
  --mapping FILE           YAML map, e.g.  employeeId: Employee ID
                                           attributes: {badge: Badge}
                                           labels.team: Team
  --map FIELD=COLUMN       one field (repeatable; added to or replacing --mapping entries)

Input:
  --format csv|jsonl       when the extension does not tell
  --delimiter CHAR         CSV field delimiter (default ",")

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

Values: cells are trimmed; an empty cell leaves the field unset. employmentType and
employmentStatus accept HR spellings ("on leave", "TERMINATED"). Dates are YYYY-MM-DD or RFC 3339
date-times. Rows are refused for a missing employee id, a bad date, a duplicate employeeId or
username, an invalid username, a changed username (immutable) or any schema violation (named).

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
`;

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

async function run(args: string[]): Promise<number> {
  const cmd = commandName();
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    allowNegative: true,
    options: {
      help: { type: "boolean", short: "h" },
      ...KUBE_FLAGS,
      out: { type: "string" },
      apply: { type: "boolean", default: false },
      selector: { type: "string", short: "l" },
      mapping: { type: "string" },
      map: { type: "string", multiple: true, default: [] },
      format: { type: "string" },
      delimiter: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      strict: { type: "boolean", default: false },
      "max-leavers": { type: "string" },
      "force-conflicts": { type: "boolean", default: true },
      output: { type: "string", short: "o", default: "text" },
      progress: { type: "boolean" },
      "progress-every": { type: "string", default: "1000" },
    },
  });
  if (values.help) {
    await writeOut(help(cmd));
    return 0;
  }
  if (positionals.length !== 1)
    throw new CliUsageError(positionals.length ? "expected one FILE" : "missing FILE (the HR export)");
  const file = positionals[0]!;
  if (!values.out === !values.apply) throw new CliUsageError("give exactly one of --out DIR or --apply");
  if (values.output !== "text" && values.output !== "json")
    throw new CliUsageError(`--output ${values.output}: expected text or json`);
  const format = detectFormat(file === "-" ? "" : file, values.format);
  if (!format)
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
  if (!values.mapping && values.map.length === 0)
    throw new CliUsageError("no mapping: pass --mapping FILE or --map FIELD=COLUMN flags");
  for (const flag of ["selector", "namespace", "context", "kubeconfig"] as const)
    if (values[flag] !== undefined && !values.apply)
      throw new CliUsageError(`--${flag} only applies with --apply`);

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
  const source = file === "-" ? "<stdin>" : file;

  // What exists now.
  let existing: ExistingEmployee[];
  let texts = new Map<string, string>();
  let kc: KubeConfig | undefined;
  let namespace = "";
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
  }
  const limit = leaverLimit(values["max-leavers"], currentPeople(existing));

  // Read and map every row.
  const records: MappedRecord[] = [];
  try {
    const input: Readable | string = file === "-" ? process.stdin : createReadStream(file);
    const rows = readRecords(input, {
      format,
      ...(values.delimiter ? { delimiter: values.delimiter } : {}),
      onHeader: (columns, line) => {
        for (const m of mapping.fields) {
          if (!columns.includes(m.column))
            throw new SourceError(
              `column ${JSON.stringify(m.column)} (mapped to ${fieldPath(m.target)}) is not in the header`,
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
  });
  const target: ImportOutcome["target"] = values.out ? { directory: values.out } : { namespace };
  const outcome: ImportOutcome = { source, target, dryRun: flags.dryRun, written: [], failed: [] };

  if (flags.output === "text") await writeOut(renderPlanText(plan, source, target));
  if (plan.leavers.length > limit) {
    const message = `${plan.leavers.length} leavers is more than --max-leavers allows (${limit}); nothing written. Check the export, or raise --max-leavers`;
    if (flags.output === "json")
      await writeOut(`${JSON.stringify({ ...planJson(plan, outcome), error: message }, null, 2)}\n`);
    throw new Error(message);
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
  if (outcome.failed.length > 0) return 1;
  return plan.refused.length > 0 ? EXIT_REFUSED : 0;
}

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
