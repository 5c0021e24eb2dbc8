// `roster dev` (npm start), as a new user runs it: everything comes up on one machine, the
// samples converge in LDAP and SCIM, kubectl works with the written kubeconfig, and Ctrl-C in the
// terminal stops it all, quickly and quietly. One `roster dev` serves both tests.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Client } from "ldapts";
import { freePort, waitFor } from "../harness/processes.ts";
import { kubeFrom } from "../support/kube.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");

function envFile(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

type Proc = { pid: number; comm: string; state: string; ppid: number };

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const [state, ppid] = stat.slice(close + 2).split(" ");
    return { pid, comm: stat.slice(stat.indexOf("(") + 1, close), state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `ppid` (roster dev starts its servers directly). */
function childrenOf(ppid: number): Proc[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((p): p is Proc => p !== undefined && p.ppid === ppid);
}

/** Gone, or a zombie nobody has reaped yet (it holds no port and runs no code). */
function gone(pid: number): boolean {
  const proc = readProc(pid);
  return proc === undefined || proc.state === "Z";
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe("roster dev", () => {
  const dir = mkdtempSync(join(tmpdir(), "roster-dev-"));
  let child: ChildProcess;
  let stdout = "";
  let stderr = "";
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let servers: Proc[] = [];

  beforeAll(async () => {
    const [health, metrics] = [await freePort(), await freePort()];
    const args = [
      bin,
      "dev",
      "--dir",
      dir,
      "--health-addr",
      `127.0.0.1:${health}`,
      "--metrics-addr",
      `127.0.0.1:${metrics}`,
    ];
    // Its own process group, like a command started from an interactive shell: the terminal's
    // Ctrl-C signals that whole group.
    child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    await waitFor(
      async () => stdout.includes("roster dev is up"),
      120_000,
      () => `roster dev did not come up:\n${stdout}\n${stderr}`,
      250,
    );
    // comm is cut at 15 characters: kube-controller-manager shows as kube-controller.
    servers = childrenOf(child.pid!).filter((p) =>
      ["etcd", "kube-apiserver", "kube-controller", "slapd"].includes(p.comm),
    );
  }, 180_000);

  afterAll(async () => {
    // Only when a test failed: SIGTERM lets it remove its data; SIGKILL if that does not do.
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, "SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
    }
    for (const server of servers) {
      try {
        if (!gone(server.pid)) process.kill(-server.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("brings up the control plane, slapd, a SCIM server and the operator; the samples converge", async () => {
    expect(servers.map((p) => p.comm).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller", "slapd"]);
    const kube = kubeFrom({ kubeconfigPath: join(dir, "kubeconfig") });
    const ldap = envFile(join(dir, "ldap.env"));
    const scim = envFile(join(dir, "scim.env"));
    type Listed = {
      items: {
        metadata: { name: string };
        status?: { phase?: string; accounts?: { connector: string; state: string }[] };
      }[];
    };
    const employees = async () =>
      (
        (await kube.custom.listNamespacedCustomObject({
          group: "roster.dev",
          version: "v1alpha1",
          namespace: "default",
          plural: "employees",
        })) as Listed
      ).items;
    const expected = { ada: "Active", grace: "Active", margaret: "Suspended", linus: "Scheduled" };
    let phases: Record<string, string | undefined> = {};
    await waitFor(
      async () => {
        const list = await employees();
        phases = Object.fromEntries(list.map((e) => [e.metadata.name, e.status?.phase]));
        const ada = list.find((e) => e.metadata.name === "ada");
        return (
          JSON.stringify(phases) === JSON.stringify({ ...phases, ...expected }) &&
          ada?.status?.accounts?.length === 2
        );
      },
      60_000,
      () => `the samples did not converge: ${JSON.stringify(phases)}`,
      500,
    );

    const client = new Client({ url: ldap.LDAP_URL! });
    await client.bind(ldap.LDAP_BIND_DN!, ldap.LDAP_BIND_PASSWORD!);
    const { searchEntries } = await client.search(ldap.LDAP_USERS_DN!, {
      scope: "one",
      filter: "(uid=ada)",
    });
    expect(searchEntries).toHaveLength(1);
    await client.unbind();
    const users = (await (
      await fetch(`${scim.SCIM_BASE_URL}/Users?filter=${encodeURIComponent('externalId eq "E1001"')}`, {
        headers: { authorization: `Bearer ${scim.SCIM_TOKEN}` },
      })
    ).json()) as { totalResults: number };
    expect(users.totalResults).toBe(1);

    const table = execFileSync(
      `${info.binDir}/kubectl`,
      ["--kubeconfig", join(dir, "kubeconfig"), "get", "roster"],
      { encoding: "utf8" },
    );
    expect(table).toContain("employee.roster.dev/ada");
    expect(table).toContain("connector.roster.dev/corp-ldap");
  });

  it("stops within 10 s of a terminal's Ctrl-C: the operator first (lease released), no errors, no server left", async () => {
    expect(servers.map((p) => p.comm).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller", "slapd"]);
    const ports = [
      Number(
        new URL(kubeFrom({ kubeconfigPath: join(dir, "kubeconfig") }).kc.getCurrentCluster()!.server).port,
      ),
      Number(new URL(envFile(join(dir, "ldap.env")).LDAP_URL!).port),
    ];
    for (const port of ports) expect(await accepts(port)).toBe(true);
    const [before, beforeErr] = [stdout.length, stderr.length];

    // What Ctrl-C in the terminal does: SIGINT to every process of the foreground process group.
    const sent = Date.now();
    process.kill(-child.pid!, "SIGINT");
    const result = await Promise.race([
      exited,
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 10_000)),
    ]);
    const tookMs = Date.now() - sent;
    const after = stdout.slice(before);
    expect(result, `roster dev did not exit within 10 s of SIGINT:\n${after}\n${stderr}`).toEqual({
      code: 0,
      signal: null,
    });
    expect(tookMs).toBeLessThan(10_000);
    // Before: only the control plane build's "cached at" lines.
    expect(stderr).not.toMatch(/error|504|\n\s+at /i);
    expect(stderr.slice(beforeErr)).toBe("");
    expect(after).toContain("roster dev: stopping...");
    expect(after).toContain("released leadership");
    expect(after).not.toMatch(/\b(WARN|ERROR|FATAL)\b|504|Error|\n\s+at /);

    for (const server of servers) expect(gone(server.pid), `${server.comm} (pid ${server.pid})`).toBe(true);
    for (const port of ports) expect(await accepts(port), `port ${port}`).toBe(false);
    const ldap = envFile(join(dir, "ldap.env"));
    const client = new Client({ url: ldap.LDAP_URL!, connectTimeout: 1000 });
    await expect(client.bind(ldap.LDAP_BIND_DN!, ldap.LDAP_BIND_PASSWORD!)).rejects.toThrow();
  });
});
