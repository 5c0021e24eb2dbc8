// The informer's namespace filter (a shard's caches, src/controller/handover.ts) on the real API
// server: objects of namespaces it does not accept never enter the cache nor reach handlers, also
// when they change; refresh() after the accepted set grew adds that namespace's objects, and after
// it shrank forgets them without reporting a deletion (the objects still exist).
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import { Informer, type ChangeType } from "../../src/controller/informer.ts";
import { rosterPath } from "../../src/kube/client.ts";
import { createRoster, freshNamespace, kubeFrom, type Kube } from "../support/kube.ts";
import { person } from "../support/scenario.ts";

let kube: Kube;
let inside: string;
let outside: string;
const accepted = new Set<string>();
let informer: Informer<Employee>;
const seen: [ChangeType, string][] = [];

const hire = (namespace: string, name: string) =>
  createRoster(kube, namespace, {
    apiVersion: API_VERSION,
    kind: "Employee",
    metadata: { name },
    spec: person(`${namespace}-${name}`, name),
  });

const names = () =>
  informer
    .list()
    .map((e) => `${e.metadata.namespace}/${e.metadata.name}`)
    .sort();

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; cache: ${names().join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  kube = kubeFrom(inject("harness"));
  inside = await freshNamespace(kube, "accepted");
  outside = await freshNamespace(kube, "ignored");
  accepted.add(inside);
  await hire(inside, "ada");
  await hire(outside, "bob");
  informer = new Informer<Employee>(kube.kc, {
    path: rosterPath("employees"),
    accept: (namespace) => accepted.has(namespace),
  });
  informer.onChange((type, obj) => {
    if ([inside, outside].includes(obj.metadata.namespace!))
      seen.push([type, `${obj.metadata.namespace}/${obj.metadata.name}`]);
  });
  informer.start();
  await informer.waitForSync(20_000);
});

afterAll(() => informer?.stop());

describe("Informer accept", () => {
  it("keeps only the accepted namespaces, from the first list and from the watch", async () => {
    expect(names().filter((n) => n.startsWith(outside))).toEqual([]);
    expect(informer.get(inside, "ada")).toBeDefined();
    await hire(outside, "cy");
    await hire(inside, "dee");
    await eventually(() => informer.get(inside, "dee") !== undefined, "dee in the cache");
    expect(informer.get(outside, "cy")).toBeUndefined();
    expect(informer.list(outside)).toEqual([]);
    expect(seen.filter(([, key]) => key.startsWith(outside))).toEqual([]);
  });

  it("refresh() after the set grew adds the namespace's objects, as additions", async () => {
    accepted.add(outside);
    await informer.refresh();
    expect(names().filter((n) => n.startsWith(outside))).toEqual([`${outside}/bob`, `${outside}/cy`]);
    expect(seen.filter(([, key]) => key.startsWith(outside))).toEqual([
      ["add", `${outside}/bob`],
      ["add", `${outside}/cy`],
    ]);
  });

  it("refresh() after it shrank forgets them without a deletion, and the watch keeps ignoring them", async () => {
    const before = seen.length;
    accepted.delete(outside);
    await informer.refresh();
    expect(informer.list(outside)).toEqual([]);
    await hire(outside, "eve");
    await hire(inside, "fay");
    await eventually(() => informer.get(inside, "fay") !== undefined, "fay in the cache");
    expect(informer.get(outside, "eve")).toBeUndefined();
    expect(seen.slice(before)).toEqual([["add", `${inside}/fay`]]);
  });
});
