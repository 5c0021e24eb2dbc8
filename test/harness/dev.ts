// `roster dev` (npm start): the whole thing on one machine. Brings up the test harness's control
// plane and slapd, installs the CRDs, creates a sample Connector, policies and Employees, writes
// connection details to .roster/dev/, and runs the operator in the foreground until Ctrl-C.
//
// It lives with the harness, not in src/: bin/roster.js routes `roster dev` here when this file
// exists (a source checkout); the compiled CLI and the container image know nothing of test/.
import { mkdirSync, copyFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { API_VERSION, GROUP, VERSION } from "../../src/api/schema.ts";
import { createLogger } from "../../src/observe/logger.ts";
import { prettyDestination } from "../../src/observe/pretty.ts";
import { runOperator } from "../../src/controller/operator.ts";
import { startControlPlane } from "./controlplane.ts";
import { startSlapd } from "./slapd.ts";
import { startScimServer } from "./scim.ts";

/** How long Ctrl-C waits for the operator (finishing reconciles, releasing the Lease). */
const OPERATOR_STOP_MS = 5000;

const HELP = `Usage: roster dev [flags]

Starts etcd, kube-apiserver, OpenLDAP slapd and a SCIM 2.0 server on 127.0.0.1 (the control
plane is built and cached on first use), creates sample objects in the "default" namespace and
runs the operator. Ctrl-C stops it all.

Flags:
  --dir PATH           where to write kubeconfig and ldap.env (default .roster/dev)
  --no-samples         do not create the sample Connector, policies and Employees
  --log-level LEVEL    (default info)
  --health-addr ADDR   the operator's /healthz and /readyz (default 127.0.0.1:8081)
  --metrics-addr ADDR  the operator's /metrics (default 127.0.0.1:8080)

Then, in another terminal:
  kubectl --kubeconfig .roster/dev/kubeconfig get emp
  source .roster/dev/ldap.env && ldapsearch -x -H "$LDAP_URL" -D "$LDAP_BIND_DN" -w "$LDAP_BIND_PASSWORD" -b "$LDAP_BASE_DN" "(uid=*)"
`;

const PLURALS: Record<string, string> = {
  Connector: "connectors",
  AccessPolicy: "accesspolicies",
  GroupRule: "grouprules",
  Employee: "employees",
};

type LdapDetails = { url: string; adminDN: string; usersDN: string; groupsDN: string };

function samples(ldap: LdapDetails, scimBaseURL: string) {
  const soon = new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const employee = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: API_VERSION,
    kind: "Employee",
    metadata: { name },
    spec,
  });
  return [
    {
      apiVersion: API_VERSION,
      kind: "Connector",
      metadata: { name: "corp-ldap" },
      spec: {
        ldap: {
          url: ldap.url,
          bindDN: ldap.adminDN,
          bindPasswordSecretRef: { name: "corp-ldap-bind", key: "password" },
          usersDN: ldap.usersDN,
          groupsDN: ldap.groupsDN,
          attributes: { cn: "{{givenName}} {{familyName}}" },
        },
        deprovisioning: { action: "Delete", deleteAfter: "10m" },
      },
    },
    {
      apiVersion: API_VERSION,
      kind: "Connector",
      metadata: { name: "wiki" },
      spec: { scim: { baseURL: scimBaseURL, tokenSecretRef: { name: "wiki-token", key: "token" } } },
    },
    {
      apiVersion: API_VERSION,
      kind: "AccessPolicy",
      metadata: { name: "everyone" },
      spec: { grants: [{ connector: "corp-ldap", groups: ["staff"] }] },
    },
    {
      apiVersion: API_VERSION,
      kind: "AccessPolicy",
      metadata: { name: "engineering" },
      spec: {
        match: [{ key: "department", operator: "In", values: ["Engineering"] }],
        grants: [
          { connector: "corp-ldap", groups: ["engineering", "vpn-users"] },
          { connector: "wiki", groups: ["engineers"] },
        ],
      },
    },
    employee("ada", {
      employeeId: "E1001",
      username: "ada",
      givenName: "Ada",
      familyName: "Lovelace",
      email: "ada@example.com",
      department: "Engineering",
      title: "Engineering Manager",
    }),
    employee("grace", {
      employeeId: "E1002",
      username: "grace",
      givenName: "Grace",
      familyName: "Hopper",
      email: "grace@example.com",
      department: "Research",
    }),
    employee("margaret", {
      employeeId: "E1003",
      username: "margaret",
      givenName: "Margaret",
      familyName: "Hamilton",
      email: "margaret@example.com",
      department: "Engineering",
      employmentStatus: "OnLeave",
    }),
    employee("linus", {
      employeeId: "E1004",
      username: "linus",
      givenName: "Linus",
      familyName: "Torvalds",
      email: "linus@example.com",
      department: "Engineering",
      startDate: soon,
    }),
  ];
}

