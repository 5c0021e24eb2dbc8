// manager.value from the manager's account in the same Connector (src/plan/references.ts and the
// planner's accountMapping): the id their status records, never their username; unset, with a
// reason, while they have none. No servers.
import { describe, expect, it } from "vitest";
import type { AccountStatusT, Connector, Employee, EmployeeSpecT } from "../../src/api/types.ts";
import { ENTERPRISE_USER_SCHEMA } from "../../src/connectors/scim/attributes.ts";
import { accountMapping, planEmployee } from "../../src/plan/employee.ts";
import { managerReference, referencedAccounts } from "../../src/plan/references.ts";
import { compareScan } from "../../src/plan/scan.ts";

const NS = "people";
const MANAGER = `${ENTERPRISE_USER_SCHEMA}:manager.value`;

const wiki: Connector = {
  apiVersion: "roster.dev/v1alpha1",
  kind: "Connector",
  metadata: { name: "wiki", namespace: NS, generation: 1 },
  spec: { scim: { baseURL: "https://wiki.example.com/scim/v2", tokenSecretRef: { name: "t", key: "t" } } },
};

function employee(
  username: string,
  spec: Partial<EmployeeSpecT> = {},
  accounts: AccountStatusT[] = [],
): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name: username, namespace: NS, generation: 1 },
    spec: {
      employeeId: `E-${username}`,
      username,
      givenName: username,
      familyName: "Tester",
      email: `${username}@example.com`,
      ...spec,
    },
    ...(accounts.length ? { status: { accounts } } : {}),
  };
}
const account = (id: string, state: AccountStatusT["state"] = "Active"): AccountStatusT => ({
  connector: "wiki",
  id,
  state,
  groups: [],
});

describe("managerReference", () => {
  it("is the id of the manager's existing account in that Connector", () => {
    const boss = employee("boss", {}, [account("2819c223"), { ...account("x"), connector: "other" }]);
    const rep = employee("rep", { manager: "boss" });
    expect(managerReference(rep.spec, "wiki", { employees: [boss, rep] })).toEqual({ id: "2819c223" });
    expect(managerReference(rep.spec, "other", { employees: [boss, rep] })).toEqual({ id: "x" });
    // A disabled or held manager is still the manager; a Failed account keeps its recorded id.
    for (const state of ["Disabled", "Held", "Failed"] as const)
      expect(
        managerReference(rep.spec, "wiki", {
          employees: [employee("boss", {}, [account("2819c223", state)])],
        }),
      ).toEqual({
        id: "2819c223",
      });
  });

  it("is unset, with a reason, without an account, for accounts that are not theirs, and when ambiguous", () => {
    const rep = employee("rep", { manager: "boss" });
    const none = "manager boss has no account in wiki yet: manager left unset";
    expect(managerReference(rep.spec, "wiki", { employees: [rep] })).toEqual({ problem: none });
    for (const state of ["Deleted", "Conflict", "Unlinked", "Pending", "Protected"] as const)
      expect(
        managerReference(rep.spec, "wiki", { employees: [employee("boss", {}, [account("i", state)])] }),
      ).toEqual({
        problem: none,
      });
    const twice = [
      employee("boss", {}, [account("a")]),
      { ...employee("boss", {}, [account("b")]), metadata: { name: "boss-2", namespace: NS } },
    ];
    expect(managerReference(rep.spec, "wiki", { employees: twice }).problem).toMatch(
      /has 2 accounts in wiki/,
    );
    expect(managerReference(employee("solo").spec, "wiki", { employees: [] })).toEqual({});
  });

  it("referencedAccounts changes exactly when what a report refers to can change", () => {
    const before = employee("boss", {}, [account("a", "Pending")]);
    expect(referencedAccounts(before)).toBe(referencedAccounts(undefined));
    const after = employee("boss", {}, [account("a")]);
    expect(referencedAccounts(after)).not.toBe(referencedAccounts(before));
    expect(referencedAccounts(employee("boss", {}, [account("a", "Disabled")]))).toBe(
      referencedAccounts(after),
    );
  });
});

describe("the planner and the scan use the manager's id", () => {
  const boss = employee("boss", { department: "Eng" }, [account("2819c223")]);
  const objects = (employees: Employee[]) => ({
    employees,
    policies: [
      {
        apiVersion: "roster.dev/v1alpha1",
        kind: "AccessPolicy",
        metadata: { name: "all", namespace: NS },
        spec: { grants: [{ connector: "wiki", groups: [] }] },
      } as never,
    ],
    rules: [],
    connectors: [wiki],
  });

  it("desired attributes carry the manager's id, or no manager at all", () => {
    const rep = employee("rep", { manager: "boss" });
    expect(accountMapping(wiki, { employees: [boss, rep] }).desiredAttributes(rep.spec)[MANAGER]).toEqual([
      "2819c223",
    ]);
    expect(accountMapping(wiki, { employees: [rep] }).desiredAttributes(rep.spec)[MANAGER]).toBeUndefined();
  });

  it("an account whose manager has none yet says so, and an update sets it once they have one", () => {
    const rep = employee("rep", { manager: "boss" }, [account("u-rep")]);
    const actual = {
      id: "u-rep",
      employeeId: "E-rep",
      username: "rep",
      attributes: accountMapping(wiki, { employees: [rep] }).desiredAttributes(rep.spec),
      enabled: true,
      groups: [],
    };
    const read = new Map([["wiki", { status: "read" as const, actual }]]);
    const alone = planEmployee({ employee: rep, objects: objects([rep]), targets: read, now: new Date() });
    expect(alone.accounts[0]!.ops).toEqual([]);
    expect(alone.status.accounts?.[0]?.message).toBe(
      "manager boss has no account in wiki yet: manager left unset",
    );

    const withBoss = planEmployee({
      employee: rep,
      objects: objects([boss, rep]),
      targets: read,
      now: new Date(),
    });
    expect(withBoss.accounts[0]!.ops).toEqual([{ op: "update", changes: { [MANAGER]: ["2819c223"] } }]);
    expect(withBoss.status.accounts?.[0]?.message).toBeUndefined();
  });

  it("the scan takes an account with its manager's id as in sync", () => {
    const ready = {
      type: "Ready",
      status: "True",
      reason: "Provisioned",
      message: "",
      lastTransitionTime: "",
    };
    const rep = {
      ...employee("rep", { manager: "boss" }),
      status: { observedGeneration: 1, accounts: [account("u-rep")], conditions: [ready] },
    } as Employee;
    const attributes = accountMapping(wiki, { employees: [boss, rep] }).desiredAttributes(rep.spec);
    const accounts = [
      { id: "u-rep", employeeId: "E-rep", username: "rep", attributes, enabled: true, groups: [] },
    ];
    expect(
      compareScan({ connector: wiki, objects: objects([boss, rep]), accounts, now: new Date() }).drift,
    ).toEqual([]);
  });
});
