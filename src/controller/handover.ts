// The I/O of sharding by namespace (the decisions are in shard.ts): the watch of the Namespaces this
// shard's selector matches, the handover Leases, and the fence that keeps every write of a sharded
// operator inside the namespaces it acts in.
//
// Every write the operator makes (to the API server and to a Connector's target) runs through
// write(namespace, ...): refused unless this shard acts there, counted while unanswered, and
// carried in the async context so that the checks made again right before a request leaves (the
// API server dispatcher, the connectors' transports: fence.ts) see which namespace it is for. A
// namespace that leaves the selector is fenced at once, and its handover Lease is released only
// when every write to it that was sent before has been answered: the next shard starts on what
// this one last wrote, and nothing of this one's lands after.
//
// Leases live in the lease namespace all shards share (the operator's), so no shard needs rights
// on Leases anywhere else. Caches stay cluster-wide watches with a namespace filter (informer.ts
// `accept`): one watch per kind however many namespaces a shard holds, and memory for only its own.
import { AsyncLocalStorage } from "node:async_hooks";
import { performance } from "node:perf_hooks";
import { V1MicroTime, type KubeConfig, type V1Lease, type V1Namespace } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Connector } from "../api/types.ts";
import { LeaseApi } from "../kube/api.ts";
import { KubeApiError, kubeRequest } from "../kube/client.ts";
import { Informer } from "./informer.ts";
import { DEFAULT_LEASE_DURATION_MS, DEFAULT_RETRY_PERIOD_MS, LeaseObservation } from "./leader.ts";
import {
  HANDOVER_NAMESPACE_LABEL,
  HANDOVER_SHARD_ANNOTATION,
  ShardLedger,
  acquireStep,
  handoverFree,
  handoverLeaseName,
  ownershipStep,
  type Handover,
  type ShardLeaseView,
} from "./shard.ts";
import { TargetPool, type Target } from "./targets.ts";

/** A write refused: its namespace is not (or no longer) one this shard acts in. */
export class NamespaceFenced extends Error {
  override name = "NamespaceFenced";
}

/** The namespace of the write in progress, for the checks made as a request leaves. */
const writing = new AsyncLocalStorage<string>();

/** Target client methods that only read; every other method is a write (fenced and counted). */
const TARGET_READS = /^(check|find|list|scan|read|get|group|duplicate|discover|close)/;

/** A shard Lease that is not there, as one record: it "changes" only when it appears. */
const ABSENT: V1Lease = { metadata: { resourceVersion: "absent" } };

const isApiError = (e: unknown, code: number) => (e as { code?: number })?.code === code;

/**
 * The API server's verdict on a label selector: its refusal message for a malformed one, undefined
 * when it takes it (or cannot be asked now: the Namespace watch retries and says so).
 */
export async function refusedSelector(kc: KubeConfig, selector: string): Promise<string | undefined> {
  try {
    const query = new URLSearchParams({ labelSelector: selector, limit: "1" });
    await kubeRequest(kc, "GET", `/api/v1/namespaces?${query}`, undefined, undefined, 10_000);
    return undefined;
  } catch (error) {
    return error instanceof KubeApiError && error.status === 400 ? error.message : undefined;
  }
}

export type NamespaceShardOptions = {
  kc: KubeConfig;
  logger: Logger;
  /** Label selector over Namespaces: the namespaces this shard wants. */
  selector: string;
  /** Where the shard Leases and handover Leases live (shared by all shards). */
  leaseNamespace: string;
  /** This shard's name: the name of the Lease its replicas elect their leader on. */
  shard: string;
  retryPeriodMs?: number;
  /** Before acting in a namespace just taken: read what must be fresh (the brake's state). */
  prepare(namespace: string): Promise<void>;
  /** The caches follow the namespaces held: list again; resolves once they hold what they accept. */
  refresh(): Promise<void>;
  /** This shard now acts in these namespaces: queue their work. */
  acting(namespaces: string[]): void;
  /** A namespace was handed over: forget what memory holds about it. */
  released(namespace: string): void;
  /** Monotonic clock for judging other shards' Leases. Default performance.now. */
  monotonicNow?: () => number;
};

