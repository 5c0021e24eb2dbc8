// Sharding's decisions (src/controller/shard.ts): when a namespace's handover Lease is free to take,
// what a shard does next about a namespace, and the ledger that fences writes to the namespaces a
// shard is leaving. The last part plays whole handovers through these decisions against a Lease
// store that, like the API server, refuses a write whose resourceVersion is stale.
import { describe, expect, it } from "vitest";
import {
  ShardLedger,
  acquireStep,
  handoverFree,
  handoverLeaseName,
  ownershipStep,
  type Handover,
  type Phase,
  type ShardLeaseView,
} from "../../src/controller/shard.ts";

const leads = (holder: string, expired = false): ShardLeaseView => ({ exists: true, holder, expired });

describe("handoverFree", () => {
  const held: Handover = { holder: "a-1", shard: "shard-a" };

  it("is free once released", () => {
    expect(handoverFree({ holder: "", shard: "shard-a" }, leads("a-1"))).toBe("released");
  });

  it("is not free while the holder still leads its shard and its shard Lease changes", () => {
    expect(handoverFree(held, leads("a-1"))).toBeUndefined();
  });

  it("is free when the holder's shard has another leader, or none (its Lease given up)", () => {
    expect(handoverFree(held, leads("a-2"))).toBe("holder-no-longer-leads");
    expect(handoverFree(held, leads(""))).toBe("holder-no-longer-leads");
  });

  it("is free when the holder's shard Lease has not changed for its duration (a crash)", () => {
    expect(handoverFree(held, leads("a-1", true))).toBe("shard-lease-expired");
  });

  it("is not free the moment the shard Lease is missing, only once it stayed missing", () => {
    expect(handoverFree(held, { exists: false, holder: "", expired: false })).toBeUndefined();
    expect(handoverFree(held, { exists: false, holder: "", expired: true })).toBe("shard-lease-expired");
  });
});

describe("ownershipStep", () => {
  const table: [boolean, Phase | undefined, number, string][] = [
    [true, undefined, 0, "acquire"],
    [true, "syncing", 0, "sync"],
    [true, "acting", 3, "keep"],
    [true, "draining", 2, "resume"],
    [false, undefined, 0, "none"],
    [false, "syncing", 0, "fence"],
    [false, "acting", 2, "fence"],
    [false, "draining", 2, "drain"],
    [false, "draining", 0, "release"],
  ];
  it.each(table)("wanted %s, phase %s, %i writes in flight: %s", (wanted, phase, writes, step) => {
    expect(ownershipStep(wanted, phase, writes)).toBe(step);
  });
});

describe("acquireStep", () => {
  it("creates a Lease that is not there, takes a free one (or its own), waits for a held one", () => {
    expect(acquireStep("b-1", undefined, undefined)).toBe("create");
    expect(acquireStep("b-1", { holder: "", shard: "shard-a" }, "released")).toBe("take");
    expect(acquireStep("b-1", { holder: "a-1", shard: "shard-a" }, "shard-lease-expired")).toBe("take");
    expect(acquireStep("b-1", { holder: "b-1", shard: "shard-b" }, undefined)).toBe("take");
    expect(acquireStep("b-1", { holder: "a-1", shard: "shard-a" }, undefined)).toBe("wait");
  });

  it("names the Lease so that no label-like shard Lease name can collide with it", () => {
    expect(handoverLeaseName("people")).toBe("roster-handover.people");
  });
});

describe("ShardLedger", () => {
  it("lets writes begin only where the shard acts, and counts them until answered", () => {
    const ledger = new ShardLedger();
    expect(ledger.begin("people")).toBe(false);
    ledger.set("people", "syncing");
    expect(ledger.holds("people")).toBe(true);
    expect(ledger.begin("people")).toBe(false); // caches not filled yet
    ledger.set("people", "acting");
    expect(ledger.begin("people")).toBe(true);
    expect(ledger.begin("people")).toBe(true);
    expect(ledger.writesInFlight("people")).toBe(2);
    ledger.set("people", "draining");
    expect(ledger.begin("people")).toBe(false); // fenced: nothing new is sent
    expect(ledger.end("people")).toBe(1);
    expect(ownershipStep(false, ledger.phase("people"), ledger.writesInFlight("people"))).toBe("drain");
    expect(ledger.end("people")).toBe(0);
    expect(ownershipStep(false, ledger.phase("people"), ledger.writesInFlight("people"))).toBe("release");
    expect(ledger.totalInFlight()).toBe(0);
  });
});

/** A namespace's handover Lease as the API server keeps it: a write must carry the current version. */
class LeaseStore {
  record: (Handover & { version: number }) | undefined;
  read() {
    return this.record && { ...this.record };
  }
  write(expected: number | undefined, next: Handover): boolean {
    if ((this.record?.version ?? undefined) !== expected) return false; // 409
    this.record = { ...next, version: (this.record?.version ?? 0) + 1 };
    return true;
  }
}

