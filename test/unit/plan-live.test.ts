// `roster plan --live` and `roster plan --base` as pure functions (src/plan/preview.ts): the
// planner run on the accounts a target listed (real ids, drift, adoption, orphans, hand-added
// members), what of it counts against the mass-change brake, and a base tree taken as the
// operator leaves it. No servers: the e2e test (test/e2e/plan-live.test.ts) reads real ones.
import { describe, expect, it } from "vitest";
import type {
  AccessPolicy,
  Connector,
  ConnectorSpecT,
  Employee,
  EmployeeSpecT,
  GroupRule,
} from "../../src/api/types.ts";
import type { ActualAccount } from "../../src/connectors/types.ts";
import { desiredAttributes } from "../../src/connectors/mapping.ts";
import {
  convergedState,
  adoptionLookups,
  previewPlan,
  renderPreview,
  type LiveRead,
  type RosterState,
} from "../../src/plan/preview.ts";

const NS = "people";
const NOW = new Date("2026-06-01T12:00:00Z");
const USERS = "ou=people,dc=example,dc=com";

function ldap(spec: Partial<ConnectorSpecT> = {}): Connector {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Connector",
    metadata: { name: "corp-ldap", namespace: NS, generation: 1 },
    spec: {
      ldap: {
        url: "ldaps://ldap.example.com",
        bindDN: "cn=roster,dc=example,dc=com",
        bindPasswordSecretRef: { name: "bind", key: "password" },
        usersDN: USERS,
        groupsDN: "ou=groups,dc=example,dc=com",
      },
      ...spec,
    },
  };
}

const policy = (name: string, spec: AccessPolicy["spec"]): AccessPolicy => ({
  apiVersion: "roster.dev/v1alpha1",
  kind: "AccessPolicy",
  metadata: { name, namespace: NS },
  spec,
});
const everyone = policy("everyone", { grants: [{ connector: "corp-ldap", groups: ["staff"] }] });
const engineering = policy("engineering", {
  match: [{ key: "department", operator: "In", values: ["Engineering"] }],
  grants: [{ connector: "corp-ldap", groups: ["engineering"] }],
});

const dn = (username: string) => `uid=${username},${USERS}`;

/** An Employee the operator last saw in sync, its account recorded with its groups. */
function person(
  username: string,
  spec: Partial<EmployeeSpecT> = {},
  groups = ["engineering", "staff"],
): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name: username, namespace: NS, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: {
      employeeId: `E-${username}`,
      username,
      givenName: username,
      familyName: "Tester",
      email: `${username}@example.com`,
      department: "Engineering",
      title: "Engineer",
      ...spec,
    },
    status: {
      observedGeneration: 1,
      phase: "Active",
      accounts: [{ connector: "corp-ldap", id: dn(username), state: "Active", groups }],
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Provisioned",
          message: "",
          lastTransitionTime: "2026-01-01T00:00:00Z",
          observedGeneration: 1,
        },
      ],
    },
  };
}

/** What the directory holds for an Employee: what Roster wrote, changed by `set`. */
function held(
  c: Connector,
  e: Employee,
  set: Record<string, string[]> = {},
  groups = ["engineering", "staff"],
): ActualAccount {
  return {
    id: dn(e.spec.username),
    employeeId: e.spec.employeeId,
    username: e.spec.username,
    attributes: { ...desiredAttributes(c, e.spec), ...set },
    enabled: true,
    groups,
  };
}

const handMade = (username: string, extra: Partial<ActualAccount> = {}): ActualAccount => ({
  id: dn(username),
  employeeId: "",
  username,
  attributes: { mail: [`${username}@example.com`] },
  enabled: true,
  groups: [],
  ...extra,
});

const state = (
  employees: Employee[],
  connector: Connector,
  extra: Partial<RosterState> = {},
): RosterState => ({
  employees,
  policies: [everyone, engineering],
  rules: [],
  connectors: [connector],
  ...extra,
});

