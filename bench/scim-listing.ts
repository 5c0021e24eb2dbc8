// The bench's SCIM server alone (bench/scim-server.ts, indexed): N Users with an externalId in
// one `everyone` Group, then full listings as the drift scan sends them (`externalId pr`, pages
// of 500 asked, the server's 200 given; the Groups with their members), timed from a plain
// client, with the server's CPU time read from /proc. It tells the target's share of the idle
// scan's growth from the operator's.
//
//   npx node bench/scim-listing.ts [--employees 10000,30000] [--rounds 4]     (npx: the pinned Node 24)
//
// bench/findings.md point 6 quotes it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cpuSeconds, startScimTarget } from "./support.ts";

const { values: flags } = parseArgs({
  options: {
    employees: { type: "string", default: "10000,30000" },
    rounds: { type: "string", default: "4" },
  },
});
type ListResponse = { totalResults: number; Resources: { id: string; members?: unknown[] }[] };

for (const n of flags.employees!.split(",").map(Number)) {
  const dir = mkdtempSync(join(tmpdir(), "roster-scim-listing-"));
  const scim = await startScimTarget("indexed", dir);
  const headers = { Authorization: `Bearer ${scim.token}`, "Content-Type": "application/scim+json" };
  const send = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(scim.baseURL + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text(); // a group PATCH answers 204, without a body
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as ListResponse & { id: string };
  };
  try {
    const group = await send("POST", "/Groups", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
      displayName: "everyone",
    });
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < n; i = next++) {
          const user = await send("POST", "/Users", {
            schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
            userName: `user${i}`,
            externalId: `E${i}`,
            name: { givenName: "Given", familyName: `Family${i}` },
            displayName: `Given Family${i}`,
            emails: [{ value: `user${i}@example.com`, primary: true }],
            active: true,
          });
          ids.push(user.id);
        }
      }),
    );
    for (let i = 0; i < ids.length; i += 1000)
      await send("PATCH", `/Groups/${group.id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [
          { op: "add", path: "members", value: ids.slice(i, i + 1000).map((value) => ({ value })) },
        ],
      });
    const serverCpu = () => cpuSeconds({ [scim.pid]: "scim" }).scim!;
    const rounds: { ms: number; cpu: number }[] = [];
    for (let round = 0; round < Number(flags.rounds); round++) {
      const cpu = serverCpu();
      const started = performance.now();
      let listed = 0;
      for (let start = 1; ;) {
        const page = await send(
          "GET",
          `/Users?filter=${encodeURIComponent("externalId pr")}&startIndex=${start}&count=500`,
        );
        listed += page.Resources.length;
        start += page.Resources.length;
        if (start > page.totalResults || page.Resources.length === 0) break;
      }
      const groups = await send(
        "GET",
        "/Groups?attributes=displayName,externalId,members&startIndex=1&count=100",
      );
      if (listed !== n || groups.Resources[0]?.members?.length !== n)
        throw new Error(
          `listed ${listed} Users and ${groups.Resources[0]?.members?.length} members, not ${n}`,
        );
      rounds.push({ ms: performance.now() - started, cpu: serverCpu() - cpu });
    }
    rounds.sort((a, b) => a.ms - b.ms);
    const median = rounds[rounds.length >> 1]!;
    console.log(
      `${n} Users: full listing median ${median.ms.toFixed(0)} ms (fastest ${rounds[0]!.ms.toFixed(0)}), SCIM server CPU ${(median.cpu * 1000).toFixed(0)} ms`,
    );
  } finally {
    await scim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
