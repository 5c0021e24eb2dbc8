import { describe, expect, it } from "vitest";
import type { EmployeeSpecT } from "../../src/api/types.ts";
import {
  applyChanges,
  buildResource,
  ENTERPRISE_USER_SCHEMA as E,
  formatScimPath,
  parseScimPath,
  patchOperations,
  readAttributes,
  scimAttributes,
  scimManagedAttributes,
  scimTemplates,
  validateScimTemplates,
} from "../../src/connectors/scim/attributes.ts";
import { attributeChanges } from "../../src/plan/plan.ts";

const ada: EmployeeSpecT = {
  employeeId: "E-0001",
  username: "ada",
  givenName: "Ada",
  familyName: "Lovelace",
  email: "ada@example.com",
  department: "Engineering",
  title: "Countess",
  costCenter: "CC-7",
  manager: "babbage",
  location: "London",
  attributes: { badge: "42" },
};

const WORK_EMAIL = 'emails[type eq "work"].value';
/** The manager's account id in the Connector, as the planner resolves it (here simply "babbage"). */
const BABBAGE = { managerId: "babbage" };

describe("scimAttributes", () => {
  it("maps an Employee to SCIM core and enterprise attributes", () => {
    expect(scimAttributes(ada, {}, BABBAGE)).toEqual({
      userName: ["ada"],
      externalId: ["E-0001"],
      "name.givenName": ["Ada"],
      "name.familyName": ["Lovelace"],
      displayName: ["Ada Lovelace"],
      [WORK_EMAIL]: ["ada@example.com"],
      title: ["Countess"],
      [`${E}:employeeNumber`]: ["E-0001"],
      [`${E}:department`]: ["Engineering"],
      [`${E}:costCenter`]: ["CC-7"],
      [`${E}:manager.value`]: ["babbage"],
    });
  });

  it("sets manager.value to the manager's account id, never to their username (RFC 7643 section 4.3)", () => {
    expect(scimAttributes(ada, {}, { managerId: "2819c223-7f76" })[`${E}:manager.value`]).toEqual([
      "2819c223-7f76",
    ]);
    // Unresolved (the manager has no account here): left unset, not the username.
    expect(scimAttributes(ada, {})[`${E}:manager.value`]).toBeUndefined();
    // A mapping may still ask for the username explicitly.
    const byName = { attributes: { [`${E}:manager.value`]: "{{manager}}" } };
    expect(scimAttributes(ada, byName)[`${E}:manager.value`]).toEqual(["babbage"]);
    expect(validateScimTemplates({ attributes: { nickName: "{{managerId}}" } })).toEqual([]);
  });

  it("leaves out empty values", () => {
    const attrs = scimAttributes({ ...ada, title: " ", department: undefined, manager: undefined }, {});
    expect(attrs.title).toBeUndefined();
    expect(attrs[`${E}:department`]).toBeUndefined();
    expect(attrs[`${E}:manager.value`]).toBeUndefined();
  });

  it("merges spec.attributes: overrides by path (any case), removes with '', adds new paths", () => {
    const spec = {
      attributes: {
        DisplayName: "{{username}}",
        title: "",
        nickName: "{{attributes.badge}}",
        'addresses[type eq "work"].locality': "{{location}}",
        userName: "{{email}}", // reserved: ignored
        active: "false", // reserved: ignored
      },
    };
    const attrs = scimAttributes(ada, spec);
    expect(attrs.DisplayName).toEqual(["ada"]);
    expect(attrs.displayName).toBeUndefined();
    expect(attrs.title).toBeUndefined();
    expect(attrs.nickName).toEqual(["42"]);
    expect(attrs['addresses[type eq "work"].locality']).toEqual(["London"]);
    expect(attrs.userName).toEqual(["ada"]);
    expect(attrs.active).toBeUndefined();
    expect(Object.keys(scimTemplates(spec))).not.toContain("title");
  });

  it("lists the managed attributes, userName and externalId included", () => {
    const managed = scimManagedAttributes({ attributes: { nickName: "{{username}}" } });
    expect(managed.slice(0, 2)).toEqual(["userName", "externalId"]);
    expect(managed).toContain("nickName");
    expect(managed).toContain(WORK_EMAIL);
    expect(
      Object.keys(scimAttributes(ada, { attributes: { nickName: "{{username}}" } }, BABBAGE)).sort(),
    ).toEqual([...managed].sort());
  });

  it("validates spec.attributes", () => {
    expect(validateScimTemplates({ attributes: { nickName: "{{username}}" } })).toEqual([]);
    const problems = validateScimTemplates({
      attributes: { "bad path!": "x", externalId: "{{username}}", title: "{{nope}}" },
    });
    expect(problems).toHaveLength(3);
    expect(problems.join("\n")).toMatch(/invalid SCIM attribute path/);
    expect(problems.join("\n")).toMatch(/externalId: set by Roster/);
    expect(problems.join("\n")).toMatch(/unknown template variable \{\{nope\}\}/);
  });
});

describe("SCIM attribute paths", () => {
  it("parses and formats the supported forms", () => {
    expect(parseScimPath("title")).toEqual({ attribute: "title" });
    expect(parseScimPath("name.givenName")).toEqual({ attribute: "name", subAttribute: "givenName" });
    expect(parseScimPath(WORK_EMAIL)).toEqual({
      attribute: "emails",
      filter: { attribute: "type", value: "work" },
      subAttribute: "value",
    });
    expect(parseScimPath('emails[type EQ "work"]')).toEqual(parseScimPath(WORK_EMAIL));
    expect(parseScimPath(`${E}:manager.value`)).toEqual({
      schema: E,
      attribute: "manager",
      subAttribute: "value",
    });
    expect(parseScimPath('phoneNumbers[type eq "a\\"b"].value').filter!.value).toBe('a"b');
    expect(formatScimPath(parseScimPath('emails[ type eq "work" ]'))).toBe(WORK_EMAIL);
    expect(formatScimPath(parseScimPath(`${E}:manager.value`), false)).toBe(`${E}:manager`);
    for (const bad of ["", "a b", 'emails[type ne "x"].value', "a.b.c", "urn:x"]) {
      expect(() => parseScimPath(bad)).toThrow(/invalid SCIM attribute path/);
    }
  });
});

