import { tryParseDuration } from "../../src/api/durations.ts";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import type { Connector, Employee } from "../../src/api/types.ts";
import {
  accessRows,
  buildReview,
  CSV_COLUMNS,
  isLeaver,
  renderReviewCsv,
  renderReviewJson,
  renderReviewTable,
} from "../../src/hr/review.ts";

const now = new Date("2026-06-01T12:00:00Z");
const T = "2026-06-01T11:00:00Z";

function employee(
  name: string,
  spec: Partial<Employee["spec"]>,
  status: Employee["status"] = {},
  namespace = "hr",
): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name, namespace },
    spec: {
      employeeId: `E-${name}`,
      username: name,
      givenName: name,
      familyName: "Tester",
      email: `${name}@example.com`,
      ...spec,
    },
    status,
  };
}

function connector(name: string, status: Connector["status"] = {}, namespace = "hr"): Connector {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Connector",
    metadata: { name, namespace },
    spec: {
      ldap: {
        url: "ldap://x",
        bindDN: "cn=admin",
        bindPasswordSecretRef: { name: "s", key: "k" },
        usersDN: "ou=p",
        groupsDN: "ou=g",
      },
    },
    status,
  };
}

const ada = employee(
  "ada",
  { department: "Engineering" },
  {
    phase: "Active",
    accounts: [{ connector: "ldap", id: "uid=ada,ou=p", state: "Active", groups: ["engineering", "staff"] }],
    entitlements: [
      { connector: "ldap", source: "AccessPolicy/everyone" },
      { connector: "ldap", group: "engineering", source: "AccessPolicy/engineering" },
      { connector: "ldap", group: "staff", source: "AccessPolicy/everyone" },
      { connector: "ldap", group: "staff", source: "GroupRule/all" },
      { connector: "ldap", group: "vpn", source: "Grant" },
    ],
    conditions: [
      { type: "Ready", status: "True", reason: "InSync", message: "", lastTransitionTime: T },
      {
        type: "Drifted",
        status: "True",
        reason: "Changed",
        message: "mail changed in LDAP",
        lastTransitionTime: T,
      },
    ],
  },
);
const bob = employee(
  "bob",
  { employmentStatus: "Terminated" },
  {
    phase: "Deprovisioned",
    accounts: [{ connector: "ldap", id: "uid=bob,ou=p", state: "Disabled", groups: [] }],
  },
);
const cy = employee(
  "cy",
  { endDate: "2026-05-01" },
  { phase: "Active", accounts: [{ connector: "ldap", id: "uid=cy,ou=p", state: "Active", groups: [] }] },
);
const dee = employee("dee", {
  grants: [
    { connector: "ldap", groups: ["project-x"], until: "2026-06-10" },
    { connector: "ldap", groups: ["later"], until: "2026-08-01" },
    { connector: "ldap", groups: ["past"], until: "2026-05-01" },
  ],
});

