// A client for a Connector's target as the CLI reads it (`roster report --check-targets`, `roster
// import --check-targets`, `roster plan --live`): built from the Connector and the Secrets it names,
// with short timeouts, and never waiting out a long Retry-After. The CLI only reads through it:
// its fence refuses every write before anything is sent.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Connector } from "../api/types.ts";
import { createLdapConnector } from "../connectors/ldap/connector.ts";
import { createScimConnector } from "../connectors/scim/connector.ts";
import type { TargetConnector } from "../connectors/types.ts";
import { readSecretKey } from "../kube/client.ts";

const readOnly = () => {
  throw new Error("the roster CLI only reads targets: a write was refused");
};

export async function readingClient(kc: KubeConfig, connector: Connector): Promise<TargetConnector> {
  const namespace = connector.metadata.namespace ?? "default";
  const { ldap, scim } = connector.spec;
  if (!ldap && !scim)
    throw new Error(`Connector ${namespace}/${connector.metadata.name} sets neither spec.ldap nor spec.scim`);
  const credentialRef = ldap ? ldap.bindPasswordSecretRef : scim!.tokenSecretRef;
  const caRef = ldap ? ldap.caSecretRef : scim!.caSecretRef;
  const credential = await readSecretKey(kc, namespace, credentialRef);
  const ca = caRef ? await readSecretKey(kc, namespace, caRef) : undefined;
  return ldap
    ? createLdapConnector(ldap, credential, {
        ...(ca ? { ca } : {}),
        timeoutMs: 15_000,
        connectTimeoutMs: 5_000,
        fence: readOnly,
      })
    : createScimConnector(scim!, credential, {
        ...(ca ? { ca } : {}),
        timeoutMs: 15_000,
        retry: { attempts: 3, maxRetryAfterMs: 10_000 },
        fence: readOnly,
        name: connector.metadata.name,
      });
}
