// The Connector controller: the only writer of Connector status. It checks that the target is
// reachable with its credentials, runs SCIM discovery, and records managed accounts, the scan's
// orphans and drift, and what the brake holds. Requeued every connector-check interval.
//
// It also keeps the Connector (finalizer roster.dev/accounts) and the Secrets it names (finalizer
// roster.dev/connector-credentials) while Employees own accounts through it, so that deleting a
// Connector, or the whole namespace, cannot leave anyone's deprovisioning unable to finish; and it
// runs the deletions Employees that are gone handed over (deletions.ts).
import type { CustomApi } from "../kube/api.ts";
import type { Logger } from "pino";
import { CONNECTOR_FINALIZER } from "../api/schema.ts";
import type { Connector, Employee } from "../api/types.ts";
import { connectorPaused } from "../plan/employee.ts";
import type { ScanResult } from "../plan/scan.ts";
import { accountOwners, connectorStatus, insecureTransport, withDuplicateGroups } from "./summary.ts";
import { classify } from "./errors.ts";
import type { BrakeGate } from "./brake.ts";
import type { Target, TargetPool } from "./targets.ts";
import type { EventRecorder } from "./events.ts";
import type { SecretReader } from "./secrets.ts";
import { addFinalizer, removeFinalizer } from "./finalizer.ts";
import { runDueDeletions } from "./deletions.ts";
import { adoptionCandidates } from "../observe/metrics.ts";
import { writeStatus } from "../kube/client.ts";
import { WorkQueue, keyOf, splitKey, type ReconcileResult } from "./queue.ts";
import { COUNTS_MAX_MS, TrailingDebounce } from "./debounce.ts";

export type ConnectorControllerOptions = {
  logger: Logger;
  custom: CustomApi;
  getConnector(namespace: string, name: string): Connector | undefined;
  pool: TargetPool;
  managed(connector: Connector): number;
  brake: BrakeGate;
  scan(connector: Connector): ScanResult | undefined;
  /** The Connector was not Ready and now is. */
  recovered(connector: Connector): void;
  checkIntervalMs: number;
  employees(namespace: string): readonly Employee[];
  connectors(namespace: string): readonly Connector[];
  employeesWith(namespace: string, employeeId: string): readonly Employee[];
  secrets: SecretReader;
  events: EventRecorder;
};

/** The Secrets a Connector needs to reach its target. */
export function secretsNamed(connector: Connector): string[] {
  const { ldap, scim } = connector.spec;
  const refs = [ldap?.bindPasswordSecretRef, ldap?.caSecretRef, scim?.tokenSecretRef, scim?.caSecretRef];
  return [...new Set(refs.flatMap((r) => (r ? [r.name] : [])))];
}

/** How soon a Connector that is not Ready is checked again. */
const RECHECK_FAILED_MS = 5000;

/** Status follows a burst of changes (Employees gone, say) at most once a second; counts alone wait longer. */
const DEBOUNCE_MS = 1000;

export class ConnectorController {
  readonly queue: WorkQueue;
  private readonly options: ConnectorControllerOptions;
  /** Connector key -> the generation whose insecure transport was logged. */
  private readonly warned = new Map<string, number>();
  private readonly counts: TrailingDebounce;

  constructor(options: ConnectorControllerOptions) {
    this.options = options;
    this.queue = new WorkQueue({ name: "connector", logger: options.logger });
    this.counts = new TrailingDebounce((key) => this.queue.add(key), DEBOUNCE_MS, COUNTS_MAX_MS);
  }

  enqueue(connector: Connector, debounce = false): void {
    if (debounce) this.queue.addAfter(keyOf(connector), DEBOUNCE_MS);
    else this.queue.add(keyOf(connector));
  }

  /**
   * Employees changed what the status counts. Conditions, the brake (which writes its own state
   * first) and scheduled deletions do not wait for this; a Connector being deleted waits for its
   * owners to go, so it looks again within a second, as for any other change.
   */
  countsChanged(connector: Connector): void {
    if (connector.metadata.deletionTimestamp) this.enqueue(connector, true);
    else this.counts.touch(keyOf(connector));
  }