export async function devCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      help: { type: "boolean", short: "h" },
      dir: { type: "string", default: ".roster/dev" },
      "no-samples": { type: "boolean", default: false },
      "log-level": { type: "string", default: "info" },
      "health-addr": { type: "string", default: "127.0.0.1:8081" },
      "metrics-addr": { type: "string", default: "127.0.0.1:8080" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const out = resolve(values.dir!);
  mkdirSync(out, { recursive: true });
  console.log(
    "roster dev: starting the control plane and slapd (the first run builds kube-apiserver and etcd)...",
  );
  const [controlPlane, slapd, scim] = await Promise.all([
    startControlPlane({ log: (line) => console.log(`  ${line}`) }),
    startSlapd(),
    startScimServer(),
  ]);
  const shutdownHarness = () => Promise.allSettled([controlPlane.stop(), slapd.stop(), scim.stop()]);
  try {
    copyFileSync(controlPlane.kubeconfigPath, join(out, "kubeconfig"));
    writeFileSync(
      join(out, "ldap.env"),
      [
        `LDAP_URL=${slapd.url}`,
        `LDAP_BIND_DN=${slapd.adminDN}`,
        `LDAP_BIND_PASSWORD=${slapd.adminPassword}`,
        `LDAP_BASE_DN=${slapd.baseDN}`,
        `LDAP_USERS_DN=${slapd.usersDN}`,
        `LDAP_GROUPS_DN=${slapd.groupsDN}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    writeFileSync(join(out, "scim.env"), `SCIM_BASE_URL=${scim.baseURL}\nSCIM_TOKEN=${scim.token}\n`, {
      mode: 0o600,
    });
    const kc = new KubeConfig();
    kc.loadFromFile(join(out, "kubeconfig"));
    if (!values["no-samples"]) {
      const core = kc.makeApiClient(CoreV1Api);
      const custom = kc.makeApiClient(CustomObjectsApi);
      await core.createNamespacedSecret({
        namespace: "default",
        body: {
          metadata: { name: "corp-ldap-bind" },
          type: "Opaque",
          stringData: { password: slapd.adminPassword },
        },
      });
      await core.createNamespacedSecret({
        namespace: "default",
        body: { metadata: { name: "wiki-token" }, type: "Opaque", stringData: { token: scim.token } },
      });
      for (const object of samples(slapd, scim.baseURL)) {
        await custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: "default",
          plural: PLURALS[object.kind]!,
          body: object,
        });
      }
    }
    console.log(`
roster dev is up.
  kubectl --kubeconfig ${join(values.dir!, "kubeconfig")} get roster
  kubectl --kubeconfig ${join(values.dir!, "kubeconfig")} get emp -w
  LDAP: ${slapd.url}, bind DN and password in ${join(values.dir!, "ldap.env")}
  SCIM: ${scim.baseURL}, bearer token in ${join(values.dir!, "scim.env")}
Ctrl-C stops the operator, the control plane and slapd.
`);
    const logger = createLogger({ level: values["log-level"] as "info", destination: prettyDestination() });
    const operator = await runOperator({
      kubeconfig: kc,
      logger,
      workers: 4,
      leaderElection: true,
      leaseNamespace: "default",
      leaseName: "roster-operator",
      healthAddress: values["health-addr"]!,
      metricsAddress: values["metrics-addr"]!,
      connectorCheckMs: 30_000,
    });
    // The servers lead their own process groups (processes.ts), so Ctrl-C reaches only this
    // process: stop the operator first, while the API server still answers (it releases the
    // Lease), then the servers. Another Ctrl-C while stopping exits at once; the "exit" hook of
    // processes.ts kills the servers and removes their data.
    let stopping = false;
    const stopped = new Promise<void>((resolveStopped) => {
      const onSignal = () => {
        if (stopping) {
          console.log("roster dev: stopping now");
          process.exit(130);
        }
        stopping = true;
        console.log("\nroster dev: stopping...");
        const timer = setTimeout(() => {
          console.log(`roster dev: the operator did not stop within ${OPERATOR_STOP_MS} ms; stopping anyway`);
          resolveStopped();
        }, OPERATOR_STOP_MS);
        void operator.stop().finally(() => {
          clearTimeout(timer);
          resolveStopped();
        });
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
    await Promise.race([operator.done, stopped]);
  } finally {
    await shutdownHarness();
  }
  return 0;
}

/** Runs `roster dev` with this process's arguments after "dev" and exits with its code. */
export function run(): void {
  devCommand(process.argv.slice(3)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const usage = (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
      process.stderr.write(`roster: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}
