// A real Kubernetes control plane for tests and `roster dev`: upstream etcd and kube-apiserver
// built from pinned Go modules (test/controlplane), started with envtest-style flags on loopback.
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request, type RequestOptions } from "node:https";
import { load } from "js-yaml";
import { KubeConfig, ApiextensionsV1Api, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import {
  freePort,
  registerDirectory,
  removeDirectory,
  startProcess,
  waitFor,
  type Managed,
} from "./processes.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export type ControlPlane = {
  dir: string;
  server: string;
  kubeconfigPath: string;
  kubeconfig: KubeConfig;
  binDir: string;
  /** Runs the kubectl built with the control plane against this cluster; returns stdout. */
  kubectl(args: string[], input?: string): string;
  /** Writes a kubeconfig for a client certificate with this user and groups (for RBAC tests). */
  userKubeconfig(user: string, groups?: string[]): string;
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
};

/** Builds (once, cached by version) and returns the directory with kube-apiserver, etcd and kubectl. */
export function controlPlaneBinaries(): string {
  const out = execFileSync("bash", [join(root, "test/controlplane/build.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  return out.trim().split("\n").pop()!;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function issueCertificate(dir: string, name: string, subject: string, extensions: string): void {
  openssl(
    [
      "req",
      "-new",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-subj",
      subject,
      "-out",
      `${name}.csr`,
    ],
    dir,
  );
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ],
    dir,
  );
}

function makeCertificates(dir: string): void {
  mkdirSync(dir, { recursive: true });
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=roster-test-ca",
    ],
    dir,
  );
  issueCertificate(
    dir,
    "serving",
    "/CN=kube-apiserver",
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n",
  );
  issueCertificate(dir, "admin", "/O=system:masters/CN=roster-admin", clientExtensions);
  openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
}

const clientExtensions =
  "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";

function kubeconfigYaml(server: string, ca: string, cert: string, key: string, user: string): string {
  const b64 = (file: string) => readFileSync(file).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: roster",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(ca)}`,
    "users:",
    `- name: ${user}`,
    "  user:",
    `    client-certificate-data: ${b64(cert)}`,
    `    client-key-data: ${b64(key)}`,
    "contexts:",
    "- name: roster",
    "  context:",
    "    cluster: roster",
    `    user: ${user}`,
    "    namespace: default",
    "current-context: roster",
    "",
  ].join("\n");
}

async function httpsOk(url: string, certs: string): Promise<boolean> {
  const agent = new Agent({
    ca: readFileSync(join(certs, "ca.crt")),
    cert: readFileSync(join(certs, "admin.crt")),
    key: readFileSync(join(certs, "admin.key")),
  });
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

export function crdDocuments(): V1CustomResourceDefinition[] {
  const dir = join(root, "crds");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => load(readFileSync(join(dir, f), "utf8")) as V1CustomResourceDefinition);
}

/**
 * Server-side applies the CRDs in crds/ and waits until each is Established. Raw requests on
 * purpose: client-node's typed serializer drops schema keys it does not model by their JSON
 * names (enum, default, x-kubernetes-validations).
 */
export async function installCrds(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const crd of crdDocuments()) {
    await kubeRequest(
      kc,
      "PATCH",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata!.name}?fieldManager=roster-harness&force=true`,
      JSON.stringify(crd),
      "application/apply-patch+yaml",
    );
  }
  for (const crd of crdDocuments()) {
    const name = crd.metadata!.name!;
    await waitFor(
      async () => {
        const current = await api.readCustomResourceDefinition({ name });
        return !!current.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      },
      30_000,
      () => `CRD ${name} not Established`,
    );
  }
  // kubectl explain reads the published OpenAPI v3 document, which lags establishment a little.
  const kinds = crdDocuments().map((crd) => crd.spec.names.kind);
  await waitFor(
    async () => {
      const body = await kubeGet(kc, "/openapi/v3/apis/roster.dev/v1alpha1");
      return kinds.every((kind) => body.includes(`"kind":"${kind}"`) || body.includes(`"kind": "${kind}"`));
    },
    30_000,
    () => "roster.dev OpenAPI v3 document not published",
    200,
  );
}

/** GET a raw API path with the kubeconfig's credentials. */
export function kubeGet(kc: KubeConfig, path: string): Promise<string> {
  return kubeRequest(kc, "GET", path);
}

/** A raw API request with the kubeconfig's credentials; rejects on a non-2xx answer. */
export async function kubeRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: string,
  contentType = "application/json",
): Promise<string> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const options: RequestOptions = {
    host: server.hostname,
    port: server.port,
    path,
    method,
    timeout: 10_000,
    headers: body === undefined ? {} : { "Content-Type": contentType },
  };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        if (ok) resolve(text);
        else reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 2000)}`));
      });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.end(body);
  });
}

