// Events recorded for an Employee show up where people look: events listed by involvedObject and
// `kubectl describe`; repeats are aggregated into one Event with a count.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { pino } from "pino";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { EventRecorder } from "../../src/controller/events.ts";
import { API_VERSION, GROUP, VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";

let cp: ControlPlane;
let core: CoreV1Api;
let employee: Employee;
const namespace = "events-test";

beforeAll(async () => {
  cp = await startControlPlane();
  core = cp.kubeconfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  employee = (await cp.kubeconfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: "employees",
    body: {
      apiVersion: API_VERSION,
      kind: "Employee",
      metadata: { name: "ada" },
      spec: {
        employeeId: "E1",
        username: "ada",
        givenName: "Ada",
        familyName: "Lovelace",
        email: "ada@example.com",
      },
    },
  })) as Employee;
});

afterAll(async () => {
  await cp?.stop();
});

const eventsFor = async (name: string) =>
  (await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;

describe("EventRecorder", () => {
  it("records events that list by involvedObject and show in kubectl describe", async () => {
    const recorder = new EventRecorder(cp.kubeconfig, { reportingInstance: "roster-0" });
    await recorder.normal(employee, "AccountCreated", "Created account uid=ada in connector corp-ldap");
    await recorder.warning(employee, "ProvisioningFailed", "corp-scim: HTTP 503");

    const events = await eventsFor("ada");
    expect(events).toHaveLength(2);
    const created = events.find((e) => e.reason === "AccountCreated")!;
    expect(created).toMatchObject({
      type: "Normal",
      message: "Created account uid=ada in connector corp-ldap",
      count: 1,
      source: { component: "roster" },
      reportingComponent: "roster.dev/operator",
      reportingInstance: "roster-0",
      involvedObject: {
        apiVersion: API_VERSION,
        kind: "Employee",
        name: "ada",
        namespace,
        uid: employee.metadata.uid,
        resourceVersion: employee.metadata.resourceVersion,
      },
    });
    expect(created.firstTimestamp).toBeDefined();
    expect(events.find((e) => e.reason === "ProvisioningFailed")?.type).toBe("Warning");

    const described = cp.kubectl(["describe", "employee", "ada", "-n", namespace]);
    expect(described).toMatch(
      /Normal\s+AccountCreated\s+.*roster\s+Created account uid=ada in connector corp-ldap/,
    );
    expect(described).toMatch(/Warning\s+ProvisioningFailed/);
  });

  it("aggregates identical repeats by bumping count", async () => {
    const recorder = new EventRecorder(cp.kubeconfig);
    for (let i = 0; i < 3; i++)
      await recorder.warning(employee, "DriftDetected", "mail changed in corp-ldap");
    await recorder.warning(employee, "DriftDetected", "title changed in corp-ldap");
    const drift = (await eventsFor("ada")).filter((e) => e.reason === "DriftDetected");
    expect(drift).toHaveLength(2);
    const repeated = drift.find((e) => e.message === "mail changed in corp-ldap")!;
    expect(repeated.count).toBe(3);
    expect(new Date(repeated.lastTimestamp!).getTime()).toBeGreaterThanOrEqual(
      new Date(repeated.firstTimestamp!).getTime(),
    );
  });

  it("creates a new event when the aggregated one is gone", async () => {
    const recorder = new EventRecorder(cp.kubeconfig);
    await recorder.normal(employee, "Synced", "in sync");
    const [first] = (await eventsFor("ada")).filter((e) => e.reason === "Synced");
    await core.deleteNamespacedEvent({ name: first!.metadata!.name!, namespace });
    await recorder.normal(employee, "Synced", "in sync");
    const synced = (await eventsFor("ada")).filter((e) => e.reason === "Synced");
    expect(synced).toHaveLength(1);
    expect(synced[0]!.count).toBe(1);
    expect(synced[0]!.metadata!.name).not.toBe(first!.metadata!.name);
  });

  it("an Event the API server refuses is logged and dropped, and later Events still get written", async () => {
    const logged: Record<string, unknown>[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const recorder = new EventRecorder(cp.kubeconfig, { logger });
    // Refused by the API server (no such namespace): record() resolves all the same...
    await expect(
      recorder.normal(
        { ...employee, metadata: { ...employee.metadata, namespace: "no-such-ns" } },
        "RefusedReason",
        "y",
      ),
    ).resolves.toBeUndefined();
    // ...because it tried, was refused, and logged it...
    expect(logged).toContainEqual(
      expect.objectContaining({
        msg: "could not record event",
        reason: "RefusedReason",
        object: "no-such-ns/ada",
        err: expect.objectContaining({ code: 404 }),
      }),
    );
    // ...and nothing was written anywhere in its place (e.g. in another namespace).
    const anywhere = await core.listEventForAllNamespaces({ fieldSelector: "reason=RefusedReason" });
    expect(anywhere.items).toEqual([]);
    // The same recorder still writes the next Event, to where it belongs.
    await recorder.normal(employee, "AfterRefusal", "still recording");
    const after = (await eventsFor("ada")).filter((e) => e.reason === "AfterRefusal");
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ type: "Normal", message: "still recording", count: 1 });
    expect(logged).toHaveLength(1);
  });
});
