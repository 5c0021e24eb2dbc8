// The Helm chart and the kustomize base, rendered and checked without a cluster: copies of the
// CRDs and rules stay equal to their sources, helm lint passes, and the rendered objects carry
// exactly the RBAC, arguments and security settings the operator needs.
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dump } from "js-yaml";
import {
  LEASE_RULES,
  NAMESPACE_RULES,
  WATCH_RULES,
  check,
  chartDir,
  documents,
  find,
  helmBinary,
  helmTemplate,
  kustomizeBase,
  only,
  readText,
  root,
  run,
  type Manifest,
} from "./tools.ts";

type Container = {
  name: string;
  image: string;
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string | number } };
  readinessProbe: { httpGet: { path: string; port: string | number } };
  securityContext: Record<string, unknown>;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
};
type PodSpec = {
  securityContext: Record<string, unknown>;
  serviceAccountName: string;
  containers: Container[];
};
type Deployment = Manifest & { spec: { replicas: number; template: { spec: PodSpec } } };

const podSpec = (m: Manifest[]) => (only(m, "Deployment") as Deployment).spec.template.spec;
const container = (m: Manifest[]) => podSpec(m).containers[0]!;
const rules = (m: Manifest) => m.rules as unknown[];

describe("copies stay equal to their sources", () => {
  const crds = readdirSync(join(root, "crds")).filter((f) => f.endsWith(".yaml"));

  it.each(["charts/roster/crds", "deploy/base/crds"])("%s holds exactly the CRDs of crds/", (dir) => {
    expect(readdirSync(join(root, dir)).sort(), `run: cp crds/*.yaml ${dir}/`).toEqual(crds.sort());
    for (const file of crds)
      expect(
        readText(`${dir}/${file}`),
        `${dir}/${file} differs from crds/${file}: cp crds/*.yaml ${dir}/`,
      ).toBe(readText(`crds/${file}`));
  });

  it("the chart's PrometheusRule embeds deploy/prometheus/rules.yaml", () => {
    expect(
      readText("charts/roster/files/prometheus-rules.yaml"),
      "run: cp deploy/prometheus/rules.yaml charts/roster/files/prometheus-rules.yaml",
    ).toBe(readText("deploy/prometheus/rules.yaml"));
  });
});

