// The operator as the image runs it: src/ compiled by tsc and bundled by scripts/bundle.ts, in a
// directory laid out like the image's /app (package.json, bin/, dist/bundle/) with no
// node_modules anywhere above it, so any dependency the bundle failed to take in fails here. It
// provisions a joiner into slapd and takes a leaver's access, and the offline CLI works from it.
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { registerDirectory } from "../harness/processes.ts";
import { attr } from "../support/ldap.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, readyCondition, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const root = join(import.meta.dirname, "../..");
let app: string;
let s: Scenario;
let operator: OperatorProcess;

beforeAll(async () => {
  const build = mkdtempSync(join(tmpdir(), "roster-bundle-"));
  registerDirectory(build);
  const dist = join(build, "dist");
  try {
    execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json", "--outDir", dist], {
      cwd: root,
      encoding: "utf8",
    });
  } catch (error) {
    throw new Error(`tsc failed:\n${(error as { stdout?: string }).stdout ?? String(error)}`, {
      cause: error,
    });
  }
  execFileSync(process.execPath, [join(root, "scripts/bundle.ts"), dist], { encoding: "utf8" });
  // As the Dockerfile's runtime stage: package.json, bin/ and the bundle only.
  app = join(build, "app");
  mkdirSync(join(app, "bin"), { recursive: true });
  mkdirSync(join(app, "dist"));
  copyFileSync(join(root, "package.json"), join(app, "package.json"));
  copyFileSync(join(root, "bin/roster.js"), join(app, "bin/roster.js"));
  execFileSync("cp", ["-r", join(dist, "bundle"), join(app, "dist/bundle")]);

  s = await scenario(info, "bundle");
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  operator = await startOperator({ namespace: s.namespace, entry: join(app, "bin/roster.js") });
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

function roster(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(app, "bin/roster.js"), ...args], { cwd: app }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("the bundled operator (what the image runs)", () => {
  it("has no node_modules to fall back on and loads the bundle, not tsc's files", () => {
    for (let dir = app; dir !== "/"; dir = join(dir, ".."))
      expect(existsSync(join(dir, "node_modules")), `${dir}/node_modules`).toBe(false);
    expect(readdirSync(join(app, "dist"))).toEqual(["bundle"]);
  });

  it("provisions a joiner and takes a leaver's access in slapd", async () => {
    await s.apply("Employee", "ada", person("BU1", "ada"));
    await s.until(
      "ada",
      "Active",
      (e) => e.status?.phase === "Active" && readyCondition(e)?.status === "True",
    );
    const [entry] = (
      await s.ldap.client.search(s.usersDN, {
        scope: "sub",
        filter: "(employeeNumber=BU1)",
        attributes: ["*"],
      })
    ).searchEntries;
    expect(attr(entry!, "uid")).toEqual(["ada"]);
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual(["staff"]);

    await s.apply("Employee", "ada", person("BU1", "ada", { employmentStatus: "Terminated" }));
    const gone = await s.until("ada", "Deprovisioned", (e) => e.status?.phase === "Deprovisioned");
    expect(gone.status?.accounts?.[0]).toMatchObject({ state: "Disabled", groups: [] });
    expect(attr((await s.ldap.person(s.usersDN, "BU1"))!, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
    expect(await s.ldap.groupsOf(s.groupsDN, entry!.dn)).toEqual([]);
  });

  it("runs the offline CLI: roster test on the samples", async () => {
    const result = await roster(
      "test",
      join(root, "deploy/samples"),
      join(root, "test/fixtures/access-tests/common"),
      join(root, "test/fixtures/access-tests/fixed"),
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/pass/i);
  });
});
