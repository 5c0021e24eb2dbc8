// Secrets the operator reads (bind passwords, tokens, CAs, from the Secret informer) and the
// generated-password Secret it writes once per account.
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import { API_VERSION } from "../api/schema.ts";
import type { Employee, SecretKeyRef } from "../api/types.ts";
import { ConfigurationError } from "./errors.ts";

export type CachedSecret = V1Secret & { metadata: { name: string; namespace: string } };

/** A key of a cached Secret, decoded; a missing Secret or key is named, never its value. */
export function secretValue(
  secret: CachedSecret | undefined,
  namespace: string,
  ref: SecretKeyRef,
): { value: string; version: string } {
  if (!secret) throw new ConfigurationError(`Secret ${namespace}/${ref.name} not found`);
  const data = secret.data?.[ref.key];
  if (data === undefined)
    throw new ConfigurationError(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
  return {
    value: Buffer.from(data, "base64").toString("utf8"),
    version: secret.metadata.resourceVersion ?? "",
  };
}

/** The password in `<employee>-<connector>-credentials`, created once and owned by the Employee. */
export async function initialPassword(
  core: CoreV1Api,
  employee: Employee,
  connector: string,
  generate: () => string,
): Promise<string> {
  const namespace = employee.metadata.namespace ?? "default";
  const name = `${employee.metadata.name}-${connector}-credentials`;
  try {
    const existing = await core.readNamespacedSecret({ name, namespace });
    const data = existing.data?.password;
    if (data) return Buffer.from(data, "base64").toString("utf8");
  } catch (error) {
    if ((error as { code?: number }).code !== 404) throw error;
  }
  const password = generate();
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: {
        name,
        namespace,
        labels: { "app.kubernetes.io/managed-by": "roster", "roster.dev/connector": connector },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: "Employee",
            name: employee.metadata.name,
            uid: employee.metadata.uid!,
            controller: true,
          },
        ],
      },
      type: "Opaque",
      stringData: { username: employee.spec.username, password },
    },
  });
  return password;
}
