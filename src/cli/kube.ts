// Shared pieces of the `roster` subcommands that talk to a cluster: the kubectl-style flags
// (--kubeconfig, --context, --namespace/-n), loading the kubeconfig, and uniform error handling.
// The requests themselves are src/kube's.
import { basename } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export {
  KubeApiError,
  kubeRequest,
  listAll,
  readSecretKey,
  rosterPath,
  serverSideApply,
} from "../kube/client.ts";

/** parseArgs options every cluster command accepts. */
export const KUBE_FLAGS = {
  kubeconfig: { type: "string" },
  context: { type: "string" },
  namespace: { type: "string", short: "n" },
} as const;

export const KUBE_FLAGS_HELP = `  --kubeconfig PATH        kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --context NAME           kubeconfig context (default: the current context)
  -n, --namespace NS       namespace (default: the context's namespace, or "default")`;

/** A command-line mistake: exit code 2. */
export class CliUsageError extends Error {
  override name = "CliUsageError";
}

/** `kubectl roster` when run as the kubectl plugin (kubectl-roster), else `roster`. */
/** The --now flag: the moment dates are judged at (default: now). */
export function nowFlag(value: string | undefined): Date {
  const now = value ? new Date(value) : new Date();
  if (Number.isNaN(now.getTime())) throw new CliUsageError(`--now ${value} is not an RFC 3339 time`);
  return now;
}

export function commandName(): string {
  return basename(process.argv[1] ?? "").startsWith("kubectl-") ? "kubectl roster" : "roster";
}

export function loadKube(flags: { kubeconfig?: string; context?: string }): KubeConfig {
  const kc = new KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  if (flags.context) {
    if (!kc.getContextObject(flags.context))
      throw new CliUsageError(`--context ${flags.context}: no such context in the kubeconfig`);
    kc.setCurrentContext(flags.context);
  }
  if (!kc.getCurrentCluster())
    throw new Error("no cluster configured: pass --kubeconfig or set KUBECONFIG (or run in a cluster)");
  return kc;
}

/** --namespace, else the current context's namespace, else "default". */
export function namespaceOf(kc: KubeConfig, flag: string | undefined): string {
  if (flag) return flag;
  return kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
}

/**
 * Runs a subcommand body and turns what it throws into the documented exit codes: usage
 * mistakes (CliUsageError, parseArgs errors) exit 2 with a pointer to --help, others exit 1.
 */
export async function runCli(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const usage =
      error instanceof CliUsageError || !!(error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${commandName()} ${name}: ${message}\n`);
    if (usage) process.stderr.write(`Run '${commandName()} ${name} --help' for usage.\n`);
    return usage ? 2 : 1;
  }
}

/**
 * Writes to stdout and waits until the text is handed to the OS: `roster` exits with
 * process.exit, which would cut a large report short on a pipe.
 */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(text, (error) => (error ? reject(error) : resolve())),
  );
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
