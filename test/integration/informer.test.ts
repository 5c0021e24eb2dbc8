// The informer on a real API server: it sees creates, updates and deletes, and keeps working after
// the API server restarts (the case where client-node's own informer stops for good).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { Informer, type ChangeType } from "../../src/controller/informer.ts";
import { addFinalizer, FINALIZER } from "../../src/controller/finalizer.ts";
import { API_VERSION, GROUP, VERSION } from "../../src/api/schema.ts";
import { CustomApi } from "../../src/kube/api.ts";
import { rosterPath, serverSideApply, writeStatus } from "../../src/kube/client.ts";
import type { Employee } from "../../src/api/types.ts";

let cp: ControlPlane;
let custom: CustomObjectsApi;
const namespace = "informer-test";

const employee = (name: string, id: string): Employee => ({
  apiVersion: API_VERSION,
  kind: "Employee",
  metadata: { name },
  spec: {
    employeeId: id,
    username: name,
    givenName: "Given",
    familyName: "Family",
    email: `${name}@example.com`,
  },
});
const create = (name: string, id: string, labels?: Record<string, string>) =>
  custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: "employees",
    body: { ...employee(name, id), metadata: { name, ...(labels ? { labels } : {}) } },
  });
const remove = (name: string) =>
  custom.deleteNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: "employees",
    name,
  });

async function eventually(check: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  cp = await startControlPlane();
  custom = cp.kubeconfig.makeApiClient(CustomObjectsApi);
  await cp.kubeconfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
});

afterAll(async () => {
  await cp?.stop();
});