export class NamespaceShard {
  readonly ledger = new ShardLedger();
  private readonly options: NamespaceShardOptions;
  private readonly logger: Logger;
  private readonly namespaces: Informer<V1Namespace>;
  private readonly leases: LeaseApi;
  private readonly retryPeriodMs: number;
  private readonly monoNow: () => number;
  /** Shard Lease name -> what this replica has seen of it. */
  private readonly observed = new Map<string, LeaseObservation>();
  /** Namespace -> the holder it was last seen waiting for (logged once per holder). */
  private readonly waitingFor = new Map<string, string>();
  private identity: string | undefined;
  private stopping = false;
  private again = false;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private drainWaiters: (() => void)[] = [];

  constructor(options: NamespaceShardOptions) {
    this.options = options;
    this.logger = options.logger.child({ shard: options.shard });
    this.retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
    this.monoNow = options.monotonicNow ?? (() => performance.now());
    this.leases = new LeaseApi(options.kc);
    // The server filters: a namespace relabelled out of the selector arrives as a deletion.
    this.namespaces = new Informer<V1Namespace>(options.kc, {
      path: "/api/v1/namespaces",
      labelSelector: options.selector,
      logger: options.logger,
    });
    this.namespaces.onChange(() => this.kick());
  }

  /** Watches the Namespaces (every replica, so a new leader starts with them known). */
  start(): void {
    this.namespaces.start();
  }

  hasSynced(): boolean {
    return this.namespaces.hasSynced();
  }

  /** This replica leads its shard as `identity`: take over the namespaces the selector matches. */
  async lead(identity: string): Promise<void> {
    await this.namespaces.waitForSync();
    this.identity = identity;
    this.logger.info({ selector: this.options.selector }, "leading the shard: taking over its namespaces");
    this.kick();
  }

  /** The caches keep this namespace's objects. */
  holds(namespace: string): boolean {
    return this.ledger.holds(namespace);
  }

  /** Reconciles and writes may run in this namespace. */
  acting(namespace: string): boolean {
    return this.ledger.acting(namespace);
  }

  /**
   * Runs the write `send` to `namespace` (`what` names it in the debug log): refused unless this
   * shard acts there, counted until it settles, and marked in the async context for check().
   */
  write<T>(namespace: string, what: string, send: () => T): T {
    if (!this.ledger.begin(namespace))
      return Promise.reject(
        new NamespaceFenced(
          `${what} in namespace ${namespace || "(none)"} refused: this shard does not act there`,
        ),
      ) as T;
    const startedAt = new Date().toISOString();
    const settle = (ok: boolean) => {
      this.logger.debug({ namespace, write: what, startedAt, ok }, "write");
      if (this.ledger.end(namespace) === 0 && this.ledger.phase(namespace) !== "acting") {
        this.kick(); // a fenced namespace just drained: release it now, not at the next period
        if (this.ledger.totalInFlight() === 0) for (const wake of this.drainWaiters.splice(0)) wake();
      }
    };
    let result: T;
    try {
      result = writing.run(namespace, send);
    } catch (error) {
      settle(false);
      return Promise.reject(error as Error) as T; // as the clients' own failures arrive
    }
    if (result instanceof Promise)
      return result.then(
        (value: unknown) => {
          settle(true);
          return value;
        },
        (error: unknown) => {
          settle(false);
          throw error;
        },
      ) as T;
    settle(true);
    return result;
  }

  /**
   * Called again right before a write request leaves (API server dispatcher, target transports):
   * throws unless it runs inside write() for a namespace this shard still acts in.
   */
  check(): void {
    const namespace = writing.getStore();
    if (namespace === undefined)
      throw new NamespaceFenced(
        "a write outside any namespace refused: a sharded operator writes only through write()",
      );
    if (!this.ledger.acting(namespace))
      throw new NamespaceFenced(
        `a write in namespace ${namespace} refused: it is being handed to another shard`,
      );
  }

  /** A TargetPool whose clients' writes go through write() for their Connector's namespace. */
  targetPool(...args: ConstructorParameters<typeof TargetPool>): TargetPool {
    return new ShardTargetPool(this, ...args);
  }

