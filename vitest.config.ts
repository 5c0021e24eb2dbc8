import { defineConfig } from "vitest/config";

// Unit tests need no servers; integration and e2e tests share one real control plane, slapd and
// Samba AD per project, started by the global setup and torn down when the run ends.
//
// Most of those files only wait for outcomes and run side by side (each has its own namespace,
// directory subtree and operator processes). The files whose subject is timing (leases and
// failovers, SIGKILL and SIGSTOP, request counts over an idle minute, shutdown within 10 s) run one
// at a time afterwards, with nothing else running.
const TIMING = [
  "test/integration/leader.test.ts",
  "test/e2e/brake.test.ts",
  "test/e2e/brake-ahead.test.ts",
  "test/e2e/conflict.test.ts",
  "test/e2e/dev.test.ts",
  "test/e2e/faults.test.ts",
  "test/e2e/leader-clock.test.ts",
  "test/e2e/resilience.test.ts",
  "test/e2e/scim-requests.test.ts",
  "test/e2e/shards.test.ts",
];
const SERVERS = ["test/integration/**/*.test.ts", "test/e2e/**/*.test.ts"];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
        },
      },
      {
        test: {
          // Helm, kustomize, Argo CD health scripts and Prometheus rules, each checked by its own tool.
          name: "packaging",
          include: ["test/packaging/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: SERVERS,
          exclude: TIMING,
          globalSetup: ["test/harness/global-setup.ts"],
          maxWorkers: 3,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "e2e-timing",
          include: TIMING,
          globalSetup: ["test/harness/global-setup.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