const read = (accounts: ActualAccount[], candidates: Record<string, ActualAccount[]> = {}): LiveRead =>
  new Map([["corp-ldap", { accounts, candidates: new Map(Object.entries(candidates)) }]]);

/** The files of a change: the same Employees without status (as DIR holds them). */
const files = (s: RosterState): RosterState => ({
  ...s,
  employees: s.employees.map(({ status: _status, ...e }) => e as Employee),
});

describe("roster plan --live", () => {
  const c = ldap();
  const ada = person("ada");
  const grace = person("grace");

  it("a title changed by hand shows as the correction, with the real DN and the values it writes back", () => {
    const current = state([ada, grace], c);
    const preview = previewPlan(
      current,
      files(current),
      NOW,
      read([held(c, ada, { title: ["Changed by hand"] }), held(c, grace)]),
    );
    expect(preview.changes).toEqual([
      {
        employee: "ada",
        username: "ada",
        connector: "corp-ldap",
        action: "update",
        attributes: ["title"],
        groupsAdded: [],
        groupsRemoved: [],
        reason: "puts back what was changed outside Roster: attributes changed: title",
        id: dn("ada"),
        attributeValues: { title: { from: ["Changed by hand"], to: ["Engineer"] } },
        drift: "attributes changed: title",
      },
    ]);
    expect(preview.tripsBrake).toBe(false);
    const text = renderPreview(preview);
    expect(text).toContain(
      `| ada (ada) | \`${dn("ada")}\` | update title: "Changed by hand" → "Engineer" |  |  | puts back what was changed outside Roster: attributes changed: title |`,
    );
    // Without --live the same directory changes nothing: status says ada is in sync.
    expect(previewPlan(current, files(current), NOW).changes).toEqual([]);
  });

  it("drift policy Report: left as found and said so, unless the person changes", () => {
    const r = ldap({ drift: { policy: "Report" } });
    const current = state([ada], r);
    const live = read([held(r, ada, { title: ["Changed by hand"] })]);
    const unchanged = previewPlan(current, files(current), NOW, live);
    expect(unchanged.changes).toEqual([]);
    expect(unchanged.live?.driftReported).toEqual([
      {
        employee: "ada",
        username: "ada",
        connector: "corp-ldap",
        id: dn("ada"),
        drift: "attributes changed: title",
      },
    ]);
    // A new generation is Roster's change to make, drift or not (as the planner decides).
    const moved = files(current);
    moved.employees[0] = {
      ...moved.employees[0]!,
      metadata: { ...moved.employees[0]!.metadata, generation: 2 },
      spec: { ...moved.employees[0]!.spec, location: "Berlin" },
    };
    const changed = previewPlan(current, moved, NOW, live);
    expect(changed.changes.map((x) => [x.employee, x.action, x.attributeValues])).toEqual([
      [
        "ada",
        "update",
        { l: { from: [], to: ["Berlin"] }, title: { from: ["Changed by hand"], to: ["Engineer"] } },
      ],
    ]);
  });

  it("a hand-added managed group and a re-enabled leaver are corrected and counted against the brake", () => {
    const leaver = person("grace", { employmentStatus: "Terminated" }, []);
    leaver.status!.accounts![0]!.state = "Disabled";
    const tight = ldap({ safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 } });
    const current = state([ada, leaver], tight);
    const preview = previewPlan(
      current,
      files(current),
      NOW,
      read([
        held(tight, ada, {}, ["admins", "engineering", "staff"]),
        { ...held(tight, leaver, {}, []), enabled: true },
      ]),
    );
    // "admins" is no group Roster hands out: never touched. Only the re-enabled leaver is.
    expect(preview.changes.map((x) => [x.employee, x.action, x.groupsRemoved, x.drift])).toEqual([
      ["grace", "disable", [], "account re-enabled outside Roster"],
    ]);
    expect(preview.brake).toEqual([
      { connector: "corp-ldap", deprovisions: 1, limit: 1, managed: 2, trips: false },
    ]);
  });

  it("orphans: Disable acts only on keyed, unprotected, enabled orphans; they count against the brake", () => {
    const o = ldap({
      orphans: "Disable",
      protected: { usernames: ["keeper"] },
      safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 },
    });
    const current = state([ada], o);
    const preview = previewPlan(
      current,
      files(current),
      NOW,
      read([
        held(o, ada),
        handMade("gone1", { employeeId: "GONE-1" }),
        handMade("gone2", { employeeId: "GONE-2" }),
        handMade("gone3", { employeeId: "GONE-3", enabled: false }),
        handMade("keeper", { employeeId: "GONE-4" }),
        handMade("nokey"),
      ]),
    );
    expect(preview.changes).toEqual([]);
    expect(preview.live!.orphans.map((x) => [x.username, x.action])).toEqual([
      ["gone1", "disable"],
      ["gone2", "disable"],
      ["gone3", "report"],
      ["keeper", "report"],
      ["nokey", "report"],
    ]);
    expect(preview.live!.orphans[0]!.id).toBe(dn("gone1"));
    // Two disables against a limit of one: `roster plan --live` exits 3, the cluster-only plan 0.
    expect(preview.tripsBrake).toBe(true);
    expect(previewPlan(current, files(current), NOW).tripsBrake).toBe(false);
    const text = renderPreview(preview);
    expect(text).toContain(`| \`${dn("gone1")}\` | GONE-1 | disable |`);
    expect(text).toContain("3 further orphans are only reported");
    expect(text).toContain("**Mass-change brake**: 2 deprovisions in corp-ldap exceed its limit of 1");
  });

  it("an account made before Roster: a candidate with its DN, linked (adopt) once annotated", () => {
    const a = ldap({ adoption: { match: "Username", mode: "Propose" } });
    const carol = person("carol");
    delete carol.status;
    const current = state([carol], a);
    const account = handMade("carol", { groups: ["staff"] });
    expect(adoptionLookups(files(current), a, [account], NOW)).toEqual([
      { employee: "carol", match: "Username", value: "carol" },
    ]);
    const proposed = previewPlan(current, files(current), NOW, read([account], { carol: [account] }));
    expect(proposed.changes).toEqual([]);
    expect(proposed.live!.adoptionCandidates).toEqual([
      expect.objectContaining({ employee: "carol", id: dn("carol"), state: "Unlinked" }),
    ]);
    const annotated = files(current);
    annotated.employees[0]!.metadata.annotations = { "roster.dev/adopt": "corp-ldap" };
    const linking = previewPlan(current, annotated, NOW, read([account], { carol: [account] }));
    expect(linking.changes.map((x) => [x.employee, x.action, x.id, x.groupsAdded])).toEqual([
      ["carol", "adopt", dn("carol"), ["engineering"]],
    ]);
  });

  it("hand-added members of an Authoritative GroupRule's group: removed live, counted against the brake", () => {
    const rule: GroupRule = {
      apiVersion: "roster.dev/v1alpha1",
      kind: "GroupRule",
      metadata: { name: "oncall", namespace: NS },
      spec: {
        group: "oncall",
        connectors: ["corp-ldap"],
        match: [{ key: "title", operator: "In", values: ["SRE"] }],
      },
    };
    const tight = ldap({ safety: { maxDeprovisionsPerHour: 1, maxDeprovisionPercent: 100 } });
    const current = state([ada], tight, { rules: [rule] });
    const preview = previewPlan(
      current,
      files(current),
      NOW,
      read([
        held(tight, ada),
        handMade("temp1", { groups: ["oncall"] }),
        handMade("temp2", { groups: ["oncall"] }),
      ]),
    );
    expect(preview.unmanaged).toEqual([
      {
        connector: "corp-ldap",
        group: "oncall",
        action: "remove",
        rules: ["GroupRule/oncall"],
        count: 2,
        members: [
          { id: dn("temp1"), username: "temp1" },
          { id: dn("temp2"), username: "temp2" },
        ],
      },
    ]);
    expect(preview.tripsBrake).toBe(true);
    expect(renderPreview(preview)).toContain(
      `| oncall | temp1 (\`${dn("temp1")}\`), temp2 (\`${dn("temp2")}\`) | removed by GroupRule/oncall (Authoritative), through the brake |`,
    );
  });
});

