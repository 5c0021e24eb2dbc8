// Each narrow controller on its own, against the harness's real kube-apiserver (and its real slapd
// where a target is needed): real Informers, the operator's own API clients (src/kube/api.ts), the
// controller's own queue run and shut down per test. Assertions are on what a user sees: the
// objects' status, their Events, the annotations, the metrics.
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { Attribute, Change } from "ldapts";
import { pino } from "pino";
import { API_VERSION, GROUP, VERSION } from "../../src/api/schema.ts";
import type { AccessPolicy, Connector, Employee, GroupRule } from "../../src/api/types.ts";
import { ldapAttributes } from "../../src/connectors/ldap/attributes.ts";
import { ApprovalController } from "../../src/controller/approvals.ts";
import { APPROVE_ANNOTATION, BrakeGate } from "../../src/controller/brake.ts";
import { ConnectorController } from "../../src/controller/connector.ts";
import { EventRecorder } from "../../src/controller/events.ts";
import { patchStatus } from "../../src/controller/finalizer.ts";
import { Informer, type ChangeHandler } from "../../src/controller/informer.ts";
import { PolicyStatusController } from "../../src/controller/policy-status.ts";
import { ScanController } from "../../src/controller/scan.ts";
import { SecretReader } from "../../src/controller/secrets.ts";
import { TargetPool } from "../../src/controller/targets.ts";
import { CoreApi, CustomApi } from "../../src/kube/api.ts";
import { rosterPath } from "../../src/kube/client.ts";
import { registry } from "../../src/observe/metrics.ts";
import type { NamespaceObjects } from "../../src/plan/employee.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, freshNamespace, getRoster, kubeFrom, refusal } from "../support/kube.ts";
import { ensureOUs, ldapLook, type LdapLook } from "../support/ldap.ts";
import { metricValue } from "../support/operator.ts";
import { person } from "../support/scenario.ts";

const info = inject("harness");
const kube = kubeFrom(info);
/** The clients the operator hands its controllers (kube's are the test's own). */
const api = { core: new CoreApi(kube.kc), custom: new CustomApi(kube.kc) };

// Warnings of the code under test, quoted in timeout messages.
const logs: string[] = [];
const logger = pino({ level: "warn" }, { write: (line: string) => void logs.push(line.trim()) });
const recentLogs = () => logs.slice(-8).join("\n");

const employees = new Informer<Employee>(kube.kc, { path: rosterPath("employees"), logger });
const policies = new Informer<AccessPolicy>(kube.kc, { path: rosterPath("accesspolicies"), logger });
const rules = new Informer<GroupRule>(kube.kc, { path: rosterPath("grouprules"), logger });
const connectors = new Informer<Connector>(kube.kc, { path: rosterPath("connectors"), logger });
const informers = [employees, policies, rules, connectors];
const getConnector = (namespace: string, name: string) => connectors.get(namespace, name);
const objectsOf = (namespace: string): NamespaceObjects => ({
  employees: employees.list(namespace),
  policies: policies.list(namespace),
  rules: rules.list(namespace),
  connectors: connectors.list(namespace),
});

let ldap: LdapLook;
let ns: string;
/** Run in afterEach, last registered first: queue shutdowns, pool closes, handler removals. */
let cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  for (const informer of informers) informer.start();
  await Promise.all(informers.map((i) => i.waitForSync(15_000)));
  ldap = await ldapLook(info.ldap);
});

afterAll(async () => {
  for (const informer of informers) informer.stop();
  await ldap?.close();
});

beforeEach(async () => {
  ns = await freshNamespace(kube, "ctl");
  logs.length = 0;
});

afterEach(async () => {
  const pending = cleanups.reverse();
  cleanups = [];
  for (const cleanup of pending) await cleanup();
});

/** Runs a controller's queue(s) for the test; shut down in afterEach. */
function start(controller: { run(): Promise<void>; shutdown(): Promise<void> }): void {
  const running = controller.run();
  cleanups.push(async () => {
    await controller.shutdown();
    await running;
  });
}

