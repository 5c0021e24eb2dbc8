// HR as the source, as users run it against a real kube-apiserver: a Workday-shaped export with no
// usernames imports without hand edits (the must-show), and the chart's CronJob command,
// taken from `helm template`, fetches the export from an HTTP server on loopback: a good run, a
// 401, a connection cut mid-export and an export that would make too many leavers. Each failure
// applies nothing and says why, in an Event on the CronJob and in the metrics it pushes.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Employee } from "../../src/api/types.ts";
import { registerDirectory } from "../harness/processes.ts";
import { freshNamespace, kubeFrom, type Kube } from "../support/kube.ts";
import { check, chartDir, helmBinary } from "../packaging/tools.ts";
import { scenario } from "../support/scenario.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
const fixtures = join(import.meta.dirname, "../fixtures/hr");
const workdayMapping = join(fixtures, "workday-mapping.yaml");
const workdayCsv = readFileSync(join(fixtures, "workday.csv"), "utf8");
const HEADER = workdayCsv.split("\n")[0]!;

type Result = { code: number; stdout: string; stderr: string };
function roster(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

type Summary = {
  counts: Record<string, number>;
  hires: { name: string; employeeId: string; username: string }[];
  movers: { name: string; changes: { field: string; old?: string; new?: string }[] }[];
  leavers: { name: string }[];
  notes: { line: number; employeeId: string; message: string }[];
  written: string[];
};

let kube: Kube;
let work: string;

async function employees(namespace: string): Promise<Map<string, Employee>> {
  const list = (await kube.custom.listNamespacedCustomObject({
    group: "roster.dev",
    version: "v1alpha1",
    namespace,
    plural: "employees",
  })) as { items: Employee[] };
  return new Map(list.items.map((e) => [e.metadata.name, e]));
}

const versions = (m: Map<string, Employee>) =>
  new Map([...m].map(([name, e]) => [name, e.metadata.resourceVersion]));

beforeAll(() => {
  kube = kubeFrom(info);
  work = mkdtempSync(join(tmpdir(), "roster-import-hr-e2e-"));
  registerDirectory(work);
});

describe("--check-targets keeps generated usernames clear of accounts made by hand", () => {
  it("a hand-made jsmith in the directory makes John Smith jsmith2 (and without the flag, jsmith)", async () => {
    const s = await scenario(info, "import-targets");
    try {
      await s.ldap.client.add(`uid=jsmith,${s.usersDN}`, {
        objectClass: ["inetOrgPerson"],
        uid: "jsmith",
        cn: "Jane Smith (by hand)",
        sn: "Smith",
      });
      const file = join(work, "john.csv");
      writeFileSync(
        file,
        [
          HEADER,
          "21002,John,Smith,john.smith@example.com,Sales,Account Executive,New York,06/01/2022,,Active,Regular,",
          "",
        ].join("\n"),
      );
      const plan = (...extra: string[]) =>
        roster([
          "import",
          file,
          "--mapping",
          workdayMapping,
          "--apply",
          "--dry-run",
          "--kubeconfig",
          info.kubeconfigPath,
          "-n",
          s.namespace,
          "-o",
          "json",
          ...extra,
        ]);
      const without = await plan();
      expect(without.stderr).toBe("");
      expect((JSON.parse(without.stdout) as Summary).hires.map((h) => h.username)).toEqual(["jsmith"]);
      const checked = await plan("--check-targets");
      expect(checked.stderr).toBe("");
      expect((JSON.parse(checked.stdout) as Summary).hires.map((h) => h.username)).toEqual(["jsmith2"]);
    } finally {
      await s.close();
    }
  });
});

describe("a Workday-shaped export imports with no hand edits", () => {
  let namespace: string;
  const apply = (file: string, ...extra: string[]) =>
    roster([
      "import",
      file,
      "--mapping",
      workdayMapping,
      "--apply",
      "--kubeconfig",
      info.kubeconfigPath,
      "-n",
      namespace,
      "-o",
      "json",
      ...extra,
    ]);

  beforeAll(async () => {
    namespace = await freshNamespace(kube, "import-wd");
    // Two years ago: Ana Silva (21004) was imported from Workday, then left.
    const then = join(work, "2024.csv");
    writeFileSync(
      then,
      [
        HEADER,
        "21000,Ada,Lovelace,ada.lovelace@example.com,Executive,Chief Executive Officer,London,01/15/2019,,Active,Regular,",
        "21004,Ana,Silva,ana.silva@example.com,Finance,Accountant,Lisbon,03/01/2020,,Active,Regular,21000",
        "",
      ].join("\n"),
    );
    const first = await apply(then);
    expect(first.stderr).toBe("");
    expect((JSON.parse(first.stdout) as Summary).hires.map((h) => h.username).sort()).toEqual([
      "alovelace",
      "asilva",
    ]);
    const left = join(work, "2024-later.csv");
    writeFileSync(left, `${HEADER}\n${workdayCsv.split("\n")[1]}\n`);
    const second = await apply(left);
    expect((JSON.parse(second.stdout) as Summary).leavers.map((l) => l.name)).toEqual(["asilva"]);
    expect((await employees(namespace)).get("asilva")?.spec.employmentStatus).toBe("Terminated");
  });
  afterAll(async () => {
    await kube.core.deleteNamespace({ name: namespace }).catch(() => {});
  });

  it("usernames as expected, the collision suffixed, the rehire keeps hers, values mapped, managers resolved", async () => {
    const result = await apply(join(fixtures, "workday.csv"));
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary.counts).toMatchObject({ hires: 7, movers: 1, leavers: 0, refused: 0, unchanged: 1 });
    const all = await employees(namespace);
    const byId = new Map([...all.values()].map((e) => [e.spec.employeeId, e]));
    expect(Object.fromEntries([...byId].map(([id, e]) => [id, e.spec.username]))).toEqual({
      "21000": "alovelace",
      "21001": "zmartinez-garcia",
      "21002": "jsmith",
      "21003": "jsmith2",
      "21004": "asilva",
      "21005": "skierkegaard",
      "21006": "lzolc",
      "21007": "ipetrov",
      "21008": "fwang",
    });
    expect(byId.get("21001")!.spec).toMatchObject({
      givenName: "Zoë",
      familyName: "Martínez-García",
      manager: "alovelace",
      employmentType: "Employee",
      startDate: "2021-03-01",
    });
    expect(byId.get("21003")!.spec).toMatchObject({ employmentType: "Contractor", manager: "jsmith" });
    expect(byId.get("21005")!.spec).toMatchObject({
      employmentStatus: "OnLeave",
      manager: "zmartinez-garcia",
    });
    expect(byId.get("21006")!.spec).toMatchObject({ startDate: "2031-03-02", employmentStatus: "Active" });
    // The rehire: Active again, her new name applied, her username kept, and the report says so.
    expect(all.get("asilva")!.spec).toMatchObject({
      employeeId: "21004",
      username: "asilva",
      familyName: "Costa",
      employmentStatus: "Active",
      title: "Controller",
    });
    expect(summary.notes).toEqual([
      {
        line: 6,
        employeeId: "21004",
        message: 'username "asilva" is kept (usernames are immutable); the export\'s name now gives "acosta"',
      },
    ]);
  });

  it("a second import of the same file writes nothing", async () => {
    const before = versions(await employees(namespace));
    const result = await apply(join(fixtures, "workday.csv"));
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary.counts).toMatchObject({ hires: 0, movers: 0, leavers: 0, refused: 0, unchanged: 9 });
    expect(summary.written).toEqual([]);
    expect(versions(await employees(namespace))).toEqual(before);
  });
});