  /**
   * Graceful shutdown: fences every namespace and waits (at most `timeoutMs`) for the writes in
   * flight. The handover Leases are kept: the shard's next leader takes them over at once, since
   * their holder no longer leads the shard.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    for (const namespace of this.ledger.namespaces()) this.ledger.set(namespace, "draining");
    if (this.ledger.totalInFlight() > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.namespaces.stop();
  }

  // --- the rounds: one at a time, every retry period and on every Namespace change --------------

  private kick(): void {
    if (this.identity === undefined || this.stopping) return;
    this.again = true;
    if (this.loop) return;
    clearTimeout(this.timer);
    this.loop = (async () => {
      while (this.again && !this.stopping) {
        this.again = false;
        await this.round();
      }
    })().finally(() => {
      this.loop = undefined;
      if (!this.stopping)
        this.timer = setTimeout(() => this.kick(), this.retryPeriodMs * (1 + Math.random() * 0.2));
    });
  }

  private async round(): Promise<void> {
    const wanted = new Set(
      this.namespaces.list().flatMap((n) => (n.metadata?.name ? [n.metadata.name] : [])),
    );
    for (const namespace of this.waitingFor.keys())
      if (!wanted.has(namespace)) this.waitingFor.delete(namespace);
    const toSync: string[] = [];
    let released = false;
    for (const namespace of new Set([...wanted, ...this.ledger.namespaces()])) {
      if (this.stopping) return; // stop() fenced everything; nothing is taken or released now
      const want = wanted.has(namespace);
      try {
        let step = ownershipStep(want, this.ledger.phase(namespace), this.ledger.writesInFlight(namespace));
        if (step === "fence") {
          this.ledger.set(namespace, "draining");
          this.logger.info(
            { namespace, writesInFlight: this.ledger.writesInFlight(namespace) },
            "namespace left the shard's selector: writes there fenced; handing it over once those in flight are answered",
          );
          step = ownershipStep(want, "draining", this.ledger.writesInFlight(namespace));
        }
        if (step === "acquire" && (await this.acquire(namespace))) toSync.push(namespace);
        else if (step === "sync") toSync.push(namespace);
        else if (step === "resume") {
          this.ledger.set(namespace, "acting");
          this.logger.info({ namespace }, "namespace matches the shard's selector again: acting there again");
          this.options.acting([namespace]);
        } else if (step === "release") {
          await this.release(namespace);
          released = true;
        }
      } catch (error) {
        this.logger.warn(
          { namespace, error: (error as Error).message },
          "namespace handover step failed; retrying",
        );
      }
    }
    const prepared: string[] = [];
    for (const namespace of toSync) {
      try {
        await this.options.prepare(namespace);
        prepared.push(namespace);
      } catch (error) {
        this.logger.warn(
          { namespace, error: (error as Error).message },
          "could not prepare the namespace; retrying",
        );
      }
    }
    if (prepared.length > 0 || released) await this.options.refresh();
    if (this.stopping) return;
    const acting = prepared.filter((namespace) => this.ledger.phase(namespace) === "syncing");
    for (const namespace of acting) {
      this.ledger.set(namespace, "acting");
      this.logger.info({ namespace }, "acting in namespace");
    }
    if (acting.length > 0) this.options.acting(acting);
  }

  /** Tries to take the namespace's handover Lease; true when this replica holds it now. */
  private async acquire(namespace: string): Promise<boolean> {
    const self = this.identity!;
    const lease = await this.read(namespace);
    const handover: Handover | undefined = lease && {
      holder: lease.spec?.holderIdentity ?? "",
      shard: lease.metadata?.annotations?.[HANDOVER_SHARD_ANNOTATION] ?? "",
    };
    const free = handover && handoverFree(handover, await this.shardLease(handover.shard));
    const step = acquireStep(self, handover, free);
    if (step === "wait") {
      if (this.waitingFor.get(namespace) !== handover!.holder) {
        this.waitingFor.set(namespace, handover!.holder);
        this.logger.info(
          { namespace, holder: handover!.holder, holderShard: handover!.shard },
          "namespace matches the shard's selector but another shard holds it: waiting until it is handed over",
        );
      }
      return false;
    }
    const now = new V1MicroTime(Date.now());
    const metadata = {
      ...lease?.metadata,
      name: handoverLeaseName(namespace),
      namespace: this.options.leaseNamespace,
      labels: {
        ...lease?.metadata?.labels,
        "app.kubernetes.io/managed-by": "roster",
        [HANDOVER_NAMESPACE_LABEL]: namespace,
      },
      annotations: { ...lease?.metadata?.annotations, [HANDOVER_SHARD_ANNOTATION]: this.options.shard },
    };
    const spec = {
      ...lease?.spec,
      holderIdentity: self,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: lease ? (lease.spec?.leaseTransitions ?? 0) + 1 : 0,
    };
    try {
      if (step === "create")
        await this.leases.createNamespacedLease({
          namespace: this.options.leaseNamespace,
          body: { metadata, spec },
        });
      // Guarded by the resourceVersion read: whoever wrote it since wins, and this take fails.
      else
        await this.leases.replaceNamespacedLease({
          name: metadata.name,
          namespace: this.options.leaseNamespace,
          body: { ...lease, metadata, spec },
        });
    } catch (error) {
      if (isApiError(error, 409)) return false; // another leader was quicker: look again next round
      throw error;
    }
    this.waitingFor.delete(namespace);
    this.ledger.set(namespace, "syncing");
    this.logger.info(
      {
        namespace,
        ...(handover ? { from: handover.holder, fromShard: handover.shard, because: free ?? "ours" } : {}),
      },
      "took over namespace",
    );
    return true;
  }

