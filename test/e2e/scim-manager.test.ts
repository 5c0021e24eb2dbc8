// manager.value is the manager's SCIM id (RFC 7643 section 4.3), resolved through the manager's
// account in the same Connector, and set once a manager who arrives later gets an account; until
// then it is unset and the Employee says why. Real kube-apiserver, the scimmy-based SCIM server,
// `roster operator` as a separate process.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import { ENTERPRISE_USER_SCHEMA } from "../../src/connectors/scim/attributes.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { createRoster } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let scim: ScimServer;
let operator: OperatorProcess;
const WIKI = "wiki";

type ScimUser = { id: string; [ENTERPRISE_USER_SCHEMA]?: { manager?: { value?: string } } };
const userOf = async (externalId: string) =>
  (await scim.users()).find((u) => u.externalId === externalId) as ScimUser | undefined;
const managerOf = async (externalId: string) =>
  (await userOf(externalId))?.[ENTERPRISE_USER_SCHEMA]?.manager?.value;
const wikiAccount = (e: { status?: { accounts?: { connector: string; message?: string; id?: string }[] } }) =>
  e.status?.accounts?.find((a) => a.connector === WIKI);

beforeAll(async () => {
  scim = await startScimServer();
  s = await scenario(info, "scimmgr");
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: WIKI },
    spec: { scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" } } },
  });
  // Only Engineering gets a wiki account.
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [{ connector: WIKI, groups: ["engineers"] }],
  });
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
  await scim?.stop();
});

describe("SCIM manager", () => {
  it("manager.value is the manager's SCIM id, not their username", async () => {
    await s.apply("Employee", "grace", person("M-GRACE", "grace", { department: "Engineering" }));
    const grace = await s.until("grace", "Active", (e) => e.status?.phase === "Active");
    await s.apply(
      "Employee",
      "alan",
      person("M-ALAN", "alan", { department: "Engineering", manager: "grace" }),
    );
    const alan = await s.until("alan", "Active", (e) => e.status?.phase === "Active");
    const graceId = (await userOf("M-GRACE"))!.id;
    expect(wikiAccount(grace)?.id).toBe(graceId);
    expect(await managerOf("M-ALAN")).toBe(graceId);
    expect(wikiAccount(alan)?.message).toBeUndefined();
  });

  it("a manager provisioned later is set on their reports once their account exists; until then it is unset and said", async () => {
    // The manager has no Employee yet.
    await s.apply("Employee", "ken", person("M-KEN", "ken", { department: "Engineering", manager: "hedy" }));
    const ken = await s.until("ken", "Active", (e) => e.status?.phase === "Active");
    expect(readyCondition(ken)?.status).toBe("True");
    expect(wikiAccount(ken)?.message).toBe("manager hedy has no account in wiki yet: manager left unset");
    expect(await managerOf("M-KEN")).toBeUndefined();

    // The manager arrives without a wiki account (another department): still unset.
    await s.apply("Employee", "hedy", person("M-HEDY", "hedy", { department: "Sales" }));
    await s.until("hedy", "Active", (e) => e.status?.phase !== undefined);
    expect(await managerOf("M-KEN")).toBeUndefined();

    // The manager gets a wiki account: ken's manager is set to it, without any change to ken.
    await s.apply("Employee", "hedy", person("M-HEDY", "hedy", { department: "Engineering" }));
    await s.until("hedy", "in the wiki", (e) => !!wikiAccount(e)?.id);
    const hedyId = (await userOf("M-HEDY"))!.id;
    const updated = await s.until("ken", "manager set", (e) => wikiAccount(e)?.message === undefined);
    expect(await managerOf("M-KEN")).toBe(hedyId);
    expect(readyCondition(updated)?.status).toBe("True");
    // One Event for the reconcile that set it: "<connector> <id>: updated ..., manager.value". When
    // a drift scan saw the stale manager.value first, the same reconcile says it put it back.
    expect((await s.events("ken")).map((e) => e.message)).toContainEqual(
      expect.stringMatching(
        new RegExp(`^${WIKI} \\S+: (put back [^;]*; )?updated [^;]*\\bmanager\\.value\\b`),
      ),
    );
  });
});
