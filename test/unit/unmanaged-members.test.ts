// Hand-added members of the groups Roster hands out (src/plan/scan.ts unmanagedMembers): which
// are removed (an active Authoritative GroupRule names the group) and which are only shown, and
// which accounts are never listed. Pure, no servers.
import { describe, expect, it } from "vitest";
import type { AccessPolicy, Connector, ConnectorSpecT, Employee, GroupRule } from "../../src/api/types.ts";
import type { ActualAccount } from "../../src/connectors/types.ts";
import { scannedGroups, unmanagedMembers } from "../../src/plan/scan.ts";

const NS = "people";
const NOW = new Date("2026-06-01T12:00:00Z");

const ldap = (spec: Partial<ConnectorSpecT> = {}): Connector => ({
  apiVersion: "roster.dev/v1alpha1",
  kind: "Connector",
  metadata: { name: "corp-ldap", namespace: NS, generation: 1 },
  spec: {
    ldap: {
      url: "ldaps://ldap.example.com:636",
      bindDN: "cn=roster,ou=services,dc=example,dc=com",
      bindPasswordSecretRef: { name: "bind", key: "password" },
      usersDN: "ou=people,dc=example,dc=com",
      groupsDN: "ou=groups,dc=example,dc=com",
    },
    ...spec,
  },
});
const policy: AccessPolicy = {
  apiVersion: "roster.dev/v1alpha1",
  kind: "AccessPolicy",
  metadata: { name: "everyone", namespace: NS },
  spec: { grants: [{ connector: "corp-ldap", groups: ["staff"] }] },
};
const rule = (
  name: string,
  group: string,
  extra: Partial<GroupRule["spec"]> = {},
  annotations = {},
): GroupRule => ({
  apiVersion: "roster.dev/v1alpha1",
  kind: "GroupRule",
  metadata: { name, namespace: NS, annotations },
  spec: {
    group,
    connectors: ["corp-ldap"],
    match: [{ key: "department", operator: "In", values: ["Eng"] }],
    ...extra,
  },
});
const ada: Employee = {
  apiVersion: "roster.dev/v1alpha1",
  kind: "Employee",
  metadata: { name: "ada", namespace: NS },
  spec: { employeeId: "E1", username: "ada", givenName: "Ada", familyName: "L", email: "ada@example.com" },
};
const account = (username: string, groups: string[], employeeId = "", mail?: string): ActualAccount => ({
  id: `uid=${username},ou=people,dc=example,dc=com`,
  employeeId,
  username,
  attributes: mail ? { mail: [mail] } : {},
  enabled: true,
  groups,
});
const run = (connector: Connector, rules: GroupRule[], accounts: ActualAccount[]) =>
  unmanagedMembers({
    connector,
    objects: { employees: [ada], policies: [policy], rules, connectors: [connector] },
    accounts,
    now: NOW,
  });

describe("hand-added members", () => {
  it("are removed only from groups an active Authoritative rule names; policy and Additive groups keep them", () => {
    const result = run(
      ldap(),
      [rule("devs", "devs"), rule("wiki", "wiki-editors", { membership: "Additive" })],
      [account("h2", ["DEVS", "staff"]), account("h1", ["devs", "wiki-editors", "unrelated"])],
    );
    const h = (u: string) => ({ id: `uid=${u},ou=people,dc=example,dc=com`, username: u });
    expect(result).toEqual([
      // LDAP compares group names without regard to case.
      { group: "devs", remove: true, rules: ["GroupRule/devs"], members: [h("h1"), h("h2")] },
      { group: "staff", remove: false, rules: [], members: [h("h2")] },
      { group: "wiki-editors", remove: false, rules: [], members: [h("h1")] },
    ]);
  });

  it("a paused rule or one whose pattern does not compile removes nobody", () => {
    const broken = rule("bad", "devs", {
      match: [{ key: "title", operator: "Matches", values: ["(unclosed"] }],
    });
    const paused = rule("paused", "ops", {}, { "roster.dev/paused": "true" });
    const result = run(ldap(), [broken, paused], [account("h1", ["devs", "ops"])]);
    expect(result.map((g) => [g.group, g.remove])).toEqual([
      ["devs", false],
      ["ops", false],
    ]);
  });

  it("leaves out owned accounts, protected ones and those waiting to be linked to an Employee", () => {
    const result = run(
      ldap({ protected: { usernames: ["Admin"], groups: ["breakglass"] } }),
      [rule("devs", "devs")],
      [
        account("owned", ["devs"], "E9"),
        account("admin", ["devs"]),
        account("oncall", ["devs", "breakglass"]),
        account("ada", ["devs"]),
        account("alovelace", ["devs"], "", "ADA@example.com"),
        account("h1", ["devs"]),
      ],
    );
    expect(result).toEqual([
      {
        group: "devs",
        remove: true,
        rules: ["GroupRule/devs"],
        members: [{ id: "uid=h1,ou=people,dc=example,dc=com", username: "h1" }],
      },
    ]);
  });

  it("SCIM: a User whose email (emails, or one element of it) is an Employee's waits to be linked", () => {
    const scim: Connector = {
      ...ldap(),
      spec: {
        scim: { baseURL: "https://app.example.com/scim/v2", tokenSecretRef: { name: "t", key: "token" } },
      },
    };
    const user = (username: string, attributes: Record<string, string[]>): ActualAccount => ({
      id: username,
      employeeId: "",
      username,
      attributes,
      enabled: true,
      groups: ["devs"],
    });
    const result = run(
      scim,
      [rule("devs", "devs")],
      [
        user("alovelace", { 'emails[type eq "work"].value': ["Ada@example.com"] }),
        user("lady", { emails: ["ada@example.com"] }),
        user("h1", { 'emails[type eq "work"].value': ["h1@example.com"], title: ["ada@example.com"] }),
      ],
    );
    expect(result).toEqual([
      { group: "devs", remove: true, rules: ["GroupRule/devs"], members: [{ id: "h1", username: "h1" }] },
    ]);
  });

  it("scannedGroups names every group of a policy, grant or rule of the connector, Additive ones too", () => {
    const objects = {
      employees: [
        { ...ada, spec: { ...ada.spec, grants: [{ connector: "corp-ldap", groups: ["oncall"] }] } },
      ],
      policies: [policy],
      rules: [
        rule("devs", "devs"),
        rule("wiki", "wiki-editors", { membership: "Additive" }),
        rule("other", "elsewhere", { connectors: ["apps"] }),
      ],
    };
    expect(scannedGroups(ldap(), objects).sort()).toEqual(["devs", "oncall", "staff", "wiki-editors"]);
  });

  it("nothing when no group is named or nobody was added by hand", () => {
    expect(run(ldap(), [], [account("h1", ["unrelated"])])).toEqual([]);
    expect(
      unmanagedMembers({
        connector: ldap(),
        objects: { employees: [], policies: [], rules: [], connectors: [] },
        accounts: [],
        now: NOW,
      }),
    ).toEqual([]);
  });
});
