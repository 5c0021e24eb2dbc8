// `roster plan DIR`: what Roster would change if the manifests in DIR were merged. Reads only.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { loadAll } from "js-yaml";
import { Ajv } from "ajv";
import type { TSchema } from "@sinclair/typebox";
import { API_VERSION, KINDS } from "../api/schema.ts";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../api/types.ts";
import { previewPlan, renderPreview, type RosterState } from "../plan/preview.ts";
import {
  CliUsageError,
  KUBE_FLAGS,
  KUBE_FLAGS_HELP,
  commandName,
  loadKube,
  namespaceOf,
  runCli,
  writeOut,
} from "./kube.ts";
import { listAll, rosterPath } from "../kube/client.ts";

export const EXIT_BRAKE = 3;

const HELP = (cmd: string) => `Usage: ${cmd} plan DIR [flags]

Prints what Roster would change if the manifests in DIR (what a pull request would merge) were
applied: accounts created, updated, enabled, disabled and deleted, and group members added and
removed, per connector and per person. Nothing is written anywhere.

DIR holds YAML files (searched recursively) with Employees, AccessPolicies, GroupRules and
Connectors. Employees in DIR are the whole set: one in the cluster but not in DIR is a leaver.
For the other kinds, a kind present in DIR replaces the cluster's; a kind absent from DIR is
taken from the cluster. With --no-cluster the baseline is empty.

Flags:
${KUBE_FLAGS_HELP}
  --no-cluster             compare against nothing instead of the live cluster
  -o, --output FORMAT      text (markdown, for a pull-request comment) or json (default text)
  --now RFC3339            evaluate dates at this moment (default: now)

Exit codes: 0 the plan is within the limits, 3 it would trip the mass-change brake,
1 error, 2 usage error.

Examples:
  ${cmd} plan people/ -n hr
  ${cmd} plan people/ -n hr -o json > plan.json
  ${cmd} plan people/ --no-cluster
`;

type Loaded = { kind: string; object: Record<string, unknown>; file: string };

const validators = (() => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  return new Map(KINDS.map((k) => [k.kind, ajv.compile(k.spec as TSchema)]));
})();

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry)) out.push(path);
  }
  return out;
}

/** Loads and validates every Roster object in DIR; errors name the file, document and field. */
export function loadManifests(dir: string): Loaded[] {
  const loaded: Loaded[] = [];
  const problems: string[] = [];
  for (const file of yamlFiles(dir)) {
    const name = relative(process.cwd(), file);
    let docs: unknown[];
    try {
      docs = loadAll(readFileSync(file, "utf8"));
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message.split("\n")[0]}`);
      continue;
    }
    docs.forEach((doc, index) => {
      if (!doc || typeof doc !== "object") return;
      const object = doc as Record<string, unknown>;
      if (object.apiVersion !== API_VERSION) return;
      const kind = String(object.kind);
      const validate = validators.get(kind);
      const where = `${name} (document ${index + 1}, ${kind} ${String((object.metadata as { name?: string })?.name)})`;
      if (!validate) return problems.push(`${where}: unknown kind`);
      if (!validate(object.spec ?? {}))
        for (const e of validate.errors ?? [])
          problems.push(`${where}: spec${e.instancePath.replace(/\//g, ".")} ${e.message}`);
      else loaded.push({ kind, object, file: name });
    });
  }
  if (problems.length) throw new Error(`invalid manifests:\n  ${problems.join("\n  ")}`);
  return loaded;
}

function stateFrom(objects: Loaded[]): Partial<RosterState> {
  const of = <T>(kind: string) => objects.filter((o) => o.kind === kind).map((o) => o.object as unknown as T);
  const state: Partial<RosterState> = { employees: of<Employee>("Employee") };
  if (objects.some((o) => o.kind === "AccessPolicy")) state.policies = of<AccessPolicy>("AccessPolicy");
  if (objects.some((o) => o.kind === "GroupRule")) state.rules = of<GroupRule>("GroupRule");
  if (objects.some((o) => o.kind === "Connector")) state.connectors = of<Connector>("Connector");
  return state;
}

export async function planCommand(args: string[]): Promise<number> {
  return runCli("plan", async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...KUBE_FLAGS,
        help: { type: "boolean", short: "h" },
        "no-cluster": { type: "boolean", default: false },
        output: { type: "string", short: "o", default: "text" },
        now: { type: "string" },
      },
    });
    if (values.help) {
      await writeOut(HELP(commandName()));
      return 0;
    }
    if (positionals.length !== 1) throw new CliUsageError("expected exactly one directory");
    if (!["text", "json"].includes(values.output!))
      throw new CliUsageError(`--output must be text or json, got ${values.output}`);
    const now = values.now ? new Date(values.now) : new Date();
    if (Number.isNaN(now.getTime())) throw new CliUsageError(`--now ${values.now} is not an RFC 3339 time`);
    const proposedObjects = stateFrom(loadManifests(positionals[0]!));

    let current: RosterState = { employees: [], policies: [], rules: [], connectors: [] };
    if (!values["no-cluster"]) {
      const kc = loadKube(values);
      const namespace = namespaceOf(kc, values.namespace);
      const [employees, policies, rules, connectors] = await Promise.all([
        listAll<Employee>(kc, rosterPath("employees", namespace)),
        listAll<AccessPolicy>(kc, rosterPath("accesspolicies", namespace)),
        listAll<GroupRule>(kc, rosterPath("grouprules", namespace)),
        listAll<Connector>(kc, rosterPath("connectors", namespace)),
      ]);
      current = { employees, policies, rules, connectors };
    }
    const proposed: RosterState = {
      employees: proposedObjects.employees ?? [],
      policies: proposedObjects.policies ?? current.policies,
      rules: proposedObjects.rules ?? current.rules,
      connectors: proposedObjects.connectors ?? current.connectors,
    };
    const preview = previewPlan(current, proposed, now);
    await writeOut(
      values.output === "json" ? JSON.stringify(preview, null, 2) + "\n" : renderPreview(preview),
    );
    return preview.tripsBrake ? EXIT_BRAKE : 0;
  });
}
