// The full scan's comparison (src/plan/scan.ts) and `roster plan` (src/plan/preview.ts), both
// pure and both built on the Employee planner: the scan names as drift what the planner would
// change, and the preview shows what the planner would do for the accounts status records.
// Table-driven, no servers.
import { describe, expect, it } from "vitest";
import type {
  AccessPolicy,
  AccountStatusT,
  Connector,
  ConnectorSpecT,
  Employee,
  EmployeeSpecT,
  EmployeeStatusT,
  ObjectMeta,
} from "../../src/api/types.ts";
import type { ActualAccount } from "../../src/connectors/types.ts";
import { desiredAttributes } from "../../src/connectors/mapping.ts";
import { planEmployee, type TargetRead } from "../../src/plan/employee.ts";
import type { Operation } from "../../src/plan/plan.ts";
import {
  changeOf,
  previewPlan,
  renderPreview,
  type BrakeCheck,
  type PlannedChange,
  type RosterState,
} from "../../src/plan/preview.ts";
import { compareScan, type Drift, type ScanResult } from "../../src/plan/scan.ts";

const NS = "people";
const NOW = new Date("2026-06-01T12:00:00Z");

// --- objects ------------------------------------------------------------------------------

function connector(name: string, spec: ConnectorSpecT, status?: Connector["status"]): Connector {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Connector",
    metadata: { name, namespace: NS, generation: 1 },
    spec,
    ...(status ? { status } : {}),
  };
}
const corpLdap = (spec: Partial<ConnectorSpecT> = {}, status?: Connector["status"]) =>
  connector(
    "corp-ldap",
    {
      ldap: {
        url: "ldaps://ldap.example.com:636",
        bindDN: "cn=roster,ou=services,dc=example,dc=com",
        bindPasswordSecretRef: { name: "corp-ldap-bind", key: "password" },
        usersDN: "ou=people,dc=example,dc=com",
        groupsDN: "ou=groups,dc=example,dc=com",
      },
      ...spec,
    },
    status,
  );
const wiki = () =>
  connector("wiki", {
    scim: {
      baseURL: "https://wiki.example.com/scim/v2",
      tokenSecretRef: { name: "wiki-scim-token", key: "token" },
    },
  });
const crm = () =>
  connector("crm", {
    scim: {
      baseURL: "https://crm.example.com/scim/v2",
      tokenSecretRef: { name: "crm-scim-token", key: "token" },
    },
  });

function policy(name: string, spec: AccessPolicy["spec"]): AccessPolicy {
  return { apiVersion: "roster.dev/v1alpha1", kind: "AccessPolicy", metadata: { name, namespace: NS }, spec };
}
const everyone = policy("everyone", { grants: [{ connector: "corp-ldap", groups: ["staff"] }] });
const engineering = policy("engineering", {
  match: [{ key: "department", operator: "In", values: ["Engineering"] }],
  grants: [
    { connector: "corp-ldap", groups: ["engineering"] },
    { connector: "wiki", groups: ["engineers"] },
  ],
});
const sales = policy("sales", {
  match: [{ key: "department", operator: "In", values: ["Sales"] }],
  grants: [
    { connector: "corp-ldap", groups: ["sales"] },
    { connector: "crm", groups: ["pipeline"] },
  ],
});
const POLICIES = [everyone, engineering, sales];

type Person = { name: string; id: string; given: string; family: string };
const PEOPLE: Record<string, Person> = {
  ada: { name: "ada", id: "E1001", given: "Ada", family: "Lovelace" },
  grace: { name: "grace", id: "E1002", given: "Grace", family: "Hopper" },
  alan: { name: "alan", id: "E1003", given: "Alan", family: "Turing" },
  linus: { name: "linus", id: "E1004", given: "Linus", family: "Pauling" },
  barbara: { name: "barbara", id: "E1005", given: "Barbara", family: "Liskov" },
  margaret: { name: "margaret", id: "E1006", given: "Margaret", family: "Hamilton" },
  ken: { name: "ken", id: "E1007", given: "Ken", family: "Thompson" },
};

