// The Argo CD health checks of deploy/argocd, run by the real Argo CD (the argocd CLI v3.5.7, built
// from its Go module: `argocd admin settings resource-overrides health FILE --argocd-cm-path
// deploy/argocd/argocd-cm-health.yaml`, the code the application controller runs) against status
// objects shaped like the operator writes them (test/packaging/fixtures). Lua 5.1's compiler adds
// what running fixtures cannot: every global a script reads on any path is one Argo CD's VM has.
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dump, load } from "js-yaml";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { check, kubectlBinary, root, run } from "./tools.ts";
import {
  KINDS,
  argocdBinary,
  argocdHealth,
  healthConfigMap,
  luaGlobals,
  scratchFile,
  scriptPath,
  type Kind,
} from "../support/argocd.ts";

const fixturesDir = join(root, "test/packaging/fixtures");
type Condition = { type: string; status: string; reason: string; observedGeneration?: number };
type RosterFixture = {
  kind: Kind;
  metadata: { generation?: number };
  status?: { conditions?: Condition[] };
};
type ConfigMap = {
  kind: string;
  metadata: { name: string; namespace?: string };
  data: Record<string, string>;
};

function fixture(name: string): RosterFixture {
  return JSON.parse(readFileSync(join(fixturesDir, `${name}.json`), "utf8")) as RosterFixture;
}

const WAIT_FOR_APPROVAL = "wait for roster.dev/approve-deprovisioning";

/** Every fixture and the health (status, message) Argo CD shows for it. */
const EXPECTED: Record<string, [string, string | RegExp]> = {
  "employee-new": ["Progressing", "Waiting for the operator to observe the Employee"],
  "employee-active": ["Healthy", "Active: every account matches the desired state"],
  "employee-scheduled": ["Healthy", /^Scheduled: /],
  "employee-spec-changed": ["Progressing", "Waiting for the operator to reconcile generation 2"],
  // Argo CD answers for an object being deleted before any health script runs.
  "employee-deleting": ["Progressing", "Pending deletion"],
  "employee-failed": ["Degraded", /^TargetError: corp-ldap: connect ECONNREFUSED/],
  "employee-held": ["Degraded", /^DeprovisioningHeld: .*mass-change brake/],
  "employee-paused": ["Suspended", 'roster.dev/paused is "true": no change is made for this Employee'],
  // The annotation is set, the operator has not written the Paused condition yet.
  "employee-paused-unobserved": [
    "Suspended",
    'roster.dev/paused is "true": no change is made for this Employee',
  ],
  "employee-deprovisioned": ["Healthy", /^Deprovisioned: /],
  // Non-table entries ("Ready", 7, null) among the conditions are skipped.
  "employee-malformed-conditions": ["Healthy", "Active: every account matches the desired state"],
  "accesspolicy-new": ["Progressing", "Waiting for the operator to observe the AccessPolicy"],
  "accesspolicy-ready": ["Healthy", "matches 2 Employees"],
  "accesspolicy-spec-changed": ["Progressing", "Waiting for the operator to reconcile generation 2"],
  "accesspolicy-invalid": ["Degraded", /^InvalidMatch: match\[0\]/],
  "accesspolicy-paused": ["Suspended", "changes are paused"],
  "accesspolicy-paused-unobserved": ["Suspended", 'roster.dev/paused is "true": grants nothing new'],
  "grouprule-new": ["Progressing", "Waiting for the operator to observe the GroupRule"],
  "grouprule-ready": ["Healthy", "1 members"],
  "grouprule-spec-changed": ["Progressing", "Waiting for the operator to reconcile generation 2"],
  "grouprule-invalid": ["Degraded", /^InvalidMatch: /],
  "grouprule-paused": ["Suspended", "changes are paused"],
  "grouprule-paused-unobserved": ["Suspended", 'roster.dev/paused is "true": grants nothing new'],
  "connector-new": ["Progressing", "Waiting for the operator to observe the Connector"],
  "connector-ready": ["Healthy", "reachable and authenticated, 1 managed accounts"],
  "connector-spec-changed": ["Progressing", "Waiting for the operator to reconcile generation 2"],
  "connector-unreachable": ["Degraded", "Unreachable: connect ECONNREFUSED 127.0.0.1:389"],
  "connector-held": ["Degraded", /^DeprovisioningHeld: 12 deprovisions/],
  "connector-held-count": ["Degraded", `DeprovisioningHeld: 3 deprovisions ${WAIT_FOR_APPROVAL}`],
  "connector-held-one": [
    "Degraded",
    "DeprovisioningHeld: 1 deprovision waits for roster.dev/approve-deprovisioning",
  ],
  // DeprovisioningHeld True with an empty message and no heldDeprovisions: no made-up count.
  "connector-held-no-count": ["Degraded", `DeprovisioningHeld: deprovisions ${WAIT_FOR_APPROVAL}`],
  "connector-paused": ["Suspended", "changes are paused"],
  "connector-paused-unobserved": ["Suspended", "spec.paused is true"],
  "connector-paused-annotation": ["Suspended", 'roster.dev/paused is "true"'],
  "connector-deleting": ["Progressing", "Pending deletion"],
  "connector-malformed-conditions": ["Healthy", "reachable and authenticated, 1 managed accounts"],
};

