// `roster plan` against the live cluster: exactly the changes a directory would make, and a
// non-zero exit when it would trip the mass-change brake. It writes nothing.
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { dump } from "js-yaml";
import { API_VERSION } from "../../src/api/schema.ts";
import { waitFor } from "../harness/processes.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const run = promisify(execFile);
const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
let s: Scenario;
let operator: OperatorProcess;
const names = Array.from({ length: 20 }, (_, i) => `w${String(i).padStart(2, "0")}`);
const spec = (name: string, extra: Record<string, unknown> = {}) =>
  person(`W-${name}`, name, { department: Number(name.slice(1)) % 2 ? "Sales" : "Engineering", ...extra });

function directory(employees: [string, Record<string, unknown>][]): string {
  const dir = mkdtempSync(join(tmpdir(), "roster-plan-"));
  mkdirSync(join(dir, "people"));
  for (const [name, body] of employees)
    writeFileSync(
      join(dir, "people", `${name}.yaml`),
      dump({ apiVersion: API_VERSION, kind: "Employee", metadata: { name }, spec: body }),
    );
  return dir;
}

async function plan(
  dir: string,
  ...extra: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [
      bin,
      "plan",
      dir,
      "--kubeconfig",
      info.kubeconfigPath,
      "-n",
      s.namespace,
      ...extra,
    ]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  s = await scenario(info, "plan");
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await s.apply("AccessPolicy", "engineering", {
    match: [{ key: "department", operator: "In", values: ["Engineering"] }],
    grants: [{ connector: s.connector, groups: ["engineering"] }],
  });
  operator = await startOperator({
    namespace: s.namespace,
    leaderElection: false,
  });
  await Promise.all(names.map((n) => s.apply("Employee", n, spec(n))));
  for (const n of names) await s.until(n, "Active", (e) => e.status?.phase === "Active");
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

describe("roster plan", () => {
  it("prints exactly the changes of a directory that terminates two people and adds one", async () => {
    const dir = directory([
      ...names.map((n): [string, Record<string, unknown>] => [
        n,
        n === "w00" || n === "w01" ? spec(n, { employmentStatus: "Terminated" }) : spec(n),
      ]),
      ["newbie", person("W-new", "newbie", { department: "Engineering" })],
    ]);
    const json = await plan(dir, "-o", "json");
    expect(json.code, json.stderr).toBe(0);
    const preview = JSON.parse(json.stdout) as {
      changes: { employee: string; action: string; groupsAdded: string[]; groupsRemoved: string[] }[];
      tripsBrake: boolean;
    };
    expect(preview.changes.map((c) => [c.employee, c.action, c.groupsAdded, c.groupsRemoved])).toEqual([
      ["newbie", "create", ["engineering", "staff"], []],
      ["w00", "disable", [], ["engineering", "staff"]],
      ["w01", "disable", [], ["staff"]],
    ]);
    expect(preview.tripsBrake).toBe(false);
    const text = await plan(dir);
    expect(text.stdout).toContain("1 to create, 0 to update, 0 to enable, 2 to disable, 0 to delete");
    expect(text.stdout).toMatch(/\| w00 \(w00\) \| disable \| {2}\| engineering, staff \|/);
    // It wrote nothing: nobody changed in the cluster or in LDAP.
    expect((await s.employee("w00")).spec.employmentStatus).toBe("Active");
    expect(await s.ldap.person(s.usersDN, "W-new")).toBeUndefined();
  });

  it("shows a mover's group change and attribute update", async () => {
    const dir = directory(
      names.map((n): [string, Record<string, unknown>] => [
        n,
        n === "w02" ? spec(n, { department: "Sales", title: "Rep" }) : spec(n),
      ]),
    );
    const preview = JSON.parse((await plan(dir, "-o", "json")).stdout) as {
      changes: { employee: string; action: string; attributes: string[]; groupsRemoved: string[] }[];
    };
    expect(preview.changes).toEqual([
      expect.objectContaining({
        employee: "w02",
        action: "update",
        attributes: ["departmentNumber", "title"],
        groupsRemoved: ["engineering"],
      }),
    ]);
  });

  it("exits non-zero on a directory that deletes most Employees", async () => {
    const dir = directory(names.slice(0, 3).map((n): [string, Record<string, unknown>] => [n, spec(n)]));
    const result = await plan(dir);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain("**Mass-change brake**: 17 deprovisions");
    await waitFor(
      async () => (await s.employee("w19")).status?.phase === "Active",
      1000,
      () => "w19 changed",
    );
  });

  it("names the file and field of an invalid manifest", async () => {
    const dir = directory([
      [
        "bad",
        { employeeId: "X", username: "Bad Name", givenName: "B", familyName: "N", email: "b@example.com" },
      ],
    ]);
    const result = await plan(dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /people\/bad\.yaml \(document 1, Employee bad\): spec\.username must match pattern/,
    );
  });
});
