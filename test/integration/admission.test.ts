// Admission on the real kube-apiserver: samples are accepted, bad manifests are refused by the
// CRD schema and CEL rules with a message that names the field.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import {
  createRoster,
  freshNamespace,
  kubeFrom,
  readManifests,
  refusal,
  getRoster,
  PLURALS,
  type Kube,
} from "../support/kube.ts";

type Manifest = Record<string, unknown> & { spec?: Record<string, unknown> };

const employee = (spec: Record<string, unknown> = {}, drop: string[] = []): Manifest => {
  const base: Record<string, unknown> = {
    employeeId: "E1",
    username: "ada",
    givenName: "Ada",
    familyName: "Lovelace",
    email: "ada@example.com",
    ...spec,
  };
  for (const key of drop) delete base[key];
  return { apiVersion: API_VERSION, kind: "Employee", metadata: { name: "bad" }, spec: base };
};
const policy = (spec: Record<string, unknown>): Manifest => ({
  apiVersion: API_VERSION,
  kind: "AccessPolicy",
  metadata: { name: "bad" },
  spec: { grants: [{ connector: "corp-ldap" }], ...spec },
});
const groupRule = (spec: Record<string, unknown>, drop: string[] = []): Manifest => {
  const base: Record<string, unknown> = { group: "staff", connectors: ["corp-ldap"], ...spec };
  for (const key of drop) delete base[key];
  return { apiVersion: API_VERSION, kind: "GroupRule", metadata: { name: "bad" }, spec: base };
};
const ldap = {
  url: "ldap://127.0.0.1:389",
  bindDN: "cn=admin,dc=roster,dc=test",
  bindPasswordSecretRef: { name: "bind", key: "password" },
  usersDN: "ou=people,dc=roster,dc=test",
  groupsDN: "ou=groups,dc=roster,dc=test",
};
const scim = { baseURL: "https://scim.example.com/v2", tokenSecretRef: { name: "token", key: "token" } };
const connector = (spec: Record<string, unknown>): Manifest => ({
  apiVersion: API_VERSION,
  kind: "Connector",
  metadata: { name: "bad" },
  spec,
});

