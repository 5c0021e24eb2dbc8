// Connector `credentials: GeneratedSecret`: the password is kept in `<employee>-<connector>-credentials`,
// and a Secret of that name is trusted only when it is owned by that Employee (ownerReference uid).
// A Secret planted before provisioning must not set a known password, and two Employees whose
// names collide (`a-b` + `c`, `a` + `b-c`) must not share one. Real kube-apiserver and slapd,
// `roster operator` as a separate process; every assertion is what a user would look at: an LDAP
// bind as the account, the Employee's status, the Secret itself.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Client } from "ldapts";
import type { V1Secret } from "@kubernetes/client-node";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import { createRoster } from "../support/kube.ts";
import { ensureOUs } from "../support/ldap.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let operator: OperatorProcess;
/** Each collision connector's own subtree, so neither sees the other's accounts. */
const usersDNOf: Record<string, string> = {};

const PLANTED = "planted-known-password";

beforeAll(async () => {
  s = await scenario(info, "credentials", { credentials: "GeneratedSecret" });
  for (const name of ["c", "b-c"]) {
    const [usersDN, groupsDN] = await ensureOUs(s.ldap.client, `${s.namespace}-${name}`, [
      info.ldap.usersDN,
      info.ldap.groupsDN,
    ]);
    usersDNOf[name] = usersDN!;
    await createRoster(s.kube, s.namespace, {
      apiVersion: API_VERSION,
      kind: "Connector",
      metadata: { name },
      spec: {
        credentials: "GeneratedSecret",
        ldap: {
          url: info.ldap.url,
          bindDN: info.ldap.adminDN,
          bindPasswordSecretRef: { name: "ldap-bind", key: "password" },
          usersDN,
          groupsDN,
        },
      },
    });
  }
  operator = await startOperator({ namespace: s.namespace });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

const readSecret = (name: string) => s.kube.core.readNamespacedSecret({ namespace: s.namespace, name });
const passwordOf = (secret: V1Secret) => Buffer.from(secret.data!.password!, "base64").toString("utf8");

/** Binds as `dn` with `password`: true when slapd accepts it. */
async function binds(dn: string, password: string): Promise<boolean> {
  const login = new Client({ url: info.ldap.url, timeout: 10_000 });
  try {
    await login.bind(dn, password);
    return true;
  } catch {
    return false;
  } finally {
    await login.unbind().catch(() => {});
  }
}

const ready = (e: Employee) => e.status?.phase === "Active" && readyCondition(e)?.status === "True";
const refusedFor = (secret: string) => (e: Employee) =>
  readyCondition(e)?.status === "False" &&
  readyCondition(e)?.reason === "ConfigurationError" &&
  (readyCondition(e)?.message ?? "").includes(
    `Secret ${s.namespace}/${secret} is not owned by this Employee`,
  );

/** The Employee's own generated-password Secret: controlled by its uid, for this connector. */
async function ownSecret(employee: string, connector: string): Promise<V1Secret> {
  const e = await s.employee(employee);
  const secret = await readSecret(`${employee}-${connector}-credentials`);
  expect(secret.metadata?.ownerReferences).toEqual([
    expect.objectContaining({ kind: "Employee", name: employee, uid: e.metadata.uid, controller: true }),
  ]);
  expect(secret.metadata?.labels?.["roster.dev/connector"]).toBe(connector);
  return secret;
}

describe("GeneratedSecret trusts only a Secret owned by the Employee", () => {
  it("a Secret planted before provisioning does not set a known password; the status names it", async () => {
    const name = `mallory-target-${s.connector}-credentials`;
    await s.kube.core.createNamespacedSecret({
      namespace: s.namespace,
      body: {
        metadata: { name, labels: { "roster.dev/connector": s.connector } },
        type: "Opaque",
        stringData: { username: "target", password: PLANTED },
      },
    });
    const planted = await readSecret(name);
    await s.apply("Employee", "mallory-target", {
      ...person("E-PLANT", "target"),
      grants: [{ connector: s.connector, groups: [] }],
    });
    // Settled either way (refused, or provisioned as today's defect did), then the promise first.
    const refused = await s.until(
      "mallory-target",
      "refusing the planted Secret (or provisioned)",
      (e) => refusedFor(name)(e) || ready(e),
    );
    const dn = `uid=target,${s.usersDN}`;
    expect(await binds(dn, PLANTED), "the planted password must not bind").toBe(false);
    expect(refusedFor(name)(refused), JSON.stringify(refused.status)).toBe(true);
    expect(await s.ldap.person(s.usersDN, "E-PLANT")).toBeUndefined();
    expect(refused.status?.accounts).toEqual([
      expect.objectContaining({
        connector: s.connector,
        state: "Failed",
        message: expect.stringContaining(`Secret ${s.namespace}/${name} is not owned by this Employee`),
      }),
    ]);
    expect(JSON.stringify(refused.status)).not.toContain(PLANTED);
    expect(JSON.stringify(await s.events("mallory-target"))).not.toContain(PLANTED);
    expect(operator.tail(1_000_000)).not.toContain(PLANTED);
    // Neither used nor overwritten nor adopted.
    const after = await readSecret(name);
    expect(after.metadata?.resourceVersion).toBe(planted.metadata?.resourceVersion);
    expect(after.metadata?.ownerReferences).toBeUndefined();
    expect(passwordOf(after)).toBe(PLANTED);

    // Once the planted Secret is gone (and the Employee changes), the account gets a password of its own.
    await s.kube.core.deleteNamespacedSecret({ namespace: s.namespace, name });
    await s.apply("Employee", "mallory-target", {
      ...person("E-PLANT", "target", { title: "Engineer" }),
      grants: [{ connector: s.connector, groups: [] }],
    });
    await s.until("mallory-target", "Active with its own Secret", ready);
    const own = passwordOf(await ownSecret("mallory-target", s.connector));
    expect(own).not.toBe(PLANTED);
    expect(await binds(dn, own)).toBe(true);
    expect(await binds(dn, PLANTED)).toBe(false);
  });

  it("colliding names (a-b + c, a + b-c): each account binds only with its own Employee's password; the second reports the conflict", async () => {
    const shared = "a-b-c-credentials";
    await s.apply("Employee", "a-b", { ...person("E-AB", "ab"), grants: [{ connector: "c", groups: [] }] });
    await s.until("a-b", "Active", ready);
    const first = await ownSecret("a-b", "c");
    const firstPassword = passwordOf(first);
    const abDN = `uid=ab,${usersDNOf.c}`;
    expect(await binds(abDN, firstPassword)).toBe(true);

    await s.apply("Employee", "a", { ...person("E-A", "a"), grants: [{ connector: "b-c", groups: [] }] });
    const refused = await s.until(
      "a",
      "reporting the colliding Secret (or provisioned)",
      (e) => refusedFor(shared)(e) || ready(e),
    );
    expect(
      await binds(`uid=a,${usersDNOf["b-c"]}`, firstPassword),
      "a must not bind with a-b's password",
    ).toBe(false);
    expect(refusedFor(shared)(refused), JSON.stringify(refused.status)).toBe(true);
    expect(readyCondition(refused)?.message).toContain("belongs to Employee a-b");
    expect(refused.status?.accounts).toEqual([
      expect.objectContaining({ connector: "b-c", state: "Failed" }),
    ]);
    expect(JSON.stringify(refused.status)).not.toContain(firstPassword);
    // No account for `a` with a-b's password (nor any account at all), and a-b's Secret untouched.
    expect(await s.ldap.person(usersDNOf["b-c"]!, "E-A")).toBeUndefined();
    const after = await readSecret(shared);
    expect(after.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    expect(passwordOf(after)).toBe(firstPassword);
    // a-b keeps working with its own password.
    expect(readyCondition(await s.employee("a-b"))?.status).toBe("True");
    expect(await binds(abDN, firstPassword)).toBe(true);

    // `a` in a connector whose name does not collide gets its own Secret and its own password.
    await s.apply("Employee", "a", {
      ...person("E-A", "a"),
      grants: [
        { connector: "b-c", groups: [] },
        { connector: "c", groups: [] },
      ],
    });
    const second = await s.until("a", "its own account in c", (e) =>
      (e.status?.accounts ?? []).some((x) => x.connector === "c" && x.state === "Active"),
    );
    expect(readyCondition(second)?.reason).toBe("ConfigurationError"); // b-c still refused
    const own = passwordOf(await ownSecret("a", "c"));
    expect(own).not.toBe(firstPassword);
    expect(await binds(`uid=a,${usersDNOf.c}`, own)).toBe(true);
    expect(await binds(`uid=a,${usersDNOf.c}`, firstPassword)).toBe(false);
    expect(await binds(abDN, own)).toBe(false);
  });
});
