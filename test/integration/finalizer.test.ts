// The deprovision finalizer and status writes against a real API server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import {
  ConflictError,
  FINALIZER,
  addFinalizer,
  addFinalizerPatch,
  patchStatus,
  removeFinalizer,
  removeFinalizerPatch,
} from "../../src/controller/finalizer.ts";
import { API_VERSION, GROUP, VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import { CustomApi } from "../../src/kube/api.ts";

let cp: ControlPlane;
let api: CustomObjectsApi;
/** The operator's client, which the code under test writes with. */
let roster: CustomApi;
const namespace = "finalizer-test";

const create = async (name: string, finalizers?: string[]): Promise<Employee> =>
  (await api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: "employees",
    body: {
      apiVersion: API_VERSION,
      kind: "Employee",
      metadata: { name, ...(finalizers ? { finalizers } : {}) },
      spec: {
        employeeId: `E-${name}`,
        username: name,
        givenName: "A",
        familyName: "B",
        email: `${name}@example.com`,
      },
    },
  })) as Employee;
const read = async (name: string): Promise<Employee> =>
  (await api.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: "employees",
    name,
  })) as Employee;

beforeAll(async () => {
  cp = await startControlPlane();
  api = cp.kubeconfig.makeApiClient(CustomObjectsApi);
  roster = new CustomApi(cp.kubeconfig);
  await cp.kubeconfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
});

afterAll(async () => {
  await cp?.stop();
});

describe("finalizer patches", () => {
  it("are built as kube-rs does", () => {
    expect(addFinalizerPatch(undefined)).toEqual([
      { op: "test", path: "/metadata/finalizers", value: null },
      { op: "add", path: "/metadata/finalizers", value: [FINALIZER] },
    ]);
    expect(addFinalizerPatch(["other"])).toEqual([
      { op: "test", path: "/metadata/finalizers", value: ["other"] },
      { op: "add", path: "/metadata/finalizers/-", value: FINALIZER },
    ]);
    expect(addFinalizerPatch([FINALIZER])).toBeUndefined();
    expect(removeFinalizerPatch(["other", FINALIZER])).toEqual([
      { op: "test", path: "/metadata/finalizers/1", value: FINALIZER },
      { op: "remove", path: "/metadata/finalizers/1" },
    ]);
    expect(removeFinalizerPatch(["other"])).toBeUndefined();
  });
});

describe("finalizer on the API server", () => {
  it("adds idempotently and removes", async () => {
    const fresh = await create("ada");
    const added = await addFinalizer(roster, "employees", fresh);
    expect(added.metadata.finalizers).toEqual([FINALIZER]);
    const again = await addFinalizer(roster, "employees", added);
    expect(again.metadata.finalizers).toEqual([FINALIZER]);
    expect((await read("ada")).metadata.finalizers).toEqual([FINALIZER]);

    const removed = await removeFinalizer(roster, "employees", await read("ada"));
    expect(removed.metadata.finalizers ?? []).toEqual([]);
    expect(await removeFinalizer(roster, "employees", removed)).toBe(removed);
  });

  it("appends to existing finalizers and removes only its own", async () => {
    const fresh = await create("grace", ["example.com/other"]);
    const added = await addFinalizer(roster, "employees", fresh);
    expect(added.metadata.finalizers).toEqual(["example.com/other", FINALIZER]);
    const removed = await removeFinalizer(roster, "employees", added);
    expect(removed.metadata.finalizers).toEqual(["example.com/other"]);
  });

  it("reports a stale test op as a conflict", async () => {
    const fresh = await create("linus");
    await addFinalizer(roster, "employees", fresh); // fresh is now stale: it has no finalizers
    const stale = { ...fresh, metadata: { ...fresh.metadata, finalizers: ["example.com/gone"] } };
    const addError = await addFinalizer(roster, "employees", stale).catch((e: unknown) => e);
    expect(addError).toBeInstanceOf(ConflictError);
    expect([409, 422]).toContain((addError as ConflictError).code);

    // Removal tests the element at the index it was read from.
    const current = await read("linus");
    const shifted = {
      ...current,
      metadata: { ...current.metadata, finalizers: ["example.com/x", FINALIZER] },
    };
    const removeError = await removeFinalizer(roster, "employees", shifted).catch((e: unknown) => e);
    expect(removeError).toBeInstanceOf(ConflictError);
    expect((await read("linus")).metadata.finalizers).toEqual([FINALIZER]);
  });

  it("lets a deleted object go once the finalizer is removed", async () => {
    const added = await addFinalizer(roster, "employees", await create("margaret"));
    await api.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: "employees",
      name: "margaret",
    });
    const deleting = await read("margaret");
    expect(deleting.metadata.deletionTimestamp).toBeDefined();
    expect(deleting.metadata.finalizers).toEqual(added.metadata.finalizers);
    await removeFinalizer(roster, "employees", deleting);
    const gone = await read("margaret").catch((e: { code?: number }) => e.code);
    expect(gone).toBe(404);
  });

  it("writes status through the subresource with a merge patch", async () => {
    await create("barbara");
    const patched = await patchStatus<Employee>(roster, "employees", namespace, "barbara", {
      phase: "Pending",
      observedGeneration: 1,
    });
    expect(patched.status?.phase).toBe("Pending");
    await patchStatus(roster, "employees", namespace, "barbara", { phase: "Active" });
    const current = await read("barbara");
    expect(current.status).toMatchObject({ phase: "Active", observedGeneration: 1 });
    // The status subresource ignores everything but status.
    expect(current.spec.username).toBe("barbara");
    // A schema violation is an error of its own, not a conflict to retry.
    const invalid = await patchStatus(roster, "employees", namespace, "barbara", { phase: "Bogus" }).catch(
      (e: unknown) => e,
    );
    expect(invalid).not.toBeInstanceOf(ConflictError);
    expect((invalid as { code?: number }).code).toBe(422);
  });
});
