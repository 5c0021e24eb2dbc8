// Roster's one module for the API server: connection reuse, paths derived from the API
// definitions, raw JSON requests for the CLI and the operator (api.ts; bodies are sent and read as
// plain JSON, never through client-node's typed models, which drop fields they do not know), Secret
// decoding, and the writes every controller shares (status through the status subresource,
// annotation removal guarded by a JSON-patch `test`).
import {
  type HttpMethod,
  IsomorphicFetchHttpLibrary,
  PatchStrategy,
  RequestContext,
  type KubeConfig,
} from "@kubernetes/client-node";
import type { CustomApi } from "./api.ts";
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
const shared = new WeakSet<KubeConfig>();

export function shareConnections(kc: KubeConfig, beforeWrite?: () => void): KubeConfig {
  if (shared.has(kc)) return kc;
  shared.add(kc);
  const target = kc as unknown as { createDispatcher: DispatcherFactory };
  const create = target.createDispatcher.bind(kc);
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = JSON.stringify([kc.getCurrentContext(), (cluster as { server?: string } | null)?.server]);
    if (!cache.has(key)) {
      const dispatcher = create(cluster, agentOptions) as Dispatcher;
      if (beforeWrite) checkWrites(dispatcher, beforeWrite);
      cache.set(key, dispatcher);
    }
    return cache.get(key);
  };
  return kc;
}

type Dispatcher = { dispatch(options: { method?: string; path?: string }, handler: unknown): boolean };

/**
 * Calls `beforeWrite` again as a write leaves for the API server (Leases excepted: they are how
 * leadership is held). A process frozen between a write's first check and its sending (SIGSTOP, a
 * long GC pause) must not send it once another replica may have taken over.
 */
function checkWrites(dispatcher: Dispatcher, beforeWrite: () => void): void {
  const dispatch = dispatcher.dispatch.bind(dispatcher);
  dispatcher.dispatch = (options, handler) => {
    const method = (options.method ?? "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD" && !/\/leases(\/|\?|$)/.test(options.path ?? "")) beforeWrite();
    return dispatch(options, handler);
  };
}

/** Writes status through the status subresource (merge patch; removed fields set to null); skips a no-op. */
export async function writeStatus(
  api: CustomApi,
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
  api: CustomApi,
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
    PatchStrategy.JsonPatch,
  );
}

/**
 * A refused API request, with the HTTP status and the Status message; `code` and `body` (the
 * answer's text) as client-node's ApiException has them, which the controllers read.
 */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly status: number;
  readonly code: number;
  readonly body: string;
  constructor(status: number, message: string, body = "") {
    super(message);
    this.status = status;
    this.code = status;
    this.body = body;
  }
}

const transport = new IsomorphicFetchHttpLibrary();

/**
 * What the API server sees as the client: its audit log's userAgent, and the field manager of
 * every write (the User-Agent up to its first "/"), as managedFields, `kubectl
 * --show-managed-fields` and Argo CD's diffs show it ("roster", not undici's default).
 */
const USER_AGENT = "roster";

/**
 * A raw API request with the kubeconfig's credentials, on client-node's own transport (the one
 * its typed clients use, so shareConnections pools it too); resolves to the parsed JSON answer.
 * `timeoutMs` Infinity: none of its own.
 */
export async function kubeRequest<T = unknown>(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
  timeoutMs = 30_000,
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no cluster configured in the kubeconfig");
  shareConnections(kc);
  const ctx = new RequestContext(cluster.server.replace(/\/$/, "") + path, method as HttpMethod);
  ctx.setHeaderParam("Accept", "application/json");
  ctx.setHeaderParam("User-Agent", USER_AGENT);
  if (body !== undefined) {
    ctx.setHeaderParam("Content-Type", contentType);
    ctx.setBody(typeof body === "string" ? body : JSON.stringify(body));
  }
  if (Number.isFinite(timeoutMs)) ctx.setSignal(AbortSignal.timeout(timeoutMs));
  await kc.applySecurityAuthentication(ctx);
  let text: string;
  let status: number;
  try {
    const response = await transport.send(ctx).toPromise();
    status = response.httpStatusCode;
    text = await response.body.text();
  } catch (error) {
    throw new Error(`${method} ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  if (status >= 200 && status < 300) {
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new Error(`${method} ${path}: the answer is not JSON`);
    }
  }
  let message = text.slice(0, 2000);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // not a Status object: keep the text
  }
  throw new KubeApiError(status, `${method} ${path}: ${status} ${message}`, text);
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