// [what is wrong, manifest, the field and words the refusal must name]
const invalid: [string, Manifest, string[]][] = [
  [
    "Employee without spec",
    { apiVersion: API_VERSION, kind: "Employee", metadata: { name: "bad" } },
    ["spec: Required value"],
  ],
  ["Employee without employeeId", employee({}, ["employeeId"]), ["spec.employeeId: Required value"]],
  ["Employee without username", employee({}, ["username"]), ["spec.username: Required value"]],
  ["Employee without givenName", employee({}, ["givenName"]), ["spec.givenName: Required value"]],
  ["Employee without familyName", employee({}, ["familyName"]), ["spec.familyName: Required value"]],
  ["Employee without email", employee({}, ["email"]), ["spec.email: Required value"]],
  [
    "unknown employmentType",
    employee({ employmentType: "Boss" }),
    ["spec.employmentType: Unsupported value", "Boss"],
  ],
  [
    "unknown employmentStatus",
    employee({ employmentStatus: "Fired" }),
    ["spec.employmentStatus: Unsupported value"],
  ],
  ["username with capitals", employee({ username: "Ada" }), ["spec.username", "should match"]],
  ["username starting with a digit", employee({ username: "1ada" }), ["spec.username", "should match"]],
  ["username with a space", employee({ username: "ada l" }), ["spec.username", "should match"]],
  ["username of 65 characters", employee({ username: "a".repeat(65) }), ["spec.username", "Too long"]],
  ["malformed email", employee({ email: "ada.example.com" }), ["spec.email", "should match"]],
  [
    "startDate that is not a date",
    employee({ startDate: "next monday" }),
    ["spec.startDate", "should match"],
  ],
  [
    "endDate before startDate",
    employee({ startDate: "2026-03-01", endDate: "2026-02-28T23:59:59Z" }),
    ["spec.endDate", "endDate must not be before startDate"],
  ],
  ["givenName of 300 characters", employee({ givenName: "A".repeat(300) }), ["spec.givenName", "Too long"]],
  ["employeeId as a number", employee({ employeeId: 1001 }), ["spec.employeeId", "must be of type string"]],
  ["employeeId with a leading space", employee({ employeeId: " E1" }), ["spec.employeeId", "should match"]],
  [
    "attribute value that is not a string",
    employee({ attributes: { clearance: 3 } }),
    ["spec.attributes.clearance", "must be of type string"],
  ],
  [
    "attribute name with a space",
    employee({ attributes: { "bad name": "x" } }),
    ["spec.attributes", "attribute names must match"],
  ],
  [
    "grant without connector",
    employee({ grants: [{ groups: ["g"] }] }),
    ["spec.grants[0].connector: Required value"],
  ],
  [
    "grant until that is not a date",
    employee({ grants: [{ connector: "c", until: "soon" }] }),
    ["spec.grants[0].until", "should match"],
  ],
  ["manager that is not a username", employee({ manager: "Ada Lovelace" }), ["spec.manager", "should match"]],
  [
    "AccessPolicy without grants",
    { apiVersion: API_VERSION, kind: "AccessPolicy", metadata: { name: "bad" }, spec: {} },
    ["spec.grants: Required value"],
  ],
  ["AccessPolicy with empty grants", policy({ grants: [] }), ["spec.grants", "should have at least 1 items"]],
  [
    "match on an unknown field",
    policy({ match: [{ key: "salary", operator: "Exists" }] }),
    ["spec.match[0].key", "should match"],
  ],
  [
    "match with an unknown operator",
    policy({ match: [{ key: "department", operator: "Like", values: ["x"] }] }),
    ["spec.match[0].operator: Unsupported value"],
  ],
  [
    "match In without values",
    policy({ match: [{ key: "department", operator: "In" }] }),
    ["spec.match[0]", "values must be non-empty for In, NotIn and Matches"],
  ],
  [
    "match Exists with values",
    policy({ match: [{ key: "attributes.vpn", operator: "Exists", values: ["x"] }] }),
    ["spec.match[0]", "empty for Exists and DoesNotExist"],
  ],
  [
    "match Matches with an invalid expression",
    policy({ match: [{ key: "title", operator: "Matches", values: ["(unclosed"] }] }),
    ["spec.match[0]", "must be valid regular expressions", "missing closing )"],
  ],
  [
    "selector with an unknown operator",
    policy({ selector: { matchExpressions: [{ key: "team", operator: "Equals", values: ["a"] }] } }),
    ["spec.selector.matchExpressions[0].operator: Unsupported value"],
  ],
  [
    "selector In without values",
    policy({ selector: { matchExpressions: [{ key: "team", operator: "In" }] } }),
    ["spec.selector.matchExpressions[0]", "values must be non-empty for In and NotIn"],
  ],
  [
    "selector label value that is not a string",
    policy({ selector: { matchLabels: { team: 7 } } }),
    ["spec.selector.matchLabels.team", "must be of type string"],
  ],
  ["GroupRule without group", groupRule({}, ["group"]), ["spec.group: Required value"]],
  [
    "GroupRule without connectors",
    groupRule({ connectors: [] }),
    ["spec.connectors", "should have at least 1 items"],
  ],
  [
    "GroupRule with unknown membership",
    groupRule({ membership: "Sometimes" }),
    ["spec.membership: Unsupported value"],
  ],
  [
    "Connector with both ldap and scim",
    connector({ ldap, scim }),
    ["spec", "exactly one of spec.ldap or spec.scim must be set"],
  ],
  [
    "Connector with neither ldap nor scim",
    connector({ orphans: "Report" }),
    ["spec", "exactly one of spec.ldap or spec.scim must be set"],
  ],
  [
    "LDAP url with an http scheme",
    connector({ ldap: { ...ldap, url: "http://ldap.example.com" } }),
    ["spec.ldap.url", "should match"],
  ],
  [
    "LDAP without bind password",
    connector({ ldap: { ...ldap, bindPasswordSecretRef: undefined } }),
    ["spec.ldap.bindPasswordSecretRef: Required value"],
  ],
  [
    "LDAP flavor unknown",
    connector({ ldap: { ...ldap, flavor: "Novell" } }),
    ["spec.ldap.flavor: Unsupported value"],
  ],
  [
    "SCIM baseURL with ftp scheme",
    connector({ scim: { ...scim, baseURL: "ftp://x" } }),
    ["spec.scim.baseURL", "should match"],
  ],
  [
    "SCIM requestsPerSecond as text",
    connector({ scim: { ...scim, requestsPerSecond: "fast" } }),
    ["spec.scim.requestsPerSecond", "must be of type number"],
  ],
  [
    "deprovisioning action unknown",
    connector({ ldap, deprovisioning: { action: "Archive" } }),
    ["spec.deprovisioning.action: Unsupported value"],
  ],
  [
    "deleteAfter that is not a duration",
    connector({ ldap, deprovisioning: { action: "Delete", deleteAfter: "thirty days" } }),
    ["spec.deprovisioning.deleteAfter", "should match"],
  ],
  [
    "maxDeprovisionPercent over 100",
    connector({ ldap, safety: { maxDeprovisionPercent: 150 } }),
    ["spec.safety.maxDeprovisionPercent", "should be less than or equal to 100"],
  ],
  ["orphans policy unknown", connector({ ldap, orphans: "Keep" }), ["spec.orphans: Unsupported value"]],
  [
    "adoption Automatic without a match",
    connector({ ldap, adoption: { mode: "Automatic" } }),
    ["spec.adoption.mode", "adoption.mode Automatic needs adoption.match Username or Email"],
  ],
  ["credentials unknown", connector({ ldap, credentials: "Email" }), ["spec.credentials: Unsupported value"]],
];