/** A fixture per kind that is Healthy as it is. */
const HEALTHY: Record<Kind, string> = {
  Employee: "employee-active",
  AccessPolicy: "accesspolicy-ready",
  GroupRule: "grouprule-ready",
  Connector: "connector-ready",
};

beforeAll(() => {
  // Cached after the first build (scripts/setup-packaging.sh builds it before the tests run); a
  // cold build from the Go modules takes a while, hence the hook's own timeout.
  argocdBinary();
}, 60 * 60_000);

describe("Argo CD health checks, run by Argo CD", () => {
  it("has an expectation for every fixture", () => {
    const files = readdirSync(fixturesDir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.replace(/\.json$/, ""));
    expect(files.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  const cases = Object.entries(EXPECTED).map(([name, [status, message]]) => ({ name, status, message }));
  it.each(cases)("$name is $status", ({ name, status, message }) => {
    const object = fixture(name);
    expect(KINDS[object.kind], `unknown kind ${object.kind}`).toBeDefined();
    const result = argocdHealth(object);
    expect(result.failed, result.message).toBeUndefined();
    expect(result.status, result.message).toBe(status);
    if (typeof message === "string") expect(result.message).toBe(message);
    else expect(result.message).toMatch(message);
  });

  it("is Progressing while Ready is False for a reason that is not a failure", () => {
    for (const name of Object.values(HEALTHY)) {
      const object = fixture(name);
      const ready = object.status!.conditions!.find((c) => c.type === "Ready")!;
      Object.assign(ready, { status: "False", reason: "Reconciling", message: "applying" });
      expect(argocdHealth(object), name).toEqual({ status: "Progressing", message: "applying" });
      Object.assign(ready, { status: "Unknown", reason: "Unknown" });
      expect(argocdHealth(object).status, name).toBe("Progressing");
    }
  });

  it("is Progressing when only the Ready condition lags behind the generation", () => {
    const object = fixture("connector-ready");
    object.metadata.generation = 2;
    (object.status as { observedGeneration: number }).observedGeneration = 2;
    expect(argocdHealth(object)).toEqual({
      status: "Progressing",
      message: "Waiting for the operator to reconcile generation 2",
    });
  });

  it("is Progressing, not an error, when conditions or counts are not what the operator writes", () => {
    for (const [kind, name] of Object.entries(HEALTHY) as [Kind, string][]) {
      const object = fixture(name);
      for (const status of [{ conditions: "Ready" }, { conditions: [true, "x"] }, "broken", []]) {
        const result = argocdHealth({ ...object, status });
        expect(result, `${kind} ${JSON.stringify(status)}`).toEqual({
          status: "Progressing",
          message: `Waiting for the operator to observe the ${kind}`,
        });
      }
    }
    const connector = fixture("connector-ready") as RosterFixture & { status: object };
    Object.assign(connector.status, { heldDeprovisions: "3", observedGeneration: "1" });
    expect(argocdHealth(connector).status).toBe("Progressing");
  });

  it("shows a script that raises an error as Unknown, with the error", () => {
    // What a script using the string library gets in Argo CD (the harness's own check).
    const cm = scratchFile(
      "argocd-cm-broken.yaml",
      dump({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "argocd-cm" },
        data: {
          "resource.customizations.health.roster.dev_Employee":
            'return { status = "Healthy", message = string.upper(obj.metadata.name) }',
        },
      }),
    );
    const result = argocdHealth(fixture("employee-active"), cm);
    expect(result.failed).toBe(true);
    expect(result.status).toBe("Unknown");
    expect(result.message).toMatch(/failed to get resource health for people\/ada: .*string/);
  });
});

describe("the scripts use only what Argo CD's Lua VM has, on every path", () => {
  // Argo CD's own answer: the globals its VM gives a health script (resource.customizations
  // without useOpenLibs), and whether strings have methods.
  function argocdGlobals(): { globals: string[]; stringMethods: boolean } {
    const probe = [
      "local names = {}",
      "for k in pairs(_G) do table.insert(names, k) end",
      "table.sort(names)",
      'local methods = "no"',
      'if getmetatable("") ~= nil then methods = "yes" end',
      'return { status = "Healthy", message = methods .. " " .. table.concat(names, " ") }',
    ].join("\n");
    const cm = scratchFile(
      "argocd-cm-probe.yaml",
      dump({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "argocd-cm" },
        data: { "resource.customizations.health.roster.dev_Employee": probe },
      }),
    );
    const result = argocdHealth(fixture("employee-active"), cm);
    expect(result.status, result.message).toBe("Healthy");
    const [methods, ...globals] = result.message.split(" ");
    return { globals, stringMethods: methods === "yes" };
  }

  it("Argo CD's VM has base functions and table, not string or math, and strings have no methods", () => {
    const { globals, stringMethods } = argocdGlobals();
    expect(globals).toEqual(expect.arrayContaining(["ipairs", "pairs", "type", "tostring", "table", "obj"]));
    // os only through require("os") (Argo CD's reduced os), not as a global.
    for (const missing of ["string", "math", "os", "io", "debug"]) expect(globals).not.toContain(missing);
    expect(stringMethods).toBe(false);
  });

  it.each(Object.keys(KINDS) as Kind[])(
    "%s: every global it reads exists in Argo CD, none is written",
    (kind) => {
      const { globals, stringMethods } = argocdGlobals();
      const used = luaGlobals(scriptPath(kind));
      expect(used.reads.filter((name) => !globals.includes(name))).toEqual([]);
      expect(used.writes).toEqual([]);
      // s:len() and the like need the string library's metatable on strings.
      if (!stringMethods) expect(used.methodCalls).toBe(0);
    },
  );
});

/** Argo CD's own argocd-cm, from the install.yaml of the pinned version. */
function stockConfigMap(): string {
  const install = readFileSync(join(argocdBinary().dir, "install.yaml"), "utf8");
  const doc = install
    .split(/^---$/m)
    .find((d) => /^kind: ConfigMap$/m.test(d) && /^ {2}name: argocd-cm$/m.test(d));
  if (!doc) throw new Error("no argocd-cm in Argo CD's install.yaml");
  return doc;
}

describe("argocd-cm-health.yaml", () => {
  const cm = load(readFileSync(healthConfigMap, "utf8")) as ConfigMap;

  it("embeds each script verbatim under its resource.customizations key", () => {
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

  describe("applied as README says to an Argo CD installed in another namespace", () => {
    let cp: ControlPlane;
    const namespace = "gitops-tools";

    beforeAll(async () => {
      cp = await startControlPlane();
      cp.kubectl(["create", "namespace", namespace]);
    });

    afterAll(async () => {
      await cp?.stop();
    });

    function kubectl(args: string[], ns = namespace) {
      return run(join(cp.binDir, "kubectl"), ["--kubeconfig", cp.kubeconfigPath, "-n", ns, ...args]);
    }

    it("adds the four checks, keeps Argo CD's own keys, and survives re-applying install.yaml", () => {
      const stock = stockConfigMap();
      const stockKeys = Object.keys((load(stock) as ConfigMap).data);
      expect(stockKeys).toContain("resource.exclusions");
      // As Argo CD's installation instructions do: client-side apply of install.yaml.
      const stockFile = scratchFile("argocd-cm-stock.yaml", stock);
      expect(kubectl(["apply", "-f", stockFile]).status).toBe(0);

      const patched = kubectl([
        "patch",
        "configmap",
        "argocd-cm",
        "--type",
        "merge",
        "--patch-file",
        healthConfigMap,
      ]);
      expect(patched.stderr).toBe("");
      expect(patched.status).toBe(0);

      // An upgrade of Argo CD (install.yaml applied again) leaves keys it never set.
      expect(kubectl(["apply", "-f", stockFile]).status).toBe(0);

      const live = kubectl(["get", "configmap", "argocd-cm", "-o", "yaml"]);
      expect(live.status).toBe(0);
      const liveCm = load(live.stdout) as ConfigMap;
      expect(liveCm.metadata.namespace).toBe(namespace);
      expect(Object.keys(liveCm.data).sort()).toEqual([...stockKeys, ...Object.keys(cm.data)].sort());
      for (const [key, value] of Object.entries(cm.data)) expect(liveCm.data[key], key).toBe(value);

      // And Argo CD reads the live ConfigMap: its own keys and ours.
      const liveFile = scratchFile("argocd-cm-live.yaml", live.stdout);
      expect(argocdHealth(fixture("connector-held-count"), liveFile)).toEqual({
        status: "Degraded",
        message: `DeprovisioningHeld: 3 deprovisions ${WAIT_FOR_APPROVAL}`,
      });
    });

    it("would lose Argo CD's own keys with kubectl apply instead (what README warns about)", () => {
      const stockFile = scratchFile("argocd-cm-stock.yaml", stockConfigMap());
      expect(kubectl(["apply", "-f", stockFile], "default").status).toBe(0);
      expect(kubectl(["apply", "-f", healthConfigMap], "default").status).toBe(0);
      const live = load(
        kubectl(["get", "configmap", "argocd-cm", "-o", "yaml"], "default").stdout,
      ) as ConfigMap;
      expect(Object.keys(live.data).sort()).toEqual(Object.keys(cm.data).sort());
    });
  });

  it("works as a kustomize patch of Argo CD's own argocd-cm in another namespace", () => {
    const dir = dirname(scratchFile("kustomize/argocd-cm.yaml", stockConfigMap()));
    copyFileSync(healthConfigMap, join(dir, "argocd-cm-health.yaml"));
    writeFileSync(
      join(dir, "kustomization.yaml"),
      dump({
        namespace: "gitops-tools",
        resources: ["argocd-cm.yaml"],
        patches: [{ path: "argocd-cm-health.yaml" }],
      }),
    );
    const rendered = load(check(kubectlBinary(), ["kustomize", dir])) as ConfigMap;
    expect(rendered.metadata.namespace).toBe("gitops-tools");
    const stockKeys = Object.keys((load(stockConfigMap()) as ConfigMap).data);
    expect(Object.keys(rendered.data).sort()).toEqual([...stockKeys, ...Object.keys(cm.data)].sort());
  });
});
