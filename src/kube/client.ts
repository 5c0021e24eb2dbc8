// Roster's one module for the API server: connection reuse, paths derived from the API
// definitions, raw JSON requests for the CLI (roster.dev bodies are sent and read as plain JSON,
// never through client-node's typed models, which drop fields they do not know), Secret
// decoding, and the writes every controller shares (status through the status subresource,
// annotation removal guarded by a JSON-patch `test`).
import { request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from "node:https";
import {
  PatchStrategy,
  setHeaderOptions,
  type CustomObjectsApi,
  type KubeConfig,
} from "@kubernetes/client-node";
import { GROUP, VERSION } from "../api/schema.ts";
import type { RosterObject, SecretKeyRef } from "../api/types.ts";
import { sameStatus } from "../api/conditions.ts";
import { patchStatus } from "../controller/finalizer.ts";

type DispatcherFactory = (cluster: unknown, agentOptions: unknown) => unknown;

/**
 * Connection reuse for @kubernetes/client-node 2.0: it builds a new undici Agent, so a new TLS
 * connection, for every request (KubeConfig.createDispatcher). At operator scale that costs a TLS
 * handshake per API call on both sides and leaves hundreds of idle sockets. One dispatcher per
 * cluster and user, reused, restores keep-alive.
 */
export function shareConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher: DispatcherFactory };
  const create = target.createDispatcher.bind(kc);
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = JSON.stringify([kc.getCurrentContext(), (cluster as { server?: string } | null)?.server]);
    if (!cache.has(key)) cache.set(key, create(cluster, agentOptions));
    return cache.get(key);
  };
  return kc;
}

/** Writes status through the status subresource (merge patch; removed fields set to null); skips a no-op. */
export async function writeStatus(
  api: CustomObjectsApi,
  plural: string,
  object: RosterObject,
  status: object,
): Promise<void> {
  if (sameStatus(status, object.status ?? {})) return;
  const patch: Record<string, unknown> = { ...status };
  for (const key of Object.keys(object.status ?? {})) if (!(key in status)) patch[key] = null;
  await patchStatus(api, plural, object.metadata.namespace ?? "default", object.metadata.name, patch);
}

/** Removes an annotation with a JSON patch that first tests its value (never a stale removal). */
export async function removeAnnotation(
  api: CustomObjectsApi,
  plural: string,
  object: RosterObject,
  name: string,
): Promise<void> {
  const path = `/metadata/annotations/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`;
  await api.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: object.metadata.namespace ?? "default",
      plural,
      name: object.metadata.name,
      body: [
        { op: "test", path, value: object.metadata.annotations?.[name] },
        { op: "remove", path },
      ],
    },
    setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
  );
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
  return decodeSecretKey(secret.data, namespace, ref);
}

/** One key of a Secret's data, decoded; a missing key is named, never a value. */
export function decodeSecretKey(
  data: Record<string, string> | undefined,
  namespace: string,
  ref: SecretKeyRef,
): string {
  const value = data?.[ref.key];
  if (value === undefined)
    throw new SecretKeyMissing(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
  return Buffer.from(value, "base64").toString("utf8");
}

export class SecretKeyMissing extends Error {
  override name = "SecretKeyMissing";
}