const ldapId = (username: string) => `uid=${username},ou=people,dc=example,dc=com`;
const scimId = (connectorName: string, username: string) => `${connectorName}-${username}-7f76-453a-919d`;
const idFor = (connectorName: string, username: string) =>
  connectorName === "corp-ldap" ? ldapId(username) : scimId(connectorName, username);

function employee(
  who: keyof typeof PEOPLE,
  spec: Partial<EmployeeSpecT> = {},
  status?: EmployeeStatusT,
  metadata: Partial<ObjectMeta> = {},
): Employee {
  const p = PEOPLE[who]!;
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: {
      name: p.name,
      namespace: NS,
      generation: 1,
      finalizers: ["roster.dev/deprovision"],
      ...metadata,
    },
    spec: {
      employeeId: p.id,
      username: p.name,
      givenName: p.given,
      familyName: p.family,
      email: `${p.name}@example.com`,
      department: "Engineering",
      title: "Software Engineer",
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

/** Status of an Employee the operator last saw in sync, with these accounts. */
function synced(
  accounts: Record<string, { state?: AccountStatusT["state"]; groups: string[] }>,
  username: string,
) {
  return (extra: Partial<EmployeeStatusT> = {}): EmployeeStatusT => ({
    observedGeneration: 1,
    phase: "Active",
    accounts: Object.entries(accounts).map(([connectorName, a]) => ({
      connector: connectorName,
      id: idFor(connectorName, username),
      state: a.state ?? "Active",
      groups: a.groups,
      lastSyncTime: "2026-05-01T09:00:00Z",
    })),
    provisionedAt: "2026-03-02T09:00:00Z",
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Provisioned",
        message: "every account matches the desired state",
        lastTransitionTime: "2026-03-02T09:00:00Z",
        observedGeneration: 1,
      },
    ],
    ...extra,
  });
}

/** An engineer in sync on corp-ldap (and wiki). */
function engineer(who: keyof typeof PEOPLE, spec: Partial<EmployeeSpecT> = {}, withWiki = true): Employee {
  const accounts: Record<string, { groups: string[] }> = {
    "corp-ldap": { groups: ["engineering", "staff"] },
  };
  if (withWiki) accounts.wiki = { groups: ["engineers"] };
  return employee(who, spec, synced(accounts, PEOPLE[who]!.name)());
}

/** What the target holds for an Employee: the attributes Roster wrote from its spec. */
function held(
  target: Connector,
  e: Employee,
  over: Partial<ActualAccount> & { set?: Record<string, string[]> } = {},
): ActualAccount {
  const { set, ...rest } = over;
  return {
    id: idFor(target.metadata.name, e.spec.username),
    employeeId: e.spec.employeeId,
    username: e.spec.username,
    attributes: { ...desiredAttributes(target, e.spec), ...set },
    enabled: true,
    groups: ["engineering", "staff"],
    ...rest,
  };
}

// --- compareScan ----------------------------------------------------------------------------

type ScanCase = {
  name: string;
  connector?: Connector;
  employees: Employee[];
  /** What the target's listAccounts returned. */
  accounts: (c: Connector) => ActualAccount[];
  expect: { drift: Drift[]; orphans?: ScanResult["orphans"]; managed?: ScanResult["managed"] };
};

const ada = engineer("ada");
const grace = engineer("grace");
const alan = engineer("alan");
const barbara = engineer("barbara");
const linus = employee(
  "linus",
  { department: "Sales" },
  synced({ "corp-ldap": { groups: ["sales", "staff"] } }, "linus")(),
);
const margaret = employee(
  "margaret",
  { employmentStatus: "Terminated" },
  synced({ "corp-ldap": { state: "Disabled", groups: [] } }, "margaret")({ phase: "Deprovisioned" }),
);

