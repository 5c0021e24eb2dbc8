// The "ideal operator": the bench's own minimal client doing, per Employee, only the writes any
// operator must do, with no reads, at the operator's concurrency: create the Employee, one
// finalizer patch, the LDAP add and its group adds (one modify per group, one LDAP connection, as
// the ceiling), the SCIM create and its group adds, one status patch. Kubernetes on one pooled
// connection (shareConnections, as the operator), SCIM over keep-alive fetch. Everything in a
// namespace, LDAP subtree and SCIM server of its own, so the operator's phases never see it.
import { randomBytes } from "node:crypto";
import { KubeConfig } from "@kubernetes/client-node";
import { Attribute, Change, Client } from "ldapts";
import type { EmployeeSpecT } from "../src/api/types.ts";
import { API_VERSION, DEPROVISION_FINALIZER } from "../src/api/schema.ts";
import { ldapAttributes } from "../src/connectors/ldap/attributes.ts";
import { childDN } from "../src/connectors/ldap/escape.ts";
import { kubeRequest, rosterPath } from "../src/kube/client.ts";
import { ensureOUs } from "../test/support/ldap.ts";
import { pool, progress, type ScimTarget } from "./support.ts";

export type IdealResult = {
  accounts: number;
  concurrency: number;
  seconds: number;
  accountsPerSecond: number;
  /** Requests per account by system: what this floor consists of. */
  perAccount: { kubernetes: number; ldap: number; scim: number };
};

export async function runIdeal(options: {
  kubeconfigPath: string;
  namespace: string;
  ldap: { url: string; bindDN: string; password: string; usersParent: string; groupsParent: string };
  ldapGroups: string[];
  /** A SCIM server of the ideal's own (not the operator's target). */
  scim: ScimTarget;
  scimGroups: string[];
  people: { name: string; spec: EmployeeSpecT }[];
  concurrency: number;
}): Promise<IdealResult> {
  const kc = new KubeConfig();
  kc.loadFromFile(options.kubeconfigPath);
  const ldap = new Client({ url: options.ldap.url, timeout: 30_000 });
  await ldap.bind(options.ldap.bindDN, options.ldap.password);
  const ou = `ideal-${randomBytes(3).toString("hex")}`;
  const [usersDN, groupsDN] = (await ensureOUs(ldap, ou, [
    options.ldap.usersParent,
    options.ldap.groupsParent,
  ])) as [string, string];
  // Groups exist before the run, as in the ceiling.
  for (const group of options.ldapGroups)
    await ldap.add(childDN("cn", group, groupsDN), {
      objectClass: ["groupOfNames"],
      cn: group,
      member: [""],
    });
  const scim = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${options.scim.baseURL}${path}`, {
      method,
      headers: { Authorization: `Bearer ${options.scim.token}`, "Content-Type": "application/scim+json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`ideal: SCIM ${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    // A group PATCH is answered 204, without a body.
    return (text ? JSON.parse(text) : {}) as { id: string };
  };
  const scimGroupIds = new Map<string, string>();
  for (const group of options.scimGroups)
    scimGroupIds.set(
      group,
      (await scim("POST", "/Groups", { schemas: [GROUP_SCHEMA], displayName: group, members: [] })).id,
    );
  const employees = rosterPath("employees", options.namespace);

  let done = 0;
  const timer = setInterval(() => progress(`ideal: ${done}/${options.people.length} accounts`), 5000);
  const t0 = performance.now();
  try {
    await pool(options.people, options.concurrency, async ({ name, spec }) => {
      await kubeRequest(kc, "POST", employees, {
        apiVersion: API_VERSION,
        kind: "Employee",
        metadata: { name },
        spec,
      });
      await kubeRequest(
        kc,
        "PATCH",
        `${employees}/${name}`,
        [{ op: "add", path: "/metadata/finalizers", value: [DEPROVISION_FINALIZER] }],
        "application/json-patch+json",
      );
      const dn = childDN("uid", spec.username, usersDN);
      const [, scimId] = await Promise.all([
        (async () => {
          await ldap.add(dn, { objectClass: ["inetOrgPerson"], ...ldapAttributes(spec, {}) });
          for (const group of options.ldapGroups)
            await ldap.modify(
              childDN("cn", group, groupsDN),
              new Change({ operation: "add", modification: new Attribute({ type: "member", values: [dn] }) }),
            );
        })(),
        (async () => {
          const { id } = await scim("POST", "/Users", {
            schemas: [USER_SCHEMA],
            externalId: spec.employeeId,
            userName: spec.username,
            name: { givenName: spec.givenName, familyName: spec.familyName },
            displayName: `${spec.givenName} ${spec.familyName}`,
            emails: [{ value: spec.email, type: "work", primary: true }],
            active: true,
          });
          for (const group of options.scimGroups)
            await scim("PATCH", `/Groups/${scimGroupIds.get(group)}`, {
              schemas: [PATCH_SCHEMA],
              Operations: [{ op: "add", path: "members", value: [{ value: id }] }],
            });
          return id;
        })(),
      ]);
      await kubeRequest(
        kc,
        "PATCH",
        `${employees}/${name}/status`,
        { status: statusLike(dn, scimId, options.ldapGroups, options.scimGroups) },
        "application/merge-patch+json",
      );
      done++;
    });
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  await ldap.unbind();
  return {
    accounts: options.people.length,
    concurrency: options.concurrency,
    seconds: Math.round(seconds * 100) / 100,
    accountsPerSecond: Math.round((options.people.length / seconds) * 10) / 10,
    perAccount: {
      kubernetes: 3,
      ldap: 1 + options.ldapGroups.length,
      scim: 1 + options.scimGroups.length,
    },
  };
}

const USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/** A status of the size and shape Roster writes for a provisioned person (api.md's Employee status). */
function statusLike(dn: string, scimId: string, ldapGroups: string[], scimGroups: string[]) {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const grants = (connector: string, groups: string[]) => [
    { connector, source: "AccessPolicy/base" },
    ...groups.map((group) => ({ connector, group, source: "AccessPolicy/base" })),
  ];
  return {
    phase: "Active",
    observedGeneration: 1,
    provisionedAt: now,
    accounts: [
      { connector: "apps-scim", id: scimId, state: "Active", groups: scimGroups, lastSyncTime: now },
      { connector: "corp-ldap", id: dn, state: "Active", groups: ldapGroups, lastSyncTime: now },
    ],
    entitlements: [...grants("apps-scim", scimGroups), ...grants("corp-ldap", ldapGroups)],
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Provisioned",
        message: "every account matches the desired state",
        observedGeneration: 1,
        lastTransitionTime: now,
      },
      {
        type: "Drifted",
        status: "False",
        reason: "InSync",
        message: "",
        observedGeneration: 1,
        lastTransitionTime: now,
      },
    ],
  };
}
