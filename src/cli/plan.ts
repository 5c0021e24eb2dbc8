// `roster plan DIR`: what Roster would change if the manifests in DIR were merged. Reads only:
// the cluster, and with --live the targets (through the CLI's read-only target client).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { isDeepStrictEqual, parseArgs } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import { loadAll } from "js-yaml";
import { Ajv } from "ajv";
import type { TSchema } from "@sinclair/typebox";
import { API_VERSION, KINDS } from "../api/schema.ts";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../api/types.ts";
import { ACCESS_TEST_KIND, AccessTestSpec } from "../policy/access-test.ts";
import {
  adoptionLookups,
  convergedState,
  previewPlan,
  renderPreview,
  type LiveRead,
  type LiveTarget,
  type RosterState,
} from "../plan/preview.ts";
import { connectorPaused } from "../plan/employee.ts";
import { scannedGroups } from "../plan/scan.ts";
import type { ActualAccount } from "../connectors/types.ts";
import { readingClient } from "./targets.ts";
import {
  CliUsageError,
  eachLimited,
  KUBE_FLAGS,
  KUBE_FLAGS_HELP,
  commandName,
  loadKube,
  nowFlag,
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
Connectors; AccessTest documents (for '${cmd} test') are checked and otherwise ignored.
Employees in DIR are the whole set: one in the cluster but not in DIR is a leaver.
For the other kinds, a kind present in DIR replaces the cluster's; a kind absent from DIR is
taken from the cluster. The baseline is the cluster, as its objects' status records the
targets; with --base a directory instead, with --no-cluster nothing.

Flags:
${KUBE_FLAGS_HELP}
  --live                   also read every Connector's target (read-only, with the Connector's
                           Secret): the plan is then made on the accounts as they are, with
                           their real ids, and also shows drift the operator would put back
                           (drift policy Correct) or leave (Report), adoption candidates
                           (spec.adoption), orphans that orphans: Disable or Delete would act on
                           and hand-added members an Authoritative GroupRule removes; those
                           removals count against the mass-change brake too. Needs network
                           access to the targets and read access to the Secrets; paused
                           Connectors are not read
  --base BASEDIR           compare against the manifests in BASEDIR (e.g. the pull request's
                           base, checked out with git worktree) instead of the cluster, taken as
                           the operator leaves them once reconciled; no cluster is needed
  --no-cluster             compare against nothing instead of the live cluster
  -o, --output FORMAT      text (markdown, for a pull-request comment) or json (default text)
  --now RFC3339            evaluate dates at this moment (default: now)

Exit codes: 0 the plan is within the limits, 3 it would trip the mass-change brake,
1 error (also: a target --live could not read), 2 usage error.

Examples:
  ${cmd} plan people/ -n hr
  ${cmd} plan people/ -n hr -o json > plan.json
  ${cmd} plan people/ -n hr --live
  git worktree add /tmp/base origin/main && ${cmd} plan people/ --base /tmp/base/people
  ${cmd} plan people/ --no-cluster
`;

export type Loaded = { kind: string; object: Record<string, unknown>; file: string; document: number };

const validators = (() => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // AccessTest is `roster test`'s file format, not a CRD: checked like the kinds, applied nowhere.
  return new Map([
    ...KINDS.map((k) => [k.kind, ajv.compile(k.spec as TSchema)] as const),
    [ACCESS_TEST_KIND, ajv.compile(AccessTestSpec)] as const,
  ]);
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
          problems.push(
            `${where}: spec${e.instancePath.replace(/\//g, ".")} ${e.message}` +
              ("additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""),
          );
      else loaded.push({ kind, object, file: name, document: index + 1 });
    });
  }
  if (problems.length) throw new Error(`invalid manifests:\n  ${problems.join("\n  ")}`);
  return loaded;
}

/** The loaded objects of one kind. */
const ofKind = <T>(objects: readonly Loaded[], kind: string) =>
  objects.filter((o) => o.kind === kind).map((o) => o.object as unknown as T);

/** Every Roster object in the manifests, by kind (what `roster test` and `roster explain --dir` read). */
export function manifestObjects(objects: readonly Loaded[]) {
  return {
    employees: ofKind<Employee>(objects, "Employee"),
    policies: ofKind<AccessPolicy>(objects, "AccessPolicy"),
    rules: ofKind<GroupRule>(objects, "GroupRule"),
    connectors: ofKind<Connector>(objects, "Connector"),
  };
}

