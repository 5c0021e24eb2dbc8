// `roster operator`: the composition root. It wires informers, the controllers (Employee,
// Connector, scan, policy status, approvals; each with its own queue), leader election, health
// and metrics together. Every replica watches; only the lease holder runs the controllers, so
// only the leader writes. Losing the lease ends the process.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { AccessPolicy, Connector, Employee, GroupRule, RosterObject } from "../api/types.ts";
import { evaluateAccess, grantedGroups, isPaused } from "../policy/evaluate.ts";
import { provisioningLatency } from "../observe/metrics.ts";
import { emitAudit } from "../observe/audit.ts";
import { managedAccountCount } from "../plan/brake.ts";
import type { NamespaceObjects } from "../plan/employee.ts";
import { referencedAccounts } from "../plan/references.ts";
import { GROUP, VERSION } from "../api/schema.ts";
import { CountIndex, Informer, ValueIndex } from "./informer.ts";
import { CoreApi, CustomApi, LeaseApi } from "../kube/api.ts";
import { rosterPath, shareConnections, writeStatus } from "../kube/client.ts";
import { WorkQueue, splitKey, keyOf } from "./queue.ts";
import { LeaderElector } from "./leader.ts";
import { reconcileEmployee, type EmployeeReconcilerDeps } from "./employee.ts";
import { TargetPool } from "./targets.ts";
import { addFinalizer, removeFinalizer } from "./finalizer.ts";
import { EventRecorder } from "./events.ts";
import { startHealthServer, startMetricsServer } from "./health.ts";
import { initialPassword, passwordPending, passwordSet } from "./credentials.ts";
import { SecretReader } from "./secrets.ts";
import { APPROVE_ANNOTATION, BrakeGate } from "./brake.ts";
import { ScanController } from "./scan.ts";
import { ConnectorController, secretsNamed } from "./connector.ts";
import { PolicyStatusController } from "./policy-status.ts";
import { ApprovalController } from "./approvals.ts";
import { NamespaceShard } from "./handover.ts";

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
  /** Act only in the namespaces whose labels match (one shard of several; needs leader election). */
  shardSelector?: string;
};

type Stoppable = { stop(): Promise<void> | void };

/** The one value the `recorded` count keeps per connector. */
const MANAGED = "managed";

export type RunningOperator = {
  /** Resolves when the operator has stopped (signal, lost lease, or stop()). */
  done: Promise<void>;
  stop(): Promise<void>;
};

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

/**
 * A client whose writes (create, patch, replace, delete) pass `fence` first; sharded, they also go
 * through the shard's write() for the namespace they name.
 */
