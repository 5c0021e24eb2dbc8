// `roster test` and `roster explain --dir` as a user runs them: the real command in its own
// process, no cluster (src/cli/test.ts, src/cli/explain.ts; the logic has unit tests in
// test/unit/access-test.test.ts and test/unit/explain.test.ts). Here rather than in the unit
// project because each case starts Node.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { dump } from "js-yaml";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");

type Result = { code: number; stdout: string; stderr: string };
function roster(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, "bin/roster.js"), ...args],
      { cwd: root },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}
const dirs = (variant: string) => [
  "deploy/samples",
  "test/fixtures/access-tests/common",
  `test/fixtures/access-tests/${variant}`,
];

describe("roster test (the command)", { timeout: 120_000 }, () => {
  it("exits 5 on the violation, naming the person and both groups; 0 once fixed", async () => {
    const [broken, fixed] = await Promise.all([
      roster("test", ...dirs("violation")),
      roster("test", ...dirs("fixed")),
    ]);
    expect(broken.stderr).toBe("");
    expect(broken.code).toBe(5);
    expect(broken.stdout).toContain("  FAIL  nobody deploys what they approve\n");
    expect(broken.stdout).toMatch(
      /ada \(employeeId E1001\) is in both prod-deploy .* and release-approvers .* in corp-ldap/,
    );
    expect(broken.stdout).toMatch(/^7 passed, 1 failed$/m);
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).not.toContain("FAIL");
    expect(fixed.stdout).toMatch(/^8 passed, 0 failed$/m);
  });

  it("-o json and -o junit parse and carry the failure", async () => {
    const [json, xml, passing] = await Promise.all([
      roster("test", ...dirs("violation"), "-o", "json"),
      roster("test", ...dirs("violation"), "-o", "junit"),
      roster("test", ...dirs("fixed"), "-o", "junit"),
    ]);
    expect(json.code).toBe(5);
    const report = JSON.parse(json.stdout) as {
      passed: number;
      failed: number;
      tests: { file: string; name: string; cases: { name: string; passed: boolean; failures: string[] }[] }[];
    };
    expect(report).toMatchObject({ passed: 7, failed: 1 });
    expect(report.tests[0]).toMatchObject({
      file: "test/fixtures/access-tests/common/accesstest-production.yaml",
      name: "production-duties",
    });
    const failed = report.tests[0]!.cases.filter((c) => !c.passed);
    expect(failed.map((c) => c.name)).toEqual(["nobody deploys what they approve"]);
    expect(failed[0]!.failures[0]).toContain("ada (employeeId E1001) is in both prod-deploy");

    expect(xml.code).toBe(5);
    const parsed = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: "",
      isArray: (n) => n === "testcase",
    }).parse(xml.stdout) as {
      testsuites: {
        tests: string;
        failures: string;
        testsuite: {
          name: string;
          failures: string;
          testcase: { name: string; failure?: { message: string; "#text": string } }[];
        };
      };
    };
    expect(parsed.testsuites).toMatchObject({ tests: "8", failures: "1" });
    const suite = parsed.testsuites.testsuite;
    expect(suite).toMatchObject({ name: "AccessTest production-duties", failures: "1" });
    const failing = suite.testcase.filter((c) => c.failure);
    expect(failing.map((c) => c.name)).toEqual(["nobody deploys what they approve"]);
    expect(failing[0]!.failure!.message).toMatch(
      /^ada \(employeeId E1001\) is in both prod-deploy .* and release-approvers /,
    );
    expect(failing[0]!.failure!["#text"]).toBe(failing[0]!.failure!.message);

    expect(passing.code).toBe(0);
    expect(passing.stdout).toMatch(/<testsuites [^>]*tests="8" failures="0"/);
  });

  it("a broken test file exits 1 naming the file, document and field; a usage mistake exits 2", async () => {
    const test = (name: string, spec: Record<string, unknown>) =>
      dump({ apiVersion: "roster.dev/v1alpha1", kind: "AccessTest", metadata: { name }, spec });
    const typoDir = mkdtempSync(join(tmpdir(), "roster-test-"));
    writeFileSync(
      join(typoDir, "tests.yaml"),
      [
        test("ok", { expect: [] }),
        test("typo", {
          expect: [{ employee: "ada", accounts: [{ connector: "corp-ldap", groupz: ["staff"] }] }],
        }),
      ].join("---\n"),
    );
    const unknownDir = mkdtempSync(join(tmpdir(), "roster-test-"));
    writeFileSync(
      join(unknownDir, "tests.yaml"),
      test("unknown", { expect: [{ employee: "zed", noAccounts: ["corp-ldap"] }] }),
    );
    const [typo, unknown, none, noArgs, badOutput] = await Promise.all([
      roster("test", "deploy/samples", typoDir),
      roster("test", "deploy/samples", unknownDir),
      roster("test", "deploy/samples"),
      roster("test"),
      roster("test", "deploy/samples", "-o", "xml"),
    ]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(
      /tests\.yaml \(document 2, AccessTest typo\): spec\.expect\.0\.accounts\.0 must NOT have additional properties \(groupz\)/,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /tests\.yaml \(document 1, AccessTest unknown\): spec\.expect\.0\.employee: no Employee named zed in the directory/,
    );
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no AccessTest documents in deploy/samples");
    expect(noArgs.code).toBe(2);
    expect(badOutput.code).toBe(2);
    expect(badOutput.stderr).toContain("--output must be text, json or junit");
  });

  it("the example in --help is a valid AccessTest that passes on deploy/samples with its Connectors", async () => {
    const { code, stdout: help } = await roster("test", "--help");
    expect(code).toBe(0);
    expect(help).toContain("5  an expectation or invariant fails");
    const example = help.slice(
      help.indexOf("  apiVersion: roster.dev/v1alpha1"),
      help.indexOf("\nNames of groups"),
    );
    const dir = mkdtempSync(join(tmpdir(), "roster-test-help-"));
    writeFileSync(join(dir, "example.yaml"), example.replace(/^ {2}/gm, ""));
    const result = await roster(
      "test",
      "deploy/samples",
      "test/fixtures/access-tests/common",
      "test/fixtures/access-tests/fixed",
      dir,
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("example.yaml: AccessTest release-duties");
    expect(result.code).toBe(0);
  });
});

