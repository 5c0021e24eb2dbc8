// `roster report --check-targets -o html` as users run it, on a live cluster, directory and SCIM
// service, read in headless Chromium the way an auditor reads it: a leaver re-enabled by hand in
// LDAP and in SCIM (invisible in status) is an exception row for each, the page names the cluster
// it came from, and the browser reports no console error. The screenshot is kept under
// .roster/test-artifacts/report-html.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { Attribute, Change } from "ldapts";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import { registerDirectory } from "../harness/processes.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { visitPage, type PageVisit } from "../support/chromium.ts";
import { createRoster } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
const artifacts =
  process.env.ROSTER_ARTIFACTS_DIR ?? join(import.meta.dirname, "../../.roster/test-artifacts/report-html");

let s: Scenario;
let scim: ScimServer;
let bobScimId = "";
let code: number;
let stderr: string;
let page: PageVisit;

beforeAll(async () => {
  s = await scenario(info, "reporthtml", {
    safety: { maxDeprovisionsPerHour: 1000, maxDeprovisionPercent: 100 },
  });
  scim = await startScimServer();
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
  });
  await createRoster(s.kube, s.namespace, {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: { name: "wiki" },
    spec: {
      scim: { baseURL: scim.baseURL, tokenSecretRef: { name: "wiki-token", key: "token" } },
      safety: { maxDeprovisionsPerHour: 1000, maxDeprovisionPercent: 100 },
    },
  });
  await s.apply("AccessPolicy", "everyone", {
    grants: [
      { connector: s.connector, groups: ["staff"] },
      { connector: "wiki", groups: ["readers"] },
    ],
  });
  await s.apply("Employee", "ada", person("H1", "ada"));
  await s.apply("Employee", "bob", person("H2", "bob"));
  const operator = await startOperator({ namespace: s.namespace });
  for (const name of ["ada", "bob"]) await s.until(name, "Active", (e) => e.status?.phase === "Active");
  await s.apply("Employee", "bob", person("H2", "bob", { employmentStatus: "Terminated" }));
  const bob = await s.until("bob", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
  await operator.stop();
  expect(bob.status?.accounts?.map((a) => `${a.connector}:${a.state}`).sort()).toEqual([
    `${s.connector}:Disabled`,
    "wiki:Disabled",
  ]);
  // And in the SCIM service, bob's user is made active again.
  bobScimId = bob.status!.accounts!.find((a) => a.connector === "wiki")!.id!;
  const bobUser = scim.storage.users.get(bobScimId)!;
  expect(bobUser.active).toBe(false);
  bobUser.active = true;
  // Someone re-enables bob by hand in the directory; status still says Disabled.
  const entry = await s.ldap.person(s.usersDN, "H2");
  await s.ldap.client.modify(
    entry!.dn,
    new Change({ operation: "delete", modification: new Attribute({ type: "pwdAccountLockedTime" }) }),
  );

  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      [
        bin,
        "report",
        "--kubeconfig",
        info.kubeconfigPath,
        "-n",
        s.namespace,
        "--check-targets",
        "-o",
        "html",
      ],
      { maxBuffer: 64 << 20 },
      (error, stdout, err) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr: err }),
    ),
  );
  ({ code, stderr } = result);
  const dir = mkdtempSync(join(tmpdir(), "roster-report-html-"));
  registerDirectory(dir);
  const file = join(dir, "access-review.html");
  writeFileSync(file, result.stdout);
  page = await visitPage(file, ["header", "#exceptions", "#people"]);
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, "live-access-review.html"), result.stdout);
  writeFileSync(join(artifacts, "live-access-review.png"), page.screenshot);
});

afterAll(async () => {
  await s?.close();
  await scim?.stop();
});

describe("roster report -o html on a live cluster, in Chromium", () => {
  it("exits 4 and shows the leaver re-enabled by hand, in LDAP and in SCIM, as the exceptions", () => {
    expect(stderr).toBe("");
    expect(code).toBe(4);
    expect(page.problems).toEqual([]);
    const rows = page.text["#exceptions"]!.split("\n").filter((l) => l.includes("\t"));
    expect(rows[0]).toBe("Exception\tPerson\tConnector\tAccount\tDetail");
    const enabled =
      "employmentStatus is Terminated, but the entry in the target is enabled \\(read directly\\)";
    expect(rows.slice(1)).toHaveLength(2);
    expect(rows[1]).toMatch(
      new RegExp(`^Leaver with access\\tbob\\t${s.connector}\\tuid=bob,\\S+\\t${enabled}$`),
    );
    expect(rows[2]).toMatch(new RegExp(`^Leaver with access\\tbob\\twiki\\t${bobScimId}\\t${enabled}$`));
  });

  it("names the cluster and the time it was taken from", () => {
    const kubeconfig = load(readFileSync(info.kubeconfigPath, "utf8")) as {
      "current-context": string;
      clusters: { cluster: { server: string } }[];
    };
    const header = page.text.header!;
    expect(header).toContain(
      `from cluster ${kubeconfig["current-context"]} (${kubeconfig.clusters[0]!.cluster.server}), namespace ${s.namespace}.`,
    );
    expect(header).toMatch(/Taken \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
    expect(page.text["#people"]).toContain("username bob · employee id H2 · employment Terminated");
  });
});