describe("admission", () => {
  let kube: Kube;
  let namespace: string;

  beforeAll(async () => {
    kube = kubeFrom(inject("harness"));
    namespace = await freshNamespace(kube, "admission");
  });

  it("accepts every sample manifest and applies the defaults", async () => {
    const dir = join(import.meta.dirname, "../../deploy/samples");
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      for (const doc of readManifests(join(dir, file))) {
        doc.metadata = { ...doc.metadata, namespace };
        await kube.objects.create(doc);
      }
    }
    const grace = await getRoster(kube, namespace, "Employee", "grace");
    expect((grace.spec as Manifest).employmentStatus).toBe("Active");
    const wiki = await getRoster(kube, namespace, "Connector", "wiki");
    expect(wiki.spec).toMatchObject({
      orphans: "Report",
      credentials: "None",
      paused: false,
      drift: { policy: "Report", resyncInterval: "30m" },
    });
  });

  it.each(invalid.map((c, i) => [...c, i] as const))(
    "refuses %s",
    async (_what, manifest, expected, index) => {
      const named = { ...manifest, metadata: { name: `invalid-${index}` } };
      const result = await refusal(() => createRoster(kube, namespace, named));
      expect(result, "the manifest was accepted").toBeDefined();
      expect(result!.code).toBe(422);
      for (const text of expected) expect(result!.message).toContain(text);
    },
  );

  it("has at least 30 refusal cases", () => {
    expect(invalid.length).toBeGreaterThanOrEqual(30);
  });

  it.each([
    ["employeeId", "E2", "employeeId is immutable"],
    ["username", "ada2", "username is immutable"],
  ])("refuses changing %s on update", async (field, value, message) => {
    const name = `immutable-${field.toLowerCase()}`;
    const created = await createRoster(kube, namespace, { ...employee(), metadata: { name } });
    const changed = { ...created, spec: { ...(created.spec as object), [field]: value } };
    const result = await refusal(() =>
      kube.custom.replaceNamespacedCustomObject({
        group: "roster.dev",
        version: "v1alpha1",
        namespace,
        plural: PLURALS.Employee!,
        name,
        body: changed,
      }),
    );
    expect(result?.code).toBe(422);
    expect(result!.message).toContain(`spec.${field}`);
    expect(result!.message).toContain(message);
  });

  it("accepts an update that keeps employeeId and username", async () => {
    const name = "mover";
    const created = await createRoster(kube, namespace, { ...employee(), metadata: { name } });
    const moved = { ...created, spec: { ...(created.spec as object), department: "Research" } };
    await kube.custom.replaceNamespacedCustomObject({
      group: "roster.dev",
      version: "v1alpha1",
      namespace,
      plural: "employees",
      name,
      body: moved,
    });
    expect(((await getRoster(kube, namespace, "Employee", name)).spec as Manifest).department).toBe(
      "Research",
    );
  });
});