export async function startControlPlane(
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<ControlPlane> {
  const log = options.log ?? (() => {});
  const binDir = controlPlaneBinaries();
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "roster-controlplane-"));
  if (!options.dir) registerDirectory(dir);
  const certs = join(dir, "certs");
  makeCertificates(certs);

  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  log(`starting etcd on 127.0.0.1:${etcdClient}`);
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const etcd = startProcess(
    join(binDir, "etcd"),
    [
      "--name=default",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ],
    join(dir, "etcd.log"),
  );
  await waitFor(
    async () => (await fetch(`${etcdUrl}/health`)).ok,
    30_000,
    () => `etcd did not become healthy:\n${etcd.tail()}`,
  );

  const server = `https://127.0.0.1:${apiPort}`;
  const apiArgs = [
    `--etcd-servers=${etcdUrl}`,
    `--cert-dir=${certs}`,
    `--tls-cert-file=${join(certs, "serving.crt")}`,
    `--tls-private-key-file=${join(certs, "serving.key")}`,
    `--client-ca-file=${join(certs, "ca.crt")}`,
    `--secure-port=${apiPort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--service-account-key-file=${join(certs, "sa.pub")}`,
    `--service-account-signing-key-file=${join(certs, "sa.key")}`,
    "--service-account-issuer=https://kubernetes.default.svc",
    "--authorization-mode=RBAC",
    "--disable-admission-plugins=ServiceAccount",
    "--service-cluster-ip-range=10.0.0.0/24",
    "--allow-privileged=true",
    "--v=1",
  ];
  let apiserver: Managed;
  const startApiServer = async () => {
    log(`starting kube-apiserver on ${server}`);
    apiserver = startProcess(join(binDir, "kube-apiserver"), apiArgs, join(dir, "kube-apiserver.log"));
    await waitFor(
      async () => httpsOk(`${server}/readyz`, certs),
      90_000,
      () => `kube-apiserver did not become ready:\n${apiserver.tail()}`,
      200,
    );
  };
  await startApiServer();

  const kubeconfigPath = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfigPath,
    kubeconfigYaml(
      server,
      join(certs, "ca.crt"),
      join(certs, "admin.crt"),
      join(certs, "admin.key"),
      "roster-admin",
    ),
    { mode: 0o600 },
  );
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(kubeconfigPath);
  log("installing CRDs");
  await installCrds(kubeconfig);
  // The namespace and garbage-collector controllers, as in a real cluster: a deleted namespace is
  // emptied (and its objects' finalizers waited for), and owned objects follow their owners.
  log("starting kube-controller-manager (namespace, garbagecollector)");
  const controllerManager = startProcess(
    join(binDir, "kube-controller-manager"),
    [
      `--kubeconfig=${kubeconfigPath}`,
      "--controllers=namespace,garbagecollector",
      "--leader-elect=false",
      "--secure-port=0",
      "--use-service-account-credentials=false",
      "--concurrent-namespace-syncs=5",
      "--v=1",
    ],
    join(dir, "kube-controller-manager.log"),
  );

  let stopped = false;
  return {
    dir,
    server,
    kubeconfigPath,
    kubeconfig,
    binDir,
    kubectl(args, input) {
      return execFileSync(join(binDir, "kubectl"), ["--kubeconfig", kubeconfigPath, ...args], {
        encoding: "utf8",
        input,
        stdio: ["pipe", "pipe", "pipe"],
      });
    },
    userKubeconfig(user, groups = []) {
      const name = `user-${user.replace(/[^a-z0-9-]/gi, "-")}`;
      const subject = [...groups.map((g) => `/O=${g}`), `/CN=${user}`].join("");
      issueCertificate(certs, name, subject, clientExtensions);
      const path = join(dir, `${name}.kubeconfig`);
      writeFileSync(
        path,
        kubeconfigYaml(
          server,
          join(certs, "ca.crt"),
          join(certs, `${name}.crt`),
          join(certs, `${name}.key`),
          user,
        ),
        { mode: 0o600 },
      );
      return path;
    },
    async restartApiServer() {
      await apiserver.stop();
      await startApiServer();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await controllerManager.stop();
      await apiserver.stop();
      await etcd.stop();
      if (!options.dir) removeDirectory(dir);
    },
  };
}