function subscribe<T>(informer: Informer<T & object>, handler: ChangeHandler<T & object>): void {
  cleanups.push(informer.onChange(handler) as () => void);
}

/** What a ConnectorController needs of the caches, Secrets and Events beyond its own options. */
function connectorExtras() {
  return {
    employees: (namespace: string) => employees.list(namespace),
    connectors: (namespace: string) => connectors.list(namespace),
    employeesWith: (namespace: string, employeeId: string) =>
      employees.list(namespace).filter((e) => e.spec.employeeId === employeeId),
    secrets: new SecretReader(api.core),
    events: new EventRecorder(kube.kc, { logger }),
  };
}

function newPool(ttlMs = 30_000): TargetPool {
  const secrets = new SecretReader(api.core, ttlMs);
  const pool = new TargetPool((namespace, ref) => secrets.read(namespace, ref), logger);
  cleanups.push(() => pool.close());
  return pool;
}

/** Changes that matter to a reconcile, as the operator filters them (not our own status writes). */
function metaChanged(
  obj: { metadata: { generation?: number; annotations?: Record<string, string> } },
  old?: { metadata: { generation?: number; annotations?: Record<string, string> } },
): boolean {
  return (
    !old ||
    obj.metadata.generation !== old.metadata.generation ||
    JSON.stringify(obj.metadata.annotations ?? {}) !== JSON.stringify(old.metadata.annotations ?? {})
  );
}

async function bindSecret(name: string, data: Record<string, string>): Promise<void> {
  await kube.core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name }, type: "Opaque", stringData: data },
  });
}

async function ldapConnector(
  name: string,
  options: {
    secret?: string;
    usersDN?: string;
    groupsDN?: string;
    spec?: Record<string, unknown>;
  } = {},
): Promise<void> {
  await createRoster(kube, ns, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name },
    spec: {
      ldap: {
        url: info.ldap.url,
        bindDN: info.ldap.adminDN,
        bindPasswordSecretRef: { name: options.secret ?? "ldap-bind", key: "password" },
        usersDN: options.usersDN ?? info.ldap.usersDN,
        groupsDN: options.groupsDN ?? info.ldap.groupsDN,
      },
      ...options.spec,
    },
  });
}

const readConnector = async (name: string) => (await getRoster(kube, ns, "Connector", name)) as Connector;

