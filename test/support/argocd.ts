// Runs the Argo CD health checks of deploy/argocd through the real Argo CD: the argocd CLI built
// from its pinned Go module (test/packaging/argocd/build.sh), whose `admin settings
// resource-overrides health` runs gitops-engine's health check around Argo CD's Lua VM, as the
// application controller does for every resource. And reads which globals a script uses on any
// path, from Lua 5.1's own compiler listing (luac5.1 -l), to hold them to Argo CD's VM.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = join(import.meta.dirname, "../..");
const healthDir = join(root, "deploy/argocd/health");
/** The patch of argocd-cm that README tells people to apply. */
export const healthConfigMap = join(root, "deploy/argocd/argocd-cm-health.yaml");

export const KINDS = {
  Employee: "employee",
  AccessPolicy: "accesspolicy",
  GroupRule: "grouprule",
  Connector: "connector",
};
export type Kind = keyof typeof KINDS;
/** What Argo CD shows; `failed` when the script raised an error (Argo CD shows Unknown then). */
export type Health = { status: string; message: string; failed?: boolean };

export function scriptPath(kind: Kind): string {
  return join(healthDir, `${KINDS[kind]}.lua`);
}

let binary: { argocd: string; dir: string } | undefined;

/** The pinned argocd binary (built once from its Go module and cached, like the control plane). */
export function argocdBinary(): { argocd: string; dir: string } {
  if (!binary) {
    const path = execFileSync("bash", [join(root, "test/packaging/argocd/build.sh")], {
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    })
      .trim()
      .split("\n")
      .pop()!;
    binary = { argocd: path, dir: join(path, "..") };
  }
  return binary;
}

let workDir: string | undefined;
process.on("exit", () => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** Writes a file for argocd to read (JSON is YAML) and returns its path. */
export function scratchFile(name: string, content: string): string {
  workDir ??= mkdtempSync(join(tmpdir(), "roster-argocd-"));
  const path = join(workDir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

/**
 * `argocd admin settings resource-overrides health FILE --argocd-cm-path CM`: the health Argo CD
 * gives the object with the health checks of the ConfigMap (by default argocd-cm-health.yaml).
 * A script error makes the CLI exit non-zero; Argo CD's controller shows the resource as Unknown
 * with the error as its message, and so does this (with `failed`).
 */
export function argocdHealth(object: object, configMap = healthConfigMap): Health {
  const file = scratchFile("object.json", JSON.stringify(object));
  const result = spawnSync(
    argocdBinary().argocd,
    ["admin", "settings", "resource-overrides", "health", file, "--argocd-cm-path", configMap],
    { encoding: "utf8", env: { ...process.env, HOME: workDir } },
  );
  if (result.error) throw result.error;
  if (result.status !== 0) {
    // argocd logs JSON lines on stderr; the error is the fatal one.
    const fatal = result.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level?: string; msg?: string })
      .find((entry) => entry.level === "fatal");
    return { status: "Unknown", message: fatal?.msg ?? result.stderr.trim(), failed: true };
  }
  const match = /^STATUS: (.*)\nMESSAGE: ([\s\S]*?)\n?$/.exec(result.stdout);
  if (!match) throw new Error(`unexpected output of argocd:\n${result.stdout}${result.stderr}`);
  return { status: match[1]!, message: match[2]! };
}

/** The globals a Lua 5.1 chunk reads and writes on any path, and how many method calls it makes. */
export function luaGlobals(path: string): { reads: string[]; writes: string[]; methodCalls: number } {
  const listing = execFileSync("luac5.1", ["-p", "-l", path], { encoding: "utf8" });
  const names = (op: string) => [
    ...new Set([...listing.matchAll(new RegExp(`\\b${op}\\b.*; (\\S+)$`, "gm"))].map((m) => m[1]!)),
  ];
  return {
    reads: names("GETGLOBAL").sort(),
    writes: names("SETGLOBAL").sort(),
    methodCalls: [...listing.matchAll(/\bSELF\b/g)].length,
  };
}

/** The health Argo CD shows for an object with Roster's checks (test/e2e/status.test.ts). */
export function health(object: { kind: Kind }): Health {
  return argocdHealth(object);
}
