// Vitest global setup for integration and e2e tests: one control plane and one slapd per run.
import type { TestProject } from "vitest/node";
import { startControlPlane } from "./controlplane.ts";
import { startSlapd } from "./slapd.ts";
import type { HarnessInfo } from "./info.ts";

declare module "vitest" {
  export interface ProvidedContext {
    harness: HarnessInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const [controlPlane, slapd] = await Promise.all([startControlPlane(), startSlapd()]);
  console.log(
    `harness: control plane ${controlPlane.server} and slapd ${slapd.url} up in ${Date.now() - started} ms`,
  );
  const info: HarnessInfo = {
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
  };
  project.provide("harness", info);
  return async () => {
    await Promise.all([controlPlane.stop(), slapd.stop()]);
  };
}