describe("roster plan without --live: hand-added members from Connector status", () => {
  it("a change that makes the rule Authoritative shows whom it removes, and only those count", () => {
    const additive: GroupRule = {
      apiVersion: "roster.dev/v1alpha1",
      kind: "GroupRule",
      metadata: { name: "oncall", namespace: NS },
      spec: { group: "oncall", connectors: ["corp-ldap"], membership: "Additive" },
    };
    const c = ldap({ safety: { maxDeprovisionsPerHour: 2, maxDeprovisionPercent: 100 } });
    c.status = {
      unmanagedMembers: [{ group: "oncall", action: "Keep", count: 3, members: ["t1", "t2", "t3"] }],
    };
    const current = state([person("ada")], c, { rules: [additive] });
    const kept = previewPlan(current, files(current), NOW);
    expect(kept.unmanaged?.map((g) => [g.group, g.action, g.count])).toEqual([["oncall", "keep", 3]]);
    expect(kept.tripsBrake).toBe(false);
    const authoritative = { ...additive, spec: { ...additive.spec, membership: "Authoritative" as const } };
    const removing = previewPlan(current, { ...files(current), rules: [authoritative] }, NOW);
    expect(removing.unmanaged?.map((g) => [g.group, g.action, g.members.map((m) => m.username)])).toEqual([
      ["oncall", "remove", ["t1", "t2", "t3"]],
    ]);
    expect(removing.brake).toEqual([
      { connector: "corp-ldap", deprovisions: 3, limit: 2, managed: 1, trips: true },
    ]);
  });
});