function fenced<T extends object>(api: T, fence: () => void, shard?: NamespaceShard): T {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof property === "string" && /^(create|patch|replace|delete)/.test(property))
        return (...args: unknown[]) => {
          if (!shard) {
            fence();
            return method.apply(target, args);
          }
          const namespace = (args[0] as { namespace?: unknown } | undefined)?.namespace;
          // Inside write(): the fence then knows which namespace the write is for.
          return shard.write(typeof namespace === "string" ? namespace : "", property, () => {
            fence();
            return method.apply(target, args);
          });
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
  if (options.shardSelector !== undefined && !options.leaderElection)
    throw new Error(
      "a shard needs leader election: its Lease is what lets another shard take a namespace over",
    );
  let elector: LeaderElector | undefined;
  let shard: NamespaceShard | undefined;
  // Every write first checks that the Lease is still ours (synchronously, by the clock): a replica
  // that may have lost it exits before the write leaves the process. Checked when the client is
  // called and again when the request is sent.
  const fence = () => {
    if (elector && !elector.mayWrite()) {
      logger.error("lost leadership: lease not renewed within the renew deadline; exiting before a write");
      process.exit(1);
    }
    // Sharded: and that it is for a namespace this shard still acts in (handover.ts).
    shard?.check();
  };
  const kc = shareConnections(options.kubeconfig, fence);
  if (options.shardSelector !== undefined)
    shard = new NamespaceShard({
      kc,
      logger,
      selector: options.shardSelector,
      leaseNamespace: options.leaseNamespace,
      shard: options.leaseName,
      // The brake as the namespace's last shard left it, read fresh before anything may ask it.
      prepare: async (namespace) => {
        const query = { group: GROUP, version: VERSION, plural: "connectors", namespace };
        const fresh = (await custom.listNamespacedCustomObject(query)) as { items: Connector[] };
        for (const c of fresh.items) brake.load(c);
      },
      refresh: async () => void (await Promise.all(informers.map((i) => i.refresh()))),
      acting: (namespaces) => enqueueAll(new Set(namespaces)),
      released: (namespace) => forgetNamespace(namespace),
    });
  /** Whether reconciles may run in the namespace (always, unless sharded). */
  const actsIn = (namespace: string) => !shard || shard.acting(namespace);
  const core = fenced(new CoreApi(kc), fence, shard);
  const custom = fenced(new CustomApi(kc), fence, shard);
  // Sharded, an Event is a write in its namespace like any other (the shard's write()).
  const events = new EventRecorder(kc, { logger, ...(shard ? { core } : {}) });

  const ns = options.namespace;
  // A shard's caches keep only the namespaces it holds (cluster-wide watches, filtered).
  const held = shard ? { accept: (namespace: string) => shard.holds(namespace) } : {};
  const employees = new Informer<Employee>(kc, { path: rosterPath("employees", ns), logger, ...held });
  const policies = new Informer<AccessPolicy>(kc, {
    path: rosterPath("accesspolicies", ns),
    logger,
    ...held,
  });
  const rules = new Informer<GroupRule>(kc, { path: rosterPath("grouprules", ns), logger, ...held });
  const connectors = new Informer<Connector>(kc, { path: rosterPath("connectors", ns), logger, ...held });
  /** The Connector, unless sharded and this shard does not act in its namespace (then no reconcile). */
  const connectorIn = (namespace: string, name: string) =>
    actsIn(namespace) ? connectors.get(namespace, name) : undefined;
  const informers = [employees, policies, rules, connectors];
  const secrets = new SecretReader(core);
  // What a reconcile would otherwise find by reading every cached Employee, kept as the cache
  // changes: during a bulk load every status write changes the Employee list, and a walk of it per
  // reconcile makes the load quadratic.
  const withEmployeeId = new ValueIndex<Employee>((e) => e.spec.employeeId);
  const withUsername = new ValueIndex<Employee>((e) => e.spec.username);
  /** Employees by spec.manager: a manager's reports. */
  const reportsTo = new ValueIndex<Employee>((e) => e.spec.manager);
  const granted = new CountIndex<Employee>(grantedGroups);
  /** Per connector, the Employees managedAccountCount counts (one at a time, with the same rule). */
  const recorded = new CountIndex<Employee>((e) =>
    [...new Set(e.status?.accounts?.map((a) => a.connector))]
      .filter((c) => managedAccountCount(c, [e], undefined) === 1)
      .map((c) => [c, MANAGED] as const),
  );
  for (const index of [withEmployeeId, withUsername, reportsTo, granted, recorded]) employees.addIndex(index);
  // A fresh one per call, with the Employee list read only if asked for (a scan does; the
  // planner asks the indexes instead), so an Employee's reconcile costs nothing per cached Employee.
  const objects = (namespace: string): NamespaceObjects => {
    let list: readonly Employee[] | undefined;
    return {
      get employees() {
        return (list ??= employees.list(namespace));
      },
      policies: policies.list(namespace),
      rules: rules.list(namespace),
      connectors: connectors.list(namespace),
      withEmployeeId: (employeeId) => withEmployeeId.get(namespace, employeeId),
      withUsername: (username) => withUsername.get(namespace, username),
      grantedGroups: (connector) => granted.values(namespace, connector),
    };
  };

  const readSecret: ConstructorParameters<typeof TargetPool>[0] = (namespace, ref) =>
    secrets.read(namespace, ref);
  const pool = shard
    ? shard.targetPool(readSecret, logger, fence)
    : new TargetPool(readSecret, logger, fence);

  const employeeQueue = new WorkQueue({ name: "employee", logger });
  const observedAt = new Map<string, number>();
  const enqueueEmployee = (key: string) => {
    if (!observedAt.has(key)) observedAt.set(key, performance.now());
    employeeQueue.add(key);
  };
  const enqueueNamespace = (namespace: string) => {
    for (const e of employees.list(namespace)) enqueueEmployee(keyOf(e));
  };

  const scan: ScanController = new ScanController({
    logger,
    getConnector: connectorIn,
    objects,
    pool,
    events,
    drifted: (employee) => enqueueEmployee(keyOf(employee)),
    scanned: (connector) => {
      connectorController.enqueue(connector);
      // GroupRule status shows the hand-added members the scan found.
      policyStatus.enqueueNamespace(connector.metadata.namespace ?? "default");
    },
    brake: (): BrakeGate => brake,
  });
  const managed = (connector: Connector): number =>
    // managedAccountCount's: the larger of what status records and what the last scan found.
    Math.max(
      recorded.count(connector.metadata.namespace ?? "default", connector.metadata.name, MANAGED),
      scan.managed(connector) ?? 0,
    );
  const brake: BrakeGate = new BrakeGate({
    custom,
    managed,
    events,
    changed: (connector) => connectorController.enqueue(connector),
  });
  const connectorController: ConnectorController = new ConnectorController({
    logger,
    custom,
    getConnector: connectorIn,
    pool,
    managed,
    brake,
    scan: (connector) => scan.result(connector),
    // A Connector that works again (a Secret created or fixed): its people's terminal failures
    // are not retried by themselves.
    recovered: (connector) => enqueueNamespace(connector.metadata.namespace ?? "default"),
    checkIntervalMs: options.connectorCheckMs,
    employees: (namespace) => employees.list(namespace),
    connectors: (namespace) => connectors.list(namespace),
    employeesWith: (namespace, employeeId) => withEmployeeId.get(namespace, employeeId),
    secrets,
    events,
  });
  const policyStatus = new PolicyStatusController({
    logger,
    custom,
    getPolicy: (namespace, name) => (actsIn(namespace) ? policies.get(namespace, name) : undefined),
    getRule: (namespace, name) => (actsIn(namespace) ? rules.get(namespace, name) : undefined),
    policies: (namespace) => policies.list(namespace),
    rules: (namespace) => rules.list(namespace),
    employees: (namespace) => employees.list(namespace),
    unmanaged: (namespace, connector, group) => {
      const found = connectors.get(namespace, connector);
      return found ? scan.unmanagedIn(found, group) : undefined;
    },
  });
  const approvals = new ApprovalController({
    logger,
    custom,
    getConnector: connectorIn,
    brake,
    released: enqueueNamespace,
  });

  // Informer handlers only enqueue; the queues run on the leader.
  const statusesOf = (namespace: string) => {
    policyStatus.enqueueNamespace(namespace);
    for (const c of connectors.list(namespace)) connectorController.enqueue(c, true);
  };
  employees.onChange((type, obj, old) => {
    const namespace = obj.metadata.namespace ?? "default";
    // Counts on policies, rules and connectors follow status too; reconciles follow spec only.
    // An Employee gone may have handed a deletion over to its Connectors: they look within a second.
    if (type === "delete") statusesOf(namespace);
    else if (type === "add" || JSON.stringify(obj.status) !== JSON.stringify(old?.status)) {
      policyStatus.countsChanged(namespace);
      for (const c of connectors.list(namespace)) connectorController.countsChanged(c);
    }
    // A manager's account appearing or going changes what their reports' accounts refer to
    // (manager.value is the manager's id in the same Connector): those reports need a look.
    if (type === "delete" || referencedAccounts(obj) !== referencedAccounts(old))
      for (const report of reportsTo.get(namespace, obj.spec.username)) enqueueEmployee(keyOf(report));
    if (type === "update" && !specChanged(obj, old)) return;
    enqueueEmployee(keyOf(obj));
    // Which of several Employees with one employeeId acts may have changed (for the old one too).
    const ids = new Set([obj.spec.employeeId, old?.spec.employeeId ?? obj.spec.employeeId]);
    for (const id of ids)
      for (const other of withEmployeeId.get(namespace, id))
        if (other.metadata.name !== obj.metadata.name) enqueueEmployee(keyOf(other));
  });
  // A policy or rule edit requeues only the people whose access it changes: those whose
  // entitlements under the new set differ from what their status records.
  const affectedBy = (obj: AccessPolicy | GroupRule) => {
    const namespace = obj.metadata.namespace ?? "default";
    if (isPaused(obj)) return;
    const now = new Date();
    const [currentPolicies, currentRules] = [policies.list(namespace), rules.list(namespace)];
    for (const e of employees.list(namespace)) {
      const entitlements = evaluateAccess(e, currentPolicies, currentRules, now).entitlements;
      if (JSON.stringify(entitlements) !== JSON.stringify(e.status?.entitlements ?? []))
        enqueueEmployee(keyOf(e));
    }
    statusesOf(namespace);
  };
  policies.onChange((type, obj, old) => {
    if (type === "update" && !specChanged(obj, old)) return;
    policyStatus.enqueuePolicy(obj);
    affectedBy({ ...obj, kind: "AccessPolicy" });
  });
  rules.onChange((type, obj, old) => {
    if (type === "update" && !specChanged(obj, old)) return;
    policyStatus.enqueueRule(obj);
    affectedBy({ ...obj, kind: "GroupRule" });
  });
  connectors.onChange((type, obj, old) => {
    if (type === "update" && !specChanged(obj, old)) return;
    const namespace = obj.metadata.namespace ?? "default";
    // Secrets the Connector no longer names (or names no more at all, once it is gone) are let go.
    const released = secretsNamed(old ?? obj).filter(
      (secret) => type === "delete" || !secretsNamed(obj).includes(secret),
    );
    if (released.length > 0 && leading && actsIn(namespace))
      void connectorController
        .releaseSecrets(obj, released)
        .catch((error: unknown) =>
          logger.warn(
            { connector: keyOf(obj), error: (error as Error).message },
            "could not release Secrets",
          ),
        );
    if (type === "delete") {
      pool.forget(namespace, obj.metadata.name);
      scan.forget(obj);
      brake.forget(obj);
    } else {
      approvals.observe(obj);
      connectorController.enqueue(obj);
      scan.schedule(obj);
    }
    if (type === "update" && !accountsAffected(obj, old!)) return;
    enqueueNamespace(namespace);
  });
  const deps: EmployeeReconcilerDeps = {
    getEmployee: (namespace, name) => (actsIn(namespace) ? employees.get(namespace, name) : undefined),
    objects,
    target: (connector) => pool.get(connector),
    addFinalizer: async (employee) => void (await addFinalizer(custom, "employees", employee)),
    removeFinalizer: async (employee) => void (await removeFinalizer(custom, "employees", employee)),
    writeStatus: (employee, status) => writeStatus(custom, "employees", employee, status),
    event: (employee, type, reason, message) => void events.record(employee, type, reason, message),
    initialPassword: (employee, connector, generate) => initialPassword(core, employee, connector, generate),
    passwordPending: (employee, connector) => passwordPending(core, employee, connector),
    passwordSet: (employee, connector) => passwordSet(core, employee, connector),
    scheduleDeletion: (connector, entry) => brake.schedule(connector, entry),
    requestDeprovision: (connector, account) => brake.request(connector, account),
    withdrawDeprovision: (connector, account) => brake.withdraw(connector, account),
    driftFor: (employee, connector) => scan.driftFor(employee, connector),
    clearDrift: (employee, connector) => scan.clearDrift(employee, connector),
    confirmed: (connector, operation, employee) => {
      const since = observedAt.get(keyOf(employee));
      if (since !== undefined)
        provisioningLatency.observe({ connector, operation }, (performance.now() - since) / 1000);
    },
    audit: (record) => emitAudit(logger, record),
    now: () => new Date(),
  };

  const servers: Stoppable[] = [];
  servers.push(
    await startHealthServer(options.healthAddress, {
      ready: () => informers.every((i) => i.hasSynced()) && (shard?.hasSynced() ?? true),
    }),
  );
  servers.push(await startMetricsServer(options.metricsAddress));

  /** Only the leader writes; informer handlers run on every replica. */
  let leading = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let stopping: Promise<void> | undefined;

  for (const informer of informers) informer.start();
  shard?.start();

  /** Queues everything cached (or only that of `namespaces`): what a new leader, or a shard taking namespaces over, does. */
  const enqueueAll = (namespaces?: ReadonlySet<string>) => {
    const within = (o: RosterObject) => !namespaces || namespaces.has(o.metadata.namespace ?? "default");
    for (const e of employees.list()) if (within(e)) enqueueEmployee(keyOf(e));
    for (const namespace of new Set(
      employees
        .list()
        .filter(within)
        .map((e) => e.metadata.namespace ?? "default"),
    ))
      policyStatus.enqueueNamespace(namespace);
    for (const p of policies.list()) if (within(p)) policyStatus.enqueuePolicy(p);
    for (const r of rules.list()) if (within(r)) policyStatus.enqueueRule(r);
    for (const c of connectors.list()) {
      if (!within(c)) continue;
      connectorController.enqueue(c);
      approvals.observe(c);
      scan.schedule(c);
    }
  };

  /** A namespace handed to another shard: what memory holds about it goes (its cached objects go on refresh). */
  const forgetNamespace = (namespace: string) => {
    for (const c of connectors.list(namespace)) {
      pool.forget(namespace, c.metadata.name);
      scan.forget(c);
      brake.forget(c);
      for (const e of employees.list(namespace)) scan.clearDrift(e, c.metadata.name);
    }
    // The indexes follow the cache, which lets the namespace's objects go on refresh.
    for (const key of observedAt.keys()) if (key.startsWith(`${namespace}/`)) observedAt.delete(key);
  };

  const loadBrakes = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const query = { group: GROUP, version: VERSION, plural: "connectors" };
        const fresh = (await (ns
          ? custom.listNamespacedCustomObject({ ...query, namespace: ns })
          : custom.listClusterCustomObject(query))) as { items: Connector[] };
        for (const c of fresh.items) brake.load(c);
        return;
      } catch (error) {
        logger.warn({ error: (error as Error).message, attempt }, "could not read the brake state; retrying");
        await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** attempt)));
      }
    }
  };

  const startWork = async () => {
    logger.info("started leading: reconciling");
    leading = true;
    await Promise.all(informers.map((i) => i.waitForSync()));
    // The brake as the last leader left it: read fresh, since this replica's cache may lag. A shard
    // holds no namespace yet: it reads each one's as it takes it over (prepare).
    if (!shard) await loadBrakes();
    enqueueAll();
    void employeeQueue.run(options.workers, async (key) => {
      const { namespace, name } = splitKey(key);
      const result = await reconcileEmployee(deps, namespace, name);
      observedAt.delete(key);
      return result;
    });
    void connectorController.run();
    void policyStatus.run();
    void approvals.run();
    // One full scan at a time: a scan holds its target's every account while it compares, so two
    // at once double the operator's peak memory (bench/findings.md); scans are minutes apart.
    void scan.run(1);
    if (shard) void shard.lead(elector!.identity);
  };

  const stop = async () => {
    stopping ??= (async () => {
      logger.info("stopping: finishing in-flight reconciles");
      await Promise.all([
        employeeQueue.shutdown(),
        connectorController.shutdown(),
        policyStatus.shutdown(),
        approvals.shutdown(),
        scan.shutdown(),
      ]);
      if (leading) await brake.settle();
      await shard?.stop();
      await elector?.release();
      for (const informer of informers) informer.stop();
      await pool.close();
      await Promise.allSettled(servers.map((s) => s.stop()));
      resolveDone();
    })();
    return stopping;
  };

  if (options.leaderElection) {
    elector = new LeaderElector(new LeaseApi(kc), {
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
