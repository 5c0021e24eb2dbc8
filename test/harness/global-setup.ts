// Vitest global setup for integration and e2e tests: one control plane, one slapd and one Samba AD
// DC per run.
import type { TestProject } from "vitest/node";
import { startControlPlane } from "./controlplane.ts";
import { startSlapd } from "./slapd.ts";
import { adInfo, startSamba } from "./samba.ts";
import type { HarnessInfo } from "./info.ts";
import { join } from "node:path";

const OPERATOR_NAMESPACE = "roster-system";

declare module "vitest" {
  export interface ProvidedContext {
    harness: HarnessInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const [controlPlane, slapd, ad] = await Promise.all([startControlPlane(), startSlapd(), startSamba()]);
  console.log(
    `harness: control plane ${controlPlane.server}, slapd ${slapd.url} and Samba AD ${ad.url} up in ${Date.now() - started} ms`,
  );
  // The operator in e2e tests authenticates as the chart's ServiceAccount under deploy/base's RBAC
  // (the chart renders the same rules; test/packaging checks they agree), which shows it is enough.
  const deploy = join(import.meta.dirname, "../../deploy/base");
  controlPlane.kubectl(["create", "namespace", OPERATOR_NAMESPACE]);
  for (const file of ["serviceaccount.yaml", "rbac.yaml"])
    controlPlane.kubectl(["apply", "--server-side", "-n", OPERATOR_NAMESPACE, "-f", join(deploy, file)]);
  const operatorKubeconfig = controlPlane.userKubeconfig(
    `system:serviceaccount:${OPERATOR_NAMESPACE}:roster`,
    ["system:serviceaccounts", `system:serviceaccounts:${OPERATOR_NAMESPACE}`],
  );
  const info: HarnessInfo = {
    operator: { kubeconfigPath: operatorKubeconfig, leaseNamespace: OPERATOR_NAMESPACE },
    dir: controlPlane.dir,
    server: controlPlane.server,
    kubeconfigPath: controlPlane.kubeconfigPath,
    binDir: controlPlane.binDir,
    ldap: {
      url: slapd.url,
      baseDN: slapd.baseDN,
      adminDN: slapd.adminDN,
      adminPassword: slapd.adminPassword,
      usersDN: slapd.usersDN,
      groupsDN: slapd.groupsDN,
    },
    ad: adInfo(ad),
  };
  project.provide("harness", info);
  return async () => {
    await Promise.all([controlPlane.stop(), slapd.stop(), ad.stop()]);
  };
}
