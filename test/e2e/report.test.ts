// `roster report` as users run it (a child process, and as the kubectl plugin): a leaver whose
// LDAP entry was re-enabled by hand after the operator disabled it is invisible in status and
// found with --check-targets, which reads the directory itself.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse } from "csv-parse/sync";
import { dump, load } from "js-yaml";
import { Attribute, Change } from "ldapts";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { registerDirectory } from "../harness/processes.ts";
import { attr } from "../support/ldap.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");

type Result = { code: number; stdout: string; stderr: string };
function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 << 20, env }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
const roster = (args: string[]) => run(process.execPath, [bin, ...args]);

type Exception = { kind: string; employee?: string; connector?: string; account?: string; detail: string };

let s: Scenario;
let operator: OperatorProcess | undefined;
let bobDN: string;

beforeAll(async () => {
  s = await scenario(info, "report", {
    safety: { maxDeprovisionsPerHour: 1000, maxDeprovisionPercent: 100 },
  });
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  const soon = new Date(Date.now() + 5 * 86_400_000).toISOString().slice(0, 10);
  await s.apply("Employee", "ada", person("R1", "ada", { department: "Engineering" }));
  await s.apply("Employee", "bob", person("R2", "bob"));
  await s.apply("Employee", "cy", person("R3", "cy"));
  await s.apply(
    "Employee",
    "dee",
    person("R4", "dee", { grants: [{ connector: s.connector, groups: ["project-x"], until: soon }] }),
  );
  operator = await startOperator({ namespace: s.namespace });
  for (const name of ["ada", "bob", "cy", "dee"])
    await s.until(name, "Active", (e) => e.status?.phase === "Active");
  // bob and cy leave; the operator disables their entries.
  await s.apply("Employee", "bob", person("R2", "bob", { employmentStatus: "Terminated" }));
  await s.apply("Employee", "cy", person("R3", "cy", { employmentStatus: "Terminated" }));
  for (const name of ["bob", "cy"]) {
    const gone = await s.until(name, "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    expect(gone.status?.accounts?.[0]?.state).toBe("Disabled");
  }
  await operator.stop();
  operator = undefined;
  // Someone re-enables bob by hand in the directory; status still says Disabled.
  const entry = await s.ldap.person(s.usersDN, "R2");
  bobDN = entry!.dn;
  expect(attr(entry, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
  await s.ldap.client.modify(
    bobDN,
    new Change({ operation: "delete", modification: new Attribute({ type: "pwdAccountLockedTime" }) }),
  );
  expect(attr(await s.ldap.person(s.usersDN, "R2"), "pwdAccountLockedTime")).toEqual([]);
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

describe("roster report", () => {
  const base = () => ["report", "--kubeconfig", info.kubeconfigPath, "-n", s.namespace];

  it("from status alone the review is clean: the hand re-enable is not visible there", async () => {
    const result = await roster(base());
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(
        `^ada +ada +R1 +Active +Active +${s.connector} +Active +uid=ada,\\S+ +staff +AccessPolicy/everyone$`,
        "m",
      ),
    );
    expect(result.stdout).toMatch(
      /^bob +bob +R2 +Terminated +Deprovisioned +corp-ldap +Disabled +uid=bob,\S+ +- +-$/m,
    );
    expect(result.stdout).toMatch(/^dee +dee +R4 .* project-x +Grant$/m);
    expect(result.stdout).toContain("EXCEPTIONS: none");
  });

  it("--check-targets reads the directory and lists the leaver whose entry is enabled again (exit 4)", async () => {
    const result = await roster([...base(), "--check-targets"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(4);
    expect(result.stdout).toMatch(/^EXCEPTIONS \(1\)$/m);
    expect(result.stdout).toMatch(
      new RegExp(
        `^LeaverWithAccess +bob +${s.connector} +uid=bob,\\S+ +employmentStatus is Terminated, but the entry in the target is enabled \\(read directly\\)$`,
        "m",
      ),
    );
    expect(result.stdout).not.toMatch(/^LeaverWithAccess +cy /m);
  });

  it("JSON and CSV carry the same exceptions, with expiring grants on request", async () => {
    const json = await roster([...base(), "--check-targets", "--expiring-within", "14d", "-o", "json"]);
    expect(json.code).toBe(4);
    const review = JSON.parse(json.stdout) as { exceptions: Exception[]; people: { name: string }[] };
    expect(review.people.map((p) => p.name)).toEqual(["ada", "bob", "cy", "dee"]);
    expect(review.exceptions).toEqual([
      {
        kind: "LeaverWithAccess",
        namespace: s.namespace,
        employee: "bob",
        connector: s.connector,
        account: bobDN,
        detail: "employmentStatus is Terminated, but the entry in the target is enabled (read directly)",
      },
      expect.objectContaining({ kind: "ExpiringGrant", employee: "dee", connector: s.connector }),
    ]);
    const csv = await roster([...base(), "--check-targets", "-o", "csv"]);
    expect(csv.code).toBe(4);
    const rows = parse(csv.stdout, { columns: true }) as Record<string, string>[];
    expect(rows.filter((r) => r.record === "exception")).toEqual([
      expect.objectContaining({ exception: "LeaverWithAccess", employee: "bob", accountId: bobDN }),
    ]);
    expect(rows.filter((r) => r.record === "access" && r.employee === "ada")).toEqual([
      expect.objectContaining({ connector: s.connector, accountState: "Active", group: "staff" }),
    ]);
  });

  it("works as the kubectl plugin, honouring --kubeconfig, --context and the context's namespace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roster-plugin-"));
    registerDirectory(dir);
    symlinkSync(bin, join(dir, "kubectl-roster"));
    // A kubeconfig whose current context points elsewhere, and a "review" context in the namespace.
    const config = load(readFileSync(info.kubeconfigPath, "utf8")) as {
      contexts: { name: string; context: Record<string, string> }[];
      "current-context": string;
    };
    const current = config.contexts.find((c) => c.name === config["current-context"])!;
    config.contexts.push({ name: "review", context: { ...current.context, namespace: s.namespace } });
    config.contexts.push({
      name: "broken",
      context: { ...current.context, cluster: "nowhere", namespace: "x" },
    });
    config["current-context"] = "broken";
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, dump(config));
    const env = { ...process.env, PATH: [dir, dirname(process.execPath), process.env.PATH].join(":") };
    const kubectl = join(info.binDir, "kubectl");

    const help = await run(kubectl, ["roster", "report", "--help"], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: kubectl roster report/);
    const importHelp = await run(kubectl, ["roster", "import", "--help"], env);
    expect(importHelp.stdout).toMatch(/^Usage: kubectl roster import FILE/);

    const result = await run(
      kubectl,
      [
        "roster",
        "report",
        "--kubeconfig",
        kubeconfig,
        "--context",
        "review",
        "--check-targets",
        "-o",
        "json",
      ],
      env,
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(4);
    const review = JSON.parse(result.stdout) as { scope: string; exceptions: Exception[] };
    expect(review.scope).toBe(`namespace ${s.namespace}`);
    expect(review.exceptions.map((e) => [e.kind, e.employee])).toEqual([["LeaverWithAccess", "bob"]]);

    const explicit = await run(
      kubectl,
      ["roster", "report", "--kubeconfig", kubeconfig, "--context", "review", "-n", `${s.namespace}-none`],
      env,
    );
    expect(explicit.code).toBe(0);
    expect(explicit.stdout).toContain("No Employees.");

    const unknown = await run(
      kubectl,
      ["roster", "report", "--kubeconfig", kubeconfig, "--context", "nope"],
      env,
    );
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      "kubectl roster report: --context nope: no such context in the kubeconfig",
    );
  });

  it("rejects bad flags with exit code 2", async () => {
    const result = await roster([...base(), "--output", "xml"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--output xml: expected table, csv, json or html");
    const duration = await roster([...base(), "--expiring-within", "soon"]);
    expect(duration.code).toBe(2);
  });
});
