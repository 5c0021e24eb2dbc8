import { describe, expect, it } from "vitest";
import type { EmployeeSpecT } from "../../src/api/types.ts";
import {
  ldapAttributes,
  ldapTemplates,
  managedAttributeNames,
  validateLdapTemplates,
} from "../../src/connectors/ldap/attributes.ts";
import { renderTemplate, templateVariables, validateTemplate } from "../../src/connectors/template.ts";

const ada: EmployeeSpecT = {
  employeeId: "E-0001",
  username: "ada",
  givenName: "Ada",
  familyName: "Lovelace",
  email: "ada@example.com",
  department: "Engineering",
  location: "London",
  attributes: { badge: "42", "cost.owner": "" },
};

describe("renderTemplate", () => {
  it("substitutes fields and attributes.<name>, tolerating spaces in braces", () => {
    expect(renderTemplate("{{givenName}} {{ familyName }} <{{email}}> #{{attributes.badge}}", ada)).toBe(
      "Ada Lovelace <ada@example.com> #42",
    );
  });
  it("renders missing fields as empty and applies the API defaults", () => {
    expect(renderTemplate("[{{title}}][{{attributes.nope}}][{{bogus}}]", ada)).toBe("[][][]");
    expect(
      renderTemplate("[{{attributes.constructor}}][{{attributes.__proto__}}][{{attributes.toString}}]", ada),
    ).toBe("[][][]");
    expect(renderTemplate("{{displayName}}", ada)).toBe("Ada Lovelace");
    expect(renderTemplate("{{displayName}}", { ...ada, displayName: "Countess" })).toBe("Countess");
    expect(renderTemplate("{{employmentType}}/{{employmentStatus}}", ada)).toBe("Employee/Active");
  });
  it("inserts values verbatim (no escaping, no trimming)", () => {
    expect(renderTemplate("{{givenName}}", { ...ada, givenName: " a,b*(c)\\ " })).toBe(" a,b*(c)\\ ");
  });
  it("lists and validates variables", () => {
    expect(templateVariables("{{a}} {{ attributes.b }}")).toEqual(["a", "attributes.b"]);
    expect(validateTemplate("{{givenName}} {{attributes.x}}")).toEqual([]);
    expect(validateTemplate("{{given}}")[0]).toMatch(/unknown template variable \{\{given\}\}/);
  });
});

describe("ldapAttributes", () => {
  it("uses the default mapping and omits empty values", () => {
    expect(ldapAttributes(ada, {})).toEqual({
      employeeNumber: ["E-0001"],
      uid: ["ada"],
      cn: ["Ada Lovelace"],
      sn: ["Lovelace"],
      givenName: ["Ada"],
      mail: ["ada@example.com"],
      displayName: ["Ada Lovelace"],
      departmentNumber: ["Engineering"],
      l: ["London"],
      employeeType: ["Employee"],
    });
  });

  it("merges spec.attributes over the defaults (case-insensitive), '' removes one", () => {
    const attrs = ldapAttributes(ada, {
      usernameAttribute: "cn",
      attributes: {
        CN: "ignored: forced",
        mail: "{{username}}@corp.example",
        l: "",
        o: "{{attributes.badge}}",
      },
    });
    expect(attrs.cn).toEqual(["ada"]); // the usernameAttribute is forced to the username
    expect(attrs.CN).toBeUndefined();
    expect(attrs.mail).toEqual(["ada@corp.example"]);
    expect(attrs.l).toBeUndefined();
    expect(attrs.o).toEqual(["42"]);
    expect(attrs.uid).toBeUndefined();
  });

  it("never lets templates override employeeNumber", () => {
    expect(ldapAttributes(ada, { attributes: { employeenumber: "x" } }).employeeNumber).toEqual(["E-0001"]);
    expect(
      validateLdapTemplates({ attributes: { employeenumber: "x", foo: "{{nope}}", "bad name": "" } }),
    ).toHaveLength(3);
  });

  it("lists the managed names", () => {
    expect(managedAttributeNames({ attributes: { Mail: "{{email}}" } })).toContain("Mail");
    expect(managedAttributeNames({})).toEqual(
      expect.arrayContaining(["employeeNumber", "uid", "cn", "mail"]),
    );
    expect(
      Object.keys(ldapTemplates({ attributes: { Mail: "x" } })).filter((k) => k.toLowerCase() === "mail"),
    ).toEqual(["Mail"]);
  });
});
