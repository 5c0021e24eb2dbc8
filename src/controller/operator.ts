// `roster operator`: wires informers, work queues, reconcilers, leader election, health and
// metrics together. Only the lease holder reconciles; losing the lease ends the process.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Secret,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, VERSION, API_VERSION } from "../api/schema.ts";
import type { AccessPolicy, Connector, Employee, GroupRule, RosterObject } from "../api/types.ts";
import { evaluateAccess, isPaused } from "../policy/evaluate.ts";
import {
  deprovisionsHeld,
  driftAccounts,
  driftDetected,
  managedAccounts,
  orphanAccounts,
  provisioningLatency,
} from "../observe/metrics.ts";
import { compareScan, type ScanResult } from "../plan/scan.ts";
import { parseDuration } from "../plan/plan.ts";
import { DeprovisionBrake, deprovisionLimit } from "../plan/brake.ts";
import { sameStatus } from "../api/conditions.ts";
import { Informer } from "./informer.ts";
import { shareConnections } from "./kube.ts";
import { WorkQueue, splitKey, keyOf } from "./queue.ts";
import { LeaderElector } from "./leader.ts";
import { reconcileEmployee, type EmployeeReconcilerDeps } from "./employee.ts";
import { TargetPool, ConfigurationError } from "./targets.ts";
import { connectorStatus, groupRuleStatus, policyStatus } from "./summary.ts";
import { addFinalizer, removeFinalizer, patchStatus } from "./finalizer.ts";
import { EventRecorder } from "./events.ts";
import { startHealthServer, startMetricsServer } from "./health.ts";

export type OperatorOptions = {
  kubeconfig: KubeConfig;
  logger: Logger;
  /** Watch one namespace; all namespaces when undefined. */
  namespace?: string;
  workers: number;
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  healthAddress: string;
  metricsAddress: string;
  /** How often Connectors are checked for reachability. */
  connectorCheckMs: number;
};

type Stoppable = { stop(): Promise<void> | void };

export type RunningOperator = {
  /** Resolves when the operator has stopped (signal, lost lease, or stop()). */
  done: Promise<void>;
  stop(): Promise<void>;
};

function collection(plural: string, namespace: string | undefined): string {
  return namespace
    ? `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`
    : `/apis/${GROUP}/${VERSION}/${plural}`;
}

/** Changes that matter to a reconcile (our own status writes and finalizer edits do not). */
function specChanged(obj: RosterObject, old: RosterObject | undefined): boolean {
  if (!old) return true;
  const a = obj.metadata;
  const b = old.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {})
  );
}

/** A client whose writes (create, patch, replace, delete) pass `fence` first. */
function fenced<T extends object>(api: T, fence: () => void): T {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof property === "string" && /^(create|patch|replace|delete)/.test(property))
        return (...args: unknown[]) => {
          fence();
          return method.apply(target, args);
        };
      return method.bind(target);
    },
  });
}

/** Whether a Connector edit can change any account: drift, safety and orphan settings cannot. */
function accountsAffected(connector: Connector, old: Connector): boolean {
  const relevant = (c: Connector) => {
    const { drift: _drift, safety: _safety, orphans: _orphans, ...rest } = c.spec;
    return JSON.stringify([rest, isPaused(c), c.metadata.annotations?.[APPROVE_ANNOTATION]]);
  };
  return relevant(connector) !== relevant(old);
}

