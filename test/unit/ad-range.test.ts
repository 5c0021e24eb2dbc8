// AD's ranged retrieval of multi-valued attributes (`member;range=0-1499`): parsing the ranged
// attribute descriptions an answer carries. The reads that follow them run against a real
// range-answering server in test/integration/ad-connector.test.ts and test/e2e/ad-lifecycle.test.ts.
import { describe, expect, it } from "vitest";
import type { Entry } from "ldapts";
import { parseRange, valuesOf } from "../../src/connectors/ldap/groups.ts";
import { samAccountNameProblem, withLdapDefaults, ldapLayout } from "../../src/connectors/ldap/settings.ts";
import { userAccountControl, unusablePassword } from "../../src/connectors/ldap/entries.ts";
import { ldapAttributes, managedAttributeNames } from "../../src/connectors/ldap/attributes.ts";

describe("parseRange", () => {
  it("reads AD's range option, bounded or open-ended, case-insensitively and among other options", () => {
    expect(parseRange("member;range=0-1499", "member")).toEqual({ low: 0, high: 1499 });
    expect(parseRange("member;range=1500-*", "member")).toEqual({ low: 1500, high: "*" });
    expect(parseRange("Member;Range=3000-4499", "member")).toEqual({ low: 3000, high: 4499 });
    expect(parseRange("member;binary;range=0-9", "member")).toEqual({ low: 0, high: 9 });
  });
  it("is undefined for the plain attribute, another attribute, or a malformed range", () => {
    expect(parseRange("member", "member")).toBeUndefined();
    expect(parseRange("memberOf;range=0-1499", "member")).toBeUndefined();
    expect(parseRange("member;range=0-", "member")).toBeUndefined();
    expect(parseRange("member;range=a-b", "member")).toBeUndefined();
  });
});

describe("valuesOf", () => {
  it("finds a ranged answer under whatever key the server used", () => {
    const entry = { dn: "CN=g", "member;range=0-1": ["CN=a", "CN=b"] } as Entry;
    expect(valuesOf(entry, "member")).toEqual({ values: ["CN=a", "CN=b"], range: { low: 0, high: 1 } });
    expect(valuesOf({ dn: "CN=g", member: ["CN=a"] } as Entry, "member")).toEqual({ values: ["CN=a"] });
    expect(valuesOf({ dn: "CN=g" } as Entry, "member")).toEqual({ values: [] });
  });
});

describe("ActiveDirectory settings", () => {
  const ad = withLdapDefaults({
    url: "ldaps://dc1.corp.example.com",
    flavor: "ActiveDirectory",
    bindDN: "CN=svc-roster,OU=Service Accounts,DC=corp,DC=example,DC=com",
    bindPasswordSecretRef: { name: "ad", key: "password" },
    usersDN: "OU=People,OU=Roster,DC=corp,DC=example,DC=com",
    groupsDN: "OU=Groups,OU=Roster,DC=corp,DC=example,DC=com",
  });
  it("defaults to user, group and sAMAccountName, names entries by cn and pages within MaxPageSize", () => {
    expect(ad).toMatchObject({
      userObjectClasses: ["user"],
      groupObjectClass: "group",
      usernameAttribute: "sAMAccountName",
    });
    const layout = ldapLayout(ad);
    expect(layout.personDN("Ada, Countess")).toBe(
      "CN=Ada\\, Countess,OU=People,OU=Roster,DC=corp,DC=example,DC=com",
    );
    expect(layout.usernameIsRDN).toBe(false);
    expect(layout.dnsDomain).toBe("corp.example.com");
    expect(layout.domainDN).toBe("DC=corp,DC=example,DC=com");
    expect(layout.pageSize(5000)).toBe(1000);
    expect(ldapLayout(withLdapDefaults({ ...ad, flavor: "OpenLDAP" })).pageSize(5000)).toBe(5000);
  });
  it("maps sAMAccountName, a UPN in the domain of usersDN and department; cn is not managed (AD renames, not modifies)", () => {
    const attrs = ldapAttributes(
      {
        employeeId: "E1",
        username: "ada",
        givenName: "Ada",
        familyName: "Lovelace",
        email: "ada@example.com",
        department: "R&D",
      },
      ad,
    );
    expect(attrs).toMatchObject({
      sAMAccountName: ["ada"],
      userPrincipalName: ["ada@corp.example.com"],
      cn: ["Ada Lovelace"],
      department: ["R&D"],
    });
    expect(attrs.uid).toBeUndefined();
    expect(managedAttributeNames(ad)).not.toContain("cn");
    expect(managedAttributeNames(ad)).toContain("userPrincipalName");
  });
  it("says why a username cannot be a sAMAccountName", () => {
    expect(samAccountNameProblem("ada.lovelace")).toBeUndefined();
    expect(samAccountNameProblem("a".repeat(20))).toBeUndefined();
    expect(samAccountNameProblem("a".repeat(21))).toMatch(/21 characters.*at most 20/);
    expect(samAccountNameProblem("ada.")).toMatch(/ending in a dot/);
  });
  it("userAccountControl: NORMAL_ACCOUNT, ACCOUNTDISABLE as asked, PASSWD_NOTREQD dropped, other bits kept", () => {
    expect(userAccountControl(0x222, true)).toBe(0x200);
    expect(userAccountControl(0x222, false)).toBe(0x202);
    expect(userAccountControl(0x10202, true)).toBe(0x10200); // DONT_EXPIRE_PASSWD stays
    expect(userAccountControl(0, false)).toBe(0x202);
  });
  it("the unusable password meets AD's complexity rule and differs every time", () => {
    const p = unusablePassword();
    expect(p.length).toBeGreaterThanOrEqual(40);
    expect([/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].every((r) => r.test(p))).toBe(true);
    expect(unusablePassword()).not.toBe(p);
  });
});