describe("access review", () => {
  it("lists each account and group with its sources", () => {
    const review = buildReview({ employees: [ada], connectors: [], now, scope: "namespace hr" });
    expect(review.people[0]!.accounts).toEqual([
      {
        connector: "ldap",
        state: "Active",
        id: "uid=ada,ou=p",
        sources: ["AccessPolicy/everyone"],
        groups: [
          { name: "engineering", sources: ["AccessPolicy/engineering"], member: true },
          { name: "staff", sources: ["AccessPolicy/everyone", "GroupRule/all"], member: true },
          { name: "vpn", sources: ["Grant"], member: false },
        ],
      },
    ]);
    expect(accessRows(review).map((r) => [r.group, r.source])).toEqual([
      ["engineering", "AccessPolicy/engineering"],
      ["staff", "AccessPolicy/everyone, GroupRule/all"],
      ["vpn", "Grant (pending)"],
    ]);
  });

  it("finds leavers with access from status and from the target, and reports unreadable targets", () => {
    expect(isLeaver(bob, now)).toBe(true);
    expect(isLeaver(cy, now)).toBe(true);
    expect(isLeaver(ada, now)).toBe(false);
    const review = buildReview({
      employees: [ada, bob, cy],
      connectors: [connector("ldap")],
      now,
      scope: "namespace hr",
      targetChecks: [
        {
          namespace: "hr",
          employee: "bob",
          connector: "ldap",
          account: { id: "uid=bob,ou=p", enabled: true },
        },
        {
          namespace: "hr",
          employee: "cy",
          connector: "ldap",
          account: { id: "uid=cy,ou=p", enabled: false },
        },
        { namespace: "hr", employee: "cy", connector: "other", error: "connect ECONNREFUSED" },
      ],
    });
    expect(review.exceptions.filter((e) => e.kind !== "Drifted")).toEqual([
      {
        kind: "LeaverWithAccess",
        namespace: "hr",
        employee: "bob",
        connector: "ldap",
        account: "uid=bob,ou=p",
        detail: "employmentStatus is Terminated, but the entry in the target is enabled (read directly)",
      },
      {
        kind: "LeaverWithAccess",
        namespace: "hr",
        employee: "cy",
        connector: "ldap",
        account: "uid=cy,ou=p",
        detail: "endDate 2026-05-01 has passed, but status says the account is Active",
      },
      {
        kind: "TargetUnreadable",
        namespace: "hr",
        employee: "cy",
        connector: "other",
        detail: "could not check the leaver's entry in the target: connect ECONNREFUSED",
      },
    ]);
  });

  it("lists orphans, drift, held deprovisions and expiring grants", () => {
    const review = buildReview({
      employees: [ada, dee],
      connectors: [
        connector("ldap", {
          orphanAccounts: { count: 3, ids: ["uid=x,ou=p", "uid=y,ou=p"] },
          driftedAccounts: 2,
          heldDeprovisions: 40,
          conditions: [
            {
              type: "DeprovisioningHeld",
              status: "True",
              reason: "Limit",
              message: "40 leavers in an hour",
              lastTransitionTime: T,
            },
          ],
        }),
      ],
      now,
      scope: "namespace hr",
      expiringWithinMs: tryParseDuration("14d")!,
    });
    expect(
      review.exceptions.map((e) => [e.kind, e.employee ?? e.connector, e.account ?? "", e.detail]),
    ).toEqual([
      ["OrphanAccount", "ldap", "", "1 more orphan accounts (not listed in status)"],
      ["OrphanAccount", "ldap", "uid=x,ou=p", "no Employee owns this account"],
      ["OrphanAccount", "ldap", "uid=y,ou=p", "no Employee owns this account"],
      ["Drifted", "ldap", "", "2 accounts changed outside the operator"],
      ["Drifted", "ada", "", "mail changed in LDAP"],
      [
        "DeprovisioningHeld",
        "ldap",
        "",
        "40 deprovisions held: 40 leavers in an hour; approve with the annotation roster.dev/approve-deprovisioning",
      ],
      ["ExpiringGrant", "dee", "", "grant (groups project-x) expires 2026-06-10, in 8d"],
    ]);
  });

  it("lists the onboarding checklist: adoption candidates, conflicts and members added by hand", () => {
    const account = (state: string, id: string, message: string) => ({
      connector: "ldap",
      id,
      state,
      groups: [],
      message,
    });
    const review = buildReview({
      employees: [
        employee("eve", {}, { accounts: [account("Unlinked", "uid=eve,ou=p", "candidate")] as never }),
        employee(
          "fay",
          {},
          { accounts: [account("Conflict", "", "2 accounts have fay@example.com")] as never },
        ),
      ],
      connectors: [
        connector("ldap", {
          unmanagedMembers: [
            { group: "devs", action: "Remove", count: 3, members: ["h1", "h2"] },
            { group: "staff", action: "Keep", count: 1, members: ["h3"] },
          ],
        }),
      ],
      now,
      scope: "namespace hr",
    });
    expect(
      review.exceptions.map((e) => [e.kind, e.employee ?? e.connector, e.account ?? "", e.detail]),
    ).toEqual([
      [
        "AdoptionCandidate",
        "eve",
        "uid=eve,ou=p",
        'an account that existed before Roster matches this person and is not linked; link it with the annotation roster.dev/adopt: "ldap"',
      ],
      [
        "AdoptionConflict",
        "fay",
        "",
        "the account name is taken by an account Roster may not link: 2 accounts have fay@example.com",
      ],
      [
        "UnmanagedMembers",
        "ldap",
        "",
        "group devs: 3 members Roster did not add, which an Authoritative GroupRule removes through the mass-change brake: h1, h2, and 1 more",
      ],
      ["UnmanagedMembers", "ldap", "", "group staff: 1 member Roster did not add, kept: h3"],
    ]);
  });

  it("is clean when nothing needs a look", () => {
    const review = buildReview({
      employees: [bob],
      connectors: [connector("ldap")],
      now,
      scope: "namespace hr",
    });
    expect(review.exceptions).toEqual([]);
    expect(renderReviewTable(review, { allNamespaces: false })).toContain("EXCEPTIONS: none");
  });
});

describe("rendering", () => {
  const review = buildReview({
    employees: [ada, bob, cy, employee("eve", {}, {}, "other")],
    connectors: [],
    now,
    scope: "all namespaces",
  });

  it("renders an aligned table with an exceptions section", () => {
    const text = renderReviewTable(review, { allNamespaces: true });
    const lines = text.split("\n");
    expect(lines[0]).toBe("ACCESS REVIEW (all namespaces, 2026-06-01T12:00:00.000Z)");
    expect(lines[2]).toMatch(
      /^NAMESPACE +EMPLOYEE +USERNAME +EMPLOYEE ID +STATUS +PHASE +CONNECTOR +ACCOUNT +ACCOUNT ID +GROUP +SOURCE$/,
    );
    const column = lines[2]!.indexOf("GROUP");
    expect(lines[3]!.slice(column)).toBe("engineering   AccessPolicy/engineering");
    expect(text).toMatch(/^other +eve +eve +E-eve +Active +- +- +- +- +- +-$/m);
    expect(text).toMatch(/^EXCEPTIONS \(2\)$/m);
    expect(text).toMatch(/^LeaverWithAccess +hr +cy +ldap +uid=cy,ou=p +endDate 2026-05-01 has passed/m);
  });

  it("renders one CSV with access and exception records", () => {
    const rows = parse(renderReviewCsv(review), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual([...CSV_COLUMNS]);
    expect(rows.filter((r) => r.record === "access")).toHaveLength(6);
    expect(rows.find((r) => r.record === "exception" && r.exception === "Drifted")).toMatchObject({
      namespace: "hr",
      employee: "ada",
      detail: "mail changed in LDAP",
    });
  });

  it("renders JSON with people and exceptions", () => {
    const json = JSON.parse(renderReviewJson(review)) as {
      people: unknown[];
      exceptions: { kind: string }[];
    };
    expect(json.people).toHaveLength(4);
    expect(json.exceptions.map((e) => e.kind)).toEqual(["LeaverWithAccess", "Drifted"]);
  });

  it("parses durations", () => {
    expect(tryParseDuration("14d")).toBe(14 * 86_400_000);
    expect(tryParseDuration("1h30m")).toBe(5_400_000);
    expect(tryParseDuration("2w")).toBe(14 * 86_400_000);
    expect(tryParseDuration("14")).toBeUndefined();
    expect(tryParseDuration("soon")).toBeUndefined();
  });
});