/** One shard leader's view: who it is, which shard, and its ledger for the namespace "people". */
type Leader = { identity: string; shard: string; ledger: ShardLedger };
const leader = (identity: string, shard: string): Leader => ({ identity, shard, ledger: new ShardLedger() });

/**
 * One round of `l` for "people" as handover.ts runs it: the decisions above, the Lease read before
 * and written with the version read. `shardLeases` is what `l` observes of each shard's Lease.
 */
function round(l: Leader, wanted: boolean, store: LeaseStore, shardLeases: Record<string, ShardLeaseView>) {
  let step = ownershipStep(wanted, l.ledger.phase("people"), l.ledger.writesInFlight("people"));
  if (step === "fence") {
    l.ledger.set("people", "draining");
    step = ownershipStep(wanted, "draining", l.ledger.writesInFlight("people"));
  }
  if (step === "resume" || step === "sync") l.ledger.set("people", "acting");
  if (step === "release") {
    const read = store.read();
    if (read?.holder === l.identity) store.write(read.version, { holder: "", shard: read.shard });
    l.ledger.set("people", undefined);
  }
  if (step === "acquire") {
    const read = store.read();
    const view = read && (read.shard === l.shard ? leads(l.identity) : shardLeases[read.shard]!);
    const next = acquireStep(l.identity, read, read && handoverFree(read, view!));
    if (next !== "wait" && store.write(read?.version, { holder: l.identity, shard: l.shard }))
      l.ledger.set("people", "syncing");
  }
}

const bothAct = (x: Leader, y: Leader) => x.ledger.acting("people") && y.ledger.acting("people");

describe("handovers played through the decisions", () => {
  it("a relabelled namespace: B waits while A drains, takes it once A released it; never both", () => {
    const store = new LeaseStore();
    const a = leader("a-1", "shard-a");
    const b = leader("b-1", "shard-b");
    const views = { "shard-a": leads("a-1"), "shard-b": leads("b-1") };
    round(a, true, store, views);
    round(a, true, store, views);
    expect(a.ledger.acting("people")).toBe(true);
    expect(a.ledger.begin("people")).toBe(true); // a write in flight when the labels change

    // Relabelled from A's selector to B's.
    round(b, true, store, views);
    expect(b.ledger.holds("people")).toBe(false); // A still holds it
    round(a, false, store, views);
    expect(a.ledger.phase("people")).toBe("draining");
    expect(a.ledger.begin("people")).toBe(false);
    round(b, true, store, views);
    round(a, false, store, views);
    expect(store.read()?.holder).toBe("a-1"); // not released while the write is unanswered
    expect(bothAct(a, b)).toBe(false);

    a.ledger.end("people");
    round(a, false, store, views);
    expect(store.read()?.holder).toBe("");
    round(b, true, store, views);
    round(b, true, store, views);
    expect(b.ledger.acting("people")).toBe(true);
    expect(a.ledger.holds("people")).toBe(false);
  });

  it("a crashed holder: its shard's new leader and another shard race; exactly one takes it", () => {
    const store = new LeaseStore();
    const a1 = leader("a-1", "shard-a");
    round(a1, true, store, {});
    expect(store.read()).toMatchObject({ holder: "a-1", shard: "shard-a" });
    // a-1 is SIGKILLed. B (whose selector now matches too) sees shard-a's Lease unchanged: it waits.
    const b = leader("b-1", "shard-b");
    round(b, true, store, { "shard-a": leads("a-1") });
    expect(b.ledger.holds("people")).toBe(false);
    // The Lease expires; a-2 becomes shard-a's leader. Both read version 1 and try to take it.
    const a2 = leader("a-2", "shard-a");
    const read = store.read()!;
    const tookA2 = store.write(read.version, { holder: "a-2", shard: "shard-a" });
    const tookB = store.write(read.version, { holder: "b-1", shard: "shard-b" });
    expect([tookA2, tookB]).toEqual([true, false]);
    // B's next round sees a-2 leading shard-a, renewing: it keeps waiting.
    round(b, true, store, { "shard-a": leads("a-2") });
    expect(b.ledger.holds("people")).toBe(false);
    round(a2, true, store, {}); // a-2 holds it already ("take" again is harmless)
    round(a2, true, store, {});
    expect(a2.ledger.acting("people")).toBe(true);
    expect(bothAct(a2, b)).toBe(false);
  });

  it("labels that flip back before the release: the holder acts again and never let go", () => {
    const store = new LeaseStore();
    const a = leader("a-1", "shard-a");
    round(a, true, store, {});
    round(a, true, store, {});
    a.ledger.begin("people");
    round(a, false, store, {});
    expect(a.ledger.phase("people")).toBe("draining");
    round(a, true, store, {});
    expect(a.ledger.acting("people")).toBe(true);
    expect(store.read()).toMatchObject({ holder: "a-1", version: 1 });
  });
});
