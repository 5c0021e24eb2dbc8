// A cache + change source for one resource path: list, then watch from the list's resourceVersion.
// Written on client-node's `Watch` rather than `makeInformer` because that informer stops for good on
// any error other than 410 (client-node #680, #1933): here every watch error or end leads to a
// restart with capped exponential backoff. A watch silent for longer than the API server's bookmarks
// allow (one about every minute) is ended and started again from the last resourceVersion. There is
// no periodic full relist: at 30,000 Employees it read every one of them again every 5 minutes to
// learn nothing (client-go's resync only replays its cache, and the operator's handlers ignore
// unchanged objects).
//
// The cache is what the operator's memory is made of (one object per Employee), so objects are
// slimmed as they enter it (slimObject) and list() hands out one shared array per namespace, built
// again only after a change, instead of a fresh copy per call.
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { kubeRequest } from "../kube/client.ts";

/** The little of an object the cache needs. */
export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
};

/** Set by `kubectl apply` (client-side): a second copy of the whole object, which nothing here reads. */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * What the cache keeps of an object: all but metadata.managedFields (server-side apply's field
 * ownership, about 40% of an Employee with status) and the last-applied annotation, with its
 * strings shared with the other cached objects (sharedStrings). Status writes, patches that test
 * a resourceVersion or the finalizers, and the planner read neither of what goes.
 */
export function slimObject<T extends KubeObject>(obj: T): T {
  const metadata = obj.metadata as
    (Record<string, unknown> & { annotations?: Record<string, string> | null }) | undefined;
  if (
    metadata &&
    ("managedFields" in metadata || (metadata.annotations && LAST_APPLIED in metadata.annotations))
  ) {
    // Rebuilt rather than `delete`d: an object that loses a property in the middle turns into a
    // dictionary, about three times its size.
    const { managedFields: _managedFields, annotations, ...rest } = metadata;
    if (annotations) {
      const { [LAST_APPLIED]: _lastApplied, ...kept } = annotations;
      if (Object.keys(kept).length > 0) rest.annotations = kept;
    }
    (obj as KubeObject).metadata = rest;
  }
  sharedStrings.shareIn(obj);
  return obj;
}

/**
 * One copy of each string that many cached objects carry (an AccessPolicy's name in every
 * entitlement, condition messages, timestamps of the same second, the namespace): JSON.parse gives
 * every object its own. Two generations of at most GENERATION strings: a string seen again in the
 * last generation is kept, the others (names, uids, ids) age out.
 */
class StringPool {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();
  private static readonly GENERATION = 8192;
  private static readonly LONGEST = 256;

  share(value: string): string {
    if (value.length > StringPool.LONGEST) return value;
    const found = this.current.get(value) ?? this.previous.get(value) ?? value;
    if (!this.current.has(value)) {
      if (this.current.size >= StringPool.GENERATION) {
        this.previous = this.current;
        this.current = new Map();
      }
      this.current.set(value, found);
    }
    return found;
  }

  /** Replaces every string under `value` (objects and arrays, in place) by its shared copy. */
  shareIn(value: unknown): void {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item === "string") value[i] = this.share(item);
        else if (item !== null && typeof item === "object") this.shareIn(item);
      }
    } else if (value !== null && typeof value === "object") {
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        const item = record[key];
        if (typeof item === "string") record[key] = this.share(item);
        else if (item !== null && typeof item === "object") this.shareIn(item);
      }
    }
  }
}

const sharedStrings = new StringPool();

/**
 * Kept in step with the cache: told of every object entering it (`old` undefined), replacing one
 * (both) or leaving it (`obj` undefined), a namespace no longer accepted included, before
 * handlers hear of the change. `old` is always the object the index was last told of under its
 * name, so an index can take back exactly what it counted.
 */
export type CacheIndex<T> = { update(obj: T | undefined, old: T | undefined): void };

const namespaceOf = (obj: KubeObject) => obj.metadata?.namespace ?? "";

/**
 * Cached objects by one value each carries (client-go's indexers), e.g. Employees by username:
 * a look-up costs nothing per cached object. One object is held as itself, several by name.
 */
export class ValueIndex<T extends KubeObject> implements CacheIndex<T> {
  private readonly byNamespace = new Map<string, Map<string, T | Map<string, T>>>();
  private readonly valueOf: (obj: T) => string | undefined;