describe("the chart's scheduled import (CronJob command) against an HR endpoint on loopback", () => {
  const TOKEN = "wd-token-5f1e0c";
  let namespace: string;
  let server: Server;
  let base: string;
  /** What the HR endpoint serves next: the export, or the export cut after `cutAt` bytes. */
  let serve: { body: string; cutAt?: number } = { body: workdayCsv };
  const pushes: { path: string; body: string }[] = [];
  let command: string[];
  let tokenFile: string;

  beforeAll(async () => {
    namespace = await freshNamespace(kube, "import-cron");
    server = createServer((req, res) => {
      if (req.url?.startsWith("/metrics/job/")) {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          pushes.push({ path: `${req.method} ${req.url}`, body });
          res.writeHead(200).end();
        });
        return;
      }
      if (req.url !== "/ccx/service/customreport2/acme/workers?format=csv")
        return void res.writeHead(404).end();
      if (req.headers.authorization !== `Bearer ${TOKEN}`)
        return void res.writeHead(401, { "content-type": "text/plain" }).end("invalid token");
      const bytes = Buffer.from(serve.body);
      // No extension in the path: the format comes from Content-Type, as with Workday RaaS.
      res.writeHead(200, { "content-type": "text/csv; charset=utf-8", "content-length": bytes.length });
      if (serve.cutAt === undefined) return void res.end(bytes);
      res.write(bytes.subarray(0, serve.cutAt), () => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // The chart as a user would install it, release namespace = the Employees' namespace.
    const rendered = check(helmBinary(), [
      "template",
      "roster",
      chartDir,
      "--namespace",
      namespace,
      "--set",
      "hrImport.enabled=true",
      "--set",
      `hrImport.source.url=${base}/ccx/service/customreport2/acme/workers?format=csv`,
      "--set",
      "hrImport.source.auth.type=bearer",
      "--set",
      "hrImport.source.auth.secretName=workday-token",
      "--set-file",
      `hrImport.mapping=${workdayMapping}`,
      "--set",
      "hrImport.maxLeavers=2",
      "--set",
      `hrImport.pushgateway=${base}`,
      "--show-only",
      "templates/hr-import.yaml",
    ]);
    const docs = loadAll(rendered) as { kind: string; metadata: { name: string }; [k: string]: unknown }[];
    const cronJob = docs.find((d) => d.kind === "CronJob")!;
    const configMap = docs.find((d) => d.kind === "ConfigMap") as unknown as { data: Record<string, string> };
    // The API server accepts the CronJob as rendered (podFailurePolicy and all); no controller runs it here.
    await kube.objects.create(cronJob as never);
    type Container = { args: string[]; volumeMounts: { name: string; mountPath: string }[] };
    const container = (
      cronJob as unknown as {
        spec: { jobTemplate: { spec: { template: { spec: { containers: Container[] } } } } };
      }
    ).spec.jobTemplate.spec.template.spec.containers[0]!;
    // What the kubelet would do: mount the ConfigMap and the Secret, expand $(POD_NAMESPACE).
    const mappingFile = join(work, "mapping.yaml");
    writeFileSync(mappingFile, configMap.data["mapping.yaml"]!);
    tokenFile = join(work, "token");
    writeFileSync(tokenFile, `${TOKEN}\n`);
    command = container.args.map((a) =>
      a
        .replace("/etc/roster/hr-mapping/mapping.yaml", mappingFile)
        .replace("/var/run/roster/hr-auth/token", tokenFile)
        .replace("$(POD_NAMESPACE)", namespace),
    );
    expect(command.slice(0, 2)).toEqual([
      "import",
      `${base}/ccx/service/customreport2/acme/workers?format=csv`,
    ]);
    expect(command).toEqual(
      expect.arrayContaining([
        "--apply",
        `--namespace=${namespace}`,
        "--max-leavers=2",
        `--token-file=${tokenFile}`,
        "--event-for=CronJob/roster-hr-import",
        `--pushgateway=${base}`,
      ]),
    );
  });
  afterAll(async () => {
    server?.close();
    await kube.core.deleteNamespace({ name: namespace }).catch(() => {});
  });

  // In the pod the kubeconfig is the in-cluster one; here it is the harness's.
  const runJob = () => roster([...command, "--kubeconfig", info.kubeconfigPath]);

  async function cronJobEvents(): Promise<{ reason: string; type: string; message: string; uid?: string }[]> {
    const list = await kube.core.listNamespacedEvent({
      namespace,
      fieldSelector: "involvedObject.kind=CronJob,involvedObject.name=roster-hr-import",
    });
    return list.items
      .sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)))
      .map((e) => ({
        reason: e.reason!,
        type: e.type!,
        message: e.message!,
        ...(e.involvedObject.uid ? { uid: e.involvedObject.uid } : {}),
      }));
  }
  const lastPush = () => pushes.at(-1)!;
  const metric = (body: string, name: string) =>
    body
      .split("\n")
      .filter((l) => l.startsWith(name))
      .map((l) => l.split(" "));

  it("a good run applies the export, records an Imported Event on the CronJob and pushes metrics", async () => {
    const result = await runJob();
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("9 new hires, 0 movers, 0 leavers, 0 refused rows, 0 unchanged");
    expect((await employees(namespace)).size).toBe(9);
    const cron = (await kube.objects.read({
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name: "roster-hr-import", namespace },
    })) as { metadata: { uid?: string } };
    expect(await cronJobEvents()).toEqual([
      {
        reason: "Imported",
        type: "Normal",
        message: `${base}/ccx/service/customreport2/acme/workers: 9 new hires, 0 movers, 0 leavers, 0 refused rows, 0 unchanged; 9 written`,
        uid: cron.metadata.uid,
      },
    ]);
    expect(lastPush().path).toBe(`POST /metrics/job/roster-import/namespace/${namespace}`);
    const body = lastPush().body;
    expect(metric(body, "roster_import_last_run_success")).toEqual([["roster_import_last_run_success", "1"]]);
    expect(metric(body, 'roster_import_rows{outcome="hire"}')).toEqual([
      ['roster_import_rows{outcome="hire"}', "9"],
    ]);
    expect(Number(metric(body, "roster_import_last_success_timestamp_seconds")[0]![1])).toBeGreaterThan(
      1.7e9,
    );
  });

  it("a 401 applies nothing; the error is on stderr, in a Warning Event, and last_run_success is 0", async () => {
    serve = { body: workdayCsv.replace("Chief Executive Officer", "Chair") };
    const before = versions(await employees(namespace));
    writeFileSync(tokenFile, "expired-token\n");
    const result = await runJob();
    writeFileSync(tokenFile, `${TOKEN}\n`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `roster import: ${base}/ccx/service/customreport2/acme/workers: HTTP 401 Unauthorized`,
    );
    expect(versions(await employees(namespace))).toEqual(before);
    const event = (await cronJobEvents()).at(-1)!;
    expect(event).toMatchObject({ reason: "ImportFailed", type: "Warning" });
    expect(event.message).toContain("HTTP 401 Unauthorized");
    for (const text of [result.stderr, result.stdout, event.message, lastPush().body])
      expect(text).not.toContain("expired-token");
    expect(metric(lastPush().body, "roster_import_last_run_success")).toEqual([
      ["roster_import_last_run_success", "0"],
    ]);
    // The last success time is not pushed by a failed run, so the Pushgateway keeps the good one.
    expect(metric(lastPush().body, "roster_import_last_success_timestamp_seconds")).toEqual([]);
  });

  it("an export cut off mid-transfer applies nothing and says it is truncated", async () => {
    const body = workdayCsv.replace("Chief Executive Officer", "Chair");
    serve = { body, cutAt: Math.floor(body.length * 0.6) };
    const before = versions(await employees(namespace));
    const result = await runJob();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/workers: the export is truncated/);
    expect(versions(await employees(namespace))).toEqual(before);
    expect((await employees(namespace)).get("alovelace")!.spec.title).toBe("Chief Executive Officer");
    const event = (await cronJobEvents()).at(-1)!;
    expect(event).toMatchObject({ reason: "ImportFailed", type: "Warning" });
    expect(event.message).toMatch(/the export is truncated/);
    expect(metric(lastPush().body, "roster_import_last_run_success")).toEqual([
      ["roster_import_last_run_success", "0"],
    ]);
  });

  it("an export cut short at the source trips the --max-leavers guard: nothing applied, TooManyLeavers", async () => {
    // Complete as HTTP goes, but only the first three people: six would leave, the chart allows 2.
    serve = { body: `${workdayCsv.split("\n").slice(0, 4).join("\n")}\n` };
    const before = versions(await employees(namespace));
    const result = await runJob();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("6 leavers is more than --max-leavers allows (2); nothing written");
    expect(versions(await employees(namespace))).toEqual(before);
    expect(
      [...(await employees(namespace)).values()].every((e) => e.spec.employmentStatus !== "Terminated"),
    ).toBe(true);
    const event = (await cronJobEvents()).at(-1)!;
    expect(event).toMatchObject({ reason: "TooManyLeavers", type: "Warning" });
    expect(event.message).toContain("6 leavers is more than --max-leavers allows (2)");
  });

  it("the next good run succeeds again", async () => {
    serve = { body: workdayCsv };
    const result = await runJob();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("0 new hires, 0 movers, 0 leavers, 0 refused rows, 9 unchanged");
    expect(metric(lastPush().body, "roster_import_last_run_success")).toEqual([
      ["roster_import_last_run_success", "1"],
    ]);
    expect((await cronJobEvents()).map((e) => e.reason)).toEqual([
      "Imported",
      "ImportFailed",
      "ImportFailed",
      "TooManyLeavers",
      "Imported",
    ]);
  });
});
