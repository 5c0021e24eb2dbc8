// The rendered chart and the kustomize base against a real kube-apiserver: server-side dry-run
// apply (schema, admission and the restricted Pod Security Standard), and the RBAC created for real
// and checked with `kubectl auth can-i` as the operator's ServiceAccount.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { documents, helmTemplate, kustomizeBase, run, toYaml, type Result } from "./tools.ts";

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
  // The operator's namespace enforces (and warns about) the restricted Pod Security Standard.
  const restricted = ["enforce", "warn", "audit"].map(
    (mode) => `pod-security.kubernetes.io/${mode}=restricted`,
  );
  for (const ns of ["roster-system", "roster-single", "people", "other"]) {
    cp.kubectl(["create", "namespace", ns]);
    if (ns.startsWith("roster-")) cp.kubectl(["label", "namespace", ns, ...restricted]);
  }
});

afterAll(async () => {
  await cp?.stop();
});

function kubectl(args: string[], input?: string): Result {
  return run(join(cp.binDir, "kubectl"), ["--kubeconfig", cp.kubeconfigPath, ...args], input);
}

/** Server-side dry-run apply; fails on any error and on any warning (e.g. PodSecurity). */
function dryRun(yaml: string): string {
  const result = kubectl(
    ["apply", "--server-side", "--dry-run=server", "--field-manager=roster-test", "-f", "-"],
    yaml,
  );
  expect(result.stderr, result.stdout).toBe("");
  expect(result.status).toBe(0);
  return result.stdout;
}

describe("server-side dry-run", () => {
  it("accepts the chart rendered with default values (with its CRDs)", () => {
    const out = dryRun(helmTemplate({}, { includeCrds: true }));
    expect(out).toContain("deployment.apps/roster serverside-applied (server dry run)");
    expect(out).toContain("clusterrole.rbac.authorization.k8s.io/roster serverside-applied (server dry run)");
    expect(out).toContain("customresourcedefinition.apiextensions.k8s.io/employees.roster.dev");
  });

  it("accepts the chart rendered for one watched namespace", () => {
    const out = dryRun(helmTemplate({ "operator.watchNamespace": "people" }, { namespace: "roster-single" }));
    expect(out).toContain("role.rbac.authorization.k8s.io/roster serverside-applied (server dry run)");
    expect(out).not.toContain("clusterrole");
  });

  it("accepts the kustomize base", () => {
    const out = dryRun(kustomizeBase());
    expect(out).toContain("namespace/roster-system serverside-applied (server dry run)");
    expect(out).toContain("poddisruptionbudget.policy/roster serverside-applied (server dry run)");
  });
});

