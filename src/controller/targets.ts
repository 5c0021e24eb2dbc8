// Target clients per Connector: built from the Connector spec and the Secrets it names, reused
// while neither changes, closed when replaced.
//
// A Secret's value never shows (api.md), not even inside a library's error: the credential is
// checked before it is used (a bearer token must be a valid HTTP header value, a bind password of
// a sane length and without NUL) and a value that cannot be used is a ConfigurationError naming
// the Secret and key only. The connectors scrub their secrets out of every error and log line.
import type { Connector, EmployeeSpecT, SecretKeyRef } from "../api/types.ts";
import type { ConnectorLogger, TargetConnector } from "../connectors/types.ts";
import { bearerToken, bindPassword, CredentialError } from "../connectors/base/credentials.ts";
import { nonCertificateText, scrubberFor } from "../connectors/base/scrub.ts";
import { createLdapConnector } from "../connectors/ldap/connector.ts";
import { createScimConnector } from "../connectors/scim/connector.ts";
import { desiredAttributes, managedAttributes } from "../connectors/mapping.ts";
import { connectorRequestDuration, connectorRequests } from "../observe/metrics.ts";
import { ConfigurationError } from "./errors.ts";
import { MAX_WRITE_MS } from "./leader.ts";

const UNMEASURED = new Set(["groupKey", "close", "duplicateGroups"]);

/** Counts and times every call a connector makes to its target (roster_connector_requests_total). */
export function instrument<T extends object>(client: T, connector: string): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function" || typeof property !== "string" || UNMEASURED.has(property))
        return value;
      return async (...args: unknown[]) => {
        const stop = connectorRequestDuration.startTimer({ connector, operation: property });
        try {
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          connectorRequests.inc({ connector, operation: property, result: "success" });
          return result;
        } catch (error) {
          connectorRequests.inc({ connector, operation: property, result: "error" });
          throw error;
        } finally {
          stop();
        }
      };
    },
  });
}

/** A connected target plus how Employees map onto its accounts. */
export type Target = {
  client: TargetConnector;
  desiredAttributes(employee: EmployeeSpecT): Record<string, string[]>;
  managedAttributes: string[];
  /** SCIM discovery (ServiceProviderConfig, ResourceTypes), shown in Connector status. */
  discover?: () => Promise<Record<string, unknown>>;
};

export type SecretReader = (
  namespace: string,
  ref: SecretKeyRef,
) => Promise<{ value: string; version: string }>;

/** `check(value)`, a CredentialError turned into a ConfigurationError naming only the Secret and key. */
function usable(
  namespace: string,
  ref: SecretKeyRef,
  value: string,
  what: string,
  check: (value: string) => string,
): string {
  try {
    return check(value);
  } catch (error) {
    if (!(error instanceof CredentialError)) throw error;
    throw new ConfigurationError(`Secret ${namespace}/${ref.name} key ${ref.key} ${error.message} (${what})`);
  }
}

export class TargetPool {
  private readonly entries = new Map<string, { fingerprint: string; target: Target }>();
  private readonly readSecret: SecretReader;
  private readonly logger: ConnectorLogger;
  private readonly fence: (() => void) | undefined;

  constructor(readSecret: SecretReader, logger: ConnectorLogger, fence?: () => void) {
    this.readSecret = readSecret;
    this.logger = logger;
    this.fence = fence;
  }

  async get(connector: Connector): Promise<Target> {
    const namespace = connector.metadata.namespace ?? "default";
    const key = `${namespace}/${connector.metadata.name}`;
    const { ldap, scim } = connector.spec;
    const credentialRef = ldap?.bindPasswordSecretRef ?? scim?.tokenSecretRef;
    if (!credentialRef) throw new ConfigurationError("the Connector sets neither spec.ldap nor spec.scim");
    const caRef = ldap?.caSecretRef ?? scim?.caSecretRef;
    const credential = await this.readSecret(namespace, credentialRef);
    const ca = caRef ? await this.readSecret(namespace, caRef) : undefined;
    const fingerprint = JSON.stringify([
      connector.metadata.uid,
      connector.metadata.generation,
      credential.version,
      ca?.version,
    ]);
    const cached = this.entries.get(key);
    if (cached && cached.fingerprint === fingerprint) return cached.target;
    if (cached) {
      void cached.target.client.close().catch(() => {});
      this.entries.delete(key);
    }
    const options = {
      ...(ca ? { ca: ca.value } : {}),
      logger: this.logger,
      ...(this.fence ? { fence: this.fence } : {}),
    };
    const value = ldap
      ? usable(namespace, credentialRef, credential.value, "spec.ldap.bindPasswordSecretRef", bindPassword)
      : usable(namespace, credentialRef, credential.value, "spec.scim.tokenSecretRef", bearerToken);
    let scimClient: ReturnType<typeof createScimConnector> | undefined;
    let client: TargetConnector;
    try {
      // A SCIM request that outlives the lease margin could land after another replica took over.
      scimClient = scim
        ? createScimConnector(scim, value, {
            ...options,
            timeoutMs: MAX_WRITE_MS,
            name: connector.metadata.name,
          })
        : undefined;
      // LDAP reads keep 30 s (a paged read of a large directory takes longer than the lease
      // margin); its writes are bounded below the margin on their own.
      client = ldap
        ? createLdapConnector(ldap, value, { ...options, writeTimeoutMs: MAX_WRITE_MS })
        : scimClient!;
    } catch (error) {
      // Creating a client sends nothing; should anything it throws quote a secret, it is scrubbed.
      throw scrubberFor([credential.value, value, nonCertificateText(ca?.value)]).error(error);
    }
    const target: Target = {
      client: instrument(client, key),
      desiredAttributes: (employee) => desiredAttributes(connector, employee),
      managedAttributes: managedAttributes(connector),
      ...(scimClient ? { discover: () => scimClient.discover() } : {}),
    };
    this.entries.set(key, { fingerprint, target });
    return target;
  }

  /** Drops the client of a Connector that was deleted or changed. */
  forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const cached = this.entries.get(key);
    if (cached) void cached.target.client.close().catch(() => {});
    this.entries.delete(key);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.entries.values()].map((e) => e.target.client.close()));
    this.entries.clear();
  }
}