describe("Informer", () => {
  it("lists, watches, and resumes after the API server restarts", async () => {
    await create("before", "E0");
    const informer = new Informer<Employee>(cp.kubeconfig, {
      path: `/apis/${GROUP}/${VERSION}/employees`,
      backoffBaseMs: 200,
      backoffMaxMs: 2000,
    });
    const events: [ChangeType, string][] = [];
    informer.onChange((type, obj) => events.push([type, obj.metadata.name]));
    informer.start();
    try {
      await informer.waitForSync(10_000);
      expect(informer.hasSynced()).toBe(true);
      expect(informer.get(namespace, "before")?.spec.employeeId).toBe("E0");
      expect(informer.get(namespace, "before")?.kind).toBe("Employee");
      expect(events).toContainEqual(["add", "before"]);

      await create("ada", "E1");
      await eventually(() => informer.get(namespace, "ada") !== undefined, 10_000, "ada in cache");
      expect(
        informer
          .list(namespace)
          .map((e) => e.metadata.name)
          .sort(),
      ).toEqual(["ada", "before"]);
      expect(informer.list("elsewhere")).toEqual([]);

      await cp.restartApiServer();

      // Created and deleted after the restart: seen only if the watch was re-established.
      await create("grace", "E2");
      await remove("ada");
      await eventually(() => informer.get(namespace, "grace") !== undefined, 30_000, "grace after restart");
      await eventually(
        () => informer.get(namespace, "ada") === undefined,
        30_000,
        "ada deleted after restart",
      );
      expect(events).toContainEqual(["add", "grace"]);
      expect(events).toContainEqual(["delete", "ada"]);
    } finally {
      informer.stop();
    }
  });

  it("resumes a quiet watch from where it was without listing again, and honours a label selector", async () => {
    await create("labelled", "E3", { team: "x" });
    // Nothing arrives for 1.5 s on a quiet watch (the API server's bookmarks come about every
    // minute), so the informer takes each watch for dead and watches again.
    const informer = new Informer<Employee>(cp.kubeconfig, {
      path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/employees`,
      labelSelector: "team=x",
      watchIdleMs: 1500,
    });
    const spied = informer as unknown as { listAll: () => Promise<unknown>; startWatch: () => Promise<void> };
    const lists = vi.spyOn(spied, "listAll");
    const watches = vi.spyOn(spied, "startWatch");
    const seen: [ChangeType, string][] = [];
    informer.onChange((type, obj) => seen.push([type, obj.metadata.name]));
    informer.start();
    try {
      await informer.waitForSync(10_000);
      expect(informer.list().map((e) => e.metadata.name)).toEqual(["labelled"]);
      await create("unlabelled", "E5");
      await eventually(() => watches.mock.calls.length >= 4, 20_000, "the watch resumed three times");

      await create("late", "E6", { team: "x" });
      await eventually(() => informer.get(namespace, "late") !== undefined, 20_000, "late after the resumes");
      expect(seen).toEqual([
        ["add", "labelled"],
        ["add", "late"],
      ]);
      // Every resume went on from the last resourceVersion: the one list is the first one, and
      // none comes by itself (there is no periodic relist).
      expect(lists).toHaveBeenCalledTimes(1);
      expect(
        informer
          .list()
          .map((e) => e.metadata.name)
          .sort(),
      ).toEqual(["labelled", "late"]);
    } finally {
      informer.stop();
    }
  });

  it("caches objects without managedFields or last-applied, and what it keeps serves the writes", async () => {
    const lastApplied = "kubectl.kubernetes.io/last-applied-configuration";
    const path = rosterPath("employees", namespace, "slim");
    // Server-side apply records managedFields; `kubectl apply` adds the last-applied annotation.
    await serverSideApply(
      cp.kubeconfig,
      `${path}`,
      {
        ...employee("slim", "E4"),
        metadata: {
          name: "slim",
          namespace,
          annotations: { [lastApplied]: JSON.stringify(employee("slim", "E4")), "team.example/owner": "hr" },
        },
      },
      "informer-test",
      true,
    );
    const informer = new Informer<Employee>(cp.kubeconfig, {
      path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/employees`,
    });
    informer.start();
    try {
      await informer.waitForSync(10_000);
      const cached = informer.get(namespace, "slim")!;
      expect(cached.metadata).not.toHaveProperty("managedFields");
      expect(cached.metadata.annotations).toEqual({ "team.example/owner": "hr" });
      expect(cached.metadata.uid).toBeDefined();
      expect(cached.metadata.resourceVersion).toBeDefined();
      expect(cached.spec.employeeId).toBe("E4");

      // The finalizer patch (a JSON patch testing the finalizers) and a status write, both built
      // from the cached object with the operator's client, go through; what comes back by the
      // watch is slim too.
      const roster = new CustomApi(cp.kubeconfig);
      await addFinalizer(roster, "employees", cached);
      await writeStatus(roster, "employees", cached, { phase: "Active" });
      await eventually(
        () => informer.get(namespace, "slim")?.status?.phase === "Active",
        10_000,
        "status in cache",
      );
      const updated = informer.get(namespace, "slim")!;
      expect(updated.metadata.finalizers).toEqual([FINALIZER]);
      expect(updated.metadata).not.toHaveProperty("managedFields");
      expect(updated.metadata.annotations).toEqual({ "team.example/owner": "hr" });
    } finally {
      informer.stop();
    }
  });

  it("hands out one list per namespace until something in it changes", async () => {
    const informer = new Informer<Employee>(cp.kubeconfig, { path: `/apis/${GROUP}/${VERSION}/employees` });
    informer.start();
    try {
      await informer.waitForSync(10_000);
      const before = informer.list(namespace);
      const everywhere = informer.list();
      expect(informer.list(namespace)).toBe(before);
      expect(informer.list()).toBe(everywhere);

      await create("lin", "E5");
      await eventually(() => informer.get(namespace, "lin") !== undefined, 10_000, "lin in cache");
      const after = informer.list(namespace);
      expect(after).not.toBe(before);
      expect(after.map((e) => e.metadata.name)).toContain("lin");
      expect(before.map((e) => e.metadata.name)).not.toContain("lin");
      expect(informer.list().length).toBe(everywhere.length + 1);
      expect(informer.list("elsewhere")).toEqual([]);

      await remove("lin");
      await eventually(() => informer.get(namespace, "lin") === undefined, 10_000, "lin gone");
      expect(informer.list(namespace).map((e) => e.metadata.name)).not.toContain("lin");
    } finally {
      informer.stop();
    }
  });

  it("works for core resources (Secrets in one namespace)", async () => {
    const core = cp.kubeconfig.makeApiClient(CoreV1Api);
    const informer = new Informer(cp.kubeconfig, { path: `/api/v1/namespaces/${namespace}/secrets` });
    informer.start();
    try {
      await informer.waitForSync(10_000);
      await core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: "s1" }, stringData: { k: "v" } },
      });
      await eventually(() => informer.get(namespace, "s1") !== undefined, 10_000, "secret in cache");
      expect(informer.get(namespace, "s1")?.kind).toBe("Secret");
    } finally {
      informer.stop();
    }
  });
});
