// The Employee planner (src/plan/employee.ts), table-driven: each case is a namespace as the
// reconciler finds it (Employee, policies, rules, Connectors, what each target holds, scan drift,
// brake holds) and what a user then sees: the operations run, status.accounts, phase,
// conditions, Events and when the Employee is looked at again. Every case goes through the
// reconciler's three calls (reads only; with the brake's holds; with the operations' results),
// the operations "run" against an in-memory account. No servers.
import { describe, expect, it } from "vitest";
import type {
  AccessPolicy,
  AccountStatusT,
  Condition,
  Connector,
  ConnectorSpecT,
  Employee,
  EmployeeSpecT,
  EmployeeStatusT,
  GroupRule,
  ObjectMeta,
} from "../../src/api/types.ts";
import type { ActualAccount } from "../../src/connectors/types.ts";
import { desiredAttributes } from "../../src/connectors/mapping.ts";
import {
  planEmployee,
  type AccountResult,
  type BrakeHold,
  type EmployeePlan,
  type EmployeePlanInput,
  type Failure,
  type NamespaceObjects,
  type TargetRead,
} from "../../src/plan/employee.ts";
import type { Operation } from "../../src/plan/plan.ts";

const NS = "people";
const NOW = new Date("2026-06-01T12:00:00Z");
const NOW_TEXT = "2026-06-01T12:00:00Z";
const HOUR = 3_600_000;
const LAST_SYNC = "2026-05-01T09:00:00Z";
const PROVISIONED = "2026-03-02T09:00:00Z";

// --- objects ------------------------------------------------------------------------------

function connector(name: string, spec: ConnectorSpecT, metadata: Partial<ObjectMeta> = {}): Connector {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Connector",
    metadata: { name, namespace: NS, generation: 1, ...metadata },
    spec,
  };
}

const ldapSpec = {
  url: "ldaps://ldap.example.com:636",
  bindDN: "cn=roster,ou=services,dc=example,dc=com",
  bindPasswordSecretRef: { name: "corp-ldap-bind", key: "password" },
  usersDN: "ou=people,dc=example,dc=com",
  groupsDN: "ou=groups,dc=example,dc=com",
};
const corpLdap = (spec: Partial<ConnectorSpecT> = {}, metadata: Partial<ObjectMeta> = {}) =>
  connector("corp-ldap", { ldap: ldapSpec, ...spec }, metadata);
const wiki = (spec: Partial<ConnectorSpecT> = {}, metadata: Partial<ObjectMeta> = {}) =>
  connector(
    "wiki",
    {
      scim: {
        baseURL: "https://wiki.example.com/scim/v2",
        tokenSecretRef: { name: "wiki-scim-token", key: "token" },
      },
      ...spec,
    },
    metadata,
  );
const crm = () =>
  connector("crm", {
    scim: {
      baseURL: "https://crm.example.com/scim/v2",
      tokenSecretRef: { name: "crm-scim-token", key: "token" },
    },
  });

function policy(name: string, spec: AccessPolicy["spec"]): AccessPolicy {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "AccessPolicy",
    metadata: { name, namespace: NS, generation: 1 },
    spec,
  };
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
const oncall: GroupRule = {
  apiVersion: "roster.dev/v1alpha1",
  kind: "GroupRule",
  metadata: { name: "oncall", namespace: NS, generation: 1 },
  spec: {
    group: "oncall",
    match: [{ key: "title", operator: "In", values: ["Site Reliability Engineer"] }],
    connectors: ["corp-ldap"],
    membership: "Additive",
  },
};

