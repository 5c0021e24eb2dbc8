// What the global setup hands to each test file (plain data: it crosses process boundaries).
import type { AdInfo } from "./samba.ts";

export type HarnessInfo = {
  dir: string;
  server: string;
  kubeconfigPath: string;
  binDir: string;
  /** How e2e tests run the operator: as the chart's ServiceAccount, under the chart's RBAC. */
  operator: { kubeconfigPath: string; leaseNamespace: string };
  ldap: {
    url: string;
    baseDN: string;
    adminDN: string;
    adminPassword: string;
    usersDN: string;
    groupsDN: string;
  };
  /** The Samba AD DC (ldaps, its CA, Administrator and the delegated service account). */
  ad: AdInfo;
};