describe("helm chart", () => {
  it("passes helm lint with default values and with every switch on", () => {
    check(helmBinary(), ["lint", "--strict", chartDir]);
    check(helmBinary(), [
      "lint",
      "--strict",
      chartDir,
      "--set",
      "operator.watchNamespace=people",
      "--set",
      "metrics.serviceMonitor.enabled=true",
      "--set",
      "metrics.prometheusRule.enabled=true",
      "--set",
      "hrImport.enabled=true",
      "--set",
      "hrImport.source.url=https://hr.example.com/workers.csv",
      "--set",
      "hrImport.mappingConfigMap=workday-mapping",
    ]);
  });

  it("renders with default values: cluster-wide RBAC, 2 replicas with leader election", () => {
    const m = documents(helmTemplate());
    expect(m.map((d) => d.kind).sort()).toEqual(
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ].sort(),
    );
    for (const d of m)
      if (!d.kind.startsWith("Cluster")) expect(d.metadata.namespace, d.kind).toBe("roster-system");

    expect(rules(only(m, "ClusterRole", "roster"))).toEqual([...WATCH_RULES, ...NAMESPACE_RULES]);
    expect(rules(only(m, "Role", "roster-leader-election"))).toEqual(LEASE_RULES);
    const subjects = [
      only(m, "ClusterRoleBinding").subjects,
      only(m, "RoleBinding", "roster-leader-election").subjects,
    ];
    for (const s of subjects)
      expect(s).toEqual([{ kind: "ServiceAccount", name: "roster", namespace: "roster-system" }]);
    expect(only(m, "ServiceAccount").metadata.name).toBe("roster");

    const deployment = only(m, "Deployment") as Deployment;
    expect(deployment.spec.replicas).toBe(2);
    expect(podSpec(m).serviceAccountName).toBe("roster");
    const c = container(m);
    expect(c.args.slice(0, 4)).toEqual([
      "operator",
      "--leader-elect=true",
      "--lease-namespace=$(POD_NAMESPACE)",
      "--lease-name=roster-operator",
    ]);
    expect(c.args.some((a) => a.startsWith("--namespace"))).toBe(false);
    expect(c.args.some((a) => a.startsWith("--shard-selector"))).toBe(false);
    expect(c.env).toContainEqual({
      name: "POD_NAMESPACE",
      valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
    });
    expect(c.ports).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "metrics", containerPort: 8080 }),
        expect.objectContaining({ name: "health", containerPort: 8081 }),
      ]),
    );
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "health" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits?.memory).toBeDefined();
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(podSpec(m).securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });

    const service = only(m, "Service") as Manifest & { spec: { ports: unknown[] } };
    expect(service.spec.ports).toEqual([
      { name: "metrics", port: 8080, targetPort: "metrics", protocol: "TCP" },
    ]);
    expect((only(m, "PodDisruptionBudget").spec as { minAvailable: number }).minAvailable).toBe(1);
  });

  it("sets the memory settings the limit was measured with, and operator.env beside them", () => {
    const env = (m: Manifest[]) => container(m).env.filter((e) => !e.valueFrom);
    expect(env(documents(helmTemplate()))).toEqual([
      { name: "NODE_OPTIONS", value: "--max-old-space-size=320 --max-semi-space-size=8" },
      { name: "MALLOC_ARENA_MAX", value: "2" },
    ]);
    expect(env(documents(helmTemplate({ "operator.env.TZ": "UTC", "operator.nodeOptions": "" })))).toEqual([
      { name: "MALLOC_ARENA_MAX", value: "2" },
      { name: "TZ", value: "UTC" },
    ]);
    // NODE_OPTIONS has its own value; a second one in env would silently win or lose.
    const refused = run(helmBinary(), [
      "template",
      "roster",
      chartDir,
      "--set",
      "operator.env.NODE_OPTIONS=x",
    ]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/operator\.env|NODE_OPTIONS/);
  });

  it("renders with one watched namespace: a Role there and nothing cluster-wide", () => {
    const m = documents(helmTemplate({ "operator.watchNamespace": "people" }));
    expect(find(m, "ClusterRole")).toEqual([]);
    expect(find(m, "ClusterRoleBinding")).toEqual([]);
    const role = only(m, "Role", "roster");
    expect(role.metadata.namespace).toBe("people");
    expect(rules(role)).toEqual(WATCH_RULES);
    const binding = only(m, "RoleBinding", "roster");
    expect(binding.metadata.namespace).toBe("people");
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: "roster", namespace: "roster-system" },
    ]);
    expect(only(m, "Role", "roster-leader-election").metadata.namespace).toBe("roster-system");
    expect(container(m).args).toContain("--namespace=people");
  });

  it("renders a shard: --shard-selector, its own Lease, and the Namespace watch in its ClusterRole", () => {
    const selector = "roster.dev/shard in (eu,apac),!legacy";
    const escaped = selector.replace(/,/g, "\\,"); // --set splits on unescaped commas
    const m = documents(helmTemplate({ "operator.shardSelector": escaped }, { release: "roster-eu" }));
    const args = container(m).args;
    expect(args).toContain(`--shard-selector=${selector}`);
    // Two shards installed side by side must not share a Lease (they would elect one leader).
    expect(args).toContain("--lease-name=roster-eu");
    expect(args).toContain("--leader-elect=true");
    expect(rules(only(m, "ClusterRole", "roster-eu"))).toEqual([...WATCH_RULES, ...NAMESPACE_RULES]);
    expect(rules(only(m, "Role", "roster-eu-leader-election"))).toEqual(LEASE_RULES);
    const named = documents(
      helmTemplate(
        { "operator.shardSelector": escaped, "operator.leaderElection.leaseName": "shard-eu" },
        { release: "roster-eu" },
      ),
    );
    expect(container(named).args).toContain("--lease-name=shard-eu");
  });

  it.each([
    [{ "operator.watchNamespace": "people" }, /shardSelector and operator.watchNamespace exclude each other/],
    [{ "operator.leaderElection.enabled": false }, /shardSelector needs operator.leaderElection.enabled/],
  ])("refuses a shard with %j", (values, message) => {
    const args = ["template", "roster", chartDir, "--set", "operator.shardSelector=roster.dev/shard=eu"];
    for (const [k, v] of Object.entries(values)) args.push("--set", `${k}=${v}`);
    const result = run(helmBinary(), args);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it("grants no delete, no escalation and nothing on CRDs, in any mode", () => {
    const modes: Record<string, string>[] = [
      {},
      { "operator.watchNamespace": "people" },
      { "operator.shardSelector": "roster.dev/shard=eu" },
    ];
    for (const values of modes) {
      const m = documents(helmTemplate(values));
      for (const role of [...find(m, "ClusterRole"), ...find(m, "Role")]) {
        for (const rule of role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
          expect(rule.verbs).not.toContain("*");
          expect(rule.verbs).not.toContain("delete");
          expect(rule.verbs).not.toContain("deletecollection");
          expect(rule.verbs).not.toContain("escalate");
          expect(rule.verbs).not.toContain("bind");
          expect(rule.apiGroups).not.toContain("apiextensions.k8s.io");
          expect(rule.resources).not.toContain("*");
        }
      }
    }
  });

  it("renders the ServiceMonitor and a PrometheusRule whose rules promtool accepts", () => {
    const m = documents(
      helmTemplate({ "metrics.serviceMonitor.enabled": true, "metrics.prometheusRule.enabled": true }),
    );
    const monitor = only(m, "ServiceMonitor") as Manifest & {
      spec: { jobLabel: string; endpoints: { port: string }[] };
    };
    expect(monitor.spec.endpoints[0]!.port).toBe("metrics");
    expect(monitor.spec.jobLabel).toBe("app.kubernetes.io/name");
    const rule = only(m, "PrometheusRule") as Manifest & { spec: unknown };
    const file = join(mkdtempSync(join(tmpdir(), "roster-rules-")), "rules.yaml");
    writeFileSync(file, dump(rule.spec));
    expect(check("promtool", ["check", "rules", file])).toContain("SUCCESS: 9 rules found");
  });

  describe("the scheduled HR import (hrImport)", () => {
    const on = {
      "hrImport.enabled": true,
      "hrImport.source.url": "https://hr.example.com/workers.csv",
      "hrImport.source.auth.type": "basic",
      "hrImport.source.auth.secretName": "workday-basic",
      "hrImport.mappingConfigMap": "workday-mapping",
    };
    type CronJob = Manifest & {
      spec: {
        jobTemplate: {
          spec: {
            podFailurePolicy: unknown;
            template: {
              metadata: { labels: Record<string, string> };
              spec: PodSpec & { volumes: unknown[] };
            };
          };
        };
      };
    };
    const job = (m: Manifest[]) => (only(m, "CronJob") as CronJob).spec.jobTemplate.spec;

    it("is off by default", () => {
      expect(find(documents(helmTemplate()), "CronJob")).toEqual([]);
    });

    it("runs roster import --apply with the guard, auth from the Secret, an Event on itself", () => {
      const m = documents(helmTemplate({ ...on, "operator.watchNamespace": "people" }));
      const c = job(m).template.spec.containers[0]!;
      expect(c.args).toEqual([
        "import",
        "https://hr.example.com/workers.csv",
        "--mapping=/etc/roster/hr-mapping/mapping.yaml",
        "--apply",
        "--namespace=people",
        "--max-leavers=5%",
        "--user-file=/var/run/roster/hr-auth/username",
        "--password-file=/var/run/roster/hr-auth/password",
        "--event-for=CronJob/roster-hr-import",
        "--event-namespace=$(POD_NAMESPACE)",
      ]);
      expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
      expect(job(m).template.spec.serviceAccountName).toBe("roster-hr-import");
      expect(job(m).podFailurePolicy).toEqual({
        rules: [
          { action: "FailJob", onExitCodes: { containerName: "import", operator: "In", values: [2, 3] } },
        ],
      });
      // Its pod is not one of the operator's: the operator's Service and PDB must not select it.
      expect(job(m).template.metadata.labels["app.kubernetes.io/name"]).toBe("roster-hr-import");
      expect(rules(only(m, "Role", "roster-hr-import"))).toEqual([
        { apiGroups: ["roster.dev"], resources: ["employees"], verbs: ["get", "list", "create", "patch"] },
      ]);
      expect(only(m, "Role", "roster-hr-import").metadata.namespace).toBe("people");
      expect(only(m, "Role", "roster-hr-import-events").metadata.namespace).toBe("roster-system");
      expect(find(m, "ConfigMap")).toEqual([]);
    });

    it("files mode writes manifests to a volume and applies nothing (the GitOps flow)", () => {
      const m = documents(
        helmTemplate({
          ...on,
          "hrImport.mode": "files",
          "hrImport.files.volume.persistentVolumeClaim.claimName": "people-repo",
          "hrImport.mapping": "employeeId: id",
        }),
      );
      const c = job(m).template.spec.containers[0]!;
      expect(c.args).toContain("--out=/var/run/roster/hr-out");
      expect(c.args).not.toContain("--apply");
      expect(find(m, "Role").map((r) => r.metadata.name)).not.toContain("roster-hr-import");
      expect(only(m, "ConfigMap", "roster-hr-import-mapping").data).toEqual({
        "mapping.yaml": "employeeId: id\n",
      });
    });

    it.each([
      [{ "hrImport.source.url": "" }, /set url .* or file/],
      [{ "hrImport.source.auth.secretName": "" }, /auth.secretName is required/],
      [{ "hrImport.mappingConfigMap": "" }, /set mapping \(YAML\) or mappingConfigMap/],
    ])("refuses an incomplete setting %j", (values, message) => {
      const args = ["template", "roster", chartDir];
      for (const [k, v] of Object.entries({ ...on, ...values })) args.push("--set", `${k}=${v}`);
      const result = run(helmBinary(), args);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(message);
    });
  });

  it.each([
    ["hrImport.mode", "sync"],
    ["replicaCount", "0"],
    ["operator.watchNamespace", "Not_A_Namespace"],
    ["operator.logLevel", "verbose"],
    ["operator.workers", "none"],
    ["image.pullPolicy", "Sometimes"],
    ["podDisruptionBudget.minAvailable", "-1"],
    ["unknownSetting", "true"],
  ])("values.schema.json rejects %s=%s", (key, value) => {
    const result = run(helmBinary(), ["template", "roster", chartDir, "--set", `${key}=${value}`]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/schema/i);
  });
});

