// The operator's indexes over its Employee cache (src/controller/informer.ts CountIndex and
// ValueIndex, fed by the Informer as objects enter, change and leave it) answer what the planner
// would otherwise find by reading every Employee: the groups grants hand out per connector
// (managedGroups), Employees by employeeId and by username. Driven through a real Informer's
// cache (its watch events applied directly; no server).
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Employee, EmployeeSpecT, EmployeeStatusT } from "../../src/api/types.ts";
import { CountIndex, Informer, ValueIndex } from "../../src/controller/informer.ts";
import { grantedGroups, managedGroups } from "../../src/policy/evaluate.ts";
import {
  connectorsToVisit,
  planEmployee,
  type NamespaceObjects,
  type TargetRead,
} from "../../src/plan/employee.ts";
import { loadManifests, manifestObjects } from "../../src/cli/plan.ts";
import { ENTERPRISE_USER_SCHEMA } from "../../src/connectors/scim/attributes.ts";

const NS = "people";
const MANAGER = `${ENTERPRISE_USER_SCHEMA}:manager.value`;
const CONNECTORS = ["corp-ldap", "wiki", "crm"];

let resourceVersion = 0;
function employee(
  name: string,
  spec: Partial<EmployeeSpecT> = {},
  status?: EmployeeStatusT,
  namespace = NS,
): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name, namespace, generation: 1, resourceVersion: String(++resourceVersion) },
    spec: {
      employeeId: `id-${name}`,
      username: name,
      givenName: name,
      familyName: "Test",
      email: `${name}@example.com`,
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

/** An Informer's cache, fed watch events as the API server would send them. */
function cache() {
  const informer = new Informer<Employee>(new KubeConfig(), { path: "/apis/roster.dev/v1alpha1/employees" });
  const granted = new CountIndex<Employee>(grantedGroups);
  const withEmployeeId = new ValueIndex<Employee>((e) => e.spec.employeeId);
  const withUsername = new ValueIndex<Employee>((e) => e.spec.username);
  for (const index of [granted, withEmployeeId, withUsername]) informer.addIndex(index);
  const apply = (type: "ADDED" | "MODIFIED" | "DELETED", obj: Employee) =>
    (informer as unknown as { applyEvent(type: string, obj: Employee): void }).applyEvent(type, obj);
  return {
    informer,
    granted,
    withEmployeeId,
    withUsername,
    add: (e: Employee) => apply("ADDED", e),
    // A new resourceVersion, as every write gives.
    update: (e: Employee) =>
      apply("MODIFIED", { ...e, metadata: { ...e.metadata, resourceVersion: String(++resourceVersion) } }),
    remove: (e: Employee) => apply("DELETED", e),
  };
}

describe("the count of granted groups per connector", () => {
  it("gives managedGroups' Employee part after every add, update and delete", () => {
    const c = cache();
    const expectSame = () => {
      for (const connector of CONNECTORS)
        expect([...c.granted.values(NS, connector)].sort()).toEqual(
          [...managedGroups(connector, [], [], c.informer.list(NS))].sort(),
        );
    };
    const ada = employee("ada", { grants: [{ connector: "wiki", groups: ["project-apollo"] }] });
    const bob = employee("bob", {
      grants: [
        { connector: "corp-ldap", groups: ["vpn-users", "admins"] },
        { connector: "wiki", groups: ["project-apollo"] },
      ],
    });
    // The same group twice, and an expired grant (managedGroups counts it: its members are Roster's to remove).
    const dora = employee("dora", {
      grants: [
        { connector: "corp-ldap", groups: ["vpn-users"] },
        { connector: "corp-ldap", groups: ["vpn-users", "db"], until: "2020-01-01" },
      ],
    });
    const carl = employee("carl");
    for (const e of [ada, bob, dora, carl]) c.add(e);
    expectSame();
    expect([...c.granted.values(NS, "corp-ldap")].sort()).toEqual(["admins", "db", "vpn-users"]);
    expect([...c.granted.values(NS, "wiki")]).toEqual(["project-apollo"]);

    // bob's grants change: vpn-users stays (dora's), project-apollo stays (ada's).
    const bob2 = { ...bob, spec: { ...bob.spec, grants: [{ connector: "corp-ldap", groups: ["admins"] }] } };
    c.update(bob2);
    expectSame();
    expect([...c.granted.values(NS, "corp-ldap")].sort()).toEqual(["admins", "db", "vpn-users"]);
    expect([...c.granted.values(NS, "wiki")]).toEqual(["project-apollo"]);

    // The last Employee granting project-apollo goes: so does the group.
    c.remove(ada);
    expectSame();
    expect([...c.granted.values(NS, "wiki")]).toEqual([]);

    // A status write changes nothing here; dora's second grant goes, and db with it.
    c.update({ ...dora, status: { phase: "Active" } });
    const dora2 = {
      ...dora,
      spec: { ...dora.spec, grants: [{ connector: "corp-ldap", groups: ["vpn-users"] }] },
    };
    c.update(dora2);
    expectSame();
    expect([...c.granted.values(NS, "corp-ldap")].sort()).toEqual(["admins", "vpn-users"]);

    // carl is granted vpn-users too; dora goes, vpn-users stays with carl; then carl's goes.
    const carl2 = {
      ...carl,
      spec: { ...carl.spec, grants: [{ connector: "corp-ldap", groups: ["vpn-users"] }] },
    };
    c.update(carl2);
    c.remove(dora2);
    expectSame();
    expect([...c.granted.values(NS, "corp-ldap")].sort()).toEqual(["admins", "vpn-users"]);
    c.update({ ...carl2, spec: { ...carl2.spec, grants: [] } });
    expectSame();
    expect([...c.granted.values(NS, "corp-ldap")]).toEqual(["admins"]);

    // Another namespace's grants are its own.
    c.add(
      employee("eve", { grants: [{ connector: "corp-ldap", groups: ["elsewhere"] }] }, undefined, "other"),
    );
    expectSame();
    expect([...c.granted.values("other", "corp-ldap")]).toEqual(["elsewhere"]);
  });

  it("finds Employees by employeeId and username as a walk of the cache does", () => {
    const c = cache();
    const first = employee("ada", { employeeId: "E1" });
    const rehire = employee("ada-2", { employeeId: "E1", username: "ada" });
    c.add(first);
    c.add(rehire);
    c.add(employee("bob", { employeeId: "E2" }));
    const names = (list: readonly Employee[]) => list.map((e) => e.metadata.name).sort();
    expect(names(c.withEmployeeId.get(NS, "E1"))).toEqual(["ada", "ada-2"]);
    expect(names(c.withUsername.get(NS, "ada"))).toEqual(["ada", "ada-2"]);
    // The index holds the cached object as it is now.
    c.update({ ...rehire, status: { phase: "Active" } });
    expect(c.withEmployeeId.get(NS, "E1").find((e) => e.metadata.name === "ada-2")?.status).toEqual({
      phase: "Active",
    });
    c.remove(first);
    expect(names(c.withEmployeeId.get(NS, "E1"))).toEqual(["ada-2"]);
    c.update({ ...rehire, spec: { ...rehire.spec, employeeId: "E3" } });
    expect(c.withEmployeeId.get(NS, "E1")).toEqual([]);
    expect(names(c.withEmployeeId.get(NS, "E3"))).toEqual(["ada-2"]);
    expect(names(c.withUsername.get(NS, "bob"))).toEqual(["bob"]);
    expect(c.withUsername.get("other", "bob")).toEqual([]);
  });
});

describe("planEmployee with the operator's indexes", () => {
  it("plans exactly as without them, for the sample objects", () => {
    const now = new Date("2026-06-01T12:00:00Z");
    const samples = manifestObjects(loadManifests("deploy/samples"));
    const inNamespace = <T extends { metadata: object }>(o: T): T => ({
      ...o,
      metadata: { ...o.metadata, namespace: NS },
    });
    const ada = inNamespace(samples.employees.find((e) => e.metadata.name === "ada")!);
    const employees = [
      // grace's manager: ada's wiki account is what grace's manager.value refers to.
      {
        ...ada,
        status: {
          accounts: [{ connector: "wiki", id: "wiki-ada", state: "Active" as const, groups: [] }],
        },
      },
      ...samples.employees
        .filter((e) => e.metadata.name !== "ada")
        // A wiki account for grace: its manager.value is ada's wiki account.
        .map((e) =>
          e.metadata.name === "grace" ? { ...e, spec: { ...e.spec, grants: [{ connector: "wiki" }] } } : e,
        ),
      // Only eve's grant makes ops-admins a group Roster manages in corp-ldap.
      employee("eve", { grants: [{ connector: "corp-ldap", groups: ["ops-admins"] }] }),
    ].map(inNamespace);
    const c = cache();
    for (const e of employees) c.add(e);
    const plain: NamespaceObjects = {
      employees: c.informer.list(NS),
      policies: samples.policies.map(inNamespace),
      rules: samples.rules.map(inNamespace),
      connectors: samples.connectors.map(inNamespace),
    };
    const indexed: NamespaceObjects = {
      ...plain,
      // A reconcile with the indexes never needs the list.
      get employees(): never {
        throw new Error("the Employee list was read");
      },
      withEmployeeId: (id) => c.withEmployeeId.get(NS, id),
      withUsername: (username) => c.withUsername.get(NS, username),
      grantedGroups: (connector) => c.granted.values(NS, connector),
    };
    const planned: string[] = [];
    for (const person of c.informer.list(NS)) {
      // Every target holds an account with the groups any of them hand out, and one made by hand.
      const targets = new Map<string, TargetRead>(
        connectorsToVisit(person, plain, now).map((connector) => [
          connector,
          {
            status: "read",
            actual: {
              id: `${connector}-${person.metadata.name}`,
              employeeId: person.spec.employeeId,
              username: person.spec.username,
              attributes: {},
              enabled: true,
              groups: ["staff", "engineers", "project-apollo", "people-managers", "ops-admins", "by-hand"],
            },
          },
        ]),
      );
      const input = { employee: person, targets, now };
      const withIndexes = planEmployee({ ...input, objects: indexed });
      expect(withIndexes).toEqual(planEmployee({ ...input, objects: plain }));
      for (const account of withIndexes.accounts)
        for (const op of account.ops) {
          if (op.op === "group_remove")
            planned.push(`${person.metadata.name} ${account.connector} -${op.group}`);
          if (op.op === "update" && op.changes[MANAGER])
            planned.push(
              `${person.metadata.name} ${account.connector} manager ${op.changes[MANAGER].join()}`,
            );
        }
    }
    // The indexes decide something: grants' groups are removed from those not granted them, and
    // grace's wiki account refers to ada's.
    expect(planned).toContain("grace corp-ldap -ops-admins");
    expect(planned).toContain("ada corp-ldap -ops-admins");
    expect(planned).not.toContain("eve corp-ldap -ops-admins");
    expect(planned).toContain("grace wiki manager wiki-ada");
    expect(planned.some((p) => p.endsWith("-by-hand"))).toBe(false);
  });
});