export async function runOperator(options: OperatorOptions): Promise<RunningOperator> {
  const { logger } = options;
  const kc = shareConnections(options.kubeconfig);
  let elector: LeaderElector | undefined;
  // Every write first checks that the Lease is still ours (synchronously, by the clock): a replica
  // that may have lost it exits before the write leaves the process.
  const fence = () => {
    if (elector && !elector.mayWrite()) {
      logger.error("lost leadership: lease not renewed within the renew deadline; exiting before a write");
      process.exit(1);
    }
  };
  const core = fenced(kc.makeApiClient(CoreV1Api), fence);
  const custom = fenced(kc.makeApiClient(CustomObjectsApi), fence);
  const events = new EventRecorder(kc, { logger });

  const employees = new Informer<Employee>(kc, { path: collection("employees", options.namespace), logger });
  const policies = new Informer<AccessPolicy>(kc, {
    path: collection("accesspolicies", options.namespace),
    logger,
  });
  const rules = new Informer<GroupRule>(kc, { path: collection("grouprules", options.namespace), logger });
  const connectors = new Informer<Connector>(kc, {
    path: collection("connectors", options.namespace),
    logger,
  });
  const secrets = new Informer<V1Secret & { metadata: { name: string; namespace: string } }>(kc, {
    path: options.namespace ? `/api/v1/namespaces/${options.namespace}/secrets` : "/api/v1/secrets",
    fieldSelector: "type!=kubernetes.io/service-account-token",
    logger,
  });
  const informers = [employees, policies, rules, connectors, secrets];

  const pool = new TargetPool(
    async (namespace, ref) => {
      const secret = secrets.get(namespace, ref.name);
      if (!secret) throw new ConfigurationError(`Secret ${namespace}/${ref.name} not found`);
      const data = secret.data?.[ref.key];
      if (data === undefined)
        throw new ConfigurationError(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
      return {
        value: Buffer.from(data, "base64").toString("utf8"),
        version: secret.metadata.resourceVersion ?? "",
      };
    },
    logger,
    fence,
  );

  const brake = new DeprovisionBrake();
  // Managed accounts for the brake's percentage: the larger of what status records and what the
  // last full scan found, so a restart or a batch in flight does not make the limit too tight.
  const managedIn = (connector: Connector) => {
    const recorded = employees
      .list(connector.metadata.namespace)
      .filter((e) =>
        e.status?.accounts?.some(
          (a) => a.connector === connector.metadata.name && (a.state === "Active" || a.state === "Disabled"),
        ),
      ).length;
    const scanned = scans.get(keyOf(connector))?.managed;
    return Math.max(recorded, scanned ? scanned.Active + scanned.Disabled : 0);
  };
  const heldIn = (connector: Connector) => ({
    count: brake.held(keyOf(connector)).length,
    limit: deprovisionLimit(connector.spec.safety, managedIn(connector)),
  });

  const employeeQueue = new WorkQueue({ name: "employee", logger });
  // Full scans, one key per Connector, each requeued after its drift.resyncInterval.
  const scanQueue = new WorkQueue({ name: "scan", logger });
  const scans = new Map<string, ScanResult>();
  /** Drift found by scans: "<employee key>|<connector>" -> what differs. */
  const drifts = new Map<string, { detail: string }>();
  const driftKey = (employee: Employee, connector: string) => `${keyOf(employee)}|${connector}`;
  // Status of policies, rules and connectors: keyed "<Kind>/<namespace>/<name>", debounced.
  const summaryQueue = new WorkQueue({ name: "summary", logger });
  const observedAt = new Map<string, number>();

  const enqueueEmployee = (key: string) => {
    if (!observedAt.has(key)) observedAt.set(key, performance.now());
    employeeQueue.add(key);
  };
  const enqueueSummaries = (namespace: string) => {
    for (const p of policies.list(namespace)) summaryQueue.addAfter(`AccessPolicy/${keyOf(p)}`, 1000);
    for (const r of rules.list(namespace)) summaryQueue.addAfter(`GroupRule/${keyOf(r)}`, 1000);
    for (const c of connectors.list(namespace)) summaryQueue.addAfter(`Connector/${keyOf(c)}`, 1000);
  };

  employees.onChange((type, obj, old) => {
    // Counts on policies, rules and connectors follow status too; reconciles follow spec only.
    if (type !== "update" || JSON.stringify(obj.status) !== JSON.stringify(old?.status))
      enqueueSummaries(obj.metadata.namespace ?? "default");
    if (type === "update" && !specChanged(obj, old)) return;
    enqueueEmployee(keyOf(obj));
  });
  // A policy or rule edit requeues only the people whose access it changes: those whose
  // entitlements under the new set differ from what their status records.
  const affectedBy = (obj: AccessPolicy | GroupRule) => {
    const namespace = obj.metadata.namespace ?? "default";
    const now = new Date();
    if (isPaused(obj)) return;
    const [currentPolicies, currentRules] = [policies.list(namespace), rules.list(namespace)];
    for (const e of employees.list(namespace)) {
      const entitlements = evaluateAccess(e, currentPolicies, currentRules, now).entitlements;
      if (JSON.stringify(entitlements) !== JSON.stringify(e.status?.entitlements ?? []))
        enqueueEmployee(keyOf(e));
    }
    summaryQueue.add(`${obj.kind}/${keyOf(obj)}`);
    enqueueSummaries(namespace);
  };
  policies.onChange((type, obj, old) => {
    if (type === "update" && !specChanged(obj, old)) return;
    affectedBy({ ...obj, kind: "AccessPolicy" });
  });
  rules.onChange((type, obj, old) => {
    if (type === "update" && !specChanged(obj, old)) return;
    affectedBy({ ...obj, kind: "GroupRule" });
  });
  connectors.onChange((type, obj, old) => {
    if (type === "update" && !specChanged(obj, old)) return;
    const namespace = obj.metadata.namespace ?? "default";
    const approval = obj.metadata.annotations?.[APPROVE_ANNOTATION];
    if (approval !== undefined && type !== "delete") void approve(obj, approval);
    if (type === "delete") pool.forget(namespace, obj.metadata.name);
    summaryQueue.add(`Connector/${keyOf(obj)}`);
    if (type === "delete") scans.delete(keyOf(obj));
    else scanQueue.addAfter(keyOf(obj), 2000);
    if (type === "update" && !accountsAffected(obj, old!)) return;
    for (const e of employees.list(namespace)) enqueueEmployee(keyOf(e));
  });
  secrets.onChange((type, obj, old) => {
    if (type === "update" && old?.metadata?.resourceVersion === obj.metadata.resourceVersion) return;
    const namespace = obj.metadata.namespace;
    for (const c of connectors.list(namespace)) {
      const refs = [
        c.spec.ldap?.bindPasswordSecretRef,
        c.spec.ldap?.caSecretRef,
        c.spec.scim?.tokenSecretRef,
        c.spec.scim?.caSecretRef,
      ];
      if (refs.some((r) => r?.name === obj.metadata.name)) summaryQueue.add(`Connector/${keyOf(c)}`);
    }
  });

  const deps: EmployeeReconcilerDeps = {
    getEmployee: (ns, name) => employees.get(ns, name),
    listEmployees: (ns) => employees.list(ns),
    listPolicies: (ns) => policies.list(ns),
    listRules: (ns) => rules.list(ns),
    listConnectors: (ns) => connectors.list(ns),
    getConnector: (ns, name) => connectors.get(ns, name),
    target: (connector) => pool.get(connector),
    addFinalizer: async (employee) => void (await addFinalizer(custom, "employees", employee)),
    removeFinalizer: async (employee) => void (await removeFinalizer(custom, "employees", employee)),
    writeStatus: (employee, status) => writeStatus(custom, "employees", employee, status),
    event: (employee, type, reason, message) => void events.record(employee, type, reason, message),
    initialPassword: (employee, connector, generate) => initialPassword(core, employee, connector, generate),
    requestDeprovision: (connector, account) => {
      const key = keyOf(connector);
      const before = brake.held(key).length;
      const decision = brake.request(
        key,
        account,
        deprovisionLimit(connector.spec.safety, managedIn(connector)),
        Date.now(),
      );
      const after = brake.held(key).length;
      if (after !== before) {
        deprovisionsHeld.set({ connector: key }, after);
        summaryQueue.add(`Connector/${key}`);
        if (before === 0)
          void events.record(
            { ...connector, kind: "Connector", apiVersion: API_VERSION },
            "Warning",
            "DeprovisioningHeld",
            `deprovisioning held: more than ${!decision.allowed ? decision.limit : 0} per hour; approve with the annotation ${APPROVE_ANNOTATION}`,
          );
      }
      return decision;
    },
    withdrawDeprovision: (connector, account) => {
      const key = keyOf(connector);
      const before = brake.held(key).length;
      brake.withdraw(key, account);
      if (brake.held(key).length !== before) {
        deprovisionsHeld.set({ connector: key }, brake.held(key).length);
        summaryQueue.add(`Connector/${key}`);
      }
    },
    driftFor: (employee, connector) => drifts.get(driftKey(employee, connector)),
    clearDrift: (employee, connector) => void drifts.delete(driftKey(employee, connector)),
    confirmed: (connector, operation, employee) => {
      const since = observedAt.get(keyOf(employee));
      if (since !== undefined)
        provisioningLatency.observe({ connector, operation }, (performance.now() - since) / 1000);
    },
    now: () => new Date(),
  };

  // A full scan reads every account with paged requests and compares in memory: with nothing
  // changed it writes nothing anywhere.
  const scanConnector = async (key: string) => {
    const { namespace, name } = splitKey(key);
    const connector = connectors.get(namespace, name);
    if (!connector) return;
    const interval = parseDuration(connector.spec.drift?.resyncInterval ?? "10m");
    if (connector.spec.paused || isPaused(connector)) return { requeueAfter: interval };
    const target = await pool.get(connector);
    const accounts = await target.client.listAccounts(500);
    const people = employees.list(namespace);
    const result = compareScan({
      connector: name,
      employees: people,
      policies: policies.list(namespace),
      rules: rules.list(namespace),
      accounts,
      desiredAttributes: target.desiredAttributes,
      managedAttributes: target.managedAttributes,
      groupKey: (g) => target.client.groupKey(g),
      now: new Date(),
    });
    const previous = scans.get(key);
    scans.set(key, result);
    managedAccounts.set({ connector: key, state: "Active" }, result.managed.Active);
    managedAccounts.set({ connector: key, state: "Disabled" }, result.managed.Disabled);
    orphanAccounts.set({ connector: key }, result.orphans.length);
    for (const kind of ["attributes", "enabled", "membership", "deleted"] as const)
      driftAccounts.set({ connector: key, kind }, result.drift.filter((d) => d.kinds.includes(kind)).length);
    const byName = new Map(people.map((e) => [e.metadata.name, e]));
    for (const drift of result.drift) {
      const employee = byName.get(drift.employee)!;
      const dk = driftKey(employee, name);
      if (drifts.get(dk)?.detail === drift.detail) continue;
      drifts.set(dk, { detail: drift.detail });
      for (const kind of drift.kinds) driftDetected.inc({ connector: key, kind });
      void events.record(employee, "Warning", "DriftDetected", `${name}: ${drift.detail}`);
      enqueueEmployee(keyOf(employee));
    }
    if (JSON.stringify(previous) !== JSON.stringify(result)) summaryQueue.add(`Connector/${key}`);
    return { requeueAfter: interval };
  };

  const reconcileSummary = async (key: string) => {
    const [kind, rest] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
    const { namespace, name } = splitKey(rest);
    const now = new Date();
    const people = employees.list(namespace);
    if (kind === "AccessPolicy") {
      const policy = policies.get(namespace, name);
      if (policy) await writeStatus(custom, "accesspolicies", policy, policyStatus(policy, people, now));
    } else if (kind === "GroupRule") {
      const rule = rules.get(namespace, name);
      if (rule)
        await writeStatus(
          custom,
          "grouprules",
          rule,
          groupRuleStatus(rule, people, policies.list(namespace), rules.list(namespace), now),
        );
    } else if (kind === "Connector") {
      const connector = connectors.get(namespace, name);
      if (!connector) return;
      let checkError: string | undefined;
      let capabilities: Record<string, unknown> | undefined;
      if (!connector.spec.paused && !isPaused(connector)) {
        try {
          const target = await pool.get(connector);
          await target.client.check();
          capabilities = await target.discover?.();
        } catch (error) {
          checkError = error instanceof Error ? error.message : String(error);
        }
      }
      await writeStatus(custom, "connectors", connector, {
        ...connectorStatus(
          connector,
          people,
          checkError,
          heldIn(connector),
          scans.get(keyOf(connector)),
          now,
        ),
        ...(capabilities ? { capabilities } : {}),
      });
      return { requeueAfter: options.connectorCheckMs };
    }
  };

  // The approval annotation releases that many held deprovisions once, then is removed.
  const approve = async (connector: Connector, value: string) => {
    const count = Number(value);
    const namespace = connector.metadata.namespace ?? "default";
    if (Number.isInteger(count) && count > 0) {
      brake.approve(keyOf(connector), count);
      void events.record(
        { ...connector, kind: "Connector", apiVersion: API_VERSION },
        "Normal",
        "DeprovisioningApproved",
        `${count} held deprovisions approved`,
      );
      for (const e of employees.list(namespace)) enqueueEmployee(keyOf(e));
    } else {
      logger.warn(
        { connector: keyOf(connector), value },
        "ignoring approval annotation that is not a positive integer",
      );
    }
    try {
      await removeAnnotation(custom, "connectors", connector, APPROVE_ANNOTATION);
    } catch (error) {
      logger.warn({ err: error, connector: keyOf(connector) }, "could not remove the approval annotation");
    }
  };

  const servers: Stoppable[] = [];
  servers.push(
    await startHealthServer(options.healthAddress, {
      ready: () => informers.every((i) => i.hasSynced()),
    }),
  );
  servers.push(await startMetricsServer(options.metricsAddress));

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let stopping: Promise<void> | undefined;

  for (const informer of informers) informer.start();

  const startWork = async () => {
    logger.info("started leading: reconciling");
    await Promise.all(informers.map((i) => i.waitForSync()));
    for (const e of employees.list()) enqueueEmployee(keyOf(e));
    for (const ns of new Set(employees.list().map((e) => e.metadata.namespace ?? "default")))
      enqueueSummaries(ns);
    for (const c of connectors.list()) summaryQueue.add(`Connector/${keyOf(c)}`);
    for (const p of policies.list()) summaryQueue.add(`AccessPolicy/${keyOf(p)}`);
    for (const r of rules.list()) summaryQueue.add(`GroupRule/${keyOf(r)}`);
    void employeeQueue.run(options.workers, async (key) => {
      const { namespace, name } = splitKey(key);
      const result = await reconcileEmployee(deps, namespace, name);
      observedAt.delete(key);
      return result;
    });
    void summaryQueue.run(1, reconcileSummary);
    for (const c of connectors.list()) scanQueue.addAfter(keyOf(c), 2000);
    void scanQueue.run(2, scanConnector);
  };

  const stop = async () => {
    stopping ??= (async () => {
      logger.info("stopping: finishing in-flight reconciles");
      await Promise.all([employeeQueue.shutdown(), summaryQueue.shutdown(), scanQueue.shutdown()]);
      await elector?.release();
      for (const informer of informers) informer.stop();
      await pool.close();
      await Promise.allSettled(servers.map((s) => s.stop()));
      resolveDone();
    })();
    return stopping;
  };

  if (options.leaderElection) {
    elector = new LeaderElector(kc, {
      namespace: options.leaseNamespace,
      name: options.leaseName,
      logger,
      onStartedLeading: () => void startWork(),
      onStoppedLeading: () => {
        // Stop writing at once: another replica may take over after the lease expires.
        logger.error("lost leadership: exiting");
        process.exit(1);
      },
    });
    void elector.run();
  } else {
    void startWork();
  }

  return { done, stop };
}

export const APPROVE_ANNOTATION = "roster.dev/approve-deprovisioning";

/** Removes an annotation with a JSON patch that first tests its value (never a stale removal). */
async function removeAnnotation(
  api: CustomObjectsApi,
  plural: string,
  object: RosterObject,
  name: string,
): Promise<void> {
  const path = `/metadata/annotations/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`;
  await api.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: object.metadata.namespace ?? "default",
      plural,
      name: object.metadata.name,
      body: [
        { op: "test", path, value: object.metadata.annotations?.[name] },
        { op: "remove", path },
      ],
    },
    setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
  );
}

/** Writes status through the status subresource (merge patch; removed fields set to null). */
async function writeStatus(
  api: CustomObjectsApi,
  plural: string,
  object: RosterObject,
  status: object,
): Promise<void> {
  if (sameStatus(status, object.status ?? {})) return;
  const patch: Record<string, unknown> = { ...status };
  for (const key of Object.keys(object.status ?? {})) if (!(key in status)) patch[key] = null;
  await patchStatus(api, plural, object.metadata.namespace ?? "default", object.metadata.name, patch);
}

/** The password in `<employee>-<connector>-credentials`, created once and owned by the Employee. */
async function initialPassword(
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
