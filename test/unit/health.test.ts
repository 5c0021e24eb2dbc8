// Probe and metrics endpoints on port 0 (loopback, no other servers needed).
import { afterEach, describe, expect, it } from "vitest";
import {
  parseAddress,
  startHealthServer,
  startMetricsServer,
  type ListeningServer,
} from "../../src/controller/health.ts";
import { reconcileTotal } from "../../src/observe/metrics.ts";

const servers: ListeningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const get = async (s: ListeningServer, path: string) => {
  const res = await fetch(`http://127.0.0.1:${s.port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") };
};

describe("parseAddress", () => {
  it("reads [host]:port", () => {
    expect(parseAddress(":8081")).toEqual({ host: undefined, port: 8081 });
    expect(parseAddress("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseAddress("[::1]:9")).toEqual({ host: "::1", port: 9 });
    expect(() => parseAddress("8081")).toThrow();
    expect(() => parseAddress(":x")).toThrow();
  });
});

describe("health server", () => {
  it("answers /healthz, and /readyz only once every check passes", async () => {
    let synced = false;
    const s = await startHealthServer({ address: "127.0.0.1:0", readyChecks: { informers: () => synced } });
    servers.push(s);
    expect(s.port).toBeGreaterThan(0);
    expect(await get(s, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });

    const notReady = await get(s, "/readyz");
    expect(notReady.status).toBe(500);
    expect(notReady.body).toContain("[-]informers failed: not ready");

    synced = true;
    s.addReadyCheck("leader", async () => {
      throw new Error("no lease yet");
    });
    const oneFailing = await get(s, "/readyz?verbose");
    expect(oneFailing.status).toBe(500);
    expect(oneFailing.body).toContain("[+]informers ok");
    expect(oneFailing.body).toContain("[-]leader failed: no lease yet");
    expect((await get(s, "/readyz/informers")).status).toBe(200);
    expect((await get(s, "/readyz/nope")).status).toBe(404);

    s.addReadyCheck("leader", () => undefined);
    expect(await get(s, "/readyz")).toMatchObject({ status: 200, body: "ok\n" });
    expect((await get(s, "/other")).status).toBe(404);
  });

  it("times out a hanging check", async () => {
    const s = await startHealthServer({
      address: "127.0.0.1:0",
      checkTimeoutMs: 50,
      readyChecks: { slow: () => new Promise<void>(() => {}) },
    });
    servers.push(s);
    const res = await get(s, "/readyz");
    expect(res.status).toBe(500);
    expect(res.body).toContain("timed out after 50 ms");
  });
});

describe("metrics server", () => {
  it("serves the registry in Prometheus text format", async () => {
    reconcileTotal.inc({ controller: "health-test", result: "success" });
    const s = await startMetricsServer({ address: "127.0.0.1:0" });
    servers.push(s);
    const res = await get(s, "/metrics");
    expect(res.status).toBe(200);
    expect(res.type).toContain("text/plain");
    expect(res.body).toContain(
      'controller_runtime_reconcile_total{controller="health-test",result="success"} 1',
    );
    for (const name of [
      "process_cpu_user_seconds_total",
      "controller_runtime_reconcile_time_seconds",
      "workqueue_depth",
      "leader_election_master_status",
      "roster_provisioning_latency_seconds",
      "roster_deprovisions_held",
    ]) {
      expect(res.body).toContain(`# TYPE ${name}`);
    }
    expect((await get(s, "/")).status).toBe(404);
  });

  it("accepts the address and checks as plain arguments", async () => {
    const health = await startHealthServer("127.0.0.1:0", { ready: () => false });
    const metrics = await startMetricsServer("127.0.0.1:0");
    servers.push(health, metrics);
    expect((await get(health, "/readyz")).body).toContain("[-]ready failed");
    expect((await get(metrics, "/metrics")).status).toBe(200);
  });
});
