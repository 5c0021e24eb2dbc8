// The Argo CD health checks of deploy/argocd/health, run in Lua 5.1 (what Argo CD embeds) against
// status objects shaped like the operator writes them (test/packaging/fixtures). The object is
// handed to the script as a Lua table literal in the global `obj`, as Argo CD does, and the script
// runs with only Lua's safe base, string, table and math libraries.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { load } from "js-yaml";
import { root } from "./tools.ts";
import { KINDS, health, luaValue, scriptPath, type Kind } from "../support/argocd.ts";

const fixturesDir = join(root, "test/packaging/fixtures");
type RosterFixture = {
  kind: Kind;
  metadata: { generation?: number };
  status?: { conditions?: { type: string; status: string; reason: string; observedGeneration?: number }[] };
};

function fixture(name: string): RosterFixture {
  return JSON.parse(readFileSync(join(fixturesDir, `${name}.json`), "utf8")) as RosterFixture;
}

/** Every fixture and the health Argo CD should show for it. */
const EXPECTED: Record<string, string> = {
  "employee-new": "Progressing",
  "employee-active": "Healthy",
  "employee-scheduled": "Healthy",
  "employee-spec-changed": "Progressing",
  "employee-deleting": "Progressing",
  "employee-failed": "Degraded",
  "employee-held": "Degraded",
  "employee-paused": "Suspended",
  "employee-deprovisioned": "Healthy",
  "accesspolicy-new": "Progressing",
  "accesspolicy-ready": "Healthy",
  "accesspolicy-invalid": "Degraded",
  "accesspolicy-paused": "Suspended",
  "grouprule-ready": "Healthy",
  "grouprule-spec-changed": "Progressing",
  "grouprule-invalid": "Degraded",
  "grouprule-paused": "Suspended",
  "connector-new": "Progressing",
  "connector-ready": "Healthy",
  "connector-unreachable": "Degraded",
  "connector-held": "Degraded",
  "connector-held-count": "Degraded",
  "connector-paused": "Suspended",
  "connector-paused-unobserved": "Suspended",
};

describe("Argo CD health checks", () => {
  it("has an expectation for every fixture", () => {
    const files = readdirSync(fixturesDir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.replace(/\.json$/, ""));
    expect(files.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))("%s is %s", (name, expected) => {
    const object = fixture(name);
    expect(KINDS[object.kind], `unknown kind ${object.kind}`).toBeDefined();
    const result = health(object);
    expect(result.status, result.message).toBe(expected);
    expect(result.message).not.toBe("nil");
  });

  it("says why in the message", () => {
    expect(health(fixture("employee-failed")).message).toMatch(
      /^TargetError: corp-ldap: connect ECONNREFUSED/,
    );
    expect(health(fixture("employee-held")).message).toMatch(/^DeprovisioningHeld: .*mass-change brake/);
    expect(health(fixture("employee-paused")).message).toContain('roster.dev/paused is "true"');
    expect(health(fixture("employee-spec-changed")).message).toBe(
      "Waiting for the operator to reconcile generation 2",
    );
    expect(health(fixture("connector-unreachable")).message).toBe(
      "Unreachable: connect ECONNREFUSED 127.0.0.1:389",
    );
    expect(health(fixture("connector-held")).message).toMatch(/^DeprovisioningHeld: 12 deprovisions/);
    expect(health(fixture("connector-held-count")).message).toBe(
      "DeprovisioningHeld: 3 deprovisions wait for roster.dev/approve-deprovisioning",
    );
    expect(health(fixture("accesspolicy-invalid")).message).toMatch(/^InvalidMatch: match\[0\]/);
    expect(health(fixture("connector-ready")).message).toMatch(
      /^reachable and authenticated, \d+ managed accounts$/,
    );
  });

  it("is Progressing while Ready is False for a reason that is not a failure", () => {
    for (const name of ["employee-active", "accesspolicy-ready", "grouprule-ready", "connector-ready"]) {
      const object = fixture(name);
      const ready = object.status!.conditions!.find((c) => c.type === "Ready")!;
      Object.assign(ready, { status: "False", reason: "Reconciling" });
      expect(health(object).status, name).toBe("Progressing");
      Object.assign(ready, { status: "Unknown", reason: "Unknown" });
      expect(health(object).status, name).toBe("Progressing");
    }
  });

  it("is Progressing when only the Ready condition lags behind the generation", () => {
    const object = fixture("connector-ready");
    object.metadata.generation = 2;
    (object.status as { observedGeneration: number }).observedGeneration = 2;
    expect(health(object).status).toBe("Progressing");
  });

  it("argocd-cm-health.yaml embeds each script verbatim under its resource.customizations key", () => {
    const cm = load(readFileSync(join(root, "deploy/argocd/argocd-cm-health.yaml"), "utf8")) as {
      kind: string;
      metadata: { name: string };
      data: Record<string, string>;
    };
    expect(cm.kind).toBe("ConfigMap");
    expect(cm.metadata.name).toBe("argocd-cm");
    expect(Object.keys(cm.data).sort()).toEqual(
      Object.keys(KINDS)
        .map((kind) => `resource.customizations.health.roster.dev_${kind}`)
        .sort(),
    );
    for (const kind of Object.keys(KINDS) as Kind[])
      expect(cm.data[`resource.customizations.health.roster.dev_${kind}`], kind).toBe(
        readFileSync(scriptPath(kind), "utf8"),
      );
  });

  it("expresses JSON as Lua literals that round-trip", () => {
    const value = { s: 'a "quoted"\nline \\ é', n: -1.5, b: false, list: [1, "two"], nested: { x: null } };
    const out = execFileSync("lua5.1", ["-"], {
      input: `local v = ${luaValue(value)}\nio.write(v.s, "|", v.n, "|", tostring(v.b), "|", #v.list, v.list[2], "|", tostring(v.nested.x))`,
      encoding: "utf8",
    });
    expect(out).toBe('a "quoted"\nline \\ é|-1.5|false|2two|nil');
  });
});
