// What a metered SCIM service sees of Roster: the requests of hires into existing groups, a mover,
// a leaver and an idle minute, counted from the SCIM test server's request log and sorted by kind
// (issue 13). Real kube-apiserver, the scimmy-based SCIM server, `roster operator` as a process.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector } from "../../src/api/types.ts";
import { startScimServer, type ScimRequestLog, type ScimServer } from "../harness/scim.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, getRoster } from "../support/kube.ts";
import { employeeQueueIdle, startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let scim: ScimServer;
let operator: OperatorProcess;
const WIKI = "wiki";
const HIRES = 6;
/** The one place waiting is the behaviour under test: what an idle operator sends in a minute. */
const IDLE_MS = 60_000;

/** A request as a person reading the service's access log would name it. */
export function kindOf(r: ScimRequestLog): string {
  const url = new URL(r.path, "http://x");
  const path = url.pathname.replace(/^\/scim\/v2/, "");
  const filter = url.searchParams.get("filter") ?? "";
  const resource = path.split("/")[1] ?? "";
  if (r.method === "GET") {
    if (path === "/ServiceProviderConfig" || path === "/ResourceTypes") return "discovery";
    if (path.split("/").length > 2) return `read ${resource} by id`;
    if (/^externalId eq /i.test(filter)) return "Users by externalId";
    if (/^userName eq /i.test(filter)) return "Users by userName";
    if (/^displayName eq /i.test(filter)) return "Groups by displayName";
    if (/^members\[value eq /i.test(filter)) return "Groups by member";
    if (/ pr$/i.test(filter) || (resource === "Groups" && !filter)) return `list ${resource} (scan)`;
    if (url.searchParams.get("count") === "1") return "probe";
    return `GET ${resource} ${filter}`;
  }
  return `${r.method} ${resource}${r.status >= 400 ? ` (${r.status})` : ""}`;
}

function tally(requests: readonly ScimRequestLog[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of requests) out[kindOf(r)] = (out[kindOf(r)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

const figures: Record<string, { total: number; kinds: Record<string, number> }> = {};

/** Runs `change`, waits until `settled` and the operator is idle, and records the requests. */
async function measure(phase: string, change: () => Promise<void>, settled: () => Promise<void>) {
  const mark = scim.requests.length;
  await change();
  await settled();
  await employeeQueueIdle(operator);
  const requests = scim.requests.slice(mark);
  figures[phase] = { total: requests.length, kinds: tally(requests) };
  return requests;
}

const active = (n: string) => s.until(n, "Active", (e) => e.status?.phase === "Active", 60_000);

beforeAll(async () => {
  scim = await startScimServer();
  s = await scenario(info, "scimreq");
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  // The groups exist before Roster arrives (made by hand, in the service's storage).
  for (const name of ["readers", "sales"]) {
    const id = randomUUID();
    scim.storage.groups.set(id, { id, displayName: name, schemas: [] });
  }
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: WIKI },
    spec: { scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" } } },
  });
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: WIKI, groups: ["readers"] }] });
  await s.apply("AccessPolicy", "sales", {
    match: [{ key: "department", operator: "In", values: ["Sales"] }],
    grants: [{ connector: WIKI, groups: ["sales"] }],
  });
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  // Start-up (discovery, the first check and the first scan) is not what is measured.
  await waitFor(
    async () =>
      !!((await getRoster(s.kube, s.namespace, "Connector", WIKI)) as unknown as Connector).status
        ?.capabilities && scim.requests.some((r) => kindOf(r) === "list Groups (scan)"),
    30_000,
    () => "the Connector was not checked and scanned",
  );
});

afterAll(async () => {
  console.log(`SCIM requests by phase:\n${JSON.stringify(figures, null, 2)}`);
  await operator?.stop();
  await s?.close();
  await scim?.stop();
});

describe("SCIM requests", () => {
  it("hires, a mover, a leaver and an idle minute stay within the request budget", async () => {
    const names = Array.from({ length: HIRES }, (_, i) => `r${i}`);
    const hires = await measure(
      "hires",
      async () => {
        await Promise.all(names.map((n, i) => s.apply("Employee", n, person(`R${i}`, n))));
      },
      async () => void (await Promise.all(names.map(active))),
    );

    const mover = await measure(
      "mover",
      () => s.apply("Employee", "r0", person("R0", "r0", { department: "Sales" })),
      async () =>
        void (await s.until(
          "r0",
          "in sales",
          (e) => !!e.status?.accounts?.find((a) => a.connector === WIKI)?.groups?.includes("sales"),
        )),
    );

    const leaver = await measure(
      "leaver",
      () => s.apply("Employee", "r1", person("R1", "r1", { employmentStatus: "Terminated" })),
      async () => void (await s.until("r1", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned")),
    );

    const mark = scim.requests.length;
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const idle = scim.requests.slice(mark);
    figures["idle minute"] = { total: idle.length, kinds: tally(idle) };

    // Each hire: its lookup by externalId, its POST and the PATCH of its group; the group's id is
    // looked up once for all of them.
    expect(hires.length).toBeLessThanOrEqual(3 * HIRES + 1);
    expect(tally(hires)["Users by userName"]).toBeUndefined();
    expect(hires.filter((r) => r.status >= 400)).toEqual([]);
    for (const phase of [hires, mover, leaver, idle]) expect(tally(phase).discovery).toBeUndefined();
    expect(mover.filter((r) => r.status >= 400)).toEqual([]);
    expect(leaver.filter((r) => r.status >= 400)).toEqual([]);
    // An idle minute sends nothing about any person.
    expect(Object.keys(tally(idle)).filter((k) => k !== "probe" && !k.endsWith("(scan)"))).toEqual([]);
  });
});