function stateFrom(objects: Loaded[]): Partial<RosterState> {
  const of = <T>(kind: string) => ofKind<T>(objects, kind);
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
        live: { type: "boolean", default: false },
        base: { type: "string" },
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
    const now = nowFlag(values.now);
    if (values["no-cluster"] && values.base !== undefined)
      throw new CliUsageError("give --base or --no-cluster, not both");
    const offline = values["no-cluster"] ? "--no-cluster" : values.base !== undefined ? "--base" : undefined;
    if (values.live && offline)
      throw new CliUsageError(`--live reads the cluster's Connectors: not with ${offline}`);
    const proposedObjects = stateFrom(loadManifests(positionals[0]!));

    let current: RosterState = { employees: [], policies: [], rules: [], connectors: [] };
    let kc: KubeConfig | undefined;
    let namespace = "default";
    if (values.base !== undefined) {
      const base = stateFrom(loadManifests(values.base));
      current = convergedState(
        {
          employees: base.employees ?? [],
          policies: base.policies ?? [],
          rules: base.rules ?? [],
          connectors: base.connectors ?? [],
        },
        now,
      );
    } else if (!values["no-cluster"]) {
      kc = loadKube(values);
      namespace = namespaceOf(kc, values.namespace);
      const [employees, policies, rules, connectors] = await Promise.all([
        listAll<Employee>(kc, rosterPath("employees", namespace)),
        listAll<AccessPolicy>(kc, rosterPath("accesspolicies", namespace)),
        listAll<GroupRule>(kc, rosterPath("grouprules", namespace)),
        listAll<Connector>(kc, rosterPath("connectors", namespace)),
      ]);
      current = { employees, policies, rules, connectors };
    }
    const proposed: RosterState = {
      employees: (proposedObjects.employees ?? []).map((e) => asApplied(e, current, namespace)),
      policies: proposedObjects.policies ?? current.policies,
      rules: proposedObjects.rules ?? current.rules,
      connectors: proposedObjects.connectors ?? current.connectors,
    };
    const live = values.live ? await readTargets(kc!, namespace, current, proposed, now) : undefined;
    const preview = previewPlan(current, proposed, now, live);
    await writeOut(
      values.output === "json" ? JSON.stringify(preview, null, 2) + "\n" : renderPreview(preview),
    );
    return preview.tripsBrake ? EXIT_BRAKE : 0;
  });
}

const withDefaults = (() => {
  const ajv = new Ajv({ useDefaults: true, strict: false });
  return ajv.compile(KINDS.find((k) => k.kind === "Employee")!.spec as TSchema);
})();

/**
 * An Employee of DIR as the cluster would hold it once applied: in the namespace, with the
 * cluster's creationTimestamp, and a generation that moves only when the spec (with the API
 * server's defaults) changes. Drift under policy Report is left alone only for an unchanged one.
 */
function asApplied(employee: Employee, current: RosterState, namespace: string): Employee {
  const before = current.employees.find((e) => e.metadata.name === employee.metadata.name);
  const spec = structuredClone(employee.spec);
  withDefaults(spec);
  const generation = before?.metadata.generation;
  return {
    ...employee,
    metadata: {
      ...employee.metadata,
      namespace: employee.metadata.namespace ?? namespace,
      ...(before?.metadata.creationTimestamp ? { creationTimestamp: before.metadata.creationTimestamp } : {}),
      ...(generation !== undefined
        ? { generation: isDeepStrictEqual(spec, before!.spec) ? generation : generation + 1 }
        : {}),
    },
  };
}

/**
 * --live: every account each (unpaused) Connector's target holds, and the adoption look-ups the
 * operator would make, through the CLI's read-only client. A target that cannot be read fails
 * the command: a plan that guessed what it holds would not be what the operator does.
 */
async function readTargets(
  kc: KubeConfig,
  namespace: string,
  current: RosterState,
  proposed: RosterState,
  now: Date,
): Promise<LiveRead> {
  const connectors = new Map(current.connectors.map((c) => [c.metadata.name, c]));
  for (const c of proposed.connectors) connectors.set(c.metadata.name, c);
  const live = new Map<string, LiveTarget>();
  await eachLimited([...connectors.values()], 4, async (spec) => {
    const connector = {
      ...spec,
      metadata: { ...spec.metadata, namespace: spec.metadata.namespace ?? namespace },
    };
    if (connectorPaused(connector)) return;
    const name = connector.metadata.name;
    try {
      const client = await readingClient(kc, connector);
      try {
        // The members of the groups the scan judges, as it is and as proposed (a SCIM listing
        // leaves out those without an externalId).
        const groups = new Set([...scannedGroups(connector, current), ...scannedGroups(connector, proposed)]);
        const accounts = await client.listAccounts(500, undefined, [...groups]);
        const candidates = new Map<string, ActualAccount[]>();
        await eachLimited(adoptionLookups(proposed, connector, accounts, now), 4, async (lookup) => {
          candidates.set(lookup.employee, await client.findUnowned(lookup.match, lookup.value));
        });
        live.set(name, { accounts, candidates });
      } finally {
        await client.close().catch(() => {});
      }
    } catch (error) {
      throw new Error(
        `--live: Connector ${namespace}/${name} could not be read: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  });
  return live;
}
