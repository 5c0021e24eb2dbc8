// `npm run controlplane`: brings up the control plane and slapd by hand, writes
// .roster/controlplane/kubeconfig, and keeps them running until Ctrl-C.
import { mkdirSync, copyFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startControlPlane } from "./controlplane.ts";
import { startSlapd } from "./slapd.ts";

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "..", ".roster", "controlplane");
mkdirSync(out, { recursive: true });
const controlPlane = await startControlPlane({ log: (line) => console.log(line) });
const slapd = await startSlapd();
copyFileSync(controlPlane.kubeconfigPath, join(out, "kubeconfig"));
writeFileSync(
  join(out, "ldap.env"),
  `LDAP_URL=${slapd.url}\nLDAP_BIND_DN=${slapd.adminDN}\nLDAP_BIND_PASSWORD=${slapd.adminPassword}\nLDAP_BASE_DN=${slapd.baseDN}\n`,
  { mode: 0o600 },
);
console.log(`
Control plane: ${controlPlane.server}
  kubectl --kubeconfig ${join(out, "kubeconfig")} get roster
  (kubectl ${controlPlane.binDir}/kubectl matches the API server's version)
slapd: ${slapd.url} (bind DN and password in ${join(out, "ldap.env")})
Ctrl-C stops both and removes their data.`);

const shutdown = async () => {
  await Promise.allSettled([controlPlane.stop(), slapd.stop()]);
  process.exit(0);
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
setInterval(() => {}, 1 << 30);
