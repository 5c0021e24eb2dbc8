// The Secrets Connectors name, read by name when needed and kept for a short while. No Secret
// informer: the operator never lists or caches the cluster's other Secrets (memory, and exposure
// if the pod is compromised), so its RBAC needs `get` only. A rotated Secret is picked up within
// the cache's lifetime; its resourceVersion tells the target pool to reconnect.
import type { CoreV1Api } from "@kubernetes/client-node";
import type { SecretKeyRef } from "../api/types.ts";
import { decodeSecretKey, SecretKeyMissing } from "../kube/client.ts";
import { ConfigurationError } from "./errors.ts";

type Entry =
  { at: number; data: Record<string, string> | undefined; version: string } | { at: number; missing: true };

export class SecretReader {
  private readonly core: CoreV1Api;
  private readonly ttlMs: number;
  private readonly entries = new Map<string, Entry>();

  constructor(core: CoreV1Api, ttlMs = 30_000) {
    this.core = core;
    this.ttlMs = ttlMs;
  }

  async read(namespace: string, ref: SecretKeyRef): Promise<{ value: string; version: string }> {
    const key = `${namespace}/${ref.name}`;
    let entry = this.entries.get(key);
    // A missing Secret is asked for again each time: it is usually about to be created.
    if (!entry || "missing" in entry || performance.now() - entry.at >= this.ttlMs) {
      entry = await this.fetch(namespace, ref.name);
      this.entries.set(key, entry);
    }
    if ("missing" in entry) throw new ConfigurationError(`Secret ${namespace}/${ref.name} not found`);
    try {
      return { value: decodeSecretKey(entry.data, namespace, ref), version: entry.version };
    } catch (error) {
      if (error instanceof SecretKeyMissing) throw new ConfigurationError(error.message);
      throw error;
    }
  }

  private async fetch(namespace: string, name: string): Promise<Entry> {
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      return { at: performance.now(), data: secret.data, version: secret.metadata?.resourceVersion ?? "" };
    } catch (error) {
      if ((error as { code?: number }).code === 404) return { at: performance.now(), missing: true };
      throw error;
    }
  }
}
