// Values read from Secrets never show (api.md): a Connector whose tokenSecretRef or
// bindPasswordSecretRef points at a key that cannot be a credential (a TLS private key, a value
// with a line break, a huge or NUL-carrying password) is reported by Secret name and key only, and
// the value appears nowhere: not in Connector or Employee status, Events, the operator's log
// output or its metrics; not whole, not as any 16 characters of it, not base64-encoded.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Connector, Employee } from "../../src/api/types.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";
import { waitFor } from "../harness/processes.ts";
import { createRoster, getRoster } from "../support/kube.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { person, scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
let s: Scenario;
let scim: ScimServer;
let operator: OperatorProcess;

const SECRET = "leaky";
const rand = (n: number) => randomBytes(n).toString("base64url").slice(0, n);

/** The values in Secret "leaky", by key; each one unique to this run. */
const values: Record<string, string> = {
  // A real PKCS#8 private key, as a kubernetes.io/tls Secret holds it (multi-line).
  "tls.key": generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
    type: "pkcs8",
    format: "pem",
  }) as string,
  // A line break and control characters in the middle: no valid HTTP header value.
  header: `tok-${rand(32)}\r\nX-Injected: ${rand(32)}\u0007${rand(24)}`,
  // A password far beyond any directory's limit, with odd (but valid UTF-8) characters in it.
  huge: Array.from(
    { length: 3000 },
    (_, i) => `${rand(48)}${["\u0001", "\u007f", "\u00ff", "\ufffe"][i % 4]}`,
  ).join(""),
  // A NUL byte inside.
  nul: `pw-${rand(32)}\u0000${rand(32)}`,
};

/** Connector name -> the key its credential points at, and what kind of credential it is. */
const CONNECTORS = {
  "corp-ldap": { key: "huge", kind: "ldap" },
  "ldap-nul": { key: "nul", kind: "ldap" },
  "wiki-pem": { key: "tls.key", kind: "scim" },
  "wiki-header": { key: "header", kind: "scim" },
} as const;

const WINDOW = 16;

/** Every WINDOW-character substring of `value` (and the value itself, when it is shorter). */
function windows(value: string): Set<string> {
  const set = new Set<string>();
  if (value.length <= WINDOW) set.add(value);
  for (let i = 0; i + WINDOW <= value.length; i++) set.add(value.slice(i, i + WINDOW));
  return set;
}

const needles = Object.fromEntries(
  Object.entries(values).map(([key, value]) => {
    const b64 = Buffer.from(value, "utf8").toString("base64");
    return [key, { value, b64, windows: windows(value), b64Windows: windows(b64) }];
  }),
);

/** What of the Secret's values `text` contains (never the values themselves: offsets only). */
function leaks(where: string, text: string): string[] {
  const found: string[] = [];
  for (const [key, n] of Object.entries(needles)) {
    if (text.includes(n.value)) found.push(`${where}: the whole value of key ${key}`);
    if (text.includes(n.b64)) found.push(`${where}: the base64 of key ${key}`);
    for (const [label, set] of [
      ["value", n.windows],
      ["base64", n.b64Windows],
    ] as const) {
      for (let i = 0; i + WINDOW <= text.length; i++) {
        if (set.has(text.slice(i, i + WINDOW))) {
          found.push(`${where}: ${WINDOW} characters of the ${label} of key ${key} at offset ${i}`);
          break;
        }
      }
    }
  }
  return found;
}

/** Every string in a JSON value (keys too), decoded: escapes in JSON text do not hide a value. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === "object")
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out);
    }
  return out;
}

/** Both the JSON text and its decoded strings, one per line. */
const textOf = (value: unknown) => `${JSON.stringify(value)}\n${strings(value).join("\n")}`;

const connectorOf = async (name: string) =>
  (await getRoster(s.kube, s.namespace, "Connector", name)) as unknown as Connector;
const readyOf = (c: Connector) => c.status?.conditions?.find((x) => x.type === "Ready");
const named = (key: string) => `Secret ${s.namespace}/${SECRET} key ${key}`;