describe("building and reading resources", () => {
  it("builds a User resource from the flat map and reads the same map back", () => {
    const attrs = scimAttributes(
      ada,
      { attributes: { 'phoneNumbers[type eq "work"].value': "+44" } },
      BABBAGE,
    );
    const resource = buildResource(attrs);
    expect(resource).toEqual({
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", E],
      userName: "ada",
      externalId: "E-0001",
      name: { givenName: "Ada", familyName: "Lovelace" },
      displayName: "Ada Lovelace",
      emails: [{ type: "work", primary: true, value: "ada@example.com" }],
      phoneNumbers: [{ type: "work", primary: true, value: "+44" }],
      title: "Countess",
      [E]: {
        employeeNumber: "E-0001",
        department: "Engineering",
        costCenter: "CC-7",
        manager: { value: "babbage" },
      },
    });
    expect(readAttributes(resource, Object.keys(attrs))).toEqual(attrs);
  });

  it("reads tolerantly: names in any case, numbers and booleans as strings, plain manager values", () => {
    const resource = {
      UserName: "ada",
      externalId: 1234,
      NAME: { GivenName: "Ada" },
      Emails: [
        { type: "home", value: "home@example.org" },
        { Type: "Work", Value: "ada@example.com" },
      ],
      [E.toUpperCase()]: { manager: "babbage", employeeNumber: 7 },
      nickName: true,
    };
    expect(
      readAttributes(resource, [
        "userName",
        "externalId",
        "name.givenName",
        WORK_EMAIL,
        `${E}:manager.value`,
        `${E}:employeeNumber`,
        "nickName",
        "title",
      ]),
    ).toEqual({
      userName: ["ada"],
      externalId: ["1234"],
      "name.givenName": ["Ada"],
      [WORK_EMAIL]: ["ada@example.com"],
      [`${E}:manager.value`]: ["babbage"],
      [`${E}:employeeNumber`]: ["7"],
      nickName: ["true"],
    });
  });
});

describe("patchOperations", () => {
  const current = buildResource(scimAttributes(ada, {}, BABBAGE));

  it("replaces and removes with lowercase ops", () => {
    const managed = scimManagedAttributes({});
    const next = scimAttributes(
      { ...ada, email: "new@example.com", department: "Research", title: undefined, manager: undefined },
      {},
    );
    const changes = attributeChanges(next, readAttributes(current, managed), managed);
    expect(patchOperations(current, changes)).toEqual([
      { op: "replace", path: WORK_EMAIL, value: "new@example.com" },
      { op: "remove", path: "title" },
      { op: "replace", path: `${E}:department`, value: "Research" },
      { op: "remove", path: `${E}:manager` },
    ]);
  });

  it("adds a missing element of a multi-valued attribute instead of replacing through a filter", () => {
    const withHome = { ...current, emails: [{ type: "home", value: "home@example.org", primary: true }] };
    expect(patchOperations(withHome, { [WORK_EMAIL]: ["ada@example.com"] })).toEqual([
      { op: "add", path: "emails", value: [{ type: "work", value: "ada@example.com" }] },
    ]);
    expect(patchOperations({}, { [WORK_EMAIL]: ["ada@example.com"] })).toEqual([
      { op: "add", path: "emails", value: [{ type: "work", primary: true, value: "ada@example.com" }] },
    ]);
  });

  it("sets extension sub-attributes through their parent and skips removals of absent attributes", () => {
    expect(patchOperations(current, { [`${E}:manager.value`]: ["lovelace"], nickName: null })).toEqual([
      { op: "replace", path: `${E}:manager`, value: { value: "lovelace" } },
    ]);
    expect(patchOperations(current, { "name.givenName": ["Augusta"] })).toEqual([
      { op: "replace", path: "name.givenName", value: "Augusta" },
    ]);
    expect(patchOperations(current, { [WORK_EMAIL]: null })).toEqual([
      { op: "remove", path: 'emails[type eq "work"]' },
    ]);
  });
});

describe("applyChanges (PUT)", () => {
  it("applies changes to a copy, keeping everything else", () => {
    const current = {
      ...buildResource(scimAttributes(ada, {}, BABBAGE)),
      id: "1",
      preferredLanguage: "en",
      emails: [
        { type: "work", value: "ada@example.com", primary: true },
        { type: "home", value: "home@example.org" },
      ],
    };
    const before = structuredClone(current);
    const next = applyChanges(current, {
      [WORK_EMAIL]: ["new@example.com"],
      title: null,
      [`${E}:manager.value`]: null,
      "name.givenName": ["Augusta"],
    });
    expect(current).toEqual(before);
    expect(next).toMatchObject({
      id: "1",
      preferredLanguage: "en",
      name: { givenName: "Augusta", familyName: "Lovelace" },
      emails: [
        { type: "work", value: "new@example.com", primary: true },
        { type: "home", value: "home@example.org" },
      ],
    });
    expect(next.title).toBeUndefined();
    expect((next[E] as Record<string, unknown>).manager).toBeUndefined();
  });
});
