// One SCIM group per name, as a strict service sees it (issue 13): Group displayName has no
// uniqueness in RFC 7643, so the SCIM test server here accepts duplicates, as such services do.
// Hires granted a new group at the same moment get exactly one group (every time), Roster's own
// carrying its externalId; when duplicates exist anyway (made by hand), a mover and a leaver are
// taken out of every group of that name, and the Connector names the duplicates.
// Real kube-apiserver, the scimmy-based SCIM server, `roster operator` as a separate process.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector } from "../../src/api/types.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, getRoster, PLURALS } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let scim: ScimServer;
let operator: OperatorProcess;
const WIKI = "wiki";
const HIRES = 6;
const ROUNDS = 4;

type ScimGroup = { id: string; displayName: string; externalId?: string; members?: { value: string }[] };
const groupsNamed = async (name: string) =>
  ((await scim.groups()) as ScimGroup[]).filter((g) => g.displayName === name);
const userOf = async (externalId: string) =>
  (await scim.users()).find((u) => u.externalId === externalId) as { id: string } | undefined;

/** A SCIM call as an administrator would make it, over HTTP with the server's bearer token. */
async function scimCall(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${scim.baseURL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`SCIM ${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

const wiki = async () => (await getRoster(s.kube, s.namespace, "Connector", WIKI)) as unknown as Connector;

beforeAll(async () => {
  scim = await startScimServer({ uniqueGroupNames: false });
  s = await scenario(info, "scimgroups");
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: WIKI },
    spec: {
      // Paced fast enough that every worker's look-up overlaps the others'.
      scim: {
        baseURL: scim.baseURL,
        tokenSecretRef: { name: "wiki-token", key: "token" },
        requestsPerSecond: 100,
      },
      drift: { resyncInterval: "5s" },
    },
  });
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
  await scim?.stop();
});

describe("SCIM groups", () => {
  it(`${HIRES} hires granted a new group at once give exactly one group, every time`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const team = `burst-${round}`;
      await s.apply("AccessPolicy", team, {
        match: [{ key: "department", operator: "In", values: [`Burst${round}`] }],
        grants: [{ connector: WIKI, groups: [team] }],
      });
      const names = Array.from({ length: HIRES }, (_, i) => `b${round}x${i}`);
      await Promise.all(
        names.map((n) => s.apply("Employee", n, person(n.toUpperCase(), n, { department: `Burst${round}` }))),
      );
      for (const n of names)
        await s.until(
          n,
          `in ${team}`,
          (e) => !!e.status?.accounts?.find((a) => a.connector === WIKI)?.groups?.includes(team),
        );
      const groups = await groupsNamed(team);
      expect(groups, `round ${round}`).toHaveLength(1);
      expect(groups[0]!.externalId).toBe(`roster:${WIKI}:${team}`);
      const ids = await Promise.all(names.map(async (n) => (await userOf(n.toUpperCase()))!.id));
      expect(groups[0]!.members?.map((m) => m.value).sort()).toEqual(ids.sort());
    }
    expect(readyCondition(await s.employee("b0x0"))?.status).toBe("True");
  });

  it("a mover and a leaver leave every group that shares a name; the Connector names the duplicates", async () => {
    await s.apply("AccessPolicy", "team", {
      match: [{ key: "department", operator: "In", values: ["Team"] }],
      grants: [{ connector: WIKI, groups: ["team"] }],
    });
    await s.apply("Employee", "dana", person("DANA", "dana", { department: "Team" }));
    await s.apply("Employee", "dora", person("DORA", "dora", { department: "Team" }));
    for (const n of ["dana", "dora"]) await s.until(n, "Active", (e) => e.status?.phase === "Active");
    const [dana, dora] = [(await userOf("DANA"))!.id, (await userOf("DORA"))!.id];
    expect(await groupsNamed("team")).toHaveLength(1);

    // By hand (or by an older version): two more groups of that name, both with dana and dora.
    for (let i = 0; i < 2; i++)
      await scimCall("POST", "/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "team",
        members: [{ value: dana }, { value: dora }],
      });
    expect(await groupsNamed("team")).toHaveLength(3);
    await waitFor(
      async () =>
        (await wiki()).status?.conditions?.find((c) => c.type === "DuplicateGroups")?.status === "True",
      30_000,
      () => "the Connector does not report the duplicate groups",
    );
    const condition = (await wiki()).status!.conditions!.find((c) => c.type === "DuplicateGroups")!;
    expect(condition.message).toContain('"team"');

    // The mover leaves the department, the leaver is deleted: out of all three.
    await s.apply("Employee", "dana", person("DANA", "dana", { department: "Elsewhere" }));
    await s.kube.custom.deleteNamespacedCustomObject({
      group: "roster.dev",
      version: "v1alpha1",
      namespace: s.namespace,
      plural: PLURALS.Employee!,
      name: "dora",
    });
    const moved = await s.until(
      "dana",
      "out of team",
      (e) => e.status?.accounts?.find((a) => a.connector === WIKI)?.groups?.length === 0,
    );
    expect(readyCondition(moved)?.status).toBe("True");
    await waitFor(
      async () => {
        try {
          await s.employee("dora");
          return false;
        } catch (error) {
          return (error as { code?: number }).code === 404;
        }
      },
      30_000,
      () => "the leaver's finalizer was not removed",
    );
    const left = await groupsNamed("team");
    expect(left).toHaveLength(3);
    expect(left.flatMap((g) => g.members ?? []).map((m) => m.value)).not.toContain(dana);
    expect(left.flatMap((g) => g.members ?? []).map((m) => m.value)).not.toContain(dora);
    const events = await s.events("dana");
    expect(events.filter((e) => e.type === "Warning")).toEqual([]);
  });
});