const scanCases: ScanCase[] = [
  {
    name: "in sync, a hand-added unmanaged group included: no drift",
    employees: [ada],
    accounts: (c) => [held(c, ada, { groups: ["book-club", "engineering", "staff"] })],
    expect: { drift: [], orphans: [], managed: { Active: 1, Disabled: 0 } },
  },
  {
    name: "attributes changed outside Roster",
    employees: [grace],
    accounts: (c) => [held(c, grace, { set: { title: ["Rear Admiral"], mail: ["grace@navy.example"] } })],
    expect: {
      drift: [
        {
          employee: "grace",
          employeeId: "E1002",
          kinds: ["attributes"],
          detail: "attributes changed: mail, title",
        },
      ],
    },
  },
  {
    name: "disabled outside Roster",
    employees: [alan],
    accounts: (c) => [held(c, alan, { enabled: false })],
    expect: {
      drift: [
        {
          employee: "alan",
          employeeId: "E1003",
          kinds: ["enabled"],
          detail: "account disabled outside Roster",
        },
      ],
      managed: { Active: 0, Disabled: 1 },
    },
  },
  {
    name: "a leaver re-enabled outside Roster",
    employees: [margaret],
    accounts: (c) => [held(c, margaret, { enabled: true, groups: [] })],
    expect: {
      drift: [
        {
          employee: "margaret",
          employeeId: "E1006",
          kinds: ["enabled"],
          detail: "account re-enabled outside Roster",
        },
      ],
    },
  },
  {
    name: "membership changed outside Roster: removed from a managed group, added to another",
    employees: [linus],
    accounts: (c) => [held(c, linus, { groups: ["engineering", "sales"] })],
    expect: {
      drift: [
        {
          employee: "linus",
          employeeId: "E1004",
          kinds: ["membership"],
          detail: "removed from staff; added to engineering",
        },
      ],
    },
  },
  {
    name: "deleted outside Roster",
    employees: [barbara],
    accounts: () => [],
    expect: {
      drift: [
        {
          employee: "barbara",
          employeeId: "E1005",
          kinds: ["deleted"],
          detail: "account deleted outside Roster",
        },
      ],
      managed: { Active: 0, Disabled: 0 },
    },
  },
  {
    name: "several kinds on one account, sorted",
    employees: [grace],
    accounts: (c) => [
      held(c, grace, { enabled: false, groups: ["staff"], set: { title: ["Rear Admiral"] } }),
    ],
    expect: {
      drift: [
        {
          employee: "grace",
          employeeId: "E1002",
          kinds: ["attributes", "enabled", "membership"],
          detail: "attributes changed: title; account disabled outside Roster; removed from engineering",
        },
      ],
    },
  },
  {
    name: "someone with a change in flight (status behind the spec, or not Ready) is not judged",
    employees: [
      { ...engineer("ken"), metadata: { ...engineer("ken").metadata, generation: 2 } },
      employee(
        "ada",
        {},
        {
          ...ada.status,
          conditions: [{ ...ada.status!.conditions![0]!, status: "False", reason: "TargetError" }],
        },
      ),
    ],
    accounts: (c) => [
      held(c, engineer("ken"), { set: { title: ["Hacker"] } }),
      held(c, ada, { set: { title: ["Hacker"] } }),
    ],
    expect: { drift: [], managed: { Active: 2, Disabled: 0 } },
  },
  {
    name: "a deletion due after the grace period is the plan's own, not drift",
    connector: corpLdap({ deprovisioning: { action: "Delete", deleteAfter: "72h" } }),
    employees: [{ ...margaret, status: { ...margaret.status, deprovisionedAt: "2026-05-20T12:00:00Z" } }],
    accounts: (c) => [held(c, margaret, { enabled: false, groups: [] })],
    expect: { drift: [], managed: { Active: 0, Disabled: 1 } },
  },
  {
    name: "orphans: no ownership key, or an employeeId no Employee has; the rest counted as managed",
    employees: [ada, alan, margaret],
    accounts: (c) => [
      held(c, ada),
      held(c, alan, { enabled: false }),
      held(c, margaret, { enabled: false, groups: [] }),
      {
        id: "uid=admin,ou=people,dc=example,dc=com",
        employeeId: "",
        username: "admin",
        attributes: { uid: ["admin"] },
        enabled: true,
        groups: [],
      },
      {
        ...held(c, ada),
        id: "uid=old-ada,ou=people,dc=example,dc=com",
        employeeId: "E0042",
        username: "old-ada",
      },
    ],
    expect: {
      drift: [
        {
          employee: "alan",
          employeeId: "E1003",
          kinds: ["enabled"],
          detail: "account disabled outside Roster",
        },
      ],
      orphans: [
        { id: "uid=admin,ou=people,dc=example,dc=com", employeeId: "" },
        { id: "uid=old-ada,ou=people,dc=example,dc=com", employeeId: "E0042" },
      ],
      managed: { Active: 1, Disabled: 2 },
    },
  },
];

