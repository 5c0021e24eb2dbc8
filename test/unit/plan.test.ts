import { describe, expect, it } from "vitest";
import { attributeChanges, isDeprovision, planAccount } from "../../src/plan/plan.ts";
import { parseDuration } from "../../src/api/durations.ts";
import type { ActualAccount, DesiredAccount } from "../../src/connectors/types.ts";

const desired = (over: Partial<DesiredAccount> = {}): DesiredAccount => ({
  employeeId: "E1",
  username: "ada",
  attributes: { cn: ["Ada Lovelace"], mail: ["ada@example.com"] },
  enabled: true,
  groups: ["staff"],
  ...over,
});
const actual = (over: Partial<ActualAccount> = {}): ActualAccount => ({
  id: "uid=ada,ou=people,dc=x",
  employeeId: "E1",
  username: "ada",
  attributes: { cn: ["Ada Lovelace"], mail: ["ada@example.com"] },
  enabled: true,
  groups: ["staff"],
  ...over,
});
const base = {
  managedAttributes: ["cn", "mail", "title"],
  managedGroups: new Set(["staff", "engineering", "sales"]),
  deleteNow: false,
};

describe("planAccount", () => {
  it("creates a missing account with everything at once", () => {
    expect(planAccount({ ...base, desired: desired() })).toEqual([{ op: "create", account: desired() }]);
  });

  it("does nothing when the account matches", () => {
    expect(planAccount({ ...base, desired: desired(), actual: actual() })).toEqual([]);
  });

  it("updates only changed managed attributes and deletes emptied ones", () => {
    const ops = planAccount({
      ...base,
      desired: desired({ attributes: { cn: ["Ada King"], mail: ["ada@example.com"] } }),
      actual: actual({
        attributes: {
          cn: ["Ada Lovelace"],
          mail: ["ada@example.com"],
          title: ["Countess"],
          description: ["by hand"],
        },
      }),
    });
    expect(ops).toEqual([{ op: "update", changes: { cn: ["Ada King"], title: null } }]);
  });

  it("moves a mover between managed groups and never touches unmanaged ones", () => {
    const ops = planAccount({
      ...base,
      desired: desired({ groups: ["staff", "sales"] }),
      actual: actual({ groups: ["staff", "engineering", "book-club"] }),
    });
    expect(ops).toEqual([
      { op: "group_add", group: "sales" },
      { op: "group_remove", group: "engineering" },
    ]);
  });

  it("disables a person on leave and keeps the groups; re-enables on return", () => {
    expect(planAccount({ ...base, desired: desired({ enabled: false }), actual: actual() })).toEqual([
      { op: "disable" },
    ]);
    expect(planAccount({ ...base, desired: desired(), actual: actual({ enabled: false }) })).toEqual([
      { op: "enable" },
    ]);
  });

  it("disables a leaver and removes every managed group in one plan, deleting only when due", () => {
    const leaver = actual({ groups: ["staff", "engineering", "book-club"] });
    const ops = planAccount({ ...base, actual: leaver });
    expect(ops).toEqual([
      { op: "disable" },
      { op: "group_remove", group: "engineering" },
      { op: "group_remove", group: "staff" },
    ]);
    expect(ops.every(isDeprovision)).toBe(true);
    expect(planAccount({ ...base, actual: leaver, deleteNow: true }).at(-1)).toEqual({ op: "delete" });
    expect(planAccount({ ...base })).toEqual([]);
  });

  it("compares groups the way the target does", () => {
    const lower = (name: string) => name.toLowerCase();
    const ops = planAccount({
      ...base,
      groupKey: lower,
      desired: desired({ groups: ["Staff"] }),
      actual: actual({ groups: ["staff"] }),
    });
    expect(ops).toEqual([]);
  });

  it("compares multi-valued attributes regardless of order", () => {
    expect(attributeChanges({ mail: ["a", "b"] }, { mail: ["b", "a"] }, ["mail"])).toEqual({});
  });

  it("sees a changed, an added or a dropped value of a single-valued attribute", () => {
    const managed = ["cn", "mail", "title"];
    expect(
      attributeChanges(
        { cn: ["Ada"], mail: ["a@x"], title: ["CTO"] },
        { cn: ["ada"], mail: ["a@x", "b@x"] },
        managed,
      ),
    ).toEqual({ cn: ["Ada"], mail: ["a@x"], title: ["CTO"] });
    expect(attributeChanges({ mail: ["a@x", "b@x"] }, { mail: ["a@x"] }, managed)).toEqual({
      mail: ["a@x", "b@x"],
    });
    expect(attributeChanges({ cn: [] }, { cn: ["Ada"] }, managed)).toEqual({ cn: null });
  });
});

describe("parseDuration", () => {
  it.each([
    ["30s", 30_000],
    ["15m", 900_000],
    ["720h", 2_592_000_000],
    ["30d", 2_592_000_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["1.5h", 5_400_000],
  ])("%s is %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "10", "ten minutes", "5m10"])("refuses %j", (text) =>
    expect(() => parseDuration(text)).toThrow(/invalid duration/),
  );
});