  constructor(valueOf: (obj: T) => string | undefined) {
    this.valueOf = valueOf;
  }

  update(obj: T | undefined, old: T | undefined): void {
    if (old) this.remove(old);
    const value = obj && this.valueOf(obj);
    if (!obj || value === undefined) return;
    const namespace = namespaceOf(obj);
    let values = this.byNamespace.get(namespace);
    if (!values) this.byNamespace.set(namespace, (values = new Map()));
    const held = values.get(value);
    if (held === undefined) values.set(value, obj);
    else if (held instanceof Map) held.set(obj.metadata?.name ?? "", obj);
    else
      values.set(
        value,
        new Map([
          [held.metadata?.name ?? "", held],
          [obj.metadata?.name ?? "", obj],
        ]),
      );
  }

  /** The cached objects of the namespace carrying the value. */
  get(namespace: string, value: string): T[] {
    const held = this.byNamespace.get(namespace)?.get(value);
    return held === undefined ? [] : held instanceof Map ? [...held.values()] : [held];
  }

  private remove(old: T): void {
    const value = this.valueOf(old);
    const namespace = namespaceOf(old);
    const values = this.byNamespace.get(namespace);
    const held = value === undefined ? undefined : values?.get(value);
    if (held === undefined) return;
    const name = old.metadata?.name ?? "";
    if (held instanceof Map) {
      held.delete(name);
      if (held.size === 1) values!.set(value!, [...held.values()][0]!);
    } else if ((held.metadata?.name ?? "") === name) values!.delete(value!);
    if (values!.size === 0) this.byNamespace.delete(namespace);
  }
}

/**
 * How many cached objects carry each (bucket, value) pair, per namespace, e.g. per connector the
 * groups Employees' grants hand out: an object carrying a pair twice counts twice, and a value is
 * gone when its count is back to 0.
 */
export class CountIndex<T extends KubeObject> implements CacheIndex<T> {
  /** "<namespace>/<bucket>" -> value -> count. */
  private readonly counts = new Map<string, Map<string, number>>();
  /** values() as handed out, until that bucket changes. */
  private readonly views = new Map<string, ReadonlySet<string>>();

  private readonly pairsOf: (obj: T) => readonly (readonly [bucket: string, value: string])[];

  constructor(pairsOf: (obj: T) => readonly (readonly [bucket: string, value: string])[]) {
    this.pairsOf = pairsOf;
  }

  update(obj: T | undefined, old: T | undefined): void {
    if (old) for (const [bucket, value] of this.pairsOf(old)) this.add(namespaceOf(old), bucket, value, -1);
    if (obj) for (const [bucket, value] of this.pairsOf(obj)) this.add(namespaceOf(obj), bucket, value, 1);
  }

  /** The values some cached object of the namespace carries in the bucket. Never modify it. */
  values(namespace: string, bucket: string): ReadonlySet<string> {
    const key = `${namespace}/${bucket}`;
    let view = this.views.get(key);
    if (!view) this.views.set(key, (view = new Set(this.counts.get(key)?.keys())));
    return view;
  }

  count(namespace: string, bucket: string, value: string): number {
    return this.counts.get(`${namespace}/${bucket}`)?.get(value) ?? 0;
  }

  private add(namespace: string, bucket: string, value: string, by: 1 | -1): void {
    const key = `${namespace}/${bucket}`;
    let values = this.counts.get(key);
    if (!values) this.counts.set(key, (values = new Map()));
    const had = values.has(value);
    const count = (values.get(value) ?? 0) + by;
    if (count > 0) values.set(value, count);
    else values.delete(value);
    if (values.size === 0) this.counts.delete(key);
    // Only a value coming or going changes what values() shows.
    if (had !== count > 0) this.views.delete(key);
  }
}

export type ChangeType = "add" | "update" | "delete";
/** For "update", `old` is the previously cached object; for "delete", `obj` is the last known one. */
export type ChangeHandler<T> = (type: ChangeType, obj: T, old?: T) => void;

