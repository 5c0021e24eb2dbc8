// The Secrets Connectors name, read by name when needed and kept for a short while. No Secret
// informer: the operator never lists or caches the cluster's other Secrets (memory, and exposure
// if the pod is compromised), so its RBAC needs `get` only, and `patch` for the finalizer below.
// A rotated Secret is picked up within the cache's lifetime; its changed value tells the target
// pool to reconnect.
//
// A Secret a Connector names carries the finalizer roster.dev/connector-credentials while the
// Connector exists: a namespace deletion removes Secrets, Connectors and Employees at once, and
// without the bind password or token nobody's deprovisioning could finish (as PVC protection keeps
// a volume claim while a pod uses it). The Connector controller releases it when the Connector
// goes or stops naming it.
import { createHash } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import type { CoreApi } from "../kube/api.ts";
import { SECRET_FINALIZER } from "../api/schema.ts";
import type { SecretKeyRef } from "../api/types.ts";
import { decodeSecretKey, SecretKeyMissing } from "../kube/client.ts";
import { ConfigurationError } from "./errors.ts";
import {
  addFinalizerPatch,
  asConflict,
  ConflictError,
  jsonPatch,
  removeFinalizerPatch,
  type JsonPatchOp,
} from "./finalizer.ts";

type Entry =
  | {
      at: number;
      data: Record<string, string> | undefined;
      finalizers: readonly string[];
    }
  | { at: number; missing: true };

export class SecretReader {
  private readonly core: CoreApi;
  private readonly ttlMs: number;
  private readonly entries = new Map<string, Entry>();

  constructor(core: CoreApi, ttlMs = 30_000) {
    this.core = core;
    this.ttlMs = ttlMs;
  }

  async read(namespace: string, ref: SecretKeyRef): Promise<{ value: string; version: string }> {
    const entry = await this.entry(namespace, ref.name);
    if ("missing" in entry) throw new ConfigurationError(`Secret ${namespace}/${ref.name} not found`);
    try {
      const value = decodeSecretKey(entry.data, namespace, ref);
      // By content, not resourceVersion: putting the finalizer on changes the latter, and must not
      // make the target pool replace (and close) a client that is in use.
      return { value, version: createHash("sha256").update(value).digest("hex").slice(0, 32) };
    } catch (error) {
      if (error instanceof SecretKeyMissing) throw new ConfigurationError(error.message);
      throw error;
    }
  }

  /** Puts the finalizer on a Secret a Connector names (a missing or deleting Secret is left alone). */
  async protect(namespace: string, name: string): Promise<void> {
    const cached = await this.entry(namespace, name);
    if ("missing" in cached || cached.finalizers.includes(SECRET_FINALIZER)) return;
    await this.patchFinalizers(namespace, name, (secret) =>
      // An object being deleted takes no new finalizers.
      secret.metadata?.deletionTimestamp
        ? undefined
        : addFinalizerPatch(secret.metadata?.finalizers, SECRET_FINALIZER),
    );
  }

  /** Takes the finalizer off a Secret no Connector needs any more. */
  async release(namespace: string, name: string): Promise<void> {
    await this.patchFinalizers(namespace, name, (secret) =>
      removeFinalizerPatch(secret.metadata?.finalizers, SECRET_FINALIZER),
    );
  }

  private async entry(namespace: string, name: string): Promise<Entry> {
    const key = `${namespace}/${name}`;
    let entry = this.entries.get(key);
    // A missing Secret is asked for again each time: it is usually about to be created.
    if (!entry || "missing" in entry || performance.now() - entry.at >= this.ttlMs) {
      entry = await this.fetch(namespace, name);
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Reads the Secret fresh and applies the patch `build` returns; a stale read is retried once. */
  private async patchFinalizers(
    namespace: string,
    name: string,
    build: (secret: V1Secret) => JsonPatchOp[] | undefined,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const secret = await this.get(namespace, name);
      const ops = secret && build(secret);
      if (!ops) return;
      try {
        const patched = await this.core.patchNamespacedSecret({ name, namespace, body: ops }, jsonPatch);
        this.entries.set(`${namespace}/${name}`, toEntry(patched));
        return;
      } catch (error) {
        const e = asConflict(error, true);
        if (!(e instanceof ConflictError) || attempt > 0) throw e;
      }
    }
  }

  private async get(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name, namespace });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  }

  private async fetch(namespace: string, name: string): Promise<Entry> {
    const secret = await this.get(namespace, name);
    return secret ? toEntry(secret) : { at: performance.now(), missing: true };
  }
}

function toEntry(secret: V1Secret): Entry {
  return {
    at: performance.now(),
    data: secret.data,
    finalizers: secret.metadata?.finalizers ?? [],
  };
}