describe("roster explain --dir (the command, no cluster)", { timeout: 120_000 }, () => {
  const dirs = ["--dir", "deploy/samples", "--dir", "test/fixtures/access-tests/explain"];

  it("names the failing match entry and the value it saw, in text and JSON", async () => {
    const [text, json] = await Promise.all([
      roster("explain", "emp/vic", ...dirs, "--now", "2026-03-01T00:00:00Z"),
      roster("explain", "employee/vic", ...dirs, "-o", "json"),
    ]);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      "Employee vic (username vic, employeeId V2001), at 2026-03-01T00:00:00.000Z\n",
    );
    expect(text.stdout).toContain(
      "\nwiki: no account: AccessPolicy/engineering, the only AccessPolicy or grant that names wiki, does not hold\n" +
        '  AccessPolicy/engineering: does not hold: fails on match[1] employmentType NotIn [Vendor]: saw "Vendor"\n' +
        '    held    selector.matchLabels roster.dev/team=platform: saw "platform"\n' +
        '    held    match[0] department In [Engineering]: saw "Engineering"\n' +
        '    FAILED  match[1] employmentType NotIn [Vendor]: saw "Vendor"\n' +
        '    held    match[2] attributes.clearance Exists: saw "secret"\n',
    );
    expect(json.code).toBe(0);
    const x = JSON.parse(json.stdout) as {
      connectors: {
        connector: string;
        considered: { source: string; entries: { entry: string; seen?: string; holds: boolean }[] }[];
      }[];
    };
    const check = x.connectors.find((c) => c.connector === "wiki")!.considered[0]!;
    expect(check.source).toBe("AccessPolicy/engineering");
    expect(check.entries.filter((e) => !e.holds)).toEqual([
      expect.objectContaining({ entry: "match[1]", seen: "Vendor" }),
    ]);
  });

  it("exits 1 for an Employee not there, 2 for a usage mistake", async () => {
    const [missing, badName, mixed] = await Promise.all([
      roster("explain", "emp/nobody", ...dirs),
      roster("explain", "pod/vic", ...dirs),
      roster("explain", "emp/vic", ...dirs, "-n", "hr"),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      "Employee nobody not found in deploy/samples, test/fixtures/access-tests/explain",
    );
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('expected emp/NAME, got "pod/vic"');
    expect(mixed.code).toBe(2);
  });
});
