import { defineConfig } from "vitest/config";

// Unit tests need no servers; integration and e2e tests share one real control plane and slapd,
// started once by the global setup and torn down when the run ends.
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
          include: ["test/integration/**/*.test.ts", "test/e2e/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
