// Connection reuse for @kubernetes/client-node 2.0: it builds a new undici Agent, so a new TLS
// connection, for every request (KubeConfig.createDispatcher). At operator scale that costs a TLS
// handshake per API call on both sides and leaves hundreds of idle sockets. One dispatcher per
// cluster and user, reused, restores keep-alive.
import type { KubeConfig } from "@kubernetes/client-node";

type DispatcherFactory = (cluster: unknown, agentOptions: unknown) => unknown;

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
