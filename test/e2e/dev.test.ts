// `roster dev` (npm start), as a new user runs it: everything comes up on one machine, the
// samples converge in LDAP and SCIM, kubectl works with the written kubeconfig, Ctrl-C stops all.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
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

describe("roster dev", () => {
  it("brings up the control plane, slapd, a SCIM server and the operator; the samples converge; Ctrl-C stops everything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roster-dev-"));
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
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(
        async () => output.includes("roster dev is up"),
        120_000,
        () => `roster dev did not come up:\n${output}`,
        250,
      );
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

      const table = (await import("node:child_process")).execFileSync(
        `${info.binDir}/kubectl`,
        ["--kubeconfig", join(dir, "kubeconfig"), "get", "roster"],
        {
          encoding: "utf8",
        },
      );
      expect(table).toContain("employee.roster.dev/ada");
      expect(table).toContain("connector.roster.dev/corp-ldap");

      child.kill("SIGINT");
      expect(await exited).toBe(0);
      const gone = new Client({ url: ldap.LDAP_URL!, connectTimeout: 1000 });
      await expect(gone.bind(ldap.LDAP_BIND_DN!, ldap.LDAP_BIND_PASSWORD!)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
