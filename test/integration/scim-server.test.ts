// The SCIM test server (test/harness/scim.ts) through plain fetch: protocol, auth, uniqueness, faults.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startScimServer, type ScimServer } from "../harness/scim.ts";

const CORE = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

let server: ScimServer;

type Answer = { status: number; body: Record<string, unknown>; headers: Headers };

async function call(method: string, path: string, body?: unknown, token = server.token): Promise<Answer> {
  const res = await fetch(`${server.baseURL}${path}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "Content-Type": "application/scim+json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}

const user = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: [CORE],
  userName,
  name: { givenName: "Given", familyName: "Family" },
  ...extra,
});
const filter = (f: string) => `/Users?filter=${encodeURIComponent(f)}`;

beforeAll(async () => {
  server = await startScimServer({ token: "s3cret" });
});
afterAll(async () => {
  await server.stop();
});
beforeEach(() => {
  server.faults.clear();
  server.storage.users.clear();
  server.storage.groups.clear();
});

describe("SCIM test server", () => {
  it("listens on 127.0.0.1 under /scim/v2 and serves discovery", async () => {
    expect(server.baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/scim\/v2$/);
    const spc = await call("GET", "/ServiceProviderConfig");
    expect(spc.status).toBe(200);
    expect(spc.body).toMatchObject({
      patch: { supported: true },
      filter: { supported: true, maxResults: 200 },
      authenticationSchemes: [expect.objectContaining({ type: "oauthbearertoken" })],
    });
    const types = await call("GET", "/ResourceTypes");
    const resources = types.body.Resources as Record<string, unknown>[];
    expect(resources.map((r) => r.name).sort()).toEqual(["Group", "User"]);
    expect(resources.find((r) => r.name === "User")).toMatchObject({
      endpoint: "/Users",
      schemaExtensions: [{ schema: ENTERPRISE, required: false }],
    });
    const schemas = await call("GET", "/Schemas");
    expect((schemas.body.Resources as { id: string }[]).map((s) => s.id)).toContain(ENTERPRISE);
  });

  it("rejects requests without the right bearer token with 401", async () => {
    expect((await call("GET", "/Users", undefined, "")).status).toBe(401);
    expect((await call("GET", "/Users", undefined, "wrong")).status).toBe(401);
    expect((await call("POST", "/Users", user("x"), "wrong")).status).toBe(401);
    expect(server.storage.users.size).toBe(0);
  });

  it("creates, reads, filters, patches and deletes users", async () => {
    const created = await call(
      "POST",
      "/Users",
      user("ada", { externalId: "E-1", [ENTERPRISE]: { department: "R&D" }, schemas: [CORE, ENTERPRISE] }),
    );
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(id).toBeTruthy();
    await call("POST", "/Users", user("bob", { externalId: "E-2" }));
    await call("POST", "/Users", user("carol"));

    expect((await call("GET", `/Users/${id}`)).body).toMatchObject({ userName: "ada", externalId: "E-1" });
    expect((await call("GET", "/Users/nope")).status).toBe(404);

    const byExternalId = await call("GET", filter('externalId eq "E-2"'));
    expect(byExternalId.body).toMatchObject({ totalResults: 1, Resources: [{ userName: "bob" }] });
    const withExternalId = await call("GET", filter("externalId pr"));
    expect(withExternalId.body.totalResults).toBe(2);
    const none = await call("GET", filter('userName eq "nobody"'));
    expect(none.body).toMatchObject({ totalResults: 0 });

    const page = await call("GET", "/Users?startIndex=2&count=1");
    expect(page.body).toMatchObject({ totalResults: 3, startIndex: 2, itemsPerPage: 1 });
    expect((page.body.Resources as unknown[]).length).toBe(1);

    const patched = await call("PATCH", `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: "replace", path: "name.familyName", value: "Lovelace" },
        { op: "replace", path: `${ENTERPRISE}:department`, value: "Math" },
        { op: "add", path: "emails", value: [{ type: "work", value: "ada@example.com", primary: true }] },
        { op: "replace", path: "active", value: false },
      ],
    });
    expect(patched.status).toBe(200);
    const stored = server.storage.users.get(id)!;
    expect(stored).toMatchObject({
      name: { givenName: "Given", familyName: "Lovelace" },
      emails: [{ type: "work", value: "ada@example.com", primary: true }],
      active: false,
      [ENTERPRISE]: { department: "Math" },
    });

    expect((await call("DELETE", `/Users/${id}`)).status).toBe(204);
    expect((await call("DELETE", `/Users/${id}`)).status).toBe(404);
    expect((await server.users()).map((u) => u.userName).sort()).toEqual(["bob", "carol"]);
  });

  it("answers 409 uniqueness for a duplicate userName (any case) or externalId", async () => {
    expect((await call("POST", "/Users", user("ada", { externalId: "E-1" }))).status).toBe(201);
    const dup = await call("POST", "/Users", user("ADA"));
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ scimType: "uniqueness" });
    expect((await call("POST", "/Users", user("other", { externalId: "E-1" }))).status).toBe(409);
    expect(server.storage.users.size).toBe(1);
  });

  it("keeps group members unique and changes them with PATCH", async () => {
    const a = (await call("POST", "/Users", user("a"))).body.id as string;
    const b = (await call("POST", "/Users", user("b"))).body.id as string;
    const g = await call("POST", "/Groups", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
      displayName: "staff",
      members: [{ value: a }],
    });
    expect(g.status).toBe(201);
    const gid = g.body.id as string;
    await call("PATCH", `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: "add", path: "members", value: [{ value: a }, { value: b }] }],
    });
    expect((server.storage.groups.get(gid)!.members as { value: string }[]).map((m) => m.value)).toEqual([
      a,
      b,
    ]);
    await call("PATCH", `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: "remove", path: `members[value eq "${a}"]` }],
    });
    expect(server.storage.groups.get(gid)!.members).toEqual([{ value: b }]);
    const dup = await call("POST", "/Groups", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
      displayName: "staff",
    });
    expect(dup.status).toBe(409);
    // Deleting a user removes it from its groups.
    await call("DELETE", `/Users/${b}`);
    expect(server.storage.groups.get(gid)!.members).toBeUndefined();
  });

  it("shows changes made directly in storage", async () => {
    const id = (await call("POST", "/Users", user("ada", { externalId: "E-1" }))).body.id as string;
    server.storage.users.get(id)!.title = "Set by hand";
    expect((await call("GET", `/Users/${id}`)).body.title).toBe("Set by hand");
  });

  it("logs every request", async () => {
    const before = server.requests.length;
    await call("GET", "/Users?count=1");
    await call("POST", "/Users", user("logged"));
    const [get, post] = server.requests.slice(before);
    expect(get).toMatchObject({ method: "GET", path: "/scim/v2/Users?count=1", status: 200 });
    expect(post).toMatchObject({
      method: "POST",
      path: "/scim/v2/Users",
      status: 201,
      body: { userName: "logged" },
    });
    expect(post!.at).toBeGreaterThanOrEqual(get!.at);
  });

  describe("faults", () => {
    it("failNext answers 500/503 n times, then normally", async () => {
      server.faults.failNext(2, 503);
      expect((await call("GET", "/Users")).status).toBe(503);
      expect((await call("GET", "/Users")).status).toBe(503);
      expect((await call("GET", "/Users")).status).toBe(200);
      server.faults.failNext(1, 500);
      const failed = await call("POST", "/Users", user("x"));
      expect(failed.status).toBe(500);
      expect(server.storage.users.size).toBe(0);
    });

    it("throttleNext answers 429 with Retry-After", async () => {
      server.faults.throttleNext(1, 7);
      const res = await call("GET", "/Users");
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("7");
      expect((await call("GET", "/Users")).status).toBe(200);
    });

    it("delayNext answers late", async () => {
      server.faults.delayNext(1, 300);
      const started = Date.now();
      expect((await call("GET", "/Users")).status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    });

    it("dropNext destroys the connection", async () => {
      server.faults.dropNext(1);
      await expect(call("GET", "/Users")).rejects.toThrow(/fetch failed/);
      expect(server.requests.at(-1)!.status).toBe(0);
      expect((await call("GET", "/Users")).status).toBe(200);
    });

    it("clear forgets pending faults", async () => {
      server.faults.failNext(3, 500);
      expect(server.faults.pending()).toBe(3);
      server.faults.clear();
      expect((await call("GET", "/Users")).status).toBe(200);
    });
  });

  it("caps page sizes when asked to", async () => {
    const small = await startScimServer({ maxPageSize: 2 });
    try {
      for (const n of ["a", "b", "c"]) {
        await fetch(`${small.baseURL}/Users`, {
          method: "POST",
          headers: { Authorization: `Bearer ${small.token}`, "Content-Type": "application/scim+json" },
          body: JSON.stringify(user(n)),
        });
      }
      const res = await fetch(`${small.baseURL}/Users?count=10`, {
        headers: { Authorization: `Bearer ${small.token}` },
      });
      expect(await res.json()).toMatchObject({ totalResults: 3, itemsPerPage: 2 });
      // Each server has its own storage.
      expect(server.storage.users.size).toBe(0);
    } finally {
      await small.stop();
    }
  });
});