beforeAll(async () => {
  scim = await startScimServer();
  s = await scenario(info, "secrets", {
    ldap: { bindPasswordSecretRef: { name: SECRET, key: CONNECTORS["corp-ldap"].key } },
  });
  await s.kube.core.createNamespacedSecret({
    namespace: s.namespace,
    body: {
      metadata: { name: SECRET },
      type: "Opaque",
      data: Object.fromEntries(
        Object.entries(values).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")]),
      ),
    },
  });
  const connector = (name: string, spec: Record<string, unknown>) =>
    createRoster(s.kube, s.namespace, {
      apiVersion: API_VERSION,
      kind: "Connector",
      metadata: { name },
      spec,
    });
  await connector("ldap-nul", {
    ldap: {
      url: info.ldap.url,
      bindDN: info.ldap.adminDN,
      bindPasswordSecretRef: { name: SECRET, key: CONNECTORS["ldap-nul"].key },
      usersDN: s.usersDN,
      groupsDN: s.groupsDN,
    },
  });
  for (const name of ["wiki-pem", "wiki-header"] as const) {
    await connector(name, {
      scim: { baseURL: scim.baseURL, tokenSecretRef: { name: SECRET, key: CONNECTORS[name].key } },
    });
  }
  await s.apply("AccessPolicy", "everyone", {
    grants: Object.keys(CONNECTORS).map((connector) => ({ connector, groups: ["staff"] })),
  });
  await s.apply("Employee", "eve", person("SEC1", "eve"));
  operator = await startOperator({ namespace: s.namespace, leaderElection: false });
});

afterAll(async () => {
  await operator?.stop();
  await s?.close();
  await scim?.stop();
});

describe("credentials that cannot be used", () => {
  it("the leak check finds a value, a piece of it and its base64", () => {
    const pem = values["tls.key"]!;
    expect(leaks("t", `x${pem.slice(200, 200 + WINDOW)}y`)).not.toEqual([]);
    expect(leaks("t", Buffer.from(values.nul!).toString("base64"))).not.toEqual([]);
    expect(leaks("t", JSON.stringify({ message: "nothing secret here" }))).toEqual([]);
  });

  it("are reported by Secret name and key, and their values appear nowhere", async () => {
    // Every Connector has checked its target, and the Employee has tried every one.
    let last = "";
    await waitFor(
      async () => {
        const ready = await Promise.all(
          Object.keys(CONNECTORS).map(async (n) => readyOf(await connectorOf(n))),
        );
        last = JSON.stringify(ready.map((r) => r?.reason));
        return ready.every((r) => r?.status === "False");
      },
      60_000,
      () => `not every Connector reported Ready False: ${last}`,
      250,
    );
    const eve = await s.until(
      "eve",
      "a failed account per Connector",
      (e) =>
        Object.keys(CONNECTORS).every(
          (c) => e.status?.accounts?.find((a) => a.connector === c)?.state === "Failed",
        ),
      60_000,
    );
    await waitFor(
      async () => (await s.events("eve")).filter((e) => e.reason === "ProvisioningFailed").length >= 4,
      30_000,
      () => "no ProvisioningFailed Event per Connector",
    );

    // What is wrong, by Secret name and key.
    for (const [name, { key, kind }] of Object.entries(CONNECTORS)) {
      const what = kind === "scim" ? /cannot be used as a .*token/ : /cannot be used as a .*password/;
      const ready = readyOf(await connectorOf(name))!;
      expect.soft(ready.message, `Connector ${name} Ready`).toContain(named(key));
      expect.soft(ready.message, `Connector ${name} Ready`).toMatch(what);
      const account = eve.status!.accounts!.find((a) => a.connector === name)!;
      expect.soft(account.message, `Employee account on ${name}`).toContain(named(key));
      expect.soft(account.message, `Employee account on ${name}`).toMatch(what);
    }

    // ... and nothing of the values, anywhere a user or a scraper looks.
    const connectors = await Promise.all(Object.keys(CONNECTORS).map(connectorOf));
    const employee = (await s.employee("eve")) as Employee;
    const events = (await s.kube.core.listNamespacedEvent({ namespace: s.namespace })).items;
    const logText = readFileSync(operator.logFile, "utf8");
    const logLines = logText
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => {
        try {
          return JSON.parse(l) as unknown;
        } catch {
          return l;
        }
      });
    const found = [
      ...connectors.flatMap((c) => leaks(`Connector ${c.metadata.name} status`, textOf(c.status))),
      ...leaks("Employee status", textOf(employee.status)),
      ...leaks("Events", textOf(events.map((e) => ({ reason: e.reason, message: e.message, note: e })))),
      ...leaks("operator log", `${logText}\n${textOf(logLines)}`),
      ...leaks("metrics", await operator.metrics()),
    ];
    expect.soft(found).toEqual([]);
    // The operator is still running and did look at the Secret (it logged its work).
    expect(operator.child.exitCode).toBeNull();
    expect(logLines.length).toBeGreaterThan(0);
  });
});