describe("RBAC as the operator's ServiceAccount", () => {
  const rbacKinds = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

  function install(yaml: string): void {
    const rbac = documents(yaml).filter((d) => rbacKinds.includes(d.kind));
    const result = kubectl(
      ["apply", "--server-side", "--field-manager=roster-test", "-f", "-"],
      toYaml(rbac),
    );
    expect(result.status, result.stderr).toBe(0);
  }

  /** `kubectl auth can-i` as the user of the kubeconfig: "yes" or "no". */
  function canI(kubeconfig: string, args: string[]): string {
    const result = run(join(cp.binDir, "kubectl"), ["--kubeconfig", kubeconfig, "auth", "can-i", ...args]);
    if (result.status !== 0 && result.stdout.trim() !== "no")
      throw new Error(`kubectl auth can-i ${args.join(" ")}: ${result.stderr}`);
    return result.stdout.trim();
  }

  it("every namespace: what the operator uses, and no delete", () => {
    install(helmTemplate());
    const user = cp.userKubeconfig("system:serviceaccount:roster-system:roster", [
      "system:serviceaccounts",
      "system:serviceaccounts:roster-system",
    ]);
    const expectations: [string, string[]][] = [
      ["yes", ["list", "employees.roster.dev", "--all-namespaces"]],
      ["yes", ["watch", "connectors.roster.dev", "-n", "people"]],
      ["yes", ["patch", "employees.roster.dev", "--subresource=status", "-n", "people"]],
      ["yes", ["patch", "employees.roster.dev", "-n", "people"]],
      ["yes", ["update", "employees.roster.dev", "--subresource=finalizers", "-n", "people"]],
      ["yes", ["patch", "connectors.roster.dev", "--subresource=status", "-n", "other"]],
      ["yes", ["create", "events", "-n", "people"]],
      ["yes", ["patch", "events", "-n", "people"]],
      // Secrets are read by name (the ones Connectors name), never listed or watched.
      ["yes", ["get", "secrets", "-n", "people"]],
      ["no", ["list", "secrets", "--all-namespaces"]],
      ["no", ["watch", "secrets", "-n", "people"]],
      ["yes", ["create", "secrets", "-n", "people"]],
      // Only to put and take the finalizer roster.dev/connector-credentials.
      ["yes", ["patch", "secrets", "-n", "people"]],
      ["yes", ["update", "leases.coordination.k8s.io", "-n", "roster-system"]],
      ["no", ["update", "leases.coordination.k8s.io", "-n", "people"]],
      // A shard watches which Namespaces its selector matches (handover Leases stay in roster-system).
      ["yes", ["watch", "namespaces"]],
      ["yes", ["list", "namespaces"]],
      ["no", ["update", "namespaces"]],
      ["no", ["patch", "namespaces"]],
      ["no", ["delete", "customresourcedefinitions.apiextensions.k8s.io"]],
      ["no", ["get", "customresourcedefinitions.apiextensions.k8s.io"]],
      ["no", ["delete", "employees.roster.dev", "-n", "people"]],
      ["no", ["update", "employees.roster.dev", "-n", "people"]],
      ["no", ["create", "employees.roster.dev", "-n", "people"]],
      ["no", ["delete", "secrets", "-n", "people"]],
      ["no", ["update", "secrets", "-n", "people"]],
      ["no", ["create", "clusterrolebindings.rbac.authorization.k8s.io"]],
      ["no", ["create", "pods", "-n", "roster-system"]],
    ];
    const answers = expectations.map(([, args]) => [canI(user, args), args.join(" ")]);
    expect(answers).toEqual(expectations.map(([answer, args]) => [answer, args.join(" ")]));
  });

  it("one watched namespace: nothing outside it", () => {
    install(helmTemplate({ "operator.watchNamespace": "people" }, { namespace: "roster-single" }));
    const user = cp.userKubeconfig("system:serviceaccount:roster-single:roster", [
      "system:serviceaccounts",
      "system:serviceaccounts:roster-single",
    ]);
    const expectations: [string, string[]][] = [
      ["yes", ["list", "employees.roster.dev", "-n", "people"]],
      ["yes", ["patch", "employees.roster.dev", "--subresource=status", "-n", "people"]],
      ["yes", ["create", "events", "-n", "people"]],
      ["yes", ["get", "secrets", "-n", "people"]],
      ["yes", ["create", "secrets", "-n", "people"]],
      ["yes", ["update", "leases.coordination.k8s.io", "-n", "roster-single"]],
      ["no", ["list", "employees.roster.dev", "--all-namespaces"]],
      ["no", ["list", "employees.roster.dev", "-n", "other"]],
      ["no", ["get", "secrets", "-n", "other"]],
      ["no", ["list", "secrets", "-n", "people"]],
      ["no", ["list", "secrets", "-n", "roster-single"]],
      ["no", ["list", "secrets", "--all-namespaces"]],
      ["no", ["get", "secrets", "-n", "kube-system"]],
      ["no", ["create", "events", "-n", "other"]],
      ["no", ["update", "leases.coordination.k8s.io", "-n", "people"]],
      ["no", ["list", "namespaces"]],
      ["no", ["delete", "customresourcedefinitions.apiextensions.k8s.io"]],
      ["no", ["delete", "employees.roster.dev", "-n", "people"]],
    ];
    const answers = expectations.map(([, args]) => [canI(user, args), args.join(" ")]);
    expect(answers).toEqual(expectations.map(([answer, args]) => [answer, args.join(" ")]));
  });
});