describe("compareScan", () => {
  it.each(scanCases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const target = c.connector ?? corpLdap();
    const result = compareScan({
      connector: target,
      objects: { employees: c.employees, policies: POLICIES, rules: [], connectors: [target, wiki(), crm()] },
      accounts: c.accounts(target),
      now: NOW,
    });
    expect(result.drift).toEqual(c.expect.drift);
    if (c.expect.orphans) expect(result.orphans).toEqual(c.expect.orphans);
    if (c.expect.managed) expect(result.managed).toEqual(c.expect.managed);
  });
});

// --- previewPlan ----------------------------------------------------------------------------

const state = (
  employees: Employee[],
  connectors: Connector[] = [corpLdap(), wiki(), crm()],
): RosterState => ({
  employees,
  policies: POLICIES,
  rules: [],
  connectors,
});
/** As in Git: the spec only, no status. */
const specOnly = (e: Employee): Employee => {
  const { status: _status, ...rest } = e;
  return rest;
};

/**
 * What planEmployee would run for `proposed`, when the targets hold exactly what `current`
 * status records (the attributes written from the current spec).
 */
function plannerOps(current: RosterState, proposed: RosterState, name: string): Record<string, Operation[]> {
  const before = current.employees.find((e) => e.metadata.name === name);
  const after = proposed.employees.find((e) => e.metadata.name === name);
  const subject: Employee = after
    ? { ...after, status: before?.status }
    : { ...before!, metadata: { ...before!.metadata, deletionTimestamp: "2026-06-01T12:00:00Z" } };
  const targets = new Map<string, TargetRead>();
  for (const c of proposed.connectors) {
    const recorded = before?.status?.accounts?.find((a) => a.connector === c.metadata.name);
    const live = recorded && (recorded.state === "Active" || recorded.state === "Disabled");
    targets.set(c.metadata.name, {
      status: "read",
      actual: live
        ? held(c, before!, {
            id: recorded.id!,
            enabled: recorded.state === "Active",
            groups: recorded.groups ?? [],
          })
        : undefined,
    });
  }
  const plan = planEmployee({
    employee: subject,
    objects: { ...proposed, employees: after ? proposed.employees : [...proposed.employees, subject] },
    targets,
    now: NOW,
  });
  return Object.fromEntries(plan.accounts.filter((a) => a.ops.length > 0).map((a) => [a.connector, a.ops]));
}

type PreviewCase = {
  name: string;
  current: RosterState;
  proposed: RosterState;
  /** The changes for `person`, per connector. */
  person: string;
  changes: Record<string, Partial<PlannedChange>>;
  brake?: BrakeCheck[];
  tripsBrake?: boolean;
};

