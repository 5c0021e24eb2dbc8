// The generated-password Secret the operator writes once per account, and trusts only when it is
// owned by that Employee. (Secrets Connectors name are read by secrets.ts.)
import { PatchStrategy, type V1Secret } from "@kubernetes/client-node";
import type { CoreApi } from "../kube/api.ts";
import { API_VERSION, GROUP } from "../api/schema.ts";
import type { Employee } from "../api/types.ts";
import { ConfigurationError } from "./errors.ts";

/** Label naming the Connector a generated-password Secret belongs to. */
export const CONNECTOR_LABEL = "roster.dev/connector";
/** Annotation naming the Employee a generated-password Secret belongs to (names may exceed 63 chars). */
export const EMPLOYEE_ANNOTATION = "roster.dev/employee";
/**
 * Annotation saying whether the password was set on the account: "pending" from the Secret's
 * creation until the target confirmed it, so that a setting that failed after the account was
 * created (or a crash in between) is done again rather than forgotten.
 */
export const PASSWORD_ANNOTATION = "roster.dev/password";

/** The name api.md fixes for the generated-password Secret of an Employee in a Connector. */
export function credentialsSecretName(employee: string, connector: string): string {
  return `${employee}-${connector}-credentials`;
}

/**
 * Why `secret` may not be used as the generated-password Secret of this Employee in this
 * Connector, or undefined when it may. The name alone proves nothing (`a-b` + `c` and `a` + `b-c`
 * share one, and anyone who may create Secrets can plant one): the Secret must be controlled by
 * this very Employee (ownerReference uid, kind Employee, controller) and say which Connector it
 * is for. Secrets written by earlier versions carry no Employee annotation; the ownerReference
 * names the Employee for them, so the annotation is checked only where present.
 */
export function notTrustedBecause(
  secret: V1Secret,
  employee: Employee,
  connector: string,
): string | undefined {
  const uid = employee.metadata.uid;
  if (!uid) return "the Employee has no uid yet";
  const owner = secret.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (!owner) return "it has no controller ownerReference";
  if (owner.apiVersion?.split("/")[0] !== GROUP || owner.kind !== "Employee")
    return `it is controlled by ${owner.kind} ${owner.name}, not by an Employee`;
  if (owner.uid !== uid)
    return owner.name === employee.metadata.name
      ? `it is owned by an earlier Employee ${owner.name} (another uid)`
      : `it belongs to Employee ${owner.name} (the names collide)`;
  if (owner.name !== employee.metadata.name) return `its ownerReference names Employee ${owner.name}`;
  const labelled = secret.metadata?.labels?.[CONNECTOR_LABEL];
  if (labelled !== connector)
    return labelled === undefined
      ? `it has no ${CONNECTOR_LABEL} label`
      : `its ${CONNECTOR_LABEL} label is ${labelled}, not ${connector}`;
  const named = secret.metadata?.annotations?.[EMPLOYEE_ANNOTATION];
  if (named !== undefined && named !== employee.metadata.name)
    return `its ${EMPLOYEE_ANNOTATION} annotation names ${named}`;
  return undefined;
}

/** The password of a trusted Secret; a Secret that is not trusted is refused, never read or changed. */
function trustedPassword(
  secret: V1Secret,
  employee: Employee,
  connector: string,
  namespace: string,
  name: string,
): string {
  const why = notTrustedBecause(secret, employee, connector);
  if (why !== undefined)
    throw new ConfigurationError(
      `Secret ${namespace}/${name} is not owned by this Employee (${employee.metadata.name}) for connector ${connector}: ${why}; refusing to use or overwrite it as its generated password`,
    );
  const data = secret.data?.password;
  if (!data) throw new ConfigurationError(`Secret ${namespace}/${name} has no key password`);
  return Buffer.from(data, "base64").toString("utf8");
}

const statusOf = (error: unknown) => (error as { code?: number }).code;

/**
 * The password in `<employee>-<connector>-credentials`, created once and owned by the Employee.
 * Read from the API server each time (never the Secret informer's cache, which may not have seen
 * a Secret created moments ago); used only when the Secret is this Employee's (notTrustedBecause),
 * otherwise a ConfigurationError names the Secret and nothing is set.
 */
export async function initialPassword(
  core: CoreApi,
  employee: Employee,
  connector: string,
  generate: () => string,
): Promise<string> {
  const namespace = employee.metadata.namespace ?? "default";
  const name = credentialsSecretName(employee.metadata.name, connector);
  const uid = employee.metadata.uid;
  if (!uid) throw new ConfigurationError(`Employee ${namespace}/${employee.metadata.name} has no uid`);
  const read = () => readSecret(core, namespace, name);
  const existing = await read();
  if (existing) return trustedPassword(existing, employee, connector, namespace, name);
  const password = generate();
  try {
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: {
          name,
          namespace,
          labels: { "app.kubernetes.io/managed-by": "roster", [CONNECTOR_LABEL]: connector },
          annotations: { [EMPLOYEE_ANNOTATION]: employee.metadata.name, [PASSWORD_ANNOTATION]: "pending" },
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: "Employee",
              name: employee.metadata.name,
              uid,
              controller: true,
            },
          ],
        },
        type: "Opaque",
        stringData: { username: employee.spec.username, password },
      },
    });
  } catch (error) {
    if (statusOf(error) !== 409) throw error;
    // Created meanwhile (a colliding Employee, a create whose answer was lost): judge that one.
    const raced = await read();
    if (!raced) throw error;
    return trustedPassword(raced, employee, connector, namespace, name);
  }
  return password;
}

async function readSecret(core: CoreApi, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

/** Whether this Employee's trusted generated-password Secret says the password was never set. */
export async function passwordPending(
  core: CoreApi,
  employee: Employee,
  connector: string,
): Promise<boolean> {
  const namespace = employee.metadata.namespace ?? "default";
  const secret = await readSecret(core, namespace, credentialsSecretName(employee.metadata.name, connector));
  if (!secret || notTrustedBecause(secret, employee, connector) !== undefined) return false;
  return secret.metadata?.annotations?.[PASSWORD_ANNOTATION] === "pending";
}

/** Records on the Secret that the target has the password. */
export async function passwordSet(core: CoreApi, employee: Employee, connector: string): Promise<void> {
  const namespace = employee.metadata.namespace ?? "default";
  const name = credentialsSecretName(employee.metadata.name, connector);
  await core.patchNamespacedSecret(
    { name, namespace, body: { metadata: { annotations: { [PASSWORD_ANNOTATION]: "set" } } } },
    PatchStrategy.MergePatch,
  );
}
