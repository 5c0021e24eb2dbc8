// Shared pieces of the `roster` subcommands that talk to a cluster: the kubectl-style flags
// (--kubeconfig, --context, --namespace/-n, --all-namespaces/-A), raw API requests with a
// KubeConfig's credentials (roster.dev bodies are sent and read as plain JSON, never through
// client-node's typed models, which drop fields they do not know), and uniform error handling.
import { request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from "node:https";
import { basename } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { GROUP, VERSION } from "../api/schema.ts";
import type { SecretKeyRef } from "../api/types.ts";

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

/** A refused API request, with the HTTP status and the Status message. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** One keep-alive agent per KubeConfig: a thousand applies should not mean a thousand TLS handshakes. */
const agents = new WeakMap<KubeConfig, HttpsAgent>();

/** A raw API request with the kubeconfig's credentials; resolves to the parsed JSON answer. */
export async function kubeRequest<T = unknown>(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no cluster configured in the kubeconfig");
  const server = new URL(cluster.server);
  const base = server.pathname.replace(/\/$/, "");
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const options: RequestOptions = {
    protocol: server.protocol,
    host: server.hostname,
    port: server.port,
    path: `${base}${path}`,
    method,
    timeout: 30_000,
    headers: {
      Accept: "application/json",
      ...(payload === undefined ? {} : { "Content-Type": contentType }),
    },
  };
  await kc.applyToHTTPSOptions(options);
  if (server.protocol === "https:" && !cluster.proxyUrl) {
    let agent = agents.get(kc);
    if (!agent) {
      agent = new HttpsAgent({ keepAlive: true, maxSockets: 16 });
      agents.set(kc, agent);
    }
    // The TLS settings stay on the request options; the agent pools connections per settings.
    options.agent = agent;
  }
  const send = server.protocol === "http:" ? httpRequest : httpsRequest;
  return new Promise<T>((resolve, reject) => {
    const req = send(options, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch {
            reject(new Error(`${method} ${path}: the answer is not JSON`));
          }
          return;
        }
        let message = text.slice(0, 2000);
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // not a Status object: keep the text
        }
        reject(new KubeApiError(status, `${method} ${path}: ${status} ${message}`));
      });
    });
    req.on("error", (error) => reject(new Error(`${method} ${path}: ${error.message}`)));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end(payload);
  });
}

/** The API path of a roster.dev collection or object. */
export function rosterPath(plural: string, namespace?: string, name?: string): string {
  const ns = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  return `/apis/${GROUP}/${VERSION}${ns}/${plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}

/** Every object of a collection, following `continue` tokens. */
export async function listAll<T>(
  kc: KubeConfig,
  path: string,
  query: Record<string, string> = {},
): Promise<T[]> {
  const items: T[] = [];
  let next: string | undefined;
  do {
    const params = new URLSearchParams({ ...query, limit: "500", ...(next ? { continue: next } : {}) });
    const page = await kubeRequest<{ items?: T[]; metadata?: { continue?: string } }>(
      kc,
      "GET",
      `${path}?${params}`,
    );
    items.push(...(page.items ?? []));
    next = page.metadata?.continue || undefined;
  } while (next);
  return items;
}

/** Server-side apply of one object (PATCH application/apply-patch+yaml). */
export function serverSideApply<T>(
  kc: KubeConfig,
  path: string,
  object: unknown,
  fieldManager: string,
  force: boolean,
): Promise<T> {
  const params = new URLSearchParams({ fieldManager, ...(force ? { force: "true" } : {}) });
  return kubeRequest<T>(kc, "PATCH", `${path}?${params}`, object, "application/apply-patch+yaml");
}

/** The value of one key of a Secret. */
export async function readSecretKey(kc: KubeConfig, namespace: string, ref: SecretKeyRef): Promise<string> {
  const secret = await kubeRequest<{ data?: Record<string, string> }>(
    kc,
    "GET",
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(ref.name)}`,
  );
  const value = secret.data?.[ref.key];
  if (value === undefined) throw new Error(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
  return Buffer.from(value, "base64").toString("utf8");
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
