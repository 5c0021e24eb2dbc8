// initialPassword against a fake CoreApi (only the two calls it makes): which Secrets of the
// generated-password name are trusted, and that an untrusted one is never read out, nor changed.
// The promise itself (no planted or colliding password ever reaches an account) is e2e:
// test/e2e/credentials.test.ts.
import type { V1Secret } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { API_VERSION } from "../../src/api/schema.ts";
import type { Employee } from "../../src/api/types.ts";
import type { CoreApi } from "../../src/kube/api.ts";
import {
  credentialsSecretName,
  initialPassword,
  notTrustedBecause,
} from "../../src/controller/credentials.ts";
import { classify, ConfigurationError } from "../../src/controller/errors.ts";

const apiError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });

/** A namespace's Secrets as the API server holds them; createNamespacedSecret refuses a taken name. */
function fakeCore(
  initial: V1Secret[] = [],
  options: { beforeCreate?: (store: Map<string, V1Secret>) => void } = {},
) {
  const store = new Map(initial.map((s) => [`${s.metadata!.namespace}/${s.metadata!.name}`, s]));
  const calls: string[] = [];
  const core = {
    async readNamespacedSecret({ name, namespace }: { name: string; namespace: string }) {
      calls.push(`read ${namespace}/${name}`);
      const found = store.get(`${namespace}/${name}`);
      if (!found) throw apiError(404);
      return structuredClone(found);
    },
    async createNamespacedSecret({ namespace, body }: { namespace: string; body: V1Secret }) {
      calls.push(`create ${namespace}/${body.metadata!.name}`);
      options.beforeCreate?.(store);
      const key = `${namespace}/${body.metadata!.name}`;
      if (store.has(key)) throw apiError(409);
      const data = Object.fromEntries(
        Object.entries(body.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
      );
      const stored: V1Secret = { ...body, data, stringData: undefined };
      store.set(key, stored);
      return stored;
    },
  };
  return { core: core as unknown as CoreApi, store, calls };
}

function employee(name: string, uid: string, namespace = "team"): Employee {
  return {
    apiVersion: API_VERSION,
    kind: "Employee",
    metadata: { name, namespace, uid },
    spec: {
      employeeId: `E-${name}`,
      username: name.replace(/-/g, ""),
      givenName: "G",
      familyName: "F",
      email: `${name}@example.com`,
    },
  } as Employee;
}

function secret(
  name: string,
  metadata: Partial<V1Secret["metadata"]> = {},
  password = "stored-password",
): V1Secret {
  return {
    metadata: { name, namespace: "team", ...metadata },
    type: "Opaque",
    data: { password: Buffer.from(password).toString("base64") },
  };
}

const ownedBy = (e: Employee, connector: string, extra: Partial<V1Secret["metadata"]> = {}) => ({
  labels: { "app.kubernetes.io/managed-by": "roster", "roster.dev/connector": connector },
  annotations: { "roster.dev/employee": e.metadata.name },
  ownerReferences: [
    {
      apiVersion: API_VERSION,
      kind: "Employee",
      name: e.metadata.name,
      uid: e.metadata.uid!,
      controller: true,
    },
  ],
  ...extra,
});

const generated = () => "generated-password";

async function refusal(promise: Promise<unknown>): Promise<ConfigurationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigurationError);
  return error as ConfigurationError;
}

