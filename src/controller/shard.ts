// Sharding by namespace (`roster operator --shard-selector`): several operator Deployments, each
// electing its own leader on its own Lease, split the namespaces between them by a label selector
// over Namespaces. This file is the decisions, pure; the I/O (the Namespace watch, the handover
// Leases, the write fence) is in handover.ts.
//
// A shard's leader acts in a namespace only while it holds that namespace's handover Lease
// (roster-handover.<namespace>, in the lease namespace all shards share). The handover Lease is
// never renewed: it stays valid for as long as its holder leads its shard, which the holder's shard
// Lease (the one its replicas elect their leader on) shows. Another leader may therefore take it
// over only when
//   - it was released (holder ""): the releasing leader fenced its writes in the namespace and saw
//     every write already sent answered before it released;
//   - the shard Lease it names is now held by someone else (or was given up): its holder lost its
//     shard's leadership, and a leader stops writing before its Lease can be taken (leader.ts);
//   - that shard Lease has not changed for its whole duration (its holder crashed), judged as
//     client-go judges expiry: by the taker's own monotonic clock, never by comparing clocks.
// Every take is a write guarded by the handover Lease's resourceVersion: of two leaders trying at
// once (another shard, or a new leader of the same shard), exactly one wins.

/** Names of the handover Leases: `roster-handover.<namespace>` (a dot, which no label has). */
export const HANDOVER_LEASE_PREFIX = "roster-handover.";
/** The shard (its leader Lease's name) through which the handover Lease's holder leads. */
export const HANDOVER_SHARD_ANNOTATION = "roster.dev/shard";
/** Which namespace a handover Lease is for, to list them: `kubectl get lease -l roster.dev/handover-namespace`. */
export const HANDOVER_NAMESPACE_LABEL = "roster.dev/handover-namespace";

export function handoverLeaseName(namespace: string): string {
  return `${HANDOVER_LEASE_PREFIX}${namespace}`;
}

/** A namespace's handover Lease as read: the holder (a replica's identity, "" when released) and its shard. */
export type Handover = { holder: string; shard: string };

/** The shard Lease a handover names, as this replica observes it. */
export type ShardLeaseView = {
  /** False while the Lease is not there (404). */
  exists: boolean;
  /** Its holderIdentity: the shard's current leader ("" when released). */
  holder: string;
  /** Unchanged (or absent) for its whole duration by this replica's clock. */
  expired: boolean;
};

/** Why a handover Lease is free to take, or undefined while its holder may still write. */
export type FreeBecause = "released" | "holder-no-longer-leads" | "shard-lease-expired";

export function handoverFree(handover: Handover, shard: ShardLeaseView): FreeBecause | undefined {
  if (handover.holder === "") return "released";
  // A shard Lease that vanished says nothing (someone deleted it; its leader re-creates it on its
  // next renewal): only one that stays away for a whole lease duration frees the namespace.
  if (!shard.exists) return shard.expired ? "shard-lease-expired" : undefined;
  if (shard.holder !== handover.holder) return "holder-no-longer-leads";
  return shard.expired ? "shard-lease-expired" : undefined;
}

/**
 * Where this shard stands with a namespace it holds: `syncing` (its handover Lease is ours, the
 * caches are being filled: no writes yet), `acting` (writes and reconciles), `draining` (it left
 * the selector: writes are fenced, those already sent are awaited before the Lease is released).
 */
export type Phase = "syncing" | "acting" | "draining";

export type OwnershipStep =
  /** Not wanted and not held. */
  | "none"
  /** Wanted, not held: read its handover Lease and take it if free. */
  | "acquire"
  /** Held, caches not filled yet: read what must be fresh, fill them, then act. */
  | "sync"
  /** Held and acting. */
  | "keep"
  /** Was leaving, matches again; the Lease was never let go: act again. */
  | "resume"
  /** No longer wanted: fence its writes now. */
  | "fence"
  /** Fenced; writes sent before the fence are still unanswered. */
  | "drain"
  /** Fenced and drained: release the handover Lease. */
  | "release";

/** What to do next about one namespace: `wanted` is whether its labels match this shard's selector. */
export function ownershipStep(
  wanted: boolean,
  phase: Phase | undefined,
  writesInFlight: number,
): OwnershipStep {
  if (wanted) {
    switch (phase) {
      case undefined:
        return "acquire";
      case "syncing":
        return "sync";
      case "acting":
        return "keep";
      case "draining":
        return "resume";
    }
  }
  if (phase === undefined) return "none";
  if (phase !== "draining") return "fence";
  return writesInFlight > 0 ? "drain" : "release";
}

export type AcquireStep = "create" | "take" | "wait";

/** How to get a wanted namespace's handover Lease (`handover` undefined: there is none yet). */
export function acquireStep(
  self: string,
  handover: Handover | undefined,
  free: FreeBecause | undefined,
): AcquireStep {
  if (!handover) return "create";
  // Ours already (this replica took it, then lost track): writing it again is as safe as a take.
  if (handover.holder === self || free !== undefined) return "take";
  return "wait";
}

/**
 * The namespaces this shard holds, their phase, and the writes to each that are unanswered. A
 * write may begin only in a namespace this shard acts in; releasing waits for the count to be 0.
 */
export class ShardLedger {
  private readonly phases = new Map<string, Phase>();
  private readonly inFlight = new Map<string, number>();

  phase(namespace: string): Phase | undefined {
    return this.phases.get(namespace);
  }

  /** Held in any phase: the caches keep its objects. */
  holds(namespace: string): boolean {
    return this.phases.has(namespace);
  }

  /** Writes and reconciles may run there. */
  acting(namespace: string): boolean {
    return this.phases.get(namespace) === "acting";
  }

  set(namespace: string, phase: Phase | undefined): void {
    if (phase === undefined) this.phases.delete(namespace);
    else this.phases.set(namespace, phase);
  }

  namespaces(): string[] {
    return [...this.phases.keys()];
  }

  /** A write to `namespace` is about to be sent: false (refused) unless this shard acts there. */
  begin(namespace: string): boolean {
    if (!this.acting(namespace)) return false;
    this.inFlight.set(namespace, (this.inFlight.get(namespace) ?? 0) + 1);
    return true;
  }

  /** A write begun has been answered (or failed); returns how many remain in flight there. */
  end(namespace: string): number {
    const left = (this.inFlight.get(namespace) ?? 1) - 1;
    if (left > 0) this.inFlight.set(namespace, left);
    else this.inFlight.delete(namespace);
    return Math.max(0, left);
  }

  writesInFlight(namespace: string): number {
    return this.inFlight.get(namespace) ?? 0;
  }

  totalInFlight(): number {
    let total = 0;
    for (const n of this.inFlight.values()) total += n;
    return total;
  }
}
