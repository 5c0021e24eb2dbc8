// The operator's access to the API server: one connection pool per cluster, collection paths
// derived from the API definitions, and the writes every controller shares (status through the
// status subresource, annotation removal guarded by a JSON-patch `test`).
import {
  PatchStrategy,
  setHeaderOptions,
  type CustomObjectsApi,
  type KubeConfig,
} from "@kubernetes/client-node";
import { GROUP, VERSION } from "../api/schema.ts";
import type { RosterObject } from "../api/types.ts";
import { sameStatus } from "../api/conditions.ts";
import { patchStatus } from "./finalizer.ts";

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

/** The collection path of a roster.dev kind, in one namespace or all. */
export function rosterCollection(plural: string, namespace: string | undefined): string {
  return namespace
    ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`
    : `/apis/${GROUP}/${VERSION}/${plural}`;
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