/** Reads the object from the API server until `check` holds; returns it. */
async function until<T>(
  read: () => Promise<T>,
  what: string,
  check: (obj: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  let last: T | undefined;
  await waitFor(
    async () => {
      last = await read();
      return check(last);
    },
    timeoutMs,
    () => `${what}; last seen: ${JSON.stringify(last)}\nlogs:\n${recentLogs()}`,
    100,
  );
  return last!;
}

/** Until the informer's cache holds the object and `check` holds for it. */
async function cached<T>(get: () => T | undefined, what: string, check: (obj: T) => boolean = () => true) {
  let last: T | undefined;
  await waitFor(
    async () => {
      last = get();
      return last !== undefined && check(last);
    },
    15_000,
    () => `${what} in the informer's cache; last: ${JSON.stringify(last)}`,
    25,
  );
  return last!;
}

const condition = (obj: { status?: { conditions?: { type: string }[] } }, type: string) =>
  obj.status?.conditions?.find((c) => c.type === type) as
    | { type: string; status: string; reason: string; message: string; observedGeneration?: number }
    | undefined;

async function eventsOf(name: string) {
  const list = await kube.core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items.map((e) => ({
    type: e.type ?? "",
    reason: e.reason ?? "",
    message: e.message ?? "",
    kind: e.involvedObject.kind ?? "",
    count: e.count ?? 1,
  }));
}

const held = (c: Connector) => (c.status?.deprovisioning?.held ?? []).map((h) => h.account);

async function annotate(name: string, value: string): Promise<void> {
  await kube.custom.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: "connectors",
      name,
      body: { metadata: { annotations: { [APPROVE_ANNOTATION]: value } } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("ConnectorController", () => {
  it("reports Ready/Connected with managedAccounts and Insecure, a missing Secret key as ConfigurationError, and recovers once fixed", async () => {
    await bindSecret("ldap-bind", { password: info.ldap.adminPassword });
    await bindSecret("late-bind", { other: "not the password" });
    await ldapConnector("good");
    await ldapConnector("late", { secret: "late-bind" });
    await cached(() => getConnector(ns, "good"), "Connector good");
    await cached(() => getConnector(ns, "late"), "Connector late");

    const recovered: string[] = [];
    const brake = new BrakeGate({
      custom: api.custom,
      managed: () => 0,
      events: new EventRecorder(kube.kc, { logger }),
      changed: () => {},
    });
    const controller = new ConnectorController({
      logger,
      custom: api.custom,
      getConnector,
      // The SecretReader caches for 30 s in the operator; short here so the fix is read at once.
      pool: newPool(100),
      managed: (c) => (c.metadata.name === "good" ? 7 : 0),
      brake,
      scan: () => undefined,
      recovered: (c) => recovered.push(c.metadata.name),
      checkIntervalMs: 300,
      ...connectorExtras(),
    });
    start(controller);
    controller.enqueue(getConnector(ns, "good")!);
    controller.enqueue(getConnector(ns, "late")!);

    const good = await until(
      () => readConnector("good"),
      "good: Ready True",
      (c) => condition(c, "Ready")?.status === "True",
    );
    expect(condition(good, "Ready")).toMatchObject({
      status: "True",
      reason: "Connected",
      observedGeneration: good.metadata.generation,
    });
    expect(good.status?.managedAccounts).toBe(7);
    expect(good.status?.observedGeneration).toBe(good.metadata.generation);
    expect(condition(good, "Insecure")).toMatchObject({ status: "True", reason: "InsecureTransport" });
    expect(condition(good, "Insecure")?.message).toContain("ldap:// without startTLS");
    expect(condition(good, "DeprovisioningHeld")).toMatchObject({ status: "False", reason: "WithinLimits" });

    const late = await until(
      () => readConnector("late"),
      "late: Ready False",
      (c) => condition(c, "Ready")?.status === "False",
    );
    expect(condition(late, "Ready")?.reason).toBe("ConfigurationError");
    expect(condition(late, "Ready")?.message).toMatch(
      new RegExp(`Secret ${ns}/late-bind\\b.*\\bkey password\\b`),
    );
    expect(JSON.stringify(late.status)).not.toContain(info.ldap.adminPassword);
    expect(late.status?.managedAccounts).toBe(0);
    // Several checks in the broken state: still nothing recovered.
    await sleep(700);
    expect(recovered).toEqual([]);

    await kube.core.replaceNamespacedSecret({
      name: "late-bind",
      namespace: ns,
      body: {
        metadata: { name: "late-bind" },
        type: "Opaque",
        stringData: { password: info.ldap.adminPassword },
      },
    });
    const fixed = await until(
      () => readConnector("late"),
      "late: Ready True after the Secret was fixed",
      (c) => condition(c, "Ready")?.status === "True",
    );
    expect(condition(fixed, "Ready")?.reason).toBe("Connected");
    // Further checks (every 300 ms) find it Ready already: no second call.
    await sleep(1000);
    expect(recovered).toEqual(["late"]);
  });
});

describe("BrakeGate with the ConnectorController", () => {
  it("persists held deprovisions in status, keeps them through the controller's status write, and a fresh gate decides the same", async () => {
    await bindSecret("ldap-bind", { password: info.ldap.adminPassword });
    await ldapConnector("brake", {
      spec: { safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 } },
    });
    const connector = await cached(() => getConnector(ns, "brake"), "Connector brake");

    let managedNow = 1;
    /** What the controller's cache says, when the test makes it lag behind the API server. */
    let lagging: Connector | undefined;
    const changed: string[] = [];
    const gate = new BrakeGate({
      custom: api.custom,
      managed: () => 0,
      events: new EventRecorder(kube.kc, { logger }),
      changed: (c) => changed.push(c.metadata.name),
    });
    const controller = new ConnectorController({
      logger,
      custom: api.custom,
      getConnector: (namespace, name) => lagging ?? getConnector(namespace, name),
      pool: newPool(),
      managed: () => managedNow,
      brake: gate,
      scan: () => undefined,
      recovered: () => {},
      // Only the writes this test asks for.
      checkIntervalMs: 600_000,
      ...connectorExtras(),
    });
    start(controller);
    controller.enqueue(connector);
    await until(
      () => readConnector("brake"),
      "brake: first status write",
      (c) => condition(c, "Ready")?.status === "True" && c.status?.managedAccounts === 1,
    );

    expect(gate.limit(connector)).toBe(1);
    expect(await gate.request(connector, "a")).toEqual({ allowed: true });
    // The cache as it was between the first and the second decision: "a" counted, nothing held.
    lagging = structuredClone(
      await cached(
        () => getConnector(ns, "brake"),
        "brake with a counted",
        (c) => c.status?.deprovisioning?.counted?.length === 1,
      ),
    );
    expect(held(lagging)).toEqual([]);
    expect(await gate.request(connector, "b")).toEqual({ allowed: false, held: 1, limit: 1 });
    expect(await gate.request(connector, "c")).toEqual({ allowed: false, held: 2, limit: 1 });
    expect(changed).toEqual(["brake", "brake"]);

    // Written by the gate itself, before its decisions returned.
    const written = await readConnector("brake");
    expect(held(written)).toEqual(["b", "c"]);
    expect(written.status?.heldDeprovisions).toBe(2);
    expect(written.status?.deprovisioning?.counted?.map((c) => c.account)).toEqual(["a"]);
    const heldEvents = await until(
      () => eventsOf("brake"),
      "DeprovisioningHeld Event",
      (events) => events.some((e) => e.reason === "DeprovisioningHeld"),
    );
    expect(heldEvents.filter((e) => e.reason === "DeprovisioningHeld")).toEqual([
      expect.objectContaining({ type: "Warning", kind: "Connector", count: 1 }),
    ]);

    // The controller writes status again (as `changed` asks), from the lagging cache: its body
    // takes the brake from the gate, not from the stale status it spreads.
    managedNow = 3;
    controller.enqueue(lagging);
    const after = await until(
      () => readConnector("brake"),
      "brake: the controller's second status write",
      (c) => c.status?.managedAccounts === 3,
    );
    expect(held(after)).toEqual(["b", "c"]);
    expect(after.status?.heldDeprovisions).toBe(2);
    expect(after.status?.deprovisioning?.counted?.map((c) => c.account)).toEqual(["a"]);
    expect(condition(after, "DeprovisioningHeld")).toMatchObject({
      status: "True",
      reason: "MassChangeBrake",
    });
    expect(condition(after, "DeprovisioningHeld")?.message).toContain(`${APPROVE_ANNOTATION}=2`);
    expect(condition(after, "Ready")?.status).toBe("True");
    lagging = undefined;

    // A restarted operator: a new gate loaded from the Connector as the API server has it.
    const fresh = await readConnector("brake");
    const restarted = new BrakeGate({
      custom: api.custom,
      managed: () => 0,
      events: new EventRecorder(kube.kc, { logger }),
      changed: () => {},
    });
    restarted.load(fresh);
    // Its decisions then come with Connectors from a cache that may lag (here: the object from
    // before any decision, with no brake in its status): what was loaded decides, not that.
    expect(connector.status?.deprovisioning).toBeUndefined();
    expect(restarted.held(connector)).toEqual({ count: 2, limit: 1 });
    expect(await restarted.request(connector, "d")).toEqual({ allowed: false, held: 3, limit: 1 });
    expect(await restarted.request(connector, "a")).toEqual({ allowed: true });
    expect(held(await readConnector("brake"))).toEqual(["b", "c", "d"]);
  });
});

describe("ApprovalController", () => {
  it("refuses an approval that is not the held count, releases on the exact count, and removes the annotation both times", async () => {
    await bindSecret("ldap-bind", { password: info.ldap.adminPassword });
    await ldapConnector("approvals", {
      spec: { safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 } },
    });
    const connector = await cached(() => getConnector(ns, "approvals"), "Connector approvals");
    const gate = new BrakeGate({
      custom: api.custom,
      managed: () => 0,
      events: new EventRecorder(kube.kc, { logger }),
      changed: () => {},
    });
    for (const account of ["a", "b", "c"]) await gate.request(connector, account);
    expect(held(await readConnector("approvals"))).toEqual(["b", "c"]);

    const released: string[] = [];
    const approvals = new ApprovalController({
      logger,
      custom: api.custom,
      getConnector,
      brake: gate,
      released: (namespace) => released.push(namespace),
    });
    // As the operator wires it: annotation edits enqueue, status writes do not.
    subscribe(connectors, (type, obj, old) => {
      if (type !== "delete" && obj.metadata.namespace === ns && metaChanged(obj, old)) approvals.observe(obj);
    });
    start(approvals);

    await annotate("approvals", "5");
    const refusedEvents = await until(
      () => eventsOf("approvals"),
      "ApprovalRefused Event",
      (events) => events.some((e) => e.reason === "ApprovalRefused"),
    );
    expect(refusedEvents.find((e) => e.reason === "ApprovalRefused")).toMatchObject({
      type: "Warning",
      kind: "Connector",
    });
    expect(refusedEvents.find((e) => e.reason === "ApprovalRefused")?.message).toMatch(/"5" refused.*\b2\b/);
    const refused = await until(
      () => readConnector("approvals"),
      "the refused annotation removed",
      (c) => c.metadata.annotations?.[APPROVE_ANNOTATION] === undefined,
    );
    expect(held(refused)).toEqual(["b", "c"]);
    expect(refused.status?.heldDeprovisions).toBe(2);
    expect(released).toEqual([]);

    await annotate("approvals", "2");
    await waitFor(
      async () => released.length > 0,
      20_000,
      () => `released was not called; logs:\n${recentLogs()}`,
    );
    expect(released).toEqual([ns]);
    const approved = await until(
      () => readConnector("approvals"),
      "released and annotation removed",
      (c) => c.metadata.annotations?.[APPROVE_ANNOTATION] === undefined && held(c).length === 0,
    );
    expect(approved.status?.deprovisioning?.released).toEqual(["b", "c"]);
    expect(approved.status?.heldDeprovisions).toBe(0);
    const events = await until(
      () => eventsOf("approvals"),
      "DeprovisioningApproved Event",
      (list) => list.some((e) => e.reason === "DeprovisioningApproved"),
    );
    expect(events.find((e) => e.reason === "DeprovisioningApproved")).toMatchObject({
      type: "Normal",
      kind: "Connector",
      message: "2 held deprovisions approved and released",
    });
    // Each annotation was acted on exactly once (no second run refusing "nothing is held").
    await sleep(500);
    expect((await eventsOf("approvals")).filter((e) => e.reason === "ApprovalRefused")).toEqual([
      expect.objectContaining({ count: 1 }),
    ]);
    expect(released).toEqual([ns]);
  });
});

describe("PolicyStatusController", () => {
  it("counts matched people and members, and shows a paused rule as Paused", async () => {
    const employee = (name: string, id: string, department: string) =>
      createRoster(kube, ns, {
        apiVersion: API_VERSION,
        kind: "Employee",
        metadata: { name },
        spec: person(id, name, { department }),
      });
    await employee("ada", "P1", "Engineering");
    await employee("grace", "P2", "Engineering");
    await employee("linus", "P3", "Sales");
    await createRoster(kube, ns, {
      apiVersion: API_VERSION,
      kind: "AccessPolicy",
      metadata: { name: "engineering" },
      spec: {
        match: [{ key: "department", operator: "In", values: ["Engineering"] }],
        grants: [{ connector: "corp-ldap" }],
      },
    });
    // A pattern RE2 rejects (a backreference) never gets past admission.
    const invalid = await refusal(() =>
      createRoster(kube, ns, {
        apiVersion: API_VERSION,
        kind: "GroupRule",
        metadata: { name: "backref" },
        spec: {
          group: "backref",
          match: [{ key: "department", operator: "Matches", values: ["(a)\\1"] }],
          connectors: ["corp-ldap"],
        },
      }),
    );
    expect(invalid?.code).toBe(422);
    expect(invalid?.message).toContain("must be valid regular expressions");
    // Matches all three, but a GroupRule only adds groups where a policy gives an account.
    const staffRule = {
      group: "staff",
      match: [{ key: "department", operator: "Matches", values: ["^(Engineering|Sales)$"] }],
      connectors: ["corp-ldap"],
    };
    await createRoster(kube, ns, {
      apiVersion: API_VERSION,
      kind: "GroupRule",
      metadata: { name: "staff" },
      spec: staffRule,
    });
    await createRoster(kube, ns, {
      apiVersion: API_VERSION,
      kind: "GroupRule",
      metadata: { name: "frozen", annotations: { "roster.dev/paused": "true" } },
      spec: { ...staffRule, group: "frozen" },
    });

    const controller = new PolicyStatusController({
      logger,
      custom: api.custom,
      getPolicy: (namespace, name) => policies.get(namespace, name),
      getRule: (namespace, name) => rules.get(namespace, name),
      policies: (namespace) => policies.list(namespace),
      rules: (namespace) => rules.list(namespace),
      employees: (namespace) => employees.list(namespace),
      unmanaged: () => undefined,
    });
    // As the operator wires it: spec/annotation edits enqueue the object, Employee changes the namespace.
    subscribe(policies, (type, obj, old) => {
      if (type !== "delete" && obj.metadata.namespace === ns && metaChanged(obj, old))
        controller.enqueuePolicy(obj);
    });
    subscribe(rules, (type, obj, old) => {
      if (type !== "delete" && obj.metadata.namespace === ns && metaChanged(obj, old))
        controller.enqueueRule(obj);
    });
    subscribe(employees, (_type, obj) => {
      if (obj.metadata.namespace === ns) controller.enqueueNamespace(ns);
    });
    start(controller);
    // Everything created before the handlers: enqueued once the cache has it, as at start of leading.
    await cached(() => (employees.list(ns).length === 3 ? true : undefined), "three Employees");
    controller.enqueuePolicy(await cached(() => policies.get(ns, "engineering"), "AccessPolicy"));
    controller.enqueueRule(await cached(() => rules.get(ns, "staff"), "GroupRule staff"));
    controller.enqueueRule(await cached(() => rules.get(ns, "frozen"), "GroupRule frozen"));

    const read =
      <T>(kind: string, name: string) =>
      async () =>
        (await getRoster(kube, ns, kind, name)) as T;
    const policy = await until(
      read<AccessPolicy>("AccessPolicy", "engineering"),
      "AccessPolicy status",
      (p) => p.status?.matchedEmployees !== undefined && condition(p, "Ready") !== undefined,
    );
    expect(policy.status?.matchedEmployees).toBe(2);
    expect(policy.status?.observedGeneration).toBe(policy.metadata.generation);
    expect(condition(policy, "Ready")).toMatchObject({ status: "True", reason: "Valid" });
    expect(condition(policy, "Paused")).toBeUndefined();

    const staff = await until(
      read<GroupRule>("GroupRule", "staff"),
      "GroupRule staff status",
      (r) => r.status?.memberCount !== undefined,
    );
    expect(staff.status?.memberCount).toBe(2);
    expect(condition(staff, "Ready")).toMatchObject({ status: "True", reason: "Valid" });
    expect(condition(staff, "Paused")).toBeUndefined();

    const frozen = await until(
      read<GroupRule>("GroupRule", "frozen"),
      "GroupRule frozen status",
      (r) => condition(r, "Paused") !== undefined,
    );
    expect(condition(frozen, "Paused")).toMatchObject({ status: "True", reason: "Paused" });
    expect(condition(frozen, "Ready")?.status).toBe("True");

    // A third Engineer: the policy's count follows (debounced behind the Employee change).
    await employee("barbara", "P4", "Engineering");
    const grown = await until(
      read<AccessPolicy>("AccessPolicy", "engineering"),
      "AccessPolicy matchedEmployees 3",
      (p) => p.status?.matchedEmployees === 3,
    );
    expect(condition(grown, "Ready")?.status).toBe("True");
  });
});

describe("ScanController", () => {
  /** A Connector on its own subtree of the harness slapd, and a ScanController for it. */
  async function scanSetup(name: string, onScanned: (c: Connector) => void = () => {}) {
    const ou = `scan-${randomBytes(3).toString("hex")}`;
    const [usersDN, groupsDN] = await ensureOUs(ldap.client, ou, [info.ldap.usersDN, info.ldap.groupsDN]);
    await bindSecret("ldap-bind", { password: info.ldap.adminPassword });
    await ldapConnector(name, { usersDN: usersDN!, groupsDN: groupsDN! });
    const connector = await cached(() => getConnector(ns, name), `Connector ${name}`);
    const scanned: string[] = [];
    const drifted: Employee[] = [];
    const pool = newPool();
    const brake = new BrakeGate({
      custom: api.custom,
      managed: () => 0,
      events: new EventRecorder(kube.kc, { logger }),
      changed: () => {},
    });
    const scan = new ScanController({
      logger,
      getConnector,
      objects: objectsOf,
      pool,
      brake: () => brake,
      events: new EventRecorder(kube.kc, { logger }),
      drifted: (e) => drifted.push(e),
      scanned: (c) => {
        scanned.push(c.metadata.name);
        onScanned(c);
      },
    });
    return { usersDN: usersDN!, connector, scan, scanned, drifted, pool };
  }

  it("finds an entry without employeeNumber as an orphan and sets roster_orphan_accounts", async () => {
    // The Connector's status shows the figures once the scan hands them over, as the operator wires it.
    const wired: { connector?: ConnectorController } = {};
    const { usersDN, connector, scan, scanned, pool } = await scanSetup("scan-orphans", (c) =>
      wired.connector?.enqueue(c),
    );
    const connectorController = new ConnectorController({
      logger,
      custom: api.custom,
      getConnector,
      pool,
      managed: () => 0,
      brake: new BrakeGate({
        custom: api.custom,
        managed: () => 0,
        events: new EventRecorder(kube.kc, { logger }),
        changed: () => {},
      }),
      scan: (c) => scan.result(c),
      recovered: () => {},
      checkIntervalMs: 600_000,
      ...connectorExtras(),
    });
    wired.connector = connectorController;
    start(connectorController);
    const stray = `uid=stray,${usersDN}`;
    await ldap.client.add(stray, { objectClass: ["inetOrgPerson"], uid: "stray", cn: "Stray", sn: "Entry" });
    start(scan);
    scan.schedule(connector);

    await waitFor(
      async () => scanned.length > 0,
      20_000,
      () => `scanned was not called; logs:\n${recentLogs()}`,
    );
    expect(scanned).toEqual(["scan-orphans"]);
    const result = scan.result(connector);
    expect(result?.orphans).toEqual([{ id: stray, employeeId: "" }]);
    expect(result?.managed).toEqual({ Active: 0, Disabled: 0 });
    expect(result?.drift).toEqual([]);
    const metrics = await registry.metrics();
    expect(metricValue(metrics, "roster_orphan_accounts", { connector: `${ns}/scan-orphans` })).toBe(1);

    const status = await until(
      () => readConnector("scan-orphans"),
      "Connector status with the orphan",
      (c) => c.status?.orphanAccounts !== undefined,
    );
    expect(status.status?.orphanAccounts).toEqual({ count: 1, ids: [stray] });
    expect(status.status?.driftedAccounts).toBe(0);
  });

  it("reports a title changed by hand in slapd as drift of the Employee believed in sync", async () => {
    const { usersDN, connector, scan, scanned, drifted } = await scanSetup("scan-drift");
    await createRoster(kube, ns, {
      apiVersion: API_VERSION,
      kind: "AccessPolicy",
      metadata: { name: "everyone" },
      spec: { grants: [{ connector: "scan-drift" }] },
    });
    const spec = person("D1", "ada", { title: "Engineer" });
    const created = (await createRoster(kube, ns, {
      apiVersion: API_VERSION,
      kind: "Employee",
      metadata: { name: "ada" },
      spec,
    })) as unknown as Employee;
    // The entry exactly as the connector would have created it...
    const dn = `uid=ada,${usersDN}`;
    await ldap.client.add(dn, {
      objectClass: ["inetOrgPerson"],
      ...ldapAttributes(created.spec, connector.spec.ldap!),
    });
    // ...and the status of an Employee the operator has put in sync with it.
    const generation = created.metadata.generation ?? 1;
    await patchStatus(api.custom, "employees", ns, "ada", {
      observedGeneration: generation,
      phase: "Active",
      accounts: [{ connector: "scan-drift", id: dn, state: "Active", groups: [] }],
      entitlements: [{ connector: "scan-drift", source: "AccessPolicy/everyone" }],
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Reconciled",
          message: "",
          lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
          observedGeneration: generation,
        },
      ],
    });
    await cached(
      () => employees.get(ns, "ada"),
      "Employee ada with status",
      (e) => condition(e, "Ready")?.status === "True",
    );
    await cached(() => policies.get(ns, "everyone"), "AccessPolicy everyone");

    // Someone edits the entry by hand.
    await ldap.client.modify(
      dn,
      new Change({
        operation: "replace",
        modification: new Attribute({ type: "title", values: ["Hand Edited"] }),
      }),
    );
    start(scan);
    scan.schedule(connector);

    await waitFor(
      async () => drifted.length > 0,
      20_000,
      () => `drifted was not called (scanned: ${JSON.stringify(scanned)}); logs:\n${recentLogs()}`,
    );
    expect(drifted.map((e) => `${e.metadata.namespace}/${e.metadata.name}`)).toEqual([`${ns}/ada`]);
    const employee = employees.get(ns, "ada")!;
    expect(scan.driftFor(employee, "scan-drift")).toBe("attributes changed: title");
    expect(scan.result(connector)?.drift).toEqual([
      { employee: "ada", employeeId: "D1", kinds: ["attributes"], detail: "attributes changed: title" },
    ]);
    expect(scan.result(connector)?.managed).toEqual({ Active: 1, Disabled: 0 });
    expect(scan.result(connector)?.orphans).toEqual([]);
    expect(scanned).toEqual(["scan-drift"]);
    const events = await until(
      () => eventsOf("ada"),
      "DriftDetected Event on ada",
      (list) => list.some((e) => e.reason === "DriftDetected"),
    );
    expect(events.find((e) => e.reason === "DriftDetected")).toMatchObject({
      type: "Warning",
      kind: "Employee",
      message: "scan-drift: attributes changed: title",
    });
  });
});
