// Member changes to one group are batched by the connector base (src/connectors/base/connector.ts):
// the first goes at once, those that arrive while it is in flight go together in the next
// request, and a batch the target refuses is retried one member at a time. The target here is an
// in-memory group behind the primitives interface, so the overlap of calls is exact; the contract
// suite (test/integration/connector-contract.test.ts) runs the same on every real target.
import { describe, expect, it } from "vitest";
import { createConnector } from "../../src/connectors/base/connector.ts";
import type { TargetPrimitives } from "../../src/connectors/base/primitives.ts";

type Entry = { id: string; employeeId: string };

function target() {
  const accounts = new Map<string, Entry>();
  const members = new Set<string>();
  const requests: string[][] = [];
  let release: (() => void) | undefined;
  let hold = Promise.resolve();
  /** Holds every write until `go()`: what is in flight stays in flight. */
  const pause = () => (hold = new Promise<void>((r) => (release = r)));
  const go = () => release?.();
  const write = async (label: string, ids: string[]) => {
    requests.push([label, ...ids]);
    await hold;
  };
  const primitives = {
    name: "mem",
    idLabel: "id",
    employeeIdAttribute: "key",
    accountsLabel: "accounts",
    describe: (id: string) => `account ${id}`,
    groupKey: (n: string) => n,
    isNotFound: () => false,
    isConflict: () => false,
    readById: async (id: string) => accounts.get(id),
    employeeIdsOf: (e: Entry) => (e.employeeId ? [e.employeeId] : []),
    findGroups: async (name: string) => [name],
    async addMember(_g: string, id: string) {
      await write("add", [id]);
      members.add(id);
      return true;
    },
    async addMembers(_g: string, ids: string[]) {
      await write("add", ids);
      if (ids.some((id) => members.has(id))) throw new Error("value exists");
      for (const id of ids) members.add(id);
      return true;
    },
    async removeMember(_g: string, id: string) {
      await write("remove", [id]);
      members.delete(id);
    },
    async removeMembers(_g: string, ids: string[]) {
      await write("remove", ids);
      for (const id of ids) members.delete(id);
    },
  };
  const connector = createConnector(primitives as unknown as TargetPrimitives<Entry, string>);
  for (let i = 0; i < 10; i++) accounts.set(`a${i}`, { id: `a${i}`, employeeId: `E${i}` });
  const ref = (i: number) => ({ id: `a${i}`, employeeId: `E${i}` });
  return { connector, members, requests, pause, go, ref };
}

describe("member batches", () => {
  it("the first add goes at once; those arriving meanwhile go in one request", async () => {
    const t = target();
    t.pause();
    const first = t.connector.addToGroup("g", t.ref(0));
    await new Promise((r) => setTimeout(r, 5));
    expect(t.requests).toEqual([["add", "a0"]]);
    const rest = [1, 2, 3, 4].map((i) => t.connector.addToGroup("g", t.ref(i)));
    await new Promise((r) => setTimeout(r, 5));
    t.go();
    await Promise.all([first, ...rest]);
    expect(t.requests).toEqual([
      ["add", "a0"],
      ["add", "a1", "a2", "a3", "a4"],
    ]);
    expect([...t.members].sort()).toEqual(["a0", "a1", "a2", "a3", "a4"]);
  });

  it("adds that follow a request in flight wait a moment for company; removals do not", async () => {
    const t = target();
    for (const i of [5, 6]) t.members.add(`a${i}`);
    t.pause();
    const first = t.connector.addToGroup("g", t.ref(0));
    const gone = t.connector.removeFromGroup("g", t.ref(5));
    await new Promise((r) => setTimeout(r, 5));
    const second = t.connector.addToGroup("g", t.ref(1));
    const goneToo = t.connector.removeFromGroup("g", t.ref(6));
    await new Promise((r) => setTimeout(r, 5));
    t.go();
    // The answers are in: the removal queued meanwhile goes at once, the add waits ADD_LINGER_MS,
    // and what arrives in that time still joins it.
    await Promise.all([first, gone]);
    const third = t.connector.addToGroup("g", t.ref(2));
    await new Promise((r) => setTimeout(r, 2));
    expect(t.requests.slice(2)).toEqual([["remove", "a6"]]);
    await Promise.all([second, third, goneToo]);
    expect(t.requests.filter(([kind]) => kind === "add")).toEqual([
      ["add", "a0"],
      ["add", "a1", "a2"],
    ]);
    expect([...t.members].sort()).toEqual(["a0", "a1", "a2"]);
  });

  it("a refused batch is retried one by one, and each caller gets its own answer", async () => {
    const t = target();
    await t.connector.addToGroup("g", t.ref(1));
    t.requests.length = 0;
    t.pause();
    const first = t.connector.addToGroup("g", t.ref(0));
    await new Promise((r) => setTimeout(r, 5));
    const rest = [1, 2].map((i) => t.connector.addToGroup("g", t.ref(i)));
    await new Promise((r) => setTimeout(r, 5));
    t.go();
    await Promise.all([first, ...rest]);
    expect(t.requests).toEqual([
      ["add", "a0"],
      ["add", "a1", "a2"],
      ["add", "a1"],
      ["add", "a2"],
    ]);
    expect([...t.members].sort()).toEqual(["a0", "a1", "a2"]);
  });

  it("removals batch the same way, and a leaver's removal is sent at once", async () => {
    const t = target();
    for (const i of [0, 1, 2, 3]) t.members.add(`a${i}`);
    t.pause();
    const first = t.connector.removeFromGroup("g", t.ref(0));
    await new Promise((r) => setTimeout(r, 5));
    expect(t.requests).toEqual([["remove", "a0"]]);
    const rest = [1, 2, 3].map((i) => t.connector.removeFromGroup("g", t.ref(i)));
    await new Promise((r) => setTimeout(r, 5));
    t.go();
    await Promise.all([first, ...rest]);
    expect(t.requests).toEqual([
      ["remove", "a0"],
      ["remove", "a1", "a2", "a3"],
    ]);
    expect(t.members.size).toBe(0);
  });
});
