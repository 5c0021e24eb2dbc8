// Helpers for the packaging tests: the pinned helm (built from test/packaging/helm), the control
// plane's kubectl, and YAML documents of rendered manifests.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { dump, loadAll } from "js-yaml";
import { controlPlaneBinaries } from "../harness/controlplane.ts";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const chartDir = join(root, "charts/roster");

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
};

export type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

export type Result = { status: number; stdout: string; stderr: string };

/** Runs a command to its end and returns its exit status and output (never throws on failure). */
export function run(command: string, args: string[], input?: string): Result {
  const result = spawnSync(command, args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Like run, but throws with the command's stderr unless it exits 0; returns stdout. */
export function check(command: string, args: string[], input?: string): string {
  const result = run(command, args, input);
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.status}:\n${result.stderr}${result.stdout}`,
    );
  return result.stdout;
}

let helmPath: string | undefined;

/** The pinned helm binary (built once from its Go module and cached, like the control plane). */
export function helmBinary(): string {
  helmPath ??= execFileSync("bash", [join(root, "test/packaging/helm/build.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .pop()!;
  return helmPath;
}

/** The kubectl built with the control plane (its `kustomize` needs no cluster). */
export function kubectlBinary(): string {
  return join(controlPlaneBinaries(), "kubectl");
}

/** `helm template` of the chart with --set values; throws on a render or schema error. */
export function helmTemplate(
  values: Record<string, string | number | boolean> = {},
  options: { namespace?: string; includeCrds?: boolean; release?: string } = {},
): string {
  const release = options.release ?? "roster";
  const args = ["template", release, chartDir, "--namespace", options.namespace ?? "roster-system"];
  if (options.includeCrds) args.push("--include-crds");
  for (const [key, value] of Object.entries(values)) args.push("--set", `${key}=${value}`);
  return check(helmBinary(), args);
}

export function kustomizeBase(): string {
  return check(kubectlBinary(), ["kustomize", join(root, "deploy/base")]);
}

export function documents(yaml: string): Manifest[] {
  return loadAll(yaml).filter((d): d is Manifest => typeof d === "object" && d !== null);
}

export function toYaml(manifests: Manifest[]): string {
  return manifests.map((m) => `---\n${dump(m, { lineWidth: -1 })}`).join("");
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
}

export function only(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = find(manifests, kind, name);
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0]!;
}

export function readText(path: string): string {
  return readFileSync(join(root, path), "utf8");
}

/** What the operator uses in the namespaces it watches (src/controller/operator.ts), and no more. */
export const WATCH_RULES: Rule[] = [
  {
    apiGroups: ["roster.dev"],
    resources: ["employees", "accesspolicies", "grouprules", "connectors"],
    verbs: ["get", "list", "watch", "patch"],
  },
  {
    apiGroups: ["roster.dev"],
    resources: ["employees/status", "accesspolicies/status", "grouprules/status", "connectors/status"],
    verbs: ["get", "patch", "update"],
  },
  { apiGroups: ["roster.dev"], resources: ["employees/finalizers"], verbs: ["update"] },
  { apiGroups: [""], resources: ["secrets"], verbs: ["get", "create", "patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create", "patch", "get"] },
];

/** Cluster-wide only: a shard (--shard-selector) watches which Namespaces its selector matches. */
export const NAMESPACE_RULES: Rule[] = [
  { apiGroups: [""], resources: ["namespaces"], verbs: ["list", "watch"] },
];

export const LEASE_RULES: Rule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];
