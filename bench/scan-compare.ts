// The drift scan's in-memory comparison alone (src/plan/scan.ts scanComparison): N Employees in
// sync with an LDAP and a SCIM Connector shaped as in `npm run bench` (policies base and
// sales-tools), their accounts handed over in pages of 500, no servers. It separates the
// operator's own per-account work from the targets' listing in the idle scan's growth.
//
//   npx node bench/scan-compare.ts [--employees 10000,30000] [--rounds 8]     (npx: the pinned Node 24)
//
// Prints the median and fastest comparison per Connector and size; bench/findings.md point 6 quotes it.
import { parseArgs } from "node:util";
import type { AccessPolicy, Connector, Employee } from "../src/api/types.ts";
import type { ActualAccount } from "../src/connectors/types.ts";
import { accountMapping } from "../src/plan/employee.ts";
import { scanComparison } from "../src/plan/scan.ts";

const { values: flags } = parseArgs({
  options: {
    employees: { type: "string", default: "10000,30000" },
    rounds: { type: "string", default: "8" },
  },
});
const API_VERSION = "roster.dev/v1alpha1";
const metadata = (name: string) => ({ name, namespace: "bench", generation: 1, uid: name });
const GROUPS: Record<string, string[]> = { "corp-ldap": ["staff", "vpn", "wiki"], "apps-scim": ["everyone"] };
const connectors: Connector[] = [
  {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: metadata("corp-ldap"),
    spec: {
      drift: { policy: "Correct" },
      ldap: {
        url: "ldap://127.0.0.1",
        bindDN: "cn=admin,dc=example,dc=org",
        bindPasswordSecretRef: { name: "ldap-bind", key: "password" },
        usersDN: "ou=people,dc=example,dc=org",
        groupsDN: "ou=groups,dc=example,dc=org",
      },
    },
  } as Connector,
  {
    apiVersion: API_VERSION,
    kind: "Connector",
    metadata: metadata("apps-scim"),
    spec: {
      drift: { policy: "Correct" },
      scim: { baseURL: "http://127.0.0.1/scim/v2", tokenSecretRef: { name: "scim-token", key: "token" } },
    },
  } as Connector,
];
const policies: AccessPolicy[] = [
  {
    apiVersion: API_VERSION,
    kind: "AccessPolicy",
    metadata: metadata("base"),
    spec: { grants: Object.entries(GROUPS).map(([connector, groups]) => ({ connector, groups })) },
  },
  {
    apiVersion: API_VERSION,
    kind: "AccessPolicy",
    metadata: metadata("sales-tools"),
    spec: {
      match: [{ key: "department", operator: "In", values: ["Sales"] }],
      grants: [{ connector: "corp-ldap", groups: ["staff"] }],
    },
  },
];
const DEPARTMENTS = ["Engineering", "Support", "Finance", "Operations"];

for (const n of flags.employees!.split(",").map(Number)) {
  const employees: Employee[] = Array.from({ length: n }, (_, i) => ({
    apiVersion: API_VERSION,
    kind: "Employee",
    metadata: metadata(`e${i}`),
    spec: {
      employeeId: `E${i}`,
      username: `user${i}`,
      givenName: "Given",
      familyName: `Family${i}`,
      email: `user${i}@example.com`,
      department: DEPARTMENTS[i % DEPARTMENTS.length],
      title: "Engineer",
      location: "Berlin",
    },
    status: {
      observedGeneration: 1,
      conditions: [
        { type: "Ready", status: "True", reason: "Provisioned", message: "", lastTransitionTime: "" },
      ],
      accounts: connectors.map((c) => ({
        connector: c.metadata.name,
        state: "Active",
        id: `id-${i}`,
        groups: [],
      })),
    },
  })) as Employee[];
  const objects = { employees, policies, rules: [], connectors };
  for (const connector of connectors) {
    const mapping = accountMapping(connector, objects);
    const pages: ActualAccount[][] = [];
    for (let i = 0; i < n; i += 500)
      pages.push(
        employees.slice(i, i + 500).map((e, k) => ({
          id: `id-${i + k}`,
          employeeId: e.spec.employeeId,
          username: e.spec.username,
          attributes: mapping.desiredAttributes(e.spec),
          enabled: true,
          groups: GROUPS[connector.metadata.name]!,
        })),
      );
    const ms: number[] = [];
    for (let round = 0; round < Number(flags.rounds); round++) {
      const started = performance.now();
      const comparison = scanComparison({ connector, objects, now: new Date() });
      for (const page of pages) comparison.page(page);
      const { drift } = comparison.result();
      ms.push(performance.now() - started);
      if (drift.length)
        throw new Error(`${drift.length} drifted, none expected: ${JSON.stringify(drift[0])}`);
    }
    ms.sort((a, b) => a - b);
    console.log(
      `${n} Employees, ${connector.metadata.name}: comparison median ${ms[ms.length >> 1]!.toFixed(0)} ms, fastest ${ms[0]!.toFixed(0)} ms`,
    );
  }
}