  run(): Promise<void> {
    return this.queue.run(1, (key) => this.reconcile(key));
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    // This run writes the counts as they are now: a refresh waiting for them is not needed.
    this.counts.cancel(key);
    const { namespace, name } = splitKey(key);
    const connector = this.options.getConnector(namespace, name);
    if (!connector) return {};
    const deleting = !!connector.metadata.deletionTimestamp;
    const owners = deleting ? accountOwners(name, this.options.employees(namespace)) : [];
    if (deleting && owners.length === 0) {
      await this.finish(connector);
      return {};
    }
    if (!deleting) {
      await addFinalizer(this.options.custom, "connectors", connector, CONNECTOR_FINALIZER);
      await this.protectSecrets(connector);
    }
    const insecure = insecureTransport(connector);
    if (insecure && this.warned.get(key) !== connector.metadata.generation) {
      this.warned.set(key, connector.metadata.generation ?? 0);
      this.options.logger.warn({ connector: key }, `insecure connection to the target: ${insecure}`);
    }
    let checkError: { reason: string; message: string } | undefined;
    let capabilities: Record<string, unknown> | undefined;
    let target: Target | undefined;
    if (!connectorPaused(connector)) {
      try {
        target = await this.options.pool.get(connector);
        await target.client.check();
        capabilities = await target.discover?.();
      } catch (error) {
        const { reason, message } = classify(error);
        checkError = { reason, message };
      }
    }
    const nextDeletionMs =
      target && checkError === undefined
        ? await runDueDeletions(connector, {
            brake: this.options.brake,
            target,
            events: this.options.events,
            logger: this.options.logger,
            employeesWith: this.options.employeesWith,
            now: Date.now,
          })
        : undefined;
    const wasReady = connector.status?.conditions?.find((c) => c.type === "Ready")?.status;
    if (checkError === undefined && wasReady === "False") this.options.recovered(connector);
    const checked = connectorStatus(
      connector,
      this.options.managed(connector),
      checkError,
      this.options.brake.held(connector),
      this.options.scan(connector),
      new Date(),
      deleting ? { owners } : undefined,
    );
    // Duplicates as the connector last saw them (a scan's listing, a look-up); kept while paused.
    const status = target
      ? withDuplicateGroups(
          checked,
          target.client.duplicateGroups(),
          connector.metadata.generation ?? 0,
          new Date(),
        )
      : checked;
    // Candidates for adoption, as the reconciles of their Employees found them.
    const candidates = this.options
      .employees(namespace)
      .filter((e) => e.status?.accounts?.some((a) => a.connector === name && a.state === "Unlinked")).length;
    adoptionCandidates.set({ connector: key }, candidates);
    await this.options.brake.exclusive(connector, (deprovisioning) =>
      writeStatus(this.options.custom, "connectors", connector, {
        ...status,
        adoptionCandidates: candidates,
        deprovisioning,
        heldDeprovisions: deprovisioning.held.length,
        ...(capabilities ? { capabilities } : {}),
      }),
    );
    // A Connector that does not work is checked again soon, so that a fix (a Secret created, a
    // target back) reaches its people within seconds.
    const interval = checkError
      ? Math.min(RECHECK_FAILED_MS, this.options.checkIntervalMs)
      : this.options.checkIntervalMs;
    return { requeueAfter: Math.min(interval, nextDeletionMs ?? Infinity) };
  }

  /** Nobody owns accounts through the Connector any more: let it and its Secrets go. */
  private async finish(connector: Connector): Promise<void> {
    const namespace = connector.metadata.namespace ?? "default";
    const dropped = this.options.brake.state(connector).scheduled ?? [];
    if (dropped.length > 0)
      this.options.logger.warn(
        { connector: `${namespace}/${connector.metadata.name}`, ids: dropped.map((d) => d.id) },
        `Connector deleted: ${dropped.length} scheduled deletions are dropped; those accounts stay disabled`,
      );
    await this.releaseSecrets(connector, secretsNamed(connector));
    await removeFinalizer(this.options.custom, "connectors", connector, CONNECTOR_FINALIZER);
  }

  private async protectSecrets(connector: Connector): Promise<void> {
    const namespace = connector.metadata.namespace ?? "default";
    for (const secret of secretsNamed(connector)) {
      try {
        await this.options.secrets.protect(namespace, secret);
      } catch (error) {
        // The check below reports an unusable Secret; a failed protection only loses the safety net.
        this.options.logger.warn(
          { connector: keyOf(connector), secret, error: (error as Error).message },
          "could not put the finalizer on the Connector's Secret",
        );
      }
    }
  }

  /** Releases those of `names` that no other Connector of the namespace names. */
  async releaseSecrets(connector: Connector, names: readonly string[]): Promise<void> {
    const namespace = connector.metadata.namespace ?? "default";
    const stillNamed = new Set(
      this.options
        .connectors(namespace)
        .filter((c) => c.metadata.uid !== connector.metadata.uid)
        .flatMap(secretsNamed),
    );
    for (const secret of names)
      if (!stillNamed.has(secret)) await this.options.secrets.release(namespace, secret);
  }

  shutdown(): Promise<void> {
    this.counts.clear();
    return this.queue.shutdown();
  }
}