export type InformerOptions<T extends KubeObject = KubeObject> = {
  /** Collection path, e.g. /apis/roster.dev/v1alpha1/employees or /api/v1/namespaces/x/secrets. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Restart backoff after a failed list or watch: base doubling to max. Default 500 ms .. 30 s. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** List page size. Default 500. */
  pageSize?: number;
  /** Server-side watch timeout; the watch then ends cleanly and resumes. Default 5 min. */
  watchTimeoutSeconds?: number;
  /**
   * A watch that delivers nothing for this long (no event, no bookmark) is taken for dead and
   * resumed from the last resourceVersion. Default 150 s: the API server's watch cache sends a
   * bookmark about every 60 s.
   */
  watchIdleMs?: number;
  /** Applied to every object before it enters the cache and reaches handlers. Default slimObject. */
  transform?: (obj: T) => T;
  /**
   * Keeps only the objects of the namespaces it accepts (a sharded operator's, shard.ts); every
   * namespace when unset. Objects of others never enter the cache; when it changes, refresh().
   */
  accept?: (namespace: string) => boolean;
  logger?: Logger;
};

type ListResponse<T> = {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
};

type WatchEvent = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

const ALL = Symbol("all namespaces");

const cacheKey = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ""}/${name ?? ""}`;

export class Informer<T extends KubeObject = KubeObject> {
  private readonly kc: KubeConfig;
  private readonly options: Required<
    Omit<InformerOptions<T>, "labelSelector" | "fieldSelector" | "accept" | "logger">
  > &
    InformerOptions<T>;
  private readonly logger: Logger | undefined;
  private readonly watcher: Watch;

  private readonly objects = new Map<string, T>();
  /** namespace ("" for cluster-scoped) -> its objects by cache key. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  /** What list() handed out, per namespace (ALL for every namespace), until the next change there. */
  private readonly snapshots = new Map<string | typeof ALL, readonly T[]>();
  private readonly handlers = new Set<ChangeHandler<T>>();
  private readonly indexes = new Set<CacheIndex<T>>();
  private resourceVersion = "";
  private synced = false;
  private syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private refreshWaiters: (() => void)[] = [];

  private running = false;
  /** Bumped on every (re)start: callbacks of older watches see a different number and do nothing. */
  private generation = 0;
  private abort: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(kc: KubeConfig, options: InformerOptions<T>) {
    this.kc = kc;
    this.options = {
      backoffBaseMs: 500,
      backoffMaxMs: 30_000,
      pageSize: 500,
      watchTimeoutSeconds: 300,
      watchIdleMs: 150_000,
      transform: slimObject,
      ...options,
    };
    this.logger = options.logger?.child({ informer: options.path });
    this.watcher = new Watch(kc);
    // Watch's inactivity timeout (reset by every chunk received; default 30 s): quiet but live
    // watches still hear a bookmark about every minute.
    (this.watcher as unknown as { requestTimeoutMs: number }).requestTimeoutMs = this.options.watchIdleMs;
  }

  /** Starts list+watch in the background. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.relist();
  }

  /** Stops the watch and all timers; the cache stays readable. */
  stop(): void {
    this.running = false;
    this.generation++;
    this.abort?.abort();
    this.abort = undefined;
    clearTimeout(this.retryTimer);
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w.reject(new Error(`informer ${this.options.path} stopped before it synced`));
    for (const resolve of this.refreshWaiters.splice(0)) resolve();
  }

  /** Lists again now (after `accept` changed); resolves once the cache reflects a list begun after the call. */
  refresh(): Promise<void> {
    if (!this.running) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.refreshWaiters.push(resolve));
    void this.relist();
    return done;
  }

  /** Subscribes to changes; returns the unsubscribe function. Handlers must not mutate objects. */
  onChange(handler: ChangeHandler<T>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Keeps `index` in step with the cache from now on (what is cached already is told first). */
  addIndex(index: CacheIndex<T>): void {
    for (const obj of this.objects.values()) index.update(obj, undefined);
    this.indexes.add(index);
  }

  /** The cached object; namespace "" for cluster-scoped resources. Treat it as read-only. */
  get(namespace: string, name: string): T | undefined {
    return this.objects.get(cacheKey(namespace, name));
  }

  /**
   * The cached objects of a namespace (every namespace when undefined). The same array is returned
   * until something in it changes, so callers may memoize on its identity; never modify it.
   */
  list(namespace?: string): readonly T[] {
    const which = namespace ?? ALL;
    let snapshot = this.snapshots.get(which);
    if (!snapshot) {
      const source = namespace === undefined ? this.objects : this.byNamespace.get(namespace);
      snapshot = source ? [...source.values()] : [];
      this.snapshots.set(which, snapshot);
    }
    return snapshot;
  }

  /** True once the first list has been loaded into the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(timeoutMs?: number): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      this.syncWaiters.push(waiter);
      if (timeoutMs !== undefined) {
        const timer = setTimeout(() => {
          this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
          reject(new Error(`informer ${this.options.path} did not sync within ${timeoutMs} ms`));
        }, timeoutMs);
        const settle =
          <A extends unknown[]>(fn: (...a: A) => void) =>
          (...a: A) => {
            clearTimeout(timer);
            fn(...a);
          };
        waiter.resolve = settle(resolve);
        waiter.reject = settle(reject);
      }
    });
  }

  // --- list -------------------------------------------------------------------------------------

  /**
   * Lists everything, reconciles the cache with it (adds, updates, deletes missed while not watching)
   * and starts a fresh watch from the list's resourceVersion.
   */
  private async relist(): Promise<void> {
    if (!this.running) return;
    const generation = ++this.generation;
    this.abort?.abort(); // the old watch's callbacks are now stale
    this.abort = undefined;
    clearTimeout(this.retryTimer);
    let items: T[];
    let resourceVersion: string;
    try {
      ({ items, resourceVersion } = await this.listAll());
    } catch (error) {
      if (generation !== this.generation) return;
      this.retry(error, "list");
      return;
    }
    if (generation !== this.generation) return;

    const seen = new Set<string>();
    for (const obj of items) {
      if (!this.accepts(obj)) continue;
      const key = cacheKey(obj.metadata?.namespace, obj.metadata?.name);
      seen.add(key);
      const old = this.objects.get(key);
      if (!old) {
        this.store(key, obj);
        this.emit("add", obj);
      } else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
        this.store(key, obj);
        this.emit("update", obj, old);
      }
    }
    for (const [key, old] of this.objects) {
      if (!seen.has(key)) {
        this.drop(key, old);
        // Of a namespace no longer accepted it is only forgotten: the object itself still exists.
        if (this.accepts(old)) this.emit("delete", old);
      }
    }
    this.resourceVersion = resourceVersion;
    this.markSynced();
    for (const resolve of this.refreshWaiters.splice(0)) resolve();
    await this.startWatch(generation);
  }

  private async listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = "";
    do {
      const query = new URLSearchParams({ limit: String(this.options.pageSize) });
      if (continueToken) query.set("continue", continueToken);
      if (this.options.labelSelector) query.set("labelSelector", this.options.labelSelector);
      if (this.options.fieldSelector) query.set("fieldSelector", this.options.fieldSelector);
      const page = await this.getJson<ListResponse<T>>(`${this.options.path}?${query}`);
      // Items of a list carry no apiVersion/kind for built-in types; watch events do. Fill them in
      // so handlers see the same shape from both.
      const kind = page.kind?.replace(/List$/, "");
      for (const item of page.items ?? []) {
        if (!this.accepts(item)) continue; // not even for the length of the list
        items.push(this.options.transform({ apiVersion: page.apiVersion, kind, ...item }));
      }
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);
    return { items, resourceVersion };
  }

  private getJson<R>(pathAndQuery: string): Promise<R> {
    return kubeRequest<R>(this.kc, "GET", pathAndQuery, undefined, undefined, 60_000);
  }

  // --- watch ------------------------------------------------------------------------------------

  private async startWatch(generation: number): Promise<void> {
    const query: Record<string, string | number | boolean> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      // Jitter spreads reconnects of many informers (client-go uses [timeout, 2*timeout)).
      timeoutSeconds: Math.round(this.options.watchTimeoutSeconds * (0.5 + Math.random() / 2)),
    };
    if (this.options.labelSelector) query.labelSelector = this.options.labelSelector;
    if (this.options.fieldSelector) query.fieldSelector = this.options.fieldSelector;
    const started = Date.now();
    let events = 0;
    let gone = false;
    let ended = false;
    try {
      const controller = await this.watcher.watch(
        this.options.path,
        query,
        (type: string, obj: T) => {
          if (generation !== this.generation) return;
          events++;
          if (type === "ERROR") {
            // A Status object: 410 Gone means our resourceVersion is too old → relist.
            gone = (obj as { code?: number }).code === 410;
            this.logger?.info({ status: obj }, "watch error event");
            return;
          }
          this.applyEvent(type as WatchEvent, type === "BOOKMARK" ? obj : this.options.transform(obj));
        },
        (err: unknown) => {
          ended = true;
          if (generation !== this.generation) return;
          this.abort = undefined;
          if (gone || (err as { statusCode?: number })?.statusCode === 410) {
            void this.relist();
          } else if (err && (err as { name?: string }).name !== "TimeoutError") {
            this.retry(err, "watch");
          } else if (events === 0 && Date.now() - started < 1000) {
            // Ended at once without a word: treat like an error so we cannot spin.
            this.retry(new Error("watch ended immediately"), "watch");
          } else {
            // A normal end (server timeout): resume from the last resourceVersion.
            this.failures = 0;
            void this.startWatch(generation);
          }
        },
      );
      if (generation !== this.generation) controller.abort();
      else if (!ended) {
        this.abort = controller;
        this.failures = 0; // connected: the server is back
      }
    } catch (error) {
      if (generation === this.generation) this.retry(error, "watch");
    }
  }

  private applyEvent(type: WatchEvent, obj: T): void {
    const rv = obj.metadata?.resourceVersion;
    if (type === "BOOKMARK") {
      if (rv) this.resourceVersion = rv;
      return;
    }
    this.failures = 0; // the watch works
    const key = cacheKey(obj.metadata?.namespace, obj.metadata?.name);
    const old = this.objects.get(key);
    if (!this.accepts(obj)) {
      if (old) this.drop(key, old);
    } else if (type === "DELETED") {
      if (old) {
        this.drop(key, old);
        this.emit("delete", obj);
      }
    } else if (!old) {
      this.store(key, obj);
      this.emit("add", obj);
    } else if (old.metadata?.resourceVersion !== rv) {
      this.store(key, obj);
      this.emit("update", obj, old);
    }
    if (rv) this.resourceVersion = rv;
  }

  /**
   * Restarts after a failure with capped exponential backoff. The restart relists: whatever happened
   * while we were not watching (deletes included) is then reconciled into the cache.
   */
  private retry(error: unknown, what: string): void {
    if (!this.running) return;
    const delay = Math.min(this.options.backoffBaseMs * 2 ** this.failures, this.options.backoffMaxMs);
    this.failures++;
    this.logger?.warn({ err: error, delayMs: delay, failures: this.failures }, `${what} failed; restarting`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.relist(), delay);
  }

  private accepts(obj: T): boolean {
    return this.options.accept?.(obj.metadata?.namespace ?? "") ?? true;
  }

  private store(key: string, obj: T): void {
    const namespace = obj.metadata?.namespace ?? "";
    const old = this.objects.get(key);
    this.objects.set(key, obj);
    let inNamespace = this.byNamespace.get(namespace);
    if (!inNamespace) this.byNamespace.set(namespace, (inNamespace = new Map()));
    inNamespace.set(key, obj);
    this.changed(namespace);
    this.updateIndexes(obj, old);
  }

  private drop(key: string, old: T): void {
    const namespace = old.metadata?.namespace ?? "";
    this.objects.delete(key);
    const inNamespace = this.byNamespace.get(namespace);
    inNamespace?.delete(key);
    if (inNamespace?.size === 0) this.byNamespace.delete(namespace);
    this.changed(namespace);
    this.updateIndexes(undefined, old);
  }

  private updateIndexes(obj: T | undefined, old: T | undefined): void {
    for (const index of this.indexes) {
      try {
        index.update(obj, old);
      } catch (error) {
        this.logger?.error({ err: error }, "cache index threw");
      }
    }
  }

  private changed(namespace: string): void {
    this.snapshots.delete(namespace);
    this.snapshots.delete(ALL);
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private emit(type: ChangeType, obj: T, old?: T): void {
    for (const handler of this.handlers) {
      try {
        handler(type, obj, old);
      } catch (error) {
        // One faulty handler must not break the cache or the other handlers.
        this.logger?.error({ err: error, type }, "change handler threw");
      }
    }
  }
}