describe("initialPassword", () => {
  const ada = employee("ada", "uid-ada");

  it("creates the Secret once, owned by the Employee and naming the Employee and connector", async () => {
    const { core, store } = fakeCore();
    expect(await initialPassword(core, ada, "corp", generated)).toBe("generated-password");
    const stored = store.get("team/ada-corp-credentials")!;
    expect(stored.metadata).toMatchObject({
      labels: { "roster.dev/connector": "corp" },
      annotations: { "roster.dev/employee": "ada" },
      ownerReferences: [
        { apiVersion: API_VERSION, kind: "Employee", name: "ada", uid: "uid-ada", controller: true },
      ],
    });
    expect(Buffer.from(stored.data!.username!, "base64").toString()).toBe("ada");
    // The second call reads it back instead of generating another.
    expect(await initialPassword(core, ada, "corp", () => "another")).toBe("generated-password");
  });

  it("uses the password of a Secret this Employee owns (also one written before the annotation existed)", async () => {
    const { core, calls } = fakeCore([
      secret("ada-corp-credentials", ownedBy(ada, "corp", { annotations: undefined })),
    ]);
    expect(await initialPassword(core, ada, "corp", generated)).toBe("stored-password");
    expect(calls).toEqual(["read team/ada-corp-credentials"]);
  });

  it.each<[string, Partial<V1Secret["metadata"]>, RegExp]>([
    [
      "no ownerReference (planted)",
      { labels: { "roster.dev/connector": "corp" } },
      /no controller ownerReference/,
    ],
    [
      "an ownerReference that is not the controller",
      ownedBy(ada, "corp", {
        ownerReferences: [{ apiVersion: API_VERSION, kind: "Employee", name: "ada", uid: "uid-ada" }],
      }),
      /no controller ownerReference/,
    ],
    [
      "another kind with the Employee's uid",
      ownedBy(ada, "corp", {
        ownerReferences: [
          { apiVersion: "v1", kind: "ConfigMap", name: "ada", uid: "uid-ada", controller: true },
        ],
      }),
      /controlled by ConfigMap ada, not by an Employee/,
    ],
    [
      "an earlier Employee of the same name",
      ownedBy(employee("ada", "uid-old"), "corp"),
      /earlier Employee ada/,
    ],
    [
      "the Employee's uid under another name",
      ownedBy(ada, "corp", {
        ownerReferences: [
          { apiVersion: API_VERSION, kind: "Employee", name: "bob", uid: "uid-ada", controller: true },
        ],
      }),
      /ownerReference names Employee bob/,
    ],
    ["no connector label", ownedBy(ada, "corp", { labels: {} }), /no roster\.dev\/connector label/],
    ["another connector's label", ownedBy(ada, "other"), /label is other, not corp/],
    [
      "an annotation naming someone else",
      ownedBy(ada, "corp", { annotations: { "roster.dev/employee": "eve" } }),
      /annotation names eve/,
    ],
  ])("refuses a Secret of that name with %s, naming it, never its data", async (_, metadata, why) => {
    const planted = secret("ada-corp-credentials", metadata, "planted-known-password");
    const { core, store, calls } = fakeCore([planted]);
    const error = await refusal(initialPassword(core, ada, "corp", generated));
    expect(error.message).toContain("Secret team/ada-corp-credentials is not owned by this Employee (ada)");
    expect(error.message).toMatch(why);
    expect(error.message).not.toContain("planted-known-password");
    expect(error.message).not.toContain(planted.data!.password);
    // Terminal: no retry loop; and the Secret is left as it was.
    expect(classify(error)).toMatchObject({ kind: "terminal", reason: "ConfigurationError" });
    expect(calls).toEqual(["read team/ada-corp-credentials"]);
    expect(store.get("team/ada-corp-credentials")).toEqual(planted);
  });

  it("colliding names (a-b + c, a + b-c): the second Employee refuses the first one's Secret", async () => {
    const ab = employee("a-b", "uid-ab");
    const a = employee("a", "uid-a");
    expect(credentialsSecretName("a-b", "c")).toBe(credentialsSecretName("a", "b-c"));
    const { core } = fakeCore();
    expect(await initialPassword(core, ab, "c", () => "password-of-a-b")).toBe("password-of-a-b");
    const error = await refusal(initialPassword(core, a, "b-c", () => "password-of-a"));
    expect(error.message).toMatch(/Secret team\/a-b-c-credentials is not owned by this Employee \(a\)/);
    expect(error.message).toMatch(/belongs to Employee a-b \(the names collide\)/);
    expect(error.message).not.toContain("password-of-a-b");
    // The first one still gets its own.
    expect(await initialPassword(core, ab, "c", generated)).toBe("password-of-a-b");
  });

  it("a Secret created between the read and the create is judged like one found by the read", async () => {
    const ab = employee("a-b", "uid-ab");
    const a = employee("a", "uid-a");
    const theirs = secret("a-b-c-credentials", ownedBy(ab, "c"), "password-of-a-b");
    const raced = fakeCore([], { beforeCreate: (store) => void store.set("team/a-b-c-credentials", theirs) });
    const error = await refusal(initialPassword(raced.core, a, "b-c", generated));
    expect(error.message).toMatch(/belongs to Employee a-b/);
    expect(raced.store.get("team/a-b-c-credentials")).toEqual(theirs);

    // Its own Secret (a create whose answer was lost and was retried): its password, not the new one.
    const mine = secret("a-b-c-credentials", ownedBy(a, "b-c"), "first-password");
    const lost = fakeCore([], { beforeCreate: (store) => void store.set("team/a-b-c-credentials", mine) });
    expect(await initialPassword(lost.core, a, "b-c", generated)).toBe("first-password");
  });

  it("an owned Secret without a password key is refused by key name; other API errors pass through", async () => {
    const empty = { ...secret("ada-corp-credentials", ownedBy(ada, "corp")), data: {} };
    const error = await refusal(initialPassword(fakeCore([empty]).core, ada, "corp", generated));
    expect(error.message).toBe("Secret team/ada-corp-credentials has no key password");

    const failing = {
      readNamespacedSecret: () => Promise.reject(apiError(403)),
    } as unknown as CoreApi;
    await expect(initialPassword(failing, ada, "corp", generated)).rejects.toMatchObject({ code: 403 });
  });

  it("an Employee without a uid gets no Secret", async () => {
    const { core, calls } = fakeCore();
    const noUid = { ...ada, metadata: { name: "ada", namespace: "team" } } as Employee;
    await refusal(initialPassword(core, noUid, "corp", generated));
    expect(calls).toEqual([]);
    expect(notTrustedBecause(secret("x", ownedBy(ada, "corp")), noUid, "corp")).toMatch(/no uid/);
  });
});
