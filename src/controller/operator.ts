// `roster operator`: wires informers, work queues, reconcilers, leader election, health and
// metrics together. Only the lease holder reconciles; losing the lease ends the process.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Secret } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, VERSION, API_VERSION } from "../api/schema.ts";
import type { AccessPolicy, Connector, Employee, GroupRule, RosterObject } from "../api/types.ts";
import { evaluateAccess, isPaused } from "../policy/evaluate.ts";
import { provisioningLatency } from "../observe/metrics.ts";
import { Informer } from "./informer.ts";
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
  leader(): boolean;
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

export async function runOperator(options: OperatorOptions): Promise<RunningOperator> {
  const { kubeconfig: kc, logger } = options;
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
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

  const pool = new TargetPool(async (namespace, ref) => {
    const secret = secrets.get(namespace, ref.name);
    if (!secret) throw new ConfigurationError(`Secret ${namespace}/${ref.name} not found`);
    const data = secret.data?.[ref.key];
    if (data === undefined)
      throw new ConfigurationError(`Secret ${namespace}/${ref.name} has no key ${ref.key}`);
    return {
      value: Buffer.from(data, "base64").toString("utf8"),
      version: secret.metadata.resourceVersion ?? "",
    };
  }, logger);

  const employeeQueue = new WorkQueue({ name: "employee", logger });
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
    if (type === "update" && !specChanged(obj, old)) return;
    enqueueEmployee(keyOf(obj));
    enqueueSummaries(obj.metadata.namespace ?? "default");
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
    if (type === "delete") pool.forget(namespace, obj.metadata.name);
    summaryQueue.add(`Connector/${keyOf(obj)}`);
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
    confirmed: (connector, operation, employee) => {
      const since = observedAt.get(keyOf(employee));
      if (since !== undefined)
        provisioningLatency.observe({ connector, operation }, (performance.now() - since) / 1000);
    },
    now: () => new Date(),
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
      if (!connector.spec.paused && !isPaused(connector)) {
        try {
          await (await pool.get(connector)).client.check();
        } catch (error) {
          checkError = error instanceof Error ? error.message : String(error);
        }
      }
      await writeStatus(custom, "connectors", connector, connectorStatus(connector, people, checkError, now));
      return { requeueAfter: options.connectorCheckMs };
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
  let elector: LeaderElector | undefined;
  let leading = false;

  for (const informer of informers) informer.start();

  const startWork = async () => {
    leading = true;
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
  };

  const stop = async () => {
    stopping ??= (async () => {
      logger.info("stopping: finishing in-flight reconciles");
      await Promise.all([employeeQueue.shutdown(), summaryQueue.shutdown()]);
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

  return { done, stop, leader: () => leading };
}

/** Writes status through the status subresource (merge patch; removed fields set to null). */
async function writeStatus(
  api: CustomObjectsApi,
  plural: string,
  object: RosterObject,
  status: object,
): Promise<void> {
  if (JSON.stringify(status) === JSON.stringify(object.status ?? {})) return;
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
