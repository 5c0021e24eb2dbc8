// Probe and metrics endpoints, on kubebuilder's conventional ports: /healthz and /readyz on :8081,
// /metrics on :8080. Separate servers so that metrics can be exposed (or not) independently of the
// probes the kubelet needs. Liveness only says the event loop answers: restarting the pod because
// a target or the API server is down would not help. Readiness runs the registered checks
// (e.g. "informers synced").
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { registry as defaultRegistry } from "../observe/metrics.ts";

/** Returns normally (or true) when healthy; throws or returns false / a reason string when not. */
export type Check = () => boolean | string | void | Promise<boolean | string | void>;

export type ListeningServer = {
  server: Server;
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
  /** Same as close(). */
  stop(): Promise<void>;
};

/** ":8081" → all interfaces, "127.0.0.1:0" → loopback, any free port. */
export function parseAddress(address: string): { host: string | undefined; port: number } {
  const i = address.lastIndexOf(":");
  if (i < 0) throw new Error(`address must be [host]:port, got ${JSON.stringify(address)}`);
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  const port = Number(address.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid port in ${JSON.stringify(address)}`);
  return { host: host || undefined, port };
}

async function listen(
  address: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<ListeningServer> {
  const { host, port } = parseAddress(address);
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(`internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  return { server, port: (server.address() as AddressInfo).port, close, stop: close };
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, { "Content-Type": contentType, "Cache-Control": "no-store" });
  res.end(body);
}

async function runCheck(check: Check, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`timed out after ${timeoutMs} ms`), timeoutMs);
    });
    const result = await Promise.race([Promise.resolve().then(check), timeout]);
    if (result === false) return "not ready";
    if (typeof result === "string") return result;
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

export type HealthServerOptions = {
  /** Default ":8081". */
  address?: string;
  /** Readiness checks by name. More can be added with addReadyCheck(). */
  readyChecks?: Record<string, Check>;
  /** Liveness checks by name; by default none (the answer itself proves liveness). */
  liveChecks?: Record<string, Check>;
  /** Per-check timeout. Default 5 s; keep it below the probe's timeoutSeconds. */
  checkTimeoutMs?: number;
};

export type HealthServer = ListeningServer & {
  addReadyCheck(name: string, check: Check): void;
  addLiveCheck(name: string, check: Check): void;
};

/**
 * Serves /healthz and /readyz (also /livez). 200 "ok" when every check passes, else 500 listing the
 * failures in the kube-apiserver format ("[-]informers failed: ..."); `?verbose` lists all checks.
 * /readyz/<name> runs one check.
 */
export async function startHealthServer(
  options: HealthServerOptions | string = {},
  readyChecks?: Record<string, Check>,
): Promise<HealthServer> {
  // Also callable as startHealthServer(address, readyChecks).
  if (typeof options === "string") options = { address: options };
  if (readyChecks) options = { ...options, readyChecks: { ...options.readyChecks, ...readyChecks } };
  const ready = new Map(Object.entries(options.readyChecks ?? {}));
  const live = new Map(Object.entries(options.liveChecks ?? {}));
  const timeoutMs = options.checkTimeoutMs ?? 5000;

  const evaluate = async (
    res: ServerResponse,
    checks: Map<string, Check>,
    verbose: boolean,
    only?: string,
  ) => {
    const selected =
      only === undefined ? [...checks] : checks.has(only) ? [[only, checks.get(only)!] as const] : [];
    if (only !== undefined && selected.length === 0) return send(res, 404, `no check named ${only}\n`);
    const results = await Promise.all(
      selected.map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const),
    );
    const failed = results.filter(([, failure]) => failure !== undefined);
    const lines = results
      .filter(([, failure]) => verbose || failure !== undefined)
      .map(([name, failure]) => (failure === undefined ? `[+]${name} ok` : `[-]${name} failed: ${failure}`));
    if (failed.length === 0) return send(res, 200, verbose ? `${lines.join("\n")}\nok\n` : "ok\n");
    return send(res, 500, `${lines.join("\n")}\nhealth check failed\n`);
  };

  const listening = await listen(options.address ?? ":8081", async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const verbose = url.searchParams.has("verbose");
    const [, root, name] = url.pathname.split("/");
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "method not allowed\n");
    if (root === "healthz" || root === "livez") return evaluate(res, live, verbose, name);
    if (root === "readyz") return evaluate(res, ready, verbose, name);
    return send(res, 404, "not found\n");
  });
  return {
    ...listening,
    addReadyCheck: (name, check) => void ready.set(name, check),
    addLiveCheck: (name, check) => void live.set(name, check),
  };
}

export type MetricsServerOptions = {
  /** Default ":8080". */
  address?: string;
  /** Default: the process registry from src/observe/metrics.ts. */
  registry?: Registry;
};

/** Serves the Prometheus text format on /metrics. Also callable as startMetricsServer(address). */
export async function startMetricsServer(
  options: MetricsServerOptions | string = {},
): Promise<ListeningServer> {
  if (typeof options === "string") options = { address: options };
  const registry = options.registry ?? defaultRegistry;
  return listen(options.address ?? ":8080", async (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path !== "/metrics") return send(res, 404, "not found\n");
    send(res, 200, await registry.metrics(), registry.contentType);
  });
}