  /** Hands the namespace's Lease back (holder ""), after its writes were fenced and answered. */
  private async release(namespace: string): Promise<void> {
    const lease = await this.read(namespace);
    if (lease && lease.spec?.holderIdentity === this.identity) {
      await this.leases.replaceNamespacedLease({
        name: handoverLeaseName(namespace),
        namespace: this.options.leaseNamespace,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: "", renewTime: new V1MicroTime(Date.now()) },
        },
      });
      this.logger.info({ namespace }, "released namespace: handed over");
    } else {
      this.logger.warn(
        { namespace, holder: lease?.spec?.holderIdentity },
        "namespace's handover Lease was not this replica's any more; letting the namespace go",
      );
    }
    this.ledger.set(namespace, undefined);
    this.options.released(namespace);
  }

  private async read(namespace: string): Promise<V1Lease | undefined> {
    try {
      return await this.leases.readNamespacedLease({
        name: handoverLeaseName(namespace),
        namespace: this.options.leaseNamespace,
      });
    } catch (error) {
      if (isApiError(error, 404)) return undefined;
      throw error;
    }
  }

  /** The shard Lease `name` as this replica observes it (its own shard: itself leading). */
  private async shardLease(name: string): Promise<ShardLeaseView> {
    if (name === this.options.shard) return { exists: true, holder: this.identity!, expired: false };
    let found: V1Lease | undefined;
    if (name !== "")
      try {
        found = await this.leases.readNamespacedLease({ name, namespace: this.options.leaseNamespace });
      } catch (error) {
        if (!isApiError(error, 404)) throw error;
      }
    let observation = this.observed.get(name);
    if (!observation) this.observed.set(name, (observation = new LeaseObservation()));
    observation.observe(found ?? ABSENT, this.monoNow(), DEFAULT_LEASE_DURATION_MS);
    return {
      exists: found !== undefined,
      holder: found?.spec?.holderIdentity ?? "",
      expired: observation.expired(this.monoNow()),
    };
  }
}

/** Target clients whose writes go through the shard's write() for their Connector's namespace. */
class ShardTargetPool extends TargetPool {
  private readonly shard: NamespaceShard;
  private readonly wrapped = new WeakMap<Target, Target>();

  constructor(shard: NamespaceShard, ...args: ConstructorParameters<typeof TargetPool>) {
    super(...args);
    this.shard = shard;
  }

  override async get(connector: Connector): Promise<Target> {
    const target = await super.get(connector);
    let fenced = this.wrapped.get(target);
    if (!fenced) {
      const namespace = connector.metadata.namespace ?? "default";
      const shard = this.shard;
      const client = new Proxy(target.client, {
        get(object, property, receiver) {
          const value = Reflect.get(object, property, receiver) as unknown;
          if (typeof value !== "function" || typeof property !== "string" || TARGET_READS.test(property))
            return value;
          const method = value as (...a: unknown[]) => unknown;
          return (...a: unknown[]) =>
            shard.write(namespace, `${connector.metadata.name}.${property}`, () => method.apply(object, a));
        },
      });
      fenced = { ...target, client };
      this.wrapped.set(target, fenced);
    }
    return fenced;
  }
}