describe("kustomize base", () => {
  it("builds the chart's default pieces in roster-system", () => {
    const base = documents(kustomizeBase());
    const chart = documents(helmTemplate());
    const names = (m: Manifest[]) =>
      m
        .filter((d) => !["Namespace", "CustomResourceDefinition"].includes(d.kind))
        .map((d) => `${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`)
        .sort();
    expect(names(base)).toEqual(names(chart));
    expect(only(base, "Namespace").metadata.name).toBe("roster-system");
    expect(
      find(base, "CustomResourceDefinition")
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(
      readdirSync(join(root, "crds"))
        .map((f) => f.replace(/\.yaml$/, ""))
        .sort(),
    );
    for (const crd of find(base, "CustomResourceDefinition"))
      expect(crd.metadata.annotations?.["argocd.argoproj.io/sync-options"]).toContain("Delete=false");
    // The same pod, RBAC and Service as the chart renders by default.
    expect(podSpec(base)).toEqual(podSpec(chart));
    expect((only(base, "Deployment") as Deployment).spec.replicas).toBe(2);
    expect(rules(only(base, "ClusterRole"))).toEqual(rules(only(chart, "ClusterRole")));
    expect(rules(only(base, "Role"))).toEqual(rules(only(chart, "Role")));
    expect(only(base, "ClusterRoleBinding").subjects).toEqual(only(chart, "ClusterRoleBinding").subjects);
    expect(only(base, "RoleBinding").subjects).toEqual(only(chart, "RoleBinding").subjects);
    expect(only(base, "Service").spec).toMatchObject(only(chart, "Service").spec as object);
    expect(only(base, "PodDisruptionBudget").spec).toEqual(only(chart, "PodDisruptionBudget").spec);
  });

  it("the Argo CD Application points at the base", () => {
    const [app] = documents(readText("deploy/argocd/application.yaml")) as (Manifest & {
      spec: { source: { path: string }; destination: { namespace: string } };
    })[];
    expect(app!.kind).toBe("Application");
    expect(app!.spec.source.path).toBe("deploy/base");
    expect(app!.spec.destination.namespace).toBe("roster-system");
  });
});
