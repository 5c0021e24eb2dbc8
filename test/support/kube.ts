// Kubernetes helpers shared by integration and e2e tests.
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { loadAll } from "js-yaml";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { GROUP, VERSION } from "../../src/api/schema.ts";
import type { HarnessInfo } from "../harness/info.ts";

export type Kube = {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  objects: KubernetesObjectApi;
};

export function kubeFrom(info: Pick<HarnessInfo, "kubeconfigPath">): Kube {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    objects: KubernetesObject(kc),
  };
}

function KubernetesObject(kc: KubeConfig): KubernetesObjectApi {
  return KubernetesObjectApi.makeApiClient(kc);
}

/** A fresh namespace per test file keeps tests independent on one shared API server. */
export async function freshNamespace(kube: Kube, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kube.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export function readManifests(path: string): KubernetesObject[] {
  return loadAll(readFileSync(path, "utf8")).filter(
    (d): d is KubernetesObject => !!d && typeof d === "object",
  );
}

export const PLURALS: Record<string, string> = {
  Employee: "employees",
  AccessPolicy: "accesspolicies",
  GroupRule: "grouprules",
  Connector: "connectors",
};

export async function createRoster(
  kube: Kube,
  namespace: string,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const kind = body.kind as string;
  return (await kube.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURALS[kind]!,
    body,
  })) as Record<string, unknown>;
}

export async function getRoster(
  kube: Kube,
  namespace: string,
  kind: string,
  name: string,
): Promise<Record<string, unknown>> {
  return (await kube.custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURALS[kind]!,
    name,
  })) as Record<string, unknown>;
}

/** Every object of the kind in the namespace. */
export async function listRoster<T = Record<string, unknown>>(
  kube: Kube,
  namespace: string,
  kind: string,
): Promise<T[]> {
  const list = (await kube.custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURALS[kind]!,
  })) as { items: T[] };
  return list.items;
}

/** The message of a refused request, or undefined when it was accepted. */
export async function refusal(
  action: () => Promise<unknown>,
): Promise<{ code: number; message: string } | undefined> {
  try {
    await action();
    return undefined;
  } catch (error) {
    const e = error as { code?: number; body?: unknown; message?: string };
    let message = e.message ?? String(error);
    if (typeof e.body === "string") {
      try {
        message = (JSON.parse(e.body) as { message?: string }).message ?? e.body;
      } catch {
        message = e.body;
      }
    }
    return { code: e.code ?? 0, message };
  }
}
