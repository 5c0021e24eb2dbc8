// The core, Lease and custom-object calls the operator makes, as raw JSON over kubeRequest.
// client-node's typed API classes would serve, but with them the bundle carries every generated API
// class (3.5 MB of code): 15 MiB more RSS at start, for a handful of calls. Method names and
// parameter objects are client-node's, so fenced() (operator.ts) treats them as it did; answers are
// the API server's JSON as sent (times stay strings, unknown fields stay). A refusal throws
// KubeApiError, whose `code` and `body` are those of client-node's ApiException.
import {
  PatchStrategy,
  type CoreV1Event,
  type KubeConfig,
  type V1Lease,
  type V1Secret,
} from "@kubernetes/client-node";
import { kubeRequest } from "./client.ts";

/** A patch's Content-Type (PatchStrategy); JSON patch when none is given, as client-node's default. */
export type PatchType = (typeof PatchStrategy)[keyof typeof PatchStrategy];

type Named = { name: string; namespace: string };
type Custom = { group: string; version: string; plural: string };

/** `<prefix>[/namespaces/<namespace>]/<collection>[/<name>]`, each part encoded as client-node's. */
function path(prefix: string, namespace: string | undefined, collection: string, name?: string): string {
  const parts = [...(namespace === undefined ? [] : ["namespaces", namespace]), collection];
  if (name !== undefined) parts.push(name);
  return `${prefix}/${parts.map(encodeURIComponent).join("/")}`;
}

const CORE = "/api/v1";
const COORDINATION = "/apis/coordination.k8s.io/v1";
const group = ({ group, version }: Custom) =>
  `/apis/${encodeURIComponent(group)}/${encodeURIComponent(version)}`;

/** What the three clients share: the kubeconfig, and requests on it. */
class KubeApi {
  private readonly kc: KubeConfig;
  constructor(kc: KubeConfig) {
    this.kc = kc;
  }

  /** As client-node's typed clients: no timeout of the request's own (undici's apply). */
  protected send<T>(method: string, path: string, body?: unknown, type?: string): Promise<T> {
    return kubeRequest<T>(this.kc, method, path, body, type, Infinity);
  }
}

/** Secrets and Events (core/v1). */
export class CoreApi extends KubeApi {
  readNamespacedSecret({ name, namespace }: Named): Promise<V1Secret> {
    return this.send("GET", path(CORE, namespace, "secrets", name));
  }

  createNamespacedSecret({ namespace, body }: { namespace: string; body: V1Secret }): Promise<V1Secret> {
    return this.send("POST", path(CORE, namespace, "secrets"), body);
  }

  patchNamespacedSecret(
    { name, namespace, body }: Named & { body: object },
    type: PatchType = PatchStrategy.JsonPatch,
  ): Promise<V1Secret> {
    return this.send("PATCH", path(CORE, namespace, "secrets", name), body, type);
  }

  createNamespacedEvent({ namespace, body }: { namespace: string; body: CoreV1Event }): Promise<CoreV1Event> {
    return this.send("POST", path(CORE, namespace, "events"), body);
  }

  patchNamespacedEvent(
    { name, namespace, body }: Named & { body: object },
    type: PatchType = PatchStrategy.JsonPatch,
  ): Promise<CoreV1Event> {
    return this.send("PATCH", path(CORE, namespace, "events", name), body, type);
  }
}

/**
 * Leases (coordination.k8s.io/v1). Their renewTime and acquireTime go out as client-node's
 * V1MicroTime writes them (six fractional digits, which the API server requires) and come back as
 * the server's strings, as they did from the typed client.
 */
export class LeaseApi extends KubeApi {
  readNamespacedLease({ name, namespace }: Named): Promise<V1Lease> {
    return this.send("GET", path(COORDINATION, namespace, "leases", name));
  }

  createNamespacedLease({ namespace, body }: { namespace: string; body: V1Lease }): Promise<V1Lease> {
    return this.send("POST", path(COORDINATION, namespace, "leases"), body);
  }

  replaceNamespacedLease({ name, namespace, body }: Named & { body: V1Lease }): Promise<V1Lease> {
    return this.send("PUT", path(COORDINATION, namespace, "leases", name), body);
  }
}

/** Custom resources (roster.dev's), as plain objects. */
export class CustomApi extends KubeApi {
  /** All of them in one answer, as client-node's (no `limit`). */
  listClusterCustomObject(query: Custom): Promise<object> {
    return this.send("GET", path(group(query), undefined, query.plural));
  }

  listNamespacedCustomObject(query: Custom & { namespace: string }): Promise<object> {
    return this.send("GET", path(group(query), query.namespace, query.plural));
  }

  patchNamespacedCustomObject(
    request: Custom & Named & { body: object },
    type: PatchType = PatchStrategy.JsonPatch,
  ): Promise<object> {
    const { namespace, plural, name, body } = request;
    return this.send("PATCH", path(group(request), namespace, plural, name), body, type);
  }

  patchNamespacedCustomObjectStatus(
    request: Custom & Named & { body: object },
    type: PatchType = PatchStrategy.JsonPatch,
  ): Promise<object> {
    const { namespace, plural, name, body } = request;
    return this.send("PATCH", `${path(group(request), namespace, plural, name)}/status`, body, type);
  }
}