describe("roster plan --base", () => {
  const c = ldap();
  const files30 = Array.from({ length: 30 }, (_, i) => {
    const { status: _status, ...e } = person(`p${String(i).padStart(2, "0")}`);
    return e as Employee;
  });

  it("takes the base tree as reconciled: a policy that drops a group from 30 people trips the brake", () => {
    const base = convergedState(state(files30, c), NOW);
    expect(base.employees[0]!.status?.accounts).toEqual([
      expect.objectContaining({ connector: "corp-ldap", state: "Active", groups: ["engineering", "staff"] }),
    ]);
    const unchanged = previewPlan(base, state(files30, c), NOW);
    expect(unchanged).toEqual({ changes: [], brake: [], tripsBrake: false });
    const dropped = previewPlan(base, state(files30, c, { policies: [everyone] }), NOW);
    expect(dropped.changes).toHaveLength(30);
    expect(dropped.changes[0]).toEqual(
      expect.objectContaining({ action: "none", groupsRemoved: ["engineering"] }),
    );
    // 10 % of 30 managed accounts, but at least 5.
    expect(dropped.brake).toEqual([
      { connector: "corp-ldap", deprovisions: 30, limit: 5, managed: 30, trips: true },
    ]);
  });

  it("a new hire and a title change are the whole plan", () => {
    const base = convergedState(state(files30, c), NOW);
    const after = files30.map((e) =>
      e.metadata.name === "p03" ? { ...e, spec: { ...e.spec, title: "Lead" } } : e,
    );
    const { status: _status, ...hire } = person("newbie");
    const preview = previewPlan(base, state([...after, hire as Employee], c), NOW);
    expect(preview.changes.map((x) => [x.employee, x.action, x.attributes, x.groupsAdded])).toEqual([
      ["newbie", "create", [], ["engineering", "staff"]],
      ["p03", "update", ["title"], []],
    ]);
    expect(preview.tripsBrake).toBe(false);
  });
});
