// `roster explain emp/NAME` against the live cluster, as a user runs it (a child process): the
// match entry that keeps a Vendor out of a policy and the value it saw, next to what the
// operator recorded in status; then what pausing the Connector does.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PLURALS } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");

type Result = { code: number; stdout: string; stderr: string };
function roster(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

let s: Scenario;
let operator: OperatorProcess | undefined;
const explain = (name: string, ...extra: string[]) =>
  roster("explain", `emp/${name}`, "--kubeconfig", info.kubeconfigPath, "-n", s.namespace, ...extra);

beforeAll(async () => {
  s = await scenario(info, "explain");
  await s.apply("AccessPolicy", "everyone", { grants: [{ connector: s.connector, groups: ["staff"] }] });
  await s.apply("AccessPolicy", "engineering", {
    match: [
      { key: "department", operator: "In", values: ["Engineering"] },
      { key: "employmentType", operator: "NotIn", values: ["Contractor", "Vendor"] },
    ],
    grants: [{ connector: s.connector, groups: ["engineering"] }],
  });
  await s.apply("Employee", "ada", person("X1", "ada", { department: "Engineering" }));
  await s.apply(
    "Employee",
    "vic",
    person("X2", "vic", { department: "Engineering", employmentType: "Vendor" }),
  );
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
  for (const name of ["ada", "vic"]) await s.until(name, "Active", (e) => e.status?.phase === "Active");
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
});

describe("roster explain against the cluster", () => {
  it("names the failing entry and the value it saw, beside the recorded account", async () => {
    const result = await explain("vic");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Employee vic (username vic, employeeId X2) in namespace ${s.namespace}`);
    expect(result.stdout).toMatch(
      new RegExp(`^${s.connector}: account \\(enabled\\): from AccessPolicy/everyone$`, "m"),
    );
    expect(result.stdout).toMatch(/^ {2}status: Active uid=vic,\S+, groups staff$/m);
    expect(result.stdout).toContain(
      '  AccessPolicy/engineering: does not hold: fails on match[1] employmentType NotIn [Contractor, Vendor]: saw "Vendor"\n' +
        '    held    match[0] department In [Engineering]: saw "Engineering"\n' +
        '    FAILED  match[1] employmentType NotIn [Contractor, Vendor]: saw "Vendor"\n',
    );
    expect(result.stdout).toMatch(/^ {4}engineering: no: AccessPolicy\/engineering does not hold$/m);

    const json = await explain("ada", "-o", "json");
    expect(json.code).toBe(0);
    const ldap = (
      JSON.parse(json.stdout) as {
        connectors: {
          connector: string;
          account: string;
          recorded: { state: string; groups: string[] };
          groups: { group: string; has: boolean; recorded: boolean; change?: string }[];
        }[];
      }
    ).connectors.find((c) => c.connector === s.connector)!;
    expect(ldap).toMatchObject({
      account: "Active",
      recorded: { state: "Active", groups: ["engineering", "staff"] },
    });
    expect(ldap.groups.map((g) => [g.group, g.has, g.recorded, g.change])).toEqual([
      ["engineering", true, true, undefined],
      ["staff", true, true, undefined],
    ]);
  });

  it("says that a paused Connector holds back what would change", async () => {
    await s.kube.custom.patchNamespacedCustomObject(
      {
        group: "roster.dev",
        version: "v1alpha1",
        namespace: s.namespace,
        plural: PLURALS.Connector!,
        name: s.connector,
        body: { spec: { paused: true } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const result = await explain("ada");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "  note: the Connector is paused (spec.paused): Roster reads and writes nothing here; " +
        "a new account, a group change and a leaver's deprovisioning all wait until it is resumed\n",
    );
    const missing = await explain("nobody");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Employee nobody not found in namespace ${s.namespace}`);
  });
});