function employee(
  spec: Partial<EmployeeSpecT> = {},
  status?: EmployeeStatusT,
  metadata: Partial<ObjectMeta> = {},
): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: {
      name: "ada",
      namespace: NS,
      generation: 1,
      creationTimestamp: "2026-03-01T08:00:00Z",
      finalizers: ["roster.dev/deprovision"],
      ...metadata,
    },
    spec: {
      employeeId: "E1001",
      username: "ada",
      givenName: "Ada",
      familyName: "Lovelace",
      email: "ada@example.com",
      department: "Engineering",
      title: "Software Engineer",
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const IDS: Record<string, string> = {
  "corp-ldap": "uid=ada,ou=people,dc=example,dc=com",
  wiki: "2819c223-7f76-453a-919d-413861904646",
  crm: "5d48a0a8-e9b6-4b4e-9f2a-3c1f0e6a7b21",
};

/** What a target holds for the Employee: the attributes Roster wrote from `spec`. */
function held(
  target: Connector,
  spec: EmployeeSpecT,
  over: Partial<ActualAccount> & { set?: Record<string, string[]> } = {},
): ActualAccount {
  const { set, ...rest } = over;
  return {
    id: IDS[target.metadata.name]!,
    employeeId: spec.employeeId,
    username: spec.username,
    attributes: { ...desiredAttributes(target, spec), ...set },
    enabled: true,
    groups: [],
    ...rest,
  };
}

/** Ada's account in corp-ldap as it was made by hand: no employeeNumber, its own title and mail, a group of its own. */
function handMade(): ActualAccount {
  return held(corpLdap(), ada.spec, {
    employeeId: "",
    set: { title: ["Old title"], mail: ["ada.private@example.org"] },
    groups: ["ops"],
  });
}

/** An account as Employee status records it. */
function recorded(
  connectorName: string,
  state: AccountStatusT["state"],
  groups: string[],
  extra: Partial<AccountStatusT> = {},
): AccountStatusT {
  return {
    connector: connectorName,
    id: IDS[connectorName]!,
    state,
    groups,
    lastSyncTime: LAST_SYNC,
    ...extra,
  };
}

function readyCondition(reason = "Provisioned"): Condition {
  return {
    type: "Ready",
    status: "True",
    reason,
    message: "every account matches the desired state",
    lastTransitionTime: PROVISIONED,
    observedGeneration: 1,
  };
}

/** The status of an Employee the operator last saw in sync. */
function synced(accounts: AccountStatusT[], extra: Partial<EmployeeStatusT> = {}): EmployeeStatusT {
  return {
    observedGeneration: 1,
    phase: "Active",
    accounts,
    provisionedAt: PROVISIONED,
    conditions: [readyCondition()],
    ...extra,
  };
}

const read = (actual?: ActualAccount): TargetRead => ({ status: "read", actual });
const failed = (failure: Failure): TargetRead => ({ status: "failed", failure });
const NOT_OWNED: Failure = {
  kind: "terminal",
  reason: "NotOwned",
  message: "uid=ada,ou=people,dc=example,dc=com exists and belongs to employeeNumber E0042: not touched",
};
const REFUSED: Failure = {
  kind: "transient",
  reason: "TargetError",
  message: "connect ECONNREFUSED 10.0.0.12:636",
};

// --- the reconciler's three calls, against in-memory accounts -------------------------------

/** Runs the operations as a target would: every one succeeds. */
function runOps(
  connectorName: string,
  ops: readonly Operation[],
  actual: ActualAccount | undefined,
): AccountResult {
  let current = actual && structuredClone(actual);
  for (const op of ops) {
    if (op.op === "create") {
      current = {
        id: IDS[connectorName]!,
        employeeId: op.account.employeeId,
        username: op.account.username,
        attributes: { ...op.account.attributes },
        enabled: op.account.enabled,
        groups: [...op.account.groups],
      };
      continue;
    }
    if (!current) throw new Error(`${op.op} on a missing account`);
    if (op.op === "link") {
      current = { ...current, employeeId: "E-linked" };
      continue;
    }
    switch (op.op) {
      case "update":
        for (const [name, values] of Object.entries(op.changes))
          if (values === null) delete current.attributes[name];
          else current.attributes[name] = values;
        break;
      case "enable":
      case "disable":
        current.enabled = op.op === "enable";
        break;
      case "group_add":
        current.groups = [...current.groups, op.group];
        break;
      case "group_remove":
        current.groups = current.groups.filter((g) => g !== op.group);
        break;
      case "delete":
        current = undefined;
        break;
    }
  }
  return { applied: [...ops], current };
}

type Reconciled = { reads: EmployeePlan; braked: EmployeePlan; final: EmployeePlan };

type Case = {
  name: string;
  employee: Employee;
  /** Other Employees of the namespace (the planned one is always there). */
  others?: Employee[];
  policies?: AccessPolicy[];
  rules?: GroupRule[];
  connectors?: Connector[];
  targets?: Record<string, TargetRead>;
  drift?: Record<string, string>;
  held?: Record<string, BrakeHold>;
  /** What running a connector's operations did; by default every operation succeeds. */
  results?: Record<string, AccountResult>;
  /** Connectors whose generated password was never set on the existing account. */
  passwordPending?: string[];
  now?: Date;
  expect: {
    paused?: boolean;
    /** The operations run, per connector; connectors left out run none. */
    ops?: Record<string, unknown[]>;
    phase?: EmployeeStatusT["phase"];
    /** status.accounts, in order, each matched as a subset; null: no accounts listed. */
    accounts?: Record<string, unknown>[] | null;
    conditions?: Record<string, Record<string, unknown>>;
    noConditions?: string[];
    /** Every Event, in order, each matched as a subset. */
    events?: Record<string, unknown>[];
    next?: Record<string, unknown>;
    status?: { provisionedAt?: string | undefined; deprovisionedAt?: string | undefined };
    clearDrift?: string[];
    also?: (r: Reconciled) => void;
  };
};

function reconcile(c: Case): Reconciled {
  const objects: NamespaceObjects = {
    employees: [c.employee, ...(c.others ?? [])],
    policies: c.policies ?? [everyone, engineering, sales],
    rules: c.rules ?? [],
    connectors: c.connectors ?? [corpLdap(), wiki(), crm()],
  };
  const targets = new Map(Object.entries(c.targets ?? {}));
  const input: EmployeePlanInput = {
    employee: c.employee,
    objects,
    targets,
    ...(c.drift ? { drift: new Map(Object.entries(c.drift)) } : {}),
    ...(c.passwordPending ? { passwordPending: new Set(c.passwordPending) } : {}),
    now: c.now ?? NOW,
  };
  const reads = planEmployee(input);
  if (reads.paused) return { reads, braked: reads, final: reads };
  const heldMap = new Map(Object.entries(c.held ?? {}));
  const braked = planEmployee({ ...input, held: heldMap });
  const results = new Map<string, AccountResult>();
  for (const account of braked.accounts) {
    if (account.ops.length === 0) continue;
    const target = targets.get(account.connector);
    // An account being linked is the candidate, as the target holds it.
    const actual = target?.status === "read" ? (target.actual ?? target.candidates?.[0]) : undefined;
    results.set(
      account.connector,
      c.results?.[account.connector] ?? runOps(account.connector, account.ops, actual),
    );
  }
  const final = planEmployee({ ...input, held: heldMap, results });
  return { reads, braked, final };
}

const ev = (reason: string, message?: string | RegExp, type: "Normal" | "Warning" = "Normal") => ({
  type,
  reason,
  ...(message === undefined
    ? {}
    : { message: typeof message === "string" ? message : expect.stringMatching(message) }),
});
const account = (
  connectorName: string,
  state: string,
  groups: string[],
  extra: Record<string, unknown> = {},
) => ({
  connector: connectorName,
  state,
  groups,
  ...extra,
});

// --- the cases -------------------------------------------------------------------------------

const ada = employee();
const adaSynced = synced([
  recorded("corp-ldap", "Active", ["engineering", "staff"]),
  recorded("wiki", "Active", ["engineers"]),
]);
const inSync = (spec: EmployeeSpecT, ldapGroups = ["engineering", "staff"], wikiGroups = ["engineers"]) => ({
  "corp-ldap": read(held(corpLdap(), spec, { groups: ldapGroups })),
  wiki: read(held(wiki(), spec, { groups: wikiGroups })),
  crm: read(undefined),
});

const cases: Case[] = [
  // Joiner, mover, leaver ---------------------------------------------------------------------
  {
    name: "joiner: no account yet -> created with the desired attributes and groups, status Active",
    employee: ada,
    targets: { "corp-ldap": read(undefined), wiki: read(undefined) },
    expect: {
      ops: {
        "corp-ldap": [
          {
            op: "create",
            account: {
              employeeId: "E1001",
              username: "ada",
              attributes: expect.objectContaining({
                employeeNumber: ["E1001"],
                uid: ["ada"],
                cn: ["Ada Lovelace"],
                mail: ["ada@example.com"],
                departmentNumber: ["Engineering"],
              }),
              enabled: true,
              groups: ["engineering", "staff"],
            },
          },
        ],
        wiki: [
          {
            op: "create",
            account: expect.objectContaining({ employeeId: "E1001", enabled: true, groups: ["engineers"] }),
          },
        ],
      },
      phase: "Active",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"], {
          id: IDS["corp-ldap"],
          lastSyncTime: NOW_TEXT,
        }),
        account("wiki", "Active", ["engineers"], { id: IDS.wiki }),
      ],
      conditions: {
        Ready: { status: "True", reason: "Provisioned", observedGeneration: 1 },
        Drifted: { status: "False", reason: "InSync" },
      },
      // One Event for the whole reconcile, naming every change.
      events: [
        ev(
          "AccountCreated",
          `corp-ldap: created ${IDS["corp-ldap"]}; added to engineering, staff; wiki: created ${IDS.wiki}; added to engineers`,
        ),
      ],
      status: { provisionedAt: NOW_TEXT, deprovisionedAt: undefined },
      next: { retry: "none", removeFinalizer: false },
      also: ({ reads, final }) => {
        // Nothing ran yet on the first call: no Event claims it did.
        expect(reads.events).toEqual([]);
        expect(final.status.entitlements).toEqual([
          { connector: "corp-ldap", source: "AccessPolicy/engineering" },
          { connector: "corp-ldap", source: "AccessPolicy/everyone" },
          { connector: "corp-ldap", group: "engineering", source: "AccessPolicy/engineering" },
          { connector: "corp-ldap", group: "staff", source: "AccessPolicy/everyone" },
          { connector: "wiki", source: "AccessPolicy/engineering" },
          { connector: "wiki", group: "engineers", source: "AccessPolicy/engineering" },
        ]);
      },
    },
  },
  {
    name: "in sync: nothing to do, lastSyncTime and provisionedAt stay",
    employee: employee({}, adaSynced),
    targets: inSync(ada.spec),
    expect: {
      ops: {},
      phase: "Active",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"], { lastSyncTime: LAST_SYNC }),
        account("wiki", "Active", ["engineers"], { lastSyncTime: LAST_SYNC }),
      ],
      events: [],
      status: { provisionedAt: PROVISIONED },
      next: { retry: "none", removeFinalizer: false },
    },
  },
  {
    name: "mover: Engineering -> Sales moves managed groups, gains crm, loses wiki; a hand-added group stays",
    employee: employee({ department: "Sales" }, adaSynced, { generation: 2 }),
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { groups: ["book-club", "engineering", "staff"] })),
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
      crm: read(undefined),
    },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "update", changes: { departmentNumber: ["Sales"] } },
          { op: "group_add", group: "sales" },
          { op: "group_remove", group: "engineering" },
        ],
        crm: [{ op: "create", account: expect.objectContaining({ groups: ["pipeline"], enabled: true }) }],
        wiki: [{ op: "disable" }, { op: "group_remove", group: "engineers" }],
      },
      phase: "Active",
      accounts: [
        // book-club was added by hand: never removed, and not Roster's to list.
        account("corp-ldap", "Active", ["sales", "staff"], { lastSyncTime: NOW_TEXT }),
        account("crm", "Active", ["pipeline"], { id: IDS.crm }),
        account("wiki", "Disabled", []),
      ],
      conditions: { Ready: { status: "True", reason: "Provisioned", observedGeneration: 2 } },
      events: [
        ev(
          "AccountCreated",
          `corp-ldap ${IDS["corp-ldap"]}: updated departmentNumber; added to sales; removed from engineering; ` +
            `crm: created ${IDS.crm}; added to pipeline; wiki ${IDS.wiki}: disabled; removed from engineers`,
        ),
      ],
      status: { provisionedAt: PROVISIONED, deprovisionedAt: undefined },
      also: ({ braked }) => {
        expect(braked.accounts.find((a) => a.connector === "wiki")?.deprovisions).toBe(true);
        expect(braked.accounts.find((a) => a.connector === "crm")?.deprovisions).toBe(false);
        const removed = braked.accounts.flatMap((a) => a.ops).filter((o) => o.op === "group_remove");
        expect(removed).not.toContainEqual({ op: "group_remove", group: "book-club" });
      },
    },
  },
  {
    name: "mover: LDAP compares group names as LDAP does (Staff is staff)",
    employee: employee({}, adaSynced),
    targets: inSync(ada.spec, ["Engineering", "Staff"]),
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Active", ["Engineering", "Staff"]),
        account("wiki", "Active", ["engineers"]),
      ],
    },
  },
  {
    name: "leaver: Terminated -> disabled and out of managed groups everywhere, every connector visited",
    employee: employee({ employmentStatus: "Terminated" }, adaSynced, { generation: 2 }),
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { groups: ["book-club", "engineering", "staff"] })),
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
      // Status does not record crm (lost in a crash): the sweep still finds the account.
      crm: read(held(crm(), ada.spec, { groups: ["pipeline"] })),
    },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "disable" },
          { op: "group_remove", group: "engineering" },
          { op: "group_remove", group: "staff" },
        ],
        crm: [{ op: "disable" }, { op: "group_remove", group: "pipeline" }],
        wiki: [{ op: "disable" }, { op: "group_remove", group: "engineers" }],
      },
      phase: "Deprovisioned",
      accounts: [
        account("corp-ldap", "Disabled", [], { id: IDS["corp-ldap"] }),
        account("crm", "Disabled", [], { id: IDS.crm }),
        account("wiki", "Disabled", [], { id: IDS.wiki }),
      ],
      conditions: {
        Ready: {
          status: "True",
          reason: "Deprovisioned",
          message: "access removed: employmentStatus is Terminated",
        },
      },
      status: { deprovisionedAt: NOW_TEXT, provisionedAt: PROVISIONED },
      next: { retry: "none", removeFinalizer: false },
      also: ({ final }) => {
        expect(final.status.entitlements).toEqual([]);
        // One Event for the reconcile, its reason the weightiest change.
        expect(final.events.map((e) => e.reason)).toEqual(["AccountDisabled"]);
        expect(final.events[0]!.message).toMatch(
          /^corp-ldap \S+: disabled; removed from engineering, staff; crm \S+: disabled; removed from pipeline; wiki \S+: disabled; removed from engineers$/,
        );
        expect(final.accounts.every((a) => a.deprovisions)).toBe(true);
      },
    },
  },
  {
    name: "leaver: endDate passed -> treated as Terminated, deprovisionedAt kept from the first time",
    employee: employee(
      { endDate: "2026-05-31" },
      synced([recorded("corp-ldap", "Disabled", []), recorded("wiki", "Disabled", [])], {
        phase: "Deprovisioned",
        deprovisionedAt: "2026-05-31T00:00:05Z",
      }),
    ),
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { enabled: false })),
      wiki: read(held(wiki(), ada.spec, { enabled: false })),
      crm: read(undefined),
    },
    expect: {
      ops: {},
      phase: "Deprovisioned",
      accounts: [account("corp-ldap", "Disabled", []), account("wiki", "Disabled", [])],
      conditions: {
        Ready: { status: "True", reason: "Deprovisioned", message: expect.stringMatching(/endDate/) },
      },
      status: { deprovisionedAt: "2026-05-31T00:00:05Z" },
      events: [],
    },
  },
  {
    name: "leaver: Employee deleted -> deprovisioned, then the finalizer may go",
    employee: employee({}, adaSynced, { deletionTimestamp: "2026-06-01T11:59:00Z" }),
    targets: inSync(ada.spec),
    expect: {
      ops: {
        "corp-ldap": [
          { op: "disable" },
          { op: "group_remove", group: "engineering" },
          { op: "group_remove", group: "staff" },
        ],
        wiki: [{ op: "disable" }, { op: "group_remove", group: "engineers" }],
      },
      phase: "Deprovisioned",
      accounts: [account("corp-ldap", "Disabled", []), account("wiki", "Disabled", [])],
      conditions: {
        Ready: { status: "True", reason: "Deprovisioned", message: expect.stringMatching(/being deleted/) },
      },
      next: { retry: "none", removeFinalizer: true },
    },
  },
  {
    name: "leaver: Employee deleted but a target refuses -> the finalizer stays, retried with backoff",
    employee: employee({}, adaSynced, { deletionTimestamp: "2026-06-01T11:59:00Z" }),
    targets: inSync(ada.spec),
    results: {
      "corp-ldap": {
        applied: [{ op: "disable" }],
        current: held(corpLdap(), ada.spec, { enabled: false, groups: ["engineering", "staff"] }),
        failure: REFUSED,
      },
    },
    expect: {
      phase: "Failed",
      accounts: [
        account("corp-ldap", "Failed", ["engineering", "staff"], { message: REFUSED.message }),
        account("wiki", "Disabled", []),
      ],
      conditions: {
        Ready: { status: "False", reason: "TargetError", message: `corp-ldap: ${REFUSED.message}` },
      },
      events: [
        ev(
          "AccountDisabled",
          `corp-ldap ${IDS["corp-ldap"]}: disabled; wiki ${IDS.wiki}: disabled; removed from engineers`,
        ),
        ev("ProvisioningFailed", `corp-ldap: ${REFUSED.message}`, "Warning"),
      ],
      next: { retry: "backoff", removeFinalizer: false },
    },
  },
  {
    name: "leaver: Employee deleted while a Connector is paused -> the finalizer stays (api.md Ownership)",
    employee: employee({}, adaSynced, { deletionTimestamp: "2026-06-01T11:59:00Z" }),
    connectors: [corpLdap(), wiki({ paused: true }), crm()],
    // The reconciler does not read a paused Connector.
    targets: { "corp-ldap": inSync(ada.spec)["corp-ldap"], crm: read(undefined) },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "disable" },
          { op: "group_remove", group: "engineering" },
          { op: "group_remove", group: "staff" },
        ],
      },
      // The wiki account is still Active with its groups: it is not confirmed disabled.
      accounts: [account("corp-ldap", "Disabled", []), account("wiki", "Active", ["engineers"])],
      next: { retry: "none", removeFinalizer: false },
    },
  },
  {
    name: "leaver: Employee deleted while its Connector's credentials are missing -> not Ready, finalizer stays",
    employee: employee({}, adaSynced, { deletionTimestamp: "2026-06-01T11:59:00Z" }),
    targets: {
      "corp-ldap": inSync(ada.spec)["corp-ldap"],
      wiki: failed({
        kind: "terminal",
        reason: "ConfigurationError",
        message: "Secret wiki-scim-token has no key token",
      }),
      crm: read(undefined),
    },
    expect: {
      phase: "Failed",
      accounts: [
        account("corp-ldap", "Disabled", []),
        account("wiki", "Failed", ["engineers"], { message: "Secret wiki-scim-token has no key token" }),
      ],
      conditions: { Ready: { status: "False", reason: "ConfigurationError" } },
      next: { retry: "none", removeFinalizer: false },
    },
  },

  // Scheduled, suspended, rehired -----------------------------------------------------------
  {
    name: "scheduled: startDate ahead -> no account, phase Scheduled, looked at again at the start",
    employee: employee({ startDate: "2026-06-03" }),
    targets: {},
    expect: {
      ops: {},
      phase: "Scheduled",
      accounts: null,
      conditions: { Ready: { status: "True", reason: "Scheduled", message: "no access until 2026-06-03" } },
      events: [],
      status: { provisionedAt: undefined, deprovisionedAt: undefined },
      next: { retry: "after", afterMs: expect.closeTo(36 * HOUR, -4), removeFinalizer: false },
      also: ({ final }) => {
        expect(final.accounts).toEqual([]);
        expect(final.status.entitlements).toEqual([]);
      },
    },
  },
  {
    name: "active with an endDate ahead -> looked at again when it passes",
    employee: employee({ endDate: "2026-06-02T12:00:00Z" }, adaSynced),
    targets: inSync(ada.spec),
    expect: {
      ops: {},
      phase: "Active",
      next: { retry: "after", afterMs: expect.closeTo(24 * HOUR, -4), removeFinalizer: false },
    },
  },
  {
    name: "suspended: OnLeave -> disabled, groups kept, phase Suspended",
    employee: employee({ employmentStatus: "OnLeave" }, adaSynced, { generation: 2 }),
    targets: inSync(ada.spec),
    expect: {
      ops: { "corp-ldap": [{ op: "disable" }], wiki: [{ op: "disable" }] },
      phase: "Suspended",
      accounts: [
        account("corp-ldap", "Disabled", ["engineering", "staff"]),
        account("wiki", "Disabled", ["engineers"]),
      ],
      conditions: { Ready: { status: "True" } },
      events: [ev("AccountDisabled", `corp-ldap ${IDS["corp-ldap"]}: disabled; wiki ${IDS.wiki}: disabled`)],
      status: { deprovisionedAt: undefined },
      also: ({ final }) =>
        expect(final.status.entitlements).toContainEqual({
          connector: "wiki",
          group: "engineers",
          source: "AccessPolicy/engineering",
        }),
    },
  },
  {
    name: "rehire: Terminated account disabled, Active again -> enabled and back in its groups",
    employee: employee(
      {},
      synced([recorded("corp-ldap", "Disabled", []), recorded("wiki", "Disabled", [])], {
        observedGeneration: 2,
        phase: "Deprovisioned",
        deprovisionedAt: "2026-04-30T17:00:00Z",
        conditions: [{ ...readyCondition("Deprovisioned"), observedGeneration: 2 }],
      }),
      { generation: 3 },
    ),
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { enabled: false })),
      wiki: read(held(wiki(), ada.spec, { enabled: false })),
      crm: read(undefined),
    },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "enable" },
          { op: "group_add", group: "engineering" },
          { op: "group_add", group: "staff" },
        ],
        wiki: [{ op: "enable" }, { op: "group_add", group: "engineers" }],
      },
      phase: "Active",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"], { id: IDS["corp-ldap"] }),
        account("wiki", "Active", ["engineers"], { id: IDS.wiki }),
      ],
      conditions: { Ready: { status: "True", reason: "Provisioned", observedGeneration: 3 } },
      status: { deprovisionedAt: undefined },
      also: ({ braked }) => expect(braked.accounts.some((a) => a.deprovisions)).toBe(false),
    },
  },
  {
    name: "rehire: account deleted meanwhile -> created again under the same employeeId",
    employee: employee(
      {},
      synced([recorded("corp-ldap", "Deleted", [])], {
        phase: "Deprovisioned",
        deprovisionedAt: "2026-01-31T17:00:00Z",
      }),
      { generation: 3 },
    ),
    targets: { "corp-ldap": read(undefined), wiki: read(undefined) },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "create", account: expect.objectContaining({ employeeId: "E1001", enabled: true }) },
        ],
        wiki: [{ op: "create", account: expect.objectContaining({ employeeId: "E1001" }) }],
      },
      phase: "Active",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("wiki", "Active", ["engineers"]),
      ],
      status: { deprovisionedAt: undefined },
    },
  },

  // Grants ----------------------------------------------------------------------------------
  {
    name: "grant expired: GrantExpired while it still shows in the entitlements, its group removed",
    employee: employee(
      { grants: [{ connector: "wiki", groups: ["project-apollo"], until: "2026-05-31" }] },
      synced(
        [
          recorded("corp-ldap", "Active", ["engineering", "staff"]),
          recorded("wiki", "Active", ["engineers", "project-apollo"]),
        ],
        {
          entitlements: [
            { connector: "wiki", source: "AccessPolicy/engineering" },
            { connector: "wiki", source: "Grant" },
            { connector: "wiki", group: "engineers", source: "AccessPolicy/engineering" },
            { connector: "wiki", group: "project-apollo", source: "Grant" },
          ],
        },
      ),
    ),
    targets: inSync(ada.spec, ["engineering", "staff"], ["engineers", "project-apollo"]),
    expect: {
      ops: { wiki: [{ op: "group_remove", group: "project-apollo" }] },
      phase: "Active",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("wiki", "Active", ["engineers"]),
      ],
      events: [
        ev(
          "GrantExpired",
          `grant on wiki expired at 2026-05-31; wiki ${IDS.wiki}: removed from project-apollo`,
        ),
      ],
      also: ({ final }) => {
        expect(final.status.entitlements).not.toContainEqual(
          expect.objectContaining({ group: "project-apollo" }),
        );
        expect(final.accounts.find((a) => a.connector === "wiki")?.deprovisions).toBe(true);
      },
    },
  },
  {
    name: "grant expired: announced once (no longer in the entitlements) -> no Event again",
    employee: employee(
      { grants: [{ connector: "wiki", groups: ["project-apollo"], until: "2026-05-31" }] },
      synced(
        [
          recorded("corp-ldap", "Active", ["engineering", "staff"]),
          recorded("wiki", "Active", ["engineers"]),
        ],
        {
          entitlements: [
            { connector: "wiki", source: "AccessPolicy/engineering" },
            { connector: "wiki", group: "engineers", source: "AccessPolicy/engineering" },
          ],
        },
      ),
    ),
    targets: inSync(ada.spec),
    expect: { ops: {}, events: [] },
  },
  {
    name: "grant expired: announced once even while another grant on the same connector is still live",
    employee: employee(
      {
        grants: [
          { connector: "wiki", groups: ["project-apollo"], until: "2026-05-31" },
          { connector: "wiki", groups: ["project-gemini"], until: "2026-07-01" },
        ],
      },
      // The status written after apollo expired: only gemini is left.
      synced(
        [
          recorded("corp-ldap", "Active", ["engineering", "staff"]),
          recorded("wiki", "Active", ["engineers", "project-gemini"]),
        ],
        {
          entitlements: [
            { connector: "wiki", source: "AccessPolicy/engineering" },
            { connector: "wiki", source: "Grant" },
            { connector: "wiki", group: "engineers", source: "AccessPolicy/engineering" },
            { connector: "wiki", group: "project-gemini", source: "Grant" },
          ],
        },
      ),
    ),
    targets: inSync(ada.spec, ["engineering", "staff"], ["engineers", "project-gemini"]),
    expect: { ops: {}, events: [] },
  },
  {
    name: "grant with a future until -> kept, looked at again when it ends",
    employee: employee(
      { grants: [{ connector: "wiki", groups: ["project-gemini"], until: "2026-06-01T18:00:00Z" }] },
      synced([
        recorded("corp-ldap", "Active", ["engineering", "staff"]),
        recorded("wiki", "Active", ["engineers", "project-gemini"]),
      ]),
    ),
    targets: inSync(ada.spec, ["engineering", "staff"], ["engineers", "project-gemini"]),
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("wiki", "Active", ["engineers", "project-gemini"]),
      ],
      events: [],
      next: { retry: "after", afterMs: expect.closeTo(6 * HOUR, -3), removeFinalizer: false },
      also: ({ final }) =>
        expect(final.status.entitlements).toContainEqual({
          connector: "wiki",
          group: "project-gemini",
          source: "Grant",
        }),
    },
  },

  // Additive group rules ----------------------------------------------------------------------
  {
    name: "additive GroupRule: a membership made by hand before the rule is never removed by Roster",
    employee: employee(
      { title: "Software Engineer" },
      // What the planner wrote while ada still matched the rule (title SRE): she was already in
      // oncall by hand, so Roster added nothing.
      planEmployee({
        employee: employee({ title: "Site Reliability Engineer" }, adaSynced),
        objects: {
          employees: [employee({ title: "Site Reliability Engineer" })],
          policies: [everyone, engineering],
          rules: [oncall],
          connectors: [corpLdap(), wiki()],
        },
        targets: new Map(Object.entries(inSync(ada.spec, ["engineering", "oncall", "staff"]))),
        now: new Date("2026-05-20T09:00:00Z"),
      }).status,
      { generation: 2 },
    ),
    policies: [everyone, engineering],
    rules: [oncall],
    connectors: [corpLdap(), wiki()],
    targets: inSync(ada.spec, ["engineering", "oncall", "staff"]),
    expect: {
      ops: {},
      also: ({ final }) =>
        expect(final.status.accounts?.find((a) => a.connector === "corp-ldap")?.groups).not.toContain(
          "oncall",
        ),
    },
  },
  {
    name: "additive GroupRule: a membership Roster added is removed when the person stops matching",
    employee: employee(
      { title: "Software Engineer" },
      synced([
        recorded("corp-ldap", "Active", ["engineering", "oncall", "staff"]),
        recorded("wiki", "Active", ["engineers"]),
      ]),
      { generation: 2 },
    ),
    policies: [everyone, engineering],
    rules: [oncall],
    connectors: [corpLdap(), wiki()],
    targets: inSync(ada.spec, ["engineering", "oncall", "staff"]),
    expect: {
      ops: { "corp-ldap": [{ op: "group_remove", group: "oncall" }] },
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("wiki", "Active", ["engineers"]),
      ],
    },
  },

  // Paused ------------------------------------------------------------------------------------
  {
    name: "paused Employee: nothing runs, status kept with Paused True",
    employee: employee({ employmentStatus: "Terminated" }, adaSynced, {
      generation: 2,
      annotations: { "roster.dev/paused": "true" },
    }),
    targets: inSync(ada.spec),
    expect: {
      paused: true,
      ops: {},
      phase: "Active",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: {
        Paused: {
          status: "True",
          reason: "PausedByAnnotation",
          message: expect.stringMatching(/roster\.dev\/paused/),
        },
        Ready: { status: "True", reason: "Provisioned" },
      },
      events: [],
      next: { retry: "none", removeFinalizer: false },
      also: ({ final }) => {
        expect(final.accounts).toEqual([]);
        expect(final.status.observedGeneration).toBe(2);
      },
    },
  },
  {
    name: "paused Employee unpaused: the Paused condition goes",
    employee: employee(
      {},
      {
        ...adaSynced,
        conditions: [
          readyCondition(),
          {
            type: "Paused",
            status: "True",
            reason: "PausedByAnnotation",
            message: "paused",
            lastTransitionTime: LAST_SYNC,
          },
        ],
      },
    ),
    targets: inSync(ada.spec),
    expect: { noConditions: ["Paused"], conditions: { Ready: { status: "True" } } },
  },
  {
    name: "paused Connector: nothing runs there, its account stays as recorded; a new one is Pending",
    employee: employee({ grants: [{ connector: "crm", groups: ["pipeline"] }] }, adaSynced, {
      generation: 2,
    }),
    connectors: [
      corpLdap(),
      wiki({ paused: true }),
      connector("crm", crm().spec, { annotations: { "roster.dev/paused": "true" } }),
    ],
    targets: { "corp-ldap": inSync(ada.spec)["corp-ldap"] },
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        { connector: "crm", state: "Pending", groups: [], message: "Connector is paused" },
        // Exactly as recorded.
        recorded("wiki", "Active", ["engineers"]),
      ],
      events: [],
    },
  },
  {
    name: "paused Connector: a joiner whose only account waits on it is not reported provisioned",
    employee: employee(),
    policies: [everyone],
    connectors: [corpLdap({ paused: true })],
    targets: {},
    expect: {
      ops: {},
      accounts: [account("corp-ldap", "Pending", [], { message: "Connector is paused" })],
      phase: "Pending",
      status: { provisionedAt: undefined },
      also: ({ final }) =>
        expect(final.status.conditions?.find((c) => c.type === "Ready")?.status).not.toBe("True"),
    },
  },

  // The mass-change brake ---------------------------------------------------------------------
  {
    name: "held by the brake: a leaver's deprovisions wait for approval, status says so",
    employee: employee({ employmentStatus: "Terminated" }, adaSynced, { generation: 2 }),
    targets: inSync(ada.spec),
    held: { "corp-ldap": { held: 3, limit: 2 } },
    expect: {
      ops: { wiki: [{ op: "disable" }, { op: "group_remove", group: "engineers" }] },
      accounts: [
        account("corp-ldap", expect.any(String), ["engineering", "staff"], {
          message: expect.stringMatching(
            /^deprovisioning held by the mass-change brake \(3 held, limit 2 per hour\); approve with the annotation roster\.dev\/approve-deprovisioning on Connector corp-ldap$/,
          ),
        }),
        account("wiki", "Disabled", []),
      ],
      conditions: {
        Ready: {
          status: "False",
          reason: "DeprovisioningHeld",
          message: expect.stringMatching(/^corp-ldap: deprovisioning held/),
        },
      },
      events: [ev("AccountDisabled", `wiki ${IDS.wiki}: disabled; removed from engineers`)],
      next: { retry: "after", afterMs: 30_000, removeFinalizer: false },
      also: ({ final }) => {
        const ldap = final.accounts.find((a) => a.connector === "corp-ldap")!;
        expect(ldap.deprovisions).toBe(true);
        expect(ldap.held).toEqual({ held: 3, limit: 2 });
      },
    },
  },
  {
    name: "held by the brake: the held account shows state Held (api.md account states)",
    employee: employee({ employmentStatus: "Terminated" }, adaSynced, { generation: 2 }),
    targets: inSync(ada.spec),
    held: { "corp-ldap": { held: 3, limit: 2 } },
    expect: {
      accounts: [account("corp-ldap", "Held", ["engineering", "staff"]), account("wiki", "Disabled", [])],
    },
  },
  {
    name: "held by the brake: a mover gains access at once, the group removal waits",
    employee: employee({ department: "Sales" }, adaSynced, { generation: 2 }),
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { groups: ["engineering", "staff"] })),
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
      crm: read(undefined),
    },
    held: { "corp-ldap": { held: 1, limit: 0 }, wiki: { held: 2, limit: 0 } },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "update", changes: { departmentNumber: ["Sales"] } },
          { op: "group_add", group: "sales" },
        ],
        crm: [{ op: "create", account: expect.objectContaining({ groups: ["pipeline"] }) }],
      },
      accounts: [
        account("corp-ldap", expect.any(String), ["engineering", "sales", "staff"]),
        account("crm", "Active", ["pipeline"]),
        account("wiki", expect.any(String), ["engineers"], {
          message: expect.stringMatching(/mass-change brake/),
        }),
      ],
      conditions: { Ready: { status: "False", reason: "DeprovisioningHeld" } },
      next: { retry: "after", afterMs: 30_000, removeFinalizer: false },
    },
  },

  // Drift -------------------------------------------------------------------------------------
  {
    name: "drift Correct: the scan's drift is put back, DriftCorrected after it ran, drift cleared",
    employee: employee({}, adaSynced),
    connectors: [corpLdap({ drift: { policy: "Correct" } }), wiki(), crm()],
    targets: {
      ...inSync(ada.spec),
      "corp-ldap": read(
        held(corpLdap(), ada.spec, { groups: ["engineering", "staff"], set: { title: ["Chief Hacker"] } }),
      ),
    },
    drift: { "corp-ldap": "attributes changed: title" },
    expect: {
      ops: { "corp-ldap": [{ op: "update", changes: { title: ["Software Engineer"] } }] },
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"], { lastSyncTime: NOW_TEXT }),
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: {
        Drifted: {
          status: "False",
          reason: "DriftCorrected",
          message: "changed outside Roster and put back: corp-ldap: attributes changed: title",
        },
        Ready: { status: "True" },
      },
      events: [
        ev(
          "DriftCorrected",
          `corp-ldap ${IDS["corp-ldap"]}: put back attributes changed: title; updated title`,
        ),
      ],
      clearDrift: ["corp-ldap"],
      also: ({ reads, final }) => {
        expect(reads.events).toEqual([]);
        expect(final.accounts.find((a) => a.connector === "corp-ldap")?.driftCorrected).toBe(
          "attributes changed: title",
        );
      },
    },
  },
  {
    name: "drift Report: left as found while the Employee is unchanged, Drifted True",
    employee: employee({}, adaSynced),
    connectors: [corpLdap({ drift: { policy: "Report" } }), wiki(), crm()],
    targets: {
      ...inSync(ada.spec),
      "corp-ldap": read(
        held(corpLdap(), ada.spec, { groups: ["engineering", "staff"], set: { title: ["Chief Hacker"] } }),
      ),
    },
    drift: { "corp-ldap": "attributes changed: title" },
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"], {
          message: "drift: attributes changed: title",
        }),
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: {
        Drifted: {
          status: "True",
          reason: "DriftReported",
          message:
            "changed outside Roster, left as found (drift policy Report): corp-ldap: attributes changed: title",
        },
      },
      events: [],
      clearDrift: [],
    },
  },
  {
    name: "drift Report: the Employee changed since -> its change runs and the stale drift is cleared",
    employee: employee({ title: "Staff Engineer" }, adaSynced, { generation: 2 }),
    connectors: [corpLdap({ drift: { policy: "Report" } }), wiki(), crm()],
    targets: {
      ...inSync(ada.spec),
      "corp-ldap": read(
        held(corpLdap(), ada.spec, { groups: ["engineering", "staff"], set: { title: ["Chief Hacker"] } }),
      ),
    },
    drift: { "corp-ldap": "attributes changed: title" },
    expect: {
      ops: {
        "corp-ldap": [{ op: "update", changes: { title: ["Staff Engineer"] } }],
        wiki: [{ op: "update", changes: { title: ["Staff Engineer"] } }],
      },
      clearDrift: ["corp-ldap"],
      conditions: { Drifted: { status: "False" } },
    },
  },
  {
    name: "drift Report: does not keep a leaver's access once the endDate passes",
    employee: employee({ endDate: "2026-06-01" }, adaSynced),
    connectors: [corpLdap({ drift: { policy: "Report" } }), wiki(), crm()],
    targets: {
      ...inSync(ada.spec),
      "corp-ldap": read(
        held(corpLdap(), ada.spec, { groups: ["engineering", "staff"], set: { title: ["Chief Hacker"] } }),
      ),
    },
    drift: { "corp-ldap": "attributes changed: title" },
    expect: {
      phase: "Deprovisioned",
      also: ({ braked }) =>
        expect(braked.accounts.find((a) => a.connector === "corp-ldap")?.ops).toContainEqual({
          op: "disable",
        }),
    },
  },

  // Failures ----------------------------------------------------------------------------------
  {
    name: "NotOwned on read: Conflict, phase Failed, no retry loop, one Warning",
    employee: employee({}, undefined),
    targets: { "corp-ldap": failed(NOT_OWNED), wiki: read(undefined) },
    expect: {
      ops: { wiki: [{ op: "create", account: expect.objectContaining({ groups: ["engineers"] }) }] },
      phase: "Failed",
      accounts: [
        { connector: "corp-ldap", state: "Conflict", groups: [], message: NOT_OWNED.message },
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: {
        Ready: { status: "False", reason: "Conflict", message: `corp-ldap: ${NOT_OWNED.message}` },
      },
      events: [
        ev("AccountCreated", `wiki: created ${IDS.wiki}; added to engineers`),
        ev("ProvisioningFailed", `corp-ldap: ${NOT_OWNED.message}`, "Warning"),
      ],
      status: { provisionedAt: undefined },
      next: { retry: "none", removeFinalizer: false },
    },
  },
  {
    name: "NotOwned on create: Conflict, Warning",
    employee: employee({}, undefined),
    targets: { "corp-ldap": read(undefined), wiki: read(undefined) },
    results: { "corp-ldap": { applied: [], current: undefined, failure: NOT_OWNED } },
    expect: {
      phase: "Failed",
      accounts: [
        { connector: "corp-ldap", state: "Conflict", message: NOT_OWNED.message },
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: { Ready: { status: "False", reason: "Conflict" } },
      events: [
        ev("AccountCreated", `wiki: created ${IDS.wiki}; added to engineers`),
        ev("ProvisioningFailed", `corp-ldap: ${NOT_OWNED.message}`, "Warning"),
      ],
      next: { retry: "none", removeFinalizer: false },
      also: ({ final }) =>
        expect(final.accounts.find((a) => a.connector === "corp-ldap")?.status).not.toHaveProperty("id"),
    },
  },
  {
    name: "NotOwned already shown with the same message: no Warning again",
    employee: employee(
      {},
      {
        observedGeneration: 1,
        phase: "Failed",
        accounts: [
          { connector: "corp-ldap", state: "Conflict", groups: [], message: NOT_OWNED.message },
          recorded("wiki", "Active", ["engineers"]),
        ],
      },
    ),
    targets: { "corp-ldap": failed(NOT_OWNED), wiki: inSync(ada.spec).wiki },
    expect: {
      ops: {},
      phase: "Failed",
      accounts: [
        { connector: "corp-ldap", state: "Conflict", message: NOT_OWNED.message },
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: { Ready: { status: "False", reason: "Conflict" } },
      events: [],
      next: { retry: "none", removeFinalizer: false },
    },
  },
  {
    name: "NotOwned with a new message: Warning again",
    employee: employee(
      {},
      {
        observedGeneration: 1,
        phase: "Failed",
        accounts: [
          { connector: "corp-ldap", state: "Conflict", groups: [], message: "uid=ada is owned by E0007" },
        ],
      },
    ),
    targets: { "corp-ldap": failed(NOT_OWNED), wiki: inSync(ada.spec).wiki },
    expect: { events: [ev("ProvisioningFailed", `corp-ldap: ${NOT_OWNED.message}`, "Warning")] },
  },
  {
    name: "transient read failure: Failed, TargetError, retried with backoff, groups kept as recorded",
    employee: employee({}, adaSynced),
    targets: { "corp-ldap": failed(REFUSED), wiki: inSync(ada.spec).wiki },
    expect: {
      ops: {},
      phase: "Failed",
      accounts: [
        account("corp-ldap", "Failed", ["engineering", "staff"], {
          id: IDS["corp-ldap"],
          lastSyncTime: LAST_SYNC,
          message: REFUSED.message,
        }),
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: {
        Ready: { status: "False", reason: "TargetError", message: `corp-ldap: ${REFUSED.message}` },
      },
      events: [ev("ProvisioningFailed", `corp-ldap: ${REFUSED.message}`, "Warning")],
      next: { retry: "backoff", removeFinalizer: false },
    },
  },
  {
    name: "transient failure already shown: reported again (no dedup for transient failures)",
    employee: employee(
      {},
      synced([
        recorded("corp-ldap", "Failed", ["engineering", "staff"], { message: REFUSED.message }),
        recorded("wiki", "Active", ["engineers"]),
      ]),
    ),
    targets: { "corp-ldap": failed(REFUSED), wiki: inSync(ada.spec).wiki },
    expect: {
      events: [ev("ProvisioningFailed", `corp-ldap: ${REFUSED.message}`, "Warning")],
      next: { retry: "backoff", removeFinalizer: false },
    },
  },
  {
    name: "throttled: Failed, waits as long as the target asked",
    employee: employee({}, adaSynced),
    targets: {
      "corp-ldap": inSync(ada.spec)["corp-ldap"],
      wiki: failed({
        kind: "throttled",
        reason: "Throttled",
        message: "HTTP 429 Too Many Requests",
        retryAfterMs: 7_000,
      }),
    },
    expect: {
      phase: "Failed",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("wiki", "Failed", ["engineers"]),
      ],
      conditions: { Ready: { status: "False", reason: "TargetError" } },
      next: { retry: "after", afterMs: 7_000, removeFinalizer: false },
    },
  },
  {
    name: "a Connector that does not exist (any more): terminal, not retried",
    employee: employee({}, synced([...adaSynced.accounts!, recorded("hr-portal", "Active", [])])),
    targets: inSync(ada.spec),
    expect: {
      phase: "Failed",
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"]),
        account("hr-portal", "Failed", [], {
          message: expect.stringContaining("Connector hr-portal not found: "),
        }),
        account("wiki", "Active", ["engineers"]),
      ],
      conditions: { Ready: { status: "False", reason: "ConnectorNotFound" } },
      next: { retry: "none", removeFinalizer: false },
    },
  },

  // Delete after the grace period -------------------------------------------------------------
  {
    name: "deleteAfter: a leaver is disabled at once and looked at again when the grace period ends",
    employee: employee({ employmentStatus: "Terminated" }, adaSynced, { generation: 2 }),
    connectors: [corpLdap({ deprovisioning: { action: "Delete", deleteAfter: "72h" } }), wiki(), crm()],
    targets: inSync(ada.spec),
    expect: {
      ops: {
        "corp-ldap": [
          { op: "disable" },
          { op: "group_remove", group: "engineering" },
          { op: "group_remove", group: "staff" },
        ],
        wiki: [{ op: "disable" }, { op: "group_remove", group: "engineers" }],
      },
      accounts: [account("corp-ldap", "Disabled", []), account("wiki", "Disabled", [])],
      status: { deprovisionedAt: NOW_TEXT },
      next: { retry: "after", afterMs: expect.closeTo(72 * HOUR, -3), removeFinalizer: false },
      also: ({ final }) =>
        expect(final.accounts.find((a) => a.connector === "corp-ldap")?.deleteAt).toEqual(
          new Date("2026-06-04T12:00:00Z"),
        ),
    },
  },
  {
    name: "deleteAfter: within the grace period -> nothing yet, requeued at deleteAt",
    employee: employee(
      { employmentStatus: "Terminated" },
      synced([recorded("corp-ldap", "Disabled", []), recorded("wiki", "Disabled", [])], {
        phase: "Deprovisioned",
        deprovisionedAt: "2026-05-31T12:00:00Z",
      }),
    ),
    connectors: [corpLdap({ deprovisioning: { action: "Delete", deleteAfter: "72h" } }), wiki(), crm()],
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { enabled: false, groups: ["book-club"] })),
      wiki: read(held(wiki(), ada.spec, { enabled: false })),
      crm: read(undefined),
    },
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Disabled", [], { lastSyncTime: LAST_SYNC }),
        account("wiki", "Disabled", []),
      ],
      events: [],
      status: { deprovisionedAt: "2026-05-31T12:00:00Z" },
      next: { retry: "after", afterMs: expect.closeTo(48 * HOUR, -3), removeFinalizer: false },
    },
  },
  {
    name: "deleteAfter: Employee deleted within the grace period -> the deletion is handed to the Connector, the finalizer may go",
    employee: employee(
      { employmentStatus: "Terminated" },
      synced([recorded("corp-ldap", "Disabled", []), recorded("wiki", "Disabled", [])], {
        phase: "Deprovisioned",
        deprovisionedAt: "2026-05-31T12:00:00Z",
      }),
      { deletionTimestamp: "2026-06-01T11:59:00Z" },
    ),
    connectors: [corpLdap({ deprovisioning: { action: "Delete", deleteAfter: "72h" } }), wiki(), crm()],
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { enabled: false })),
      wiki: read(held(wiki(), ada.spec, { enabled: false })),
      crm: read(undefined),
    },
    expect: {
      ops: {},
      next: { retry: "none", removeFinalizer: true },
      also: ({ final }) =>
        expect(final.handOver).toEqual([
          { connector: "corp-ldap", id: IDS["corp-ldap"], deleteAt: new Date("2026-06-03T12:00:00Z") },
        ]),
    },
  },
  {
    name: "a Connector being deleted creates no account; the joiner waits, says why",
    employee: employee({}, undefined),
    connectors: [corpLdap({}, { deletionTimestamp: "2026-06-01T11:00:00Z" }), wiki(), crm()],
    targets: { "corp-ldap": read(undefined), wiki: read(undefined) },
    expect: {
      ops: { wiki: [expect.objectContaining({ op: "create" })] },
      accounts: [
        account("corp-ldap", "Pending", [], {
          message: "Connector corp-ldap is being deleted: no account is created",
        }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
      conditions: { Ready: { status: "False", reason: "ConnectorDeleting" } },
    },
  },
  {
    name: "a generated password whose setting failed after the create is set first, then the rest",
    employee: employee({}, undefined),
    connectors: [corpLdap({ credentials: "GeneratedSecret" }), wiki(), crm()],
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { groups: [] })),
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
    },
    passwordPending: ["corp-ldap"],
    expect: {
      ops: {
        "corp-ldap": [
          { op: "set_password" },
          { op: "group_add", group: "engineering" },
          { op: "group_add", group: "staff" },
        ],
      },
      accounts: [
        expect.objectContaining({
          connector: "corp-ldap",
          state: "Active",
          groups: ["engineering", "staff"],
        }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
    },
  },
  {
    name: "adoption Propose: a hand-made account with the username -> Unlinked, nothing written there",
    employee: employee({}, undefined),
    connectors: [corpLdap({ adoption: { match: "Username" } }), wiki(), crm()],
    targets: {
      "corp-ldap": { status: "read", actual: undefined, candidates: [handMade()] },
      wiki: read(undefined),
    },
    expect: {
      ops: { wiki: [expect.objectContaining({ op: "create" })] },
      phase: "Active",
      accounts: [
        account("corp-ldap", "Unlinked", [], {
          id: IDS["corp-ldap"],
          message: expect.stringContaining("kubectl annotate employee ada roster.dev/adopt=corp-ldap"),
        }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
      conditions: { Ready: { status: "False", reason: "Unlinked" } },
    },
  },
  {
    name: "adoption approved by annotation: linked first, corrected (counted by the brake), login attributes and unmanaged groups left as they are",
    employee: employee({}, undefined, { annotations: { "roster.dev/adopt": "wiki, corp-ldap" } }),
    connectors: [corpLdap({ adoption: { match: "Username" } }), wiki(), crm()],
    targets: {
      "corp-ldap": { status: "read", actual: undefined, candidates: [handMade()] },
      wiki: read(held(wiki(), ada.spec)),
    },
    expect: {
      ops: {
        "corp-ldap": [
          { op: "link", id: IDS["corp-ldap"] },
          { op: "update", changes: { title: [ada.spec.title] } },
          { op: "group_add", group: "engineering" },
          { op: "group_add", group: "staff" },
        ],
        wiki: [{ op: "group_add", group: "engineers" }],
      },
      accounts: [
        account("corp-ldap", "Active", ["engineering", "staff"], { id: IDS["corp-ldap"] }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
      also: ({ reads }) =>
        expect(reads.accounts.find((a) => a.connector === "corp-ldap")!.deprovisions).toBe(true),
    },
  },
  {
    name: "adoption Automatic links without the annotation; held by the brake, nothing is written at all",
    employee: employee({}, undefined),
    connectors: [corpLdap({ adoption: { match: "Username", mode: "Automatic" } }), wiki(), crm()],
    targets: {
      "corp-ldap": { status: "read", actual: undefined, candidates: [handMade()] },
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
    },
    held: { "corp-ldap": { held: 4, limit: 3 } },
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Held", [], {
          id: IDS["corp-ldap"],
          message: expect.stringContaining("linking this account held by the mass-change brake"),
        }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
      also: ({ reads }) => expect(reads.accounts[0]!.ops[0]).toEqual({ op: "link", id: IDS["corp-ldap"] }),
    },
  },
  {
    name: "adoption: two accounts match, or the account matches two Employees -> Conflict, nothing linked",
    employee: employee({}, undefined),
    others: [
      {
        ...employee({ employeeId: "E2002" }, undefined),
        metadata: { name: "ada-2", namespace: NS, generation: 1 },
      },
    ],
    connectors: [corpLdap({ adoption: { match: "Username", mode: "Automatic" } }), wiki(), crm()],
    targets: {
      "corp-ldap": { status: "read", actual: undefined, candidates: [handMade()] },
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
    },
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Conflict", [], {
          message: expect.stringMatching(/this Employee and ada-2; none is linked/),
        }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
      conditions: { Ready: { status: "False", reason: "Conflict" } },
    },
  },
  {
    name: "protected: a candidate with a protected username is never linked; shown as Protected",
    employee: employee({}, undefined),
    connectors: [
      corpLdap({ adoption: { match: "Username", mode: "Automatic" }, protected: { usernames: ["ADA"] } }),
      wiki(),
      crm(),
    ],
    targets: {
      "corp-ldap": { status: "read", actual: undefined, candidates: [handMade()] },
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
    },
    expect: {
      ops: {},
      accounts: [
        account("corp-ldap", "Protected", [], {
          message: expect.stringContaining("username ada is protected"),
        }),
        expect.objectContaining({ connector: "wiki", state: "Active" }),
      ],
    },
  },
  {
    name: "protected: a leaver whose account is in a protected group keeps it as it is; the finalizer may go",
    employee: employee({}, adaSynced, { deletionTimestamp: "2026-06-01T11:59:00Z" }),
    connectors: [corpLdap({ protected: { groups: ["Domain-Admins"] } }), wiki(), crm()],
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { groups: ["domain-admins", "engineering", "staff"] })),
      wiki: read(held(wiki(), ada.spec, { groups: ["engineers"] })),
      crm: read(undefined),
    },
    expect: {
      ops: { wiki: [{ op: "disable" }, { op: "group_remove", group: "engineers" }] },
      accounts: [
        account("corp-ldap", "Protected", [], {
          message: expect.stringContaining("member of the protected group domain-admins"),
        }),
        account("wiki", "Disabled", []),
      ],
      next: { retry: "none", removeFinalizer: true },
    },
  },
  {
    name: "deleteAfter: the grace period since deprovisionedAt has passed -> deleted",
    employee: employee(
      { employmentStatus: "Terminated" },
      synced([recorded("corp-ldap", "Disabled", []), recorded("wiki", "Disabled", [])], {
        phase: "Deprovisioned",
        deprovisionedAt: "2026-05-25T12:00:00Z",
      }),
    ),
    connectors: [corpLdap({ deprovisioning: { action: "Delete", deleteAfter: "72h" } }), wiki(), crm()],
    targets: {
      "corp-ldap": read(held(corpLdap(), ada.spec, { enabled: false, groups: ["book-club"] })),
      wiki: read(held(wiki(), ada.spec, { enabled: false })),
      crm: read(undefined),
    },
    expect: {
      ops: { "corp-ldap": [{ op: "delete" }] },
      phase: "Deprovisioned",
      accounts: [
        account("corp-ldap", "Deleted", [], { id: IDS["corp-ldap"] }),
        account("wiki", "Disabled", []),
      ],
      events: [ev("AccountDeleted", `corp-ldap: deleted ${IDS["corp-ldap"]}`)],
      status: { deprovisionedAt: "2026-05-25T12:00:00Z" },
      next: { retry: "none", removeFinalizer: false },
      also: ({ final }) =>
        expect(final.accounts.find((a) => a.connector === "corp-ldap")?.deprovisions).toBe(true),
    },
  },
  {
    name: "deleteAfter: once deleted the account stays Deleted and nothing more runs",
    employee: employee(
      { employmentStatus: "Terminated" },
      synced([recorded("corp-ldap", "Deleted", []), recorded("wiki", "Disabled", [])], {
        phase: "Deprovisioned",
        deprovisionedAt: "2026-05-25T12:00:00Z",
      }),
    ),
    connectors: [corpLdap({ deprovisioning: { action: "Delete", deleteAfter: "72h" } }), wiki(), crm()],
    targets: {
      "corp-ldap": read(undefined),
      wiki: read(held(wiki(), ada.spec, { enabled: false })),
      crm: read(undefined),
    },
    expect: {
      ops: {},
      accounts: [account("corp-ldap", "Deleted", []), account("wiki", "Disabled", [])],
      events: [],
      next: { retry: "none", removeFinalizer: false },
    },
  },

  // One employeeId, two Employees -------------------------------------------------------------
  {
    name: "duplicate employeeId: a Terminated duplicate never disables the account the active Employee owns",
    employee: employee({ employmentStatus: "Terminated" }, undefined, {
      name: "ada-2019",
      creationTimestamp: "2019-02-01T08:00:00Z",
    }),
    others: [employee({}, adaSynced)],
    targets: inSync(ada.spec),
    expect: {
      ops: {},
      also: ({ final }) =>
        expect(final.status.conditions?.map((c) => c.type)).toContain("DuplicateEmployeeId"),
    },
  },
];

