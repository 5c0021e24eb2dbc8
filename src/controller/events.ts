// Kubernetes Events (core/v1) for what the operator did to an object: what `kubectl describe` and
// `kubectl get events` show people. A repeat of the same event on the same object within the window
// bumps count/lastTimestamp of the existing Event (client-go's EventCorrelator, simplified) instead
// of creating another, so a failing reconcile loop does not flood etcd.
//
// SECURITY: reason and message are stored in plain text and readable by anyone who can list Events
// in the namespace. Callers must never put secret values (passwords, tokens, Secret data, bind
// credentials) in them; name the Secret instead.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { PatchStrategy, type CoreV1Event, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CoreApi } from "../kube/api.ts";

export type EventType = "Normal" | "Warning";

/** The object an event is about (any Kubernetes object, e.g. an Employee from the informer). */
export type EventSubject = {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
};

export type EventRecorderOptions = {
  /** source.component. Default "roster". */
  component?: string;
  /** reportingComponent (reportingController). Default "roster.dev/operator". */
  reportingComponent?: string;
  /** reportingInstance. Default: the hostname (the pod name). */
  reportingInstance?: string;
  /** Repeats within this window are aggregated into one Event. Default 10 min. */
  aggregateWindowMs?: number;
  /** At most this many recent events are remembered for aggregation. Default 4096. */
  cacheSize?: number;
  logger?: Logger;
  /** The client the Events are written with (the operator's is fenced). Default: one on the kubeconfig. */
  core?: Pick<CoreApi, "createNamespacedEvent" | "patchNamespacedEvent">;
};

type Recent = { name: string; namespace: string; count: number; lastSeen: number };

const MAX_MESSAGE = 1024; // the API server rejects messages over 1 KiB in Events

export class EventRecorder {
  private readonly core: Pick<CoreApi, "createNamespacedEvent" | "patchNamespacedEvent">;
  private readonly component: string;
  private readonly reportingComponent: string;
  private readonly reportingInstance: string;
  private readonly windowMs: number;
  private readonly cacheSize: number;
  private readonly logger: Logger | undefined;
  /** Map order is insertion order: re-inserting on use makes the first entry the least recent. */
  private readonly recent = new Map<string, Recent>();

  constructor(kc: KubeConfig, options: EventRecorderOptions = {}) {
    this.core = options.core ?? new CoreApi(kc);
    this.component = options.component ?? "roster";
    this.reportingComponent = options.reportingComponent ?? "roster.dev/operator";
    this.reportingInstance = (options.reportingInstance ?? hostname()).slice(0, 128);
    this.windowMs = options.aggregateWindowMs ?? 10 * 60_000;
    this.cacheSize = options.cacheSize ?? 4096;
    this.logger = options.logger;
  }

  normal(subject: EventSubject, reason: string, message: string): Promise<void> {
    return this.record(subject, "Normal", reason, message);
  }

  warning(subject: EventSubject, reason: string, message: string): Promise<void> {
    return this.record(subject, "Warning", reason, message);
  }

  /**
   * Records an event. Never throws: an event that cannot be written is logged and dropped, since
   * events are informational and must not fail a reconcile. `reason` is UpperCamelCase
   * (e.g. "AccountCreated"); `message` is a human sentence without secret values.
   */
  async record(subject: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = subject.metadata.namespace || "default";
    message = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const key = [
      namespace,
      subject.kind,
      subject.metadata.name,
      subject.metadata.uid,
      type,
      reason,
      message,
    ].join("\u0000");
    const now = new Date();
    try {
      const seen = this.recent.get(key);
      if (seen && now.getTime() - seen.lastSeen < this.windowMs) {
        this.recent.delete(key);
        this.recent.set(key, seen);
        if (await this.bump(seen, now)) return;
      }
      const created = await this.create(subject, namespace, type, reason, message, now);
      this.remember(key, { name: created, namespace, count: 1, lastSeen: now.getTime() });
    } catch (error) {
      this.logger?.warn(
        { err: error, reason, object: `${namespace}/${subject.metadata.name}` },
        "could not record event",
      );
    }
  }

  /** Bumps count on the existing Event; false when it is gone (expired by its TTL) or unreadable. */
  private async bump(seen: Recent, now: Date): Promise<boolean> {
    const count = seen.count + 1;
    try {
      await this.core.patchNamespacedEvent(
        { name: seen.name, namespace: seen.namespace, body: { count, lastTimestamp: now } },
        PatchStrategy.MergePatch,
      );
    } catch (error) {
      if ((error as { code?: number }).code === 404) return false;
      throw error;
    }
    seen.count = count;
    seen.lastSeen = now.getTime();
    return true;
  }

  private async create(
    subject: EventSubject,
    namespace: string,
    type: EventType,
    reason: string,
    message: string,
    now: Date,
  ): Promise<string> {
    const { name, uid, resourceVersion } = subject.metadata;
    // client-go names events <object>.<hex nanoseconds>; a random suffix avoids clashes between replicas.
    const eventName = `${name}.${(BigInt(now.getTime()) * 1_000_000n).toString(16)}${randomBytes(2).toString("hex")}`;
    const body: CoreV1Event = {
      metadata: { name: eventName, namespace },
      involvedObject: {
        apiVersion: subject.apiVersion,
        kind: subject.kind,
        name,
        namespace: subject.metadata.namespace,
        uid,
        resourceVersion,
      },
      reason,
      message,
      type,
      source: { component: this.component },
      reportingComponent: this.reportingComponent,
      reportingInstance: this.reportingInstance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await this.core.createNamespacedEvent({ namespace, body });
    return eventName;
  }

  private remember(key: string, entry: Recent): void {
    this.recent.delete(key);
    this.recent.set(key, entry);
    while (this.recent.size > this.cacheSize) {
      const oldest = this.recent.keys().next().value as string;
      this.recent.delete(oldest);
    }
  }
}