const adaMoved = { ...specOnly(ada), spec: { ...ada.spec, department: "Sales" } };
const adaLeft = { ...specOnly(ada), spec: { ...ada.spec, employmentStatus: "Terminated" as const } };
const previewCases: PreviewCase[] = [
  {
    name: "joiner: a new file -> accounts created with their groups",
    current: state([ada]),
    proposed: state([specOnly(ada), specOnly(engineer("grace"))]),
    person: "grace",
    changes: {
      "corp-ldap": {
        action: "create",
        groupsAdded: ["engineering", "staff"],
        groupsRemoved: [],
        reason: "active",
      },
      wiki: { action: "create", groupsAdded: ["engineers"] },
    },
  },
  {
    name: "mover: Engineering -> Sales",
    current: state([ada]),
    proposed: state([adaMoved]),
    person: "ada",
    changes: {
      "corp-ldap": {
        action: "update",
        attributes: ["departmentNumber"],
        groupsAdded: ["sales"],
        groupsRemoved: ["engineering"],
      },
      crm: { action: "create", groupsAdded: ["pipeline"] },
      wiki: { action: "disable", groupsRemoved: ["engineers"] },
    },
  },
  {
    name: "leaver: employmentStatus Terminated",
    current: state([ada]),
    proposed: state([adaLeft]),
    person: "ada",
    changes: {
      "corp-ldap": {
        action: "disable",
        groupsRemoved: ["engineering", "staff"],
        reason: "employmentStatus is Terminated",
      },
      wiki: { action: "disable", groupsRemoved: ["engineers"] },
    },
  },
  {
    name: "leaver: the file removed -> the Employee is deleted",
    current: state([ada, grace]),
    proposed: state([specOnly(grace)]),
    person: "ada",
    changes: {
      "corp-ldap": {
        action: "disable",
        groupsRemoved: ["engineering", "staff"],
        reason: "the Employee is deleted",
      },
      wiki: { action: "disable", groupsRemoved: ["engineers"], reason: "the Employee is deleted" },
    },
  },
  {
    name: "rehire: a Terminated, disabled account enabled again",
    current: state([
      employee(
        "ada",
        { employmentStatus: "Terminated" },
        synced({ "corp-ldap": { state: "Disabled", groups: [] } }, "ada")({ phase: "Deprovisioned" }),
      ),
    ]),
    proposed: state([specOnly(ada)]),
    person: "ada",
    changes: {
      "corp-ldap": { action: "enable", groupsAdded: ["engineering", "staff"], groupsRemoved: [] },
      wiki: { action: "create", groupsAdded: ["engineers"] },
    },
  },
  {
    name: "brake: the percentage is taken of the larger count, Connector status (100) over 4 recorded",
    current: state(
      [ada, grace, alan, barbara],
      [corpLdap({ safety: { maxDeprovisionPercent: 10 } }, { managedAccounts: 100 }), wiki(), crm()],
    ),
    proposed: state(
      [adaLeft, specOnly(grace), specOnly(alan), specOnly(barbara)],
      // The Connector as in Git: no status.
      [corpLdap({ safety: { maxDeprovisionPercent: 10 } }), wiki(), crm()],
    ),
    person: "ada",
    changes: {
      "corp-ldap": { action: "disable", groupsRemoved: ["engineering", "staff"] },
      wiki: { action: "disable", groupsRemoved: ["engineers"] },
    },
    brake: [
      { connector: "corp-ldap", deprovisions: 1, limit: 10, managed: 100, trips: false },
      // wiki: 4 recorded, no scan count: 10 % of 4 is below the floor of 5.
      { connector: "wiki", deprovisions: 1, limit: 5, managed: 4, trips: false },
    ],
    tripsBrake: false,
  },
  {
    name: "brake: status records more than the last scan counted -> the recorded count",
    current: state([ada, grace, alan, barbara], [corpLdap({}, { managedAccounts: 3 }), wiki(), crm()]),
    proposed: state([adaLeft, specOnly(grace), specOnly(alan), specOnly(barbara)]),
    person: "ada",
    changes: { "corp-ldap": { action: "disable" }, wiki: { action: "disable" } },
    brake: [
      { connector: "corp-ldap", deprovisions: 1, limit: 5, managed: 4, trips: false },
      { connector: "wiki", deprovisions: 1, limit: 5, managed: 4, trips: false },
    ],
    tripsBrake: false,
  },
  {
    name: "brake: everybody leaves past maxDeprovisionsPerHour -> trips",
    current: state(
      [ada, grace, alan, barbara],
      [corpLdap({ safety: { maxDeprovisionsPerHour: 2 } }), wiki(), crm()],
    ),
    proposed: state(
      [ada, grace, alan, barbara].map((e) => ({
        ...specOnly(e),
        spec: { ...e.spec, employmentStatus: "Terminated" as const },
      })),
      [corpLdap({ safety: { maxDeprovisionsPerHour: 2 } }), wiki(), crm()],
    ),
    person: "ada",
    changes: { "corp-ldap": { action: "disable" }, wiki: { action: "disable" } },
    brake: [
      { connector: "corp-ldap", deprovisions: 4, limit: 2, managed: 4, trips: true },
      { connector: "wiki", deprovisions: 4, limit: 5, managed: 4, trips: false },
    ],
    tripsBrake: true,
  },
  {
    name: "brake: a mover's group removal counts as a deprovision",
    current: state([ada], [corpLdap({ safety: { maxDeprovisionsPerHour: 0 } }), wiki(), crm()]),
    proposed: state([adaMoved], [corpLdap({ safety: { maxDeprovisionsPerHour: 0 } }), wiki(), crm()]),
    person: "ada",
    changes: {
      "corp-ldap": { action: "update", groupsRemoved: ["engineering"] },
      crm: { action: "create" },
      wiki: {},
    },
    brake: [
      { connector: "corp-ldap", deprovisions: 1, limit: 0, managed: 1, trips: true },
      { connector: "wiki", deprovisions: 1, limit: 5, managed: 1, trips: false },
    ],
    tripsBrake: true,
  },
];