describe("planEmployee", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const r = reconcile(c);
    const { final } = r;
    const want = c.expect;
    if (want.paused !== undefined) expect(final.paused).toBe(want.paused);
    if (want.ops) {
      const ran = Object.fromEntries(
        r.braked.accounts.filter((a) => a.ops.length > 0).map((a) => [a.connector, a.ops]),
      );
      expect(ran).toEqual(want.ops);
      // The plan does not change its mind once the operations ran.
      expect(
        Object.fromEntries(final.accounts.filter((a) => a.ops.length > 0).map((a) => [a.connector, a.ops])),
      ).toEqual(want.ops);
    }
    if (want.phase) expect(final.status.phase).toBe(want.phase);
    if (want.accounts === null) expect(final.status.accounts).toBeUndefined();
    else if (want.accounts) expect(final.status.accounts).toMatchObject(want.accounts);
    for (const [type, condition] of Object.entries(want.conditions ?? {}))
      expect(
        final.status.conditions?.find((x) => x.type === type),
        type,
      ).toMatchObject(condition);
    for (const type of want.noConditions ?? [])
      expect(final.status.conditions?.map((x) => x.type)).not.toContain(type);
    if (want.events) expect(final.events).toMatchObject(want.events);
    if (want.next) expect(final.next).toEqual(want.next);
    for (const [key, value] of Object.entries(want.status ?? {}))
      expect(final.status[key as keyof EmployeeStatusT], key).toEqual(value);
    if (want.clearDrift) expect(final.clearDrift).toEqual(want.clearDrift);
    want.also?.(r);
  });

  it("counts a person by namespace and employeeId for the brake", () => {
    const plan = planEmployee({
      employee: employee({}, adaSynced),
      objects: { employees: [], policies: [everyone], rules: [], connectors: [corpLdap()] },
      targets: new Map(),
      now: NOW,
    });
    expect(plan.brakeKey).toBe("people/E1001");
  });
});