describe("previewPlan", () => {
  it.each(previewCases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const preview = previewPlan(c.current, c.proposed, NOW);
    const mine = Object.fromEntries(
      preview.changes.filter((x) => x.employee === c.person).map((x) => [x.connector, x]),
    );
    expect(Object.keys(mine).sort()).toEqual(Object.keys(c.changes).sort());
    for (const [connectorName, change] of Object.entries(c.changes))
      expect(mine[connectorName], connectorName).toMatchObject(change);

    // The same decisions as the planner would make for the accounts status records.
    const ops = plannerOps(c.current, c.proposed, c.person);
    expect(Object.keys(ops).sort()).toEqual(Object.keys(mine).sort());
    for (const [connectorName, planned] of Object.entries(ops))
      expect(mine[connectorName], connectorName).toMatchObject(changeOf(planned));

    if (c.brake) expect(preview.brake).toEqual(c.brake);
    if (c.tripsBrake !== undefined) expect(preview.tripsBrake).toBe(c.tripsBrake);
  });

  it("lists a link of an existing account as its own change once annotated, and nothing before", () => {
    const unlinkedAda: Employee = {
      ...ada,
      status: {
        ...ada.status,
        accounts: [
          { connector: "corp-ldap", id: ldapId("ada"), state: "Unlinked", groups: [], message: "matches" },
          ...(ada.status?.accounts ?? []).filter((a) => a.connector !== "corp-ldap"),
        ],
      },
    };
    const adopting = [corpLdap({ adoption: { match: "Username" } }), wiki(), crm()];
    const current = state([unlinkedAda], adopting);
    expect(previewPlan(current, state([specOnly(ada)], adopting), NOW).changes).toEqual([]);
    const annotated = {
      ...specOnly(ada),
      metadata: { ...ada.metadata, annotations: { "roster.dev/adopt": "corp-ldap" } },
    };
    const preview = previewPlan(current, state([annotated], adopting), NOW);
    expect(preview.changes).toEqual([
      expect.objectContaining({
        employee: "ada",
        connector: "corp-ldap",
        action: "adopt",
        reason: expect.stringContaining(`links the existing account ${ldapId("ada")}`),
      }),
    ]);
    expect(renderPreview(preview)).toContain("1 to link");
  });

  it("shows nothing for a proposal that changes nothing", () => {
    const current = state([ada, grace]);
    const preview = previewPlan(current, state([specOnly(ada), specOnly(grace)]), NOW);
    expect(preview).toEqual({ changes: [], brake: [], tripsBrake: false });
  });
});
