// The strict SCIM test server (test/harness/scim-strict.ts, on github.com/elimity-com/scim) through
// plain fetch: where it is stricter than the scimmy server, and that its hooks work; then the SCIM
// connector against it, in the cases where a strict service answers differently from scimmy (the
// contract cases run against both in connector-contract.test.ts).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { EmployeeSpecT, ScimSpecT } from "../../src/api/types.ts";
import { ENTERPRISE_USER_SCHEMA, scimAttributes } from "../../src/connectors/scim/attributes.ts";
import { ScimHttpError, ScimUnavailableError } from "../../src/connectors/scim/client.ts";
import { createScimConnector, type ScimConnector } from "../../src/connectors/scim/connector.ts";
import type { DesiredAccount } from "../../src/connectors/types.ts";
import { attributeChanges } from "../../src/plan/plan.ts";
import { startStrictScimServer, type StrictScimServer } from "../harness/scim-strict.ts";

const CORE = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group";
const E = ENTERPRISE_USER_SCHEMA;
const PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const FAST_RETRY = { baseDelayMs: 20, maxDelayMs: 100 };

type Rec = Record<string, unknown>;
type Answer = { status: number; body: Rec; headers: Headers };

let server: StrictScimServer;

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
  return { status: res.status, body: text ? (JSON.parse(text) as Rec) : {}, headers: res.headers };
}

const user = (userName: string, extra: Rec = {}) => ({
  schemas: [CORE],
  userName,
  name: { givenName: "Given", familyName: "Family" },
  ...extra,
});
const list = (resource: string, f: string, query = "") =>
  call("GET", `/${resource}?filter=${encodeURIComponent(f)}${query}`);
const patch = (path: string, ...Operations: Rec[]) => call("PATCH", path, { schemas: [PATCH], Operations });
const stored = async (id: string) => (await server.users()).find((u) => u.id === id);
const names = (a: Answer) => ((a.body.Resources ?? []) as Rec[]).map((r) => r.userName ?? r.displayName);

beforeAll(async () => {
  server = await startStrictScimServer({ token: "s3cret" });
});
afterAll(async () => {
  await server?.stop();
});
beforeEach(async () => {
  await server.reset();
});

describe("strict SCIM test server", () => {
  it("listens on 127.0.0.1 under /scim/v2, serves discovery and wants the bearer token", async () => {
    expect(server.baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/scim\/v2$/);
    const spc = await call("GET", "/ServiceProviderConfig");
    expect(spc.body).toMatchObject({
      patch: { supported: true },
      filter: { supported: true, maxResults: 200 },
      etag: { supported: false },
      authenticationSchemes: [expect.objectContaining({ type: "oauthbearertoken" })],
    });
    const types = (await call("GET", "/ResourceTypes")).body.Resources as Rec[];
    expect(types.find((t) => t.name === "User")).toMatchObject({
      endpoint: "/Users",
      schemaExtensions: [{ schema: E, required: false }],
    });
    expect((await call("GET", "/Users", undefined, "")).status).toBe(401);
    expect((await call("POST", "/Users", user("x"), "wrong")).status).toBe(401);
    expect(await server.users()).toEqual([]);
  });

  it("validates resources against the schema", async () => {
    // No schemas, a boolean as a string, a complex attribute as a string: 400, nothing stored.
    expect((await call("POST", "/Users", { userName: "ada" })).status).toBe(400);
    expect((await call("POST", "/Users", user("ada", { active: "true" }))).body).toMatchObject({
      status: "400",
      scimType: "invalidValue",
    });
    expect((await call("POST", "/Users", user("ada", { name: "Ada" }))).status).toBe(400);
    expect(await server.users()).toEqual([]);
    // Unknown and read-only attributes are dropped; the password is never returned.
    const created = await call(
      "POST",
      "/Users",
      user("ada", { shoeSize: 9, groups: [{ value: "g" }], password: "pw" }),
    );
    expect(created.status).toBe(201);
    expect(created.body).not.toHaveProperty("shoeSize");
    expect(created.body).not.toHaveProperty("groups");
    expect(created.body).not.toHaveProperty("password");
    // The enterprise manager.value is the id of the manager's User (RFC 7643 section 4.3).
    const managed = (manager: string) =>
      call(
        "POST",
        "/Users",
        user(`of-${manager}`, { schemas: [CORE, E], [E]: { manager: { value: manager } } }),
      );
    expect((await managed("ada")).body).toMatchObject({ status: "400", scimType: "invalidValue" });
    expect((await managed(created.body.id as string)).status).toBe(201);
  });

  it("answers 409 uniqueness for a userName in any case, but lets externalId and Group displayName repeat", async () => {
    expect((await call("POST", "/Users", user("ada", { externalId: "E-1" }))).status).toBe(201);
    const dup = await call("POST", "/Users", user("ADA"));
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ scimType: "uniqueness" });
    // RFC 7643: externalId and a Group's displayName have no uniqueness.
    expect((await call("POST", "/Users", user("other", { externalId: "E-1" }))).status).toBe(201);
    for (let i = 0; i < 2; i++)
      expect((await call("POST", "/Groups", { schemas: [GROUP], displayName: "team" })).status).toBe(201);
    expect((await server.groups()).map((g) => g.displayName)).toEqual(["team", "team"]);
  });

  it("evaluates filters with the schema's case rules and pages with startIndex and count", async () => {
    await call("POST", "/Users", user("Ada", { externalId: "E-1" }));
    await call("POST", "/Users", user("bob", { externalId: "e-2" }));
    await call("POST", "/Users", user("carol"));
    await call("POST", "/Groups", { schemas: [GROUP], displayName: "Staff" });
    // userName and displayName are caseExact false, externalId caseExact true.
    expect(names(await list("Users", 'userName eq "ADA"'))).toEqual(["Ada"]);
    expect(names(await list("Users", 'externalId eq "e-1"'))).toEqual([]);
    expect(names(await list("Users", 'externalId eq "E-1"'))).toEqual(["Ada"]);
    expect(names(await list("Groups", 'displayName eq "staff"'))).toEqual(["Staff"]);
    expect((await list("Users", "externalId pr")).body.totalResults).toBe(2);
    // An empty result has no Resources at all (null), which RFC 7644 allows.
    expect((await list("Users", 'userName eq "nobody"')).body).toMatchObject({
      totalResults: 0,
      Resources: null,
    });
    expect((await list("Users", 'nickName eq "x" and')).body).toMatchObject({ scimType: "invalidFilter" });
    const page = await call("GET", "/Users?startIndex=2&count=1");
    expect(page.body).toMatchObject({ totalResults: 3, startIndex: 2, itemsPerPage: 1 });
    expect(names(page)).toEqual(["bob"]);
  });

  it("validates PATCH paths and applies them as RFC 7644 says", async () => {
    await server.putUser({ id: "m-1", userName: "boss1" });
    await server.putUser({ id: "m-2", userName: "boss2" });
    const id = (
      await call(
        "POST",
        "/Users",
        user("ada", {
          schemas: [CORE, E],
          emails: [{ type: "work", value: "ada@example.com", primary: true }],
          [E]: { department: "R&D", manager: { value: "m-1" } },
        }),
      )
    ).body.id as string;
    const ok = await patch(
      `/Users/${id}`,
      { op: "replace", path: 'emails[type eq "work"].value', value: "new@example.com" },
      { op: "replace", path: "name.familyName", value: "Lovelace" },
      { op: "remove", path: `${E}:department` },
      { op: "replace", path: `${E}:manager`, value: { value: "m-2" } },
      { op: "Replace", path: "active", value: false },
    );
    expect(ok.status).toBe(200);
    expect(await stored(id)).toMatchObject({
      emails: [{ type: "work", value: "new@example.com", primary: true }],
      name: { givenName: "Given", familyName: "Lovelace" },
      active: false,
      [E]: { manager: { value: "m-2" } },
    });
    // Nothing to change: 204 without a body.
    expect((await patch(`/Users/${id}`, { op: "replace", path: "active", value: false })).status).toBe(204);
    // Strict answers: an unknown path, a value filter matching nothing, a read-only attribute,
    // a remove without a path, a wrong value type.
    const errors = [
      [{ op: "replace", path: 'bogus[type eq "x"].value', value: "1" }, "invalidPath"],
      [{ op: "replace", path: 'addresses[type eq "work"].locality', value: "x" }, "noTarget"],
      [{ op: "replace", path: "groups", value: [{ value: "g" }] }, "mutability"],
      [{ op: "remove" }, "noTarget"],
      [{ op: "replace", path: "active", value: "false" }, "invalidValue"],
      [{ op: "replace", path: `${E}:manager.value`, value: "boss1" }, "invalidValue"],
    ] as const;
    for (const [op, scimType] of errors) {
      const res = await patch(`/Users/${id}`, op);
      expect(res, JSON.stringify(op)).toMatchObject({ status: 400, body: { scimType } });
    }
    expect(
      (await call("PATCH", `/Users/${id}`, { Operations: [{ op: "remove", path: "title" }] })).status,
    ).toBe(400);
  });

  it("keeps Group members to existing Users, once each, and takes a deleted User out", async () => {
    const a = (await call("POST", "/Users", user("a"))).body.id as string;
    const b = (await call("POST", "/Users", user("b"))).body.id as string;
    const stranger = await call("POST", "/Groups", {
      schemas: [GROUP],
      displayName: "x",
      members: [{ value: "nope" }],
    });
    expect(stranger).toMatchObject({ status: 400, body: { scimType: "invalidValue" } });
    const gid = (
      await call("POST", "/Groups", { schemas: [GROUP], displayName: "staff", members: [{ value: a }] })
    ).body.id as string;
    await patch(`/Groups/${gid}`, { op: "add", path: "members", value: [{ value: a }, { value: b }] });
    expect((await call("GET", `/Groups/${gid}`)).body.members).toEqual([{ value: a }, { value: b }]);
    expect(names(await list("Groups", `members[value eq "${b}"]`))).toEqual(["staff"]);
    expect((await call("GET", `/Users/${b}`)).body.groups).toEqual([
      { value: gid, display: "staff", type: "direct" },
    ]);
    await patch(`/Groups/${gid}`, { op: "remove", path: `members[value eq "${a}"]` });
    // Removing a member that is not there changes nothing.
    expect((await patch(`/Groups/${gid}`, { op: "remove", path: `members[value eq "${a}"]` })).status).toBe(
      204,
    );
    await call("DELETE", `/Users/${b}`);
    expect((await call("GET", `/Groups/${gid}`)).body.members).toBeUndefined();
  });

  it("logs every request and injects faults", async () => {
    const mark = await server.requestCount();
    await call("GET", "/Users?count=1");
    await call("POST", "/Users", user("logged"));
    await server.faults.failNext(1, 503);
    await server.faults.throttleNext(1, 7);
    await server.faults.dropNext(1);
    expect(await server.faults.pending()).toBe(3);
    expect((await call("GET", "/Users")).status).toBe(503);
    const throttled = await call("GET", "/Users");
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBe("7");
    await expect(call("GET", "/Users")).rejects.toThrow(/fetch failed/);
    await server.faults.delayNext(1, 200);
    const started = performance.now();
    expect((await call("GET", "/Users")).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    const log = await server.requests(mark);
    expect(log.map((r) => [r.method, r.status])).toEqual([
      ["GET", 200],
      ["POST", 201],
      ["GET", 503],
      ["GET", 429],
      ["GET", 0],
      ["GET", 200],
    ]);
    expect(log[0]).toMatchObject({ path: "/scim/v2/Users?count=1" });
    expect(log[1]).toMatchObject({ path: "/scim/v2/Users", body: { userName: "logged" } });
    expect(log[1]!.at).toBeGreaterThanOrEqual(log[0]!.at);
    await server.faults.failNext(2, 500);
    await server.faults.clear();
    expect(await server.faults.pending()).toBe(0);
  });

  it("changes storage by hand and on a trigger, and caps pages silently when asked to", async () => {
    await server.putUser({ id: "by-hand", userName: "hand", externalId: "H-1" });
    expect((await call("GET", "/Users/by-hand")).body).toMatchObject({ userName: "hand", externalId: "H-1" });
    await server.onNext({ method: "POST", path: "/Users", users: [{ id: "first", userName: "racer" }] });
    expect((await call("POST", "/Users", user("racer"))).status).toBe(409);

    const small = await startStrictScimServer({ maxPageSize: 2 });
    try {
      for (const n of ["a", "b", "c"]) await small.putUser({ id: n, userName: n });
      const res = await fetch(`${small.baseURL}/Users?count=10`, {
        headers: { Authorization: `Bearer ${small.token}` },
      });
      const body = (await res.json()) as Rec;
      expect(body).toMatchObject({ totalResults: 3 });
      expect(body.Resources).toHaveLength(2);
      // Each server has its own storage.
      expect(await server.users()).toHaveLength(2);
    } finally {
      await small.stop();
    }
  });
});

describe("SCIM connector against the strict server", () => {
  let spec: ScimSpecT;
  let conn: ScimConnector;
  const opened: ScimConnector[] = [];
  const connector = (extra: Partial<ScimSpecT> = {}) => {
    const c = createScimConnector({ ...spec, ...extra }, server.token, { retry: FAST_RETRY });
    opened.push(c);
    return c;
  };
  const employee = (n: string, extra: Partial<EmployeeSpecT> = {}): EmployeeSpecT => ({
    employeeId: `E-${n}`,
    username: `user${n}`,
    givenName: `Given${n}`,
    familyName: `Family${n}`,
    email: `user${n}@example.com`,
    department: "Engineering",
    title: "Engineer",
    costCenter: "CC-1",
    attributes: { nick: `nick${n}` },
    ...extra,
  });
  const desired = (emp: EmployeeSpecT, groups: string[] = [], enabled = true): DesiredAccount => ({
    employeeId: emp.employeeId,
    username: emp.username,
    attributes: scimAttributes(emp, spec),
    enabled,
    groups,
  });
  const members = async (group: string) =>
    (
      (await server.groups()).find((g) => g.displayName === group)?.members as { value: string }[] | undefined
    )?.map((m) => m.value);
  /** The requests since `mark` that a strict service refused (4xx other than expected 404s). */
  const refused = async (mark: number) =>
    (await server.requests(mark)).filter((r) => r.status >= 400 && r.status < 500 && r.status !== 404);

  beforeAll(() => {
    spec = {
      baseURL: server.baseURL,
      tokenSecretRef: { name: "scim", key: "token" },
      requestsPerSecond: 1000,
      attributes: { nickName: "{{attributes.nick}}", 'addresses[type eq "work"].locality': "{{location}}" },
    };
  });
  beforeEach(() => {
    conn = connector();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  it("discovers capabilities and checks the token", async () => {
    expect(await conn.discover()).toMatchObject({
      discovered: true,
      patch: true,
      filter: true,
      maxResults: 200,
    });
    await conn.check();
    const bad = createScimConnector(spec, "wrong", { retry: FAST_RETRY });
    opened.push(bad);
    const mark = await server.requestCount();
    const err = await bad.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScimHttpError);
    expect((err as ScimHttpError).status).toBe(401);
    expect(await server.requests(mark)).toHaveLength(1); // not retried
  });

  it("creates an account that the schema accepts, with the enterprise extension and a valuePath", async () => {
    const mark = await server.requestCount();
    const want = desired(employee("1", { location: "London" }), ["staff", "eng"]);
    const created = await conn.createAccount(want, "Initial-Pa55");
    expect(attributeChanges(want.attributes, created.attributes, conn.managedAttributes)).toEqual({});
    expect(await stored(created.id)).toMatchObject({
      userName: "user1",
      externalId: "E-1",
      name: { givenName: "Given1", familyName: "Family1" },
      emails: [{ value: "user1@example.com", type: "work", primary: true }],
      active: true,
      nickName: "nick1",
      addresses: [{ type: "work", locality: "London" }],
      [E]: { employeeNumber: "E-1", department: "Engineering", costCenter: "CC-1" },
    });
    expect(await members("staff")).toEqual([created.id]);
    expect(await conn.findAccount("E-1", "user1")).toEqual(created);
    expect((await conn.createAccount(want)).id).toBe(created.id);
    expect(await server.users()).toHaveLength(1);
    expect(await refused(mark)).toEqual([]);
  });

  it("finds only accounts whose externalId matches exactly, while userName matches in any case", async () => {
    const a = await conn.createAccount(desired(employee("1")));
    await server.putUser({ id: "hand-made", userName: "user2", externalId: "e-2" });
    expect(await conn.findAccount("E-2", "user2")).toBeUndefined();
    expect((await conn.findAccount("E-1", "someone-else"))?.id).toBe(a.id);
    // The strict filter finds USER3 for user3: that account is not Roster's, whatever its case.
    await server.putUser({ id: "upper", userName: "USER3" });
    await expect(conn.createAccount(desired(employee("3")))).rejects.toThrow(/not owned by Roster/);
  });

  it("adopts its own account that another replica created between look-up and POST (409 uniqueness)", async () => {
    await conn.discover();
    await server.onNext({
      method: "POST",
      path: "/Users",
      users: [{ id: "concurrent", userName: "user1", externalId: "E-1", active: true }],
    });
    const mark = await server.requestCount();
    const adopted = await conn.createAccount(desired(employee("1"), ["staff"]));
    expect(adopted).toMatchObject({ id: "concurrent", employeeId: "E-1", groups: ["staff"] });
    expect((await server.requests(mark)).filter((r) => r.method === "POST").map((r) => r.status)).toEqual([
      409, 201,
    ]);
    expect(await server.users()).toHaveLength(1);
  });

  it("updates attributes with PATCH operations the library accepts, leaving the others alone", async () => {
    const account = await conn.createAccount(desired(employee("1", { location: "Paris" })));
    const u = (await stored(account.id))!;
    await server.putUser({
      ...(u as Rec & { id: string }),
      emails: [...(u.emails as Rec[]), { type: "home", value: "home@example.org" }],
      preferredLanguage: "en",
    });
    const next = employee("1", {
      email: "new@example.com",
      department: "Research",
      title: undefined,
      location: undefined,
    });
    const changes = attributeChanges(scimAttributes(next, spec), account.attributes, conn.managedAttributes);
    const mark = await server.requestCount();
    await conn.updateAttributes(account, changes);
    expect(await refused(mark)).toEqual([]);
    const after = (await stored(account.id))!;
    expect(after.emails).toEqual([
      { value: "new@example.com", type: "work", primary: true },
      { type: "home", value: "home@example.org" },
    ]);
    expect(after.title).toBeUndefined();
    expect(after.addresses).toBeUndefined();
    expect(after.preferredLanguage).toBe("en");
    expect(after[E]).toEqual({ employeeNumber: "E-1", department: "Research", costCenter: "CC-1" });
    const found = await conn.findAccount("E-1", "user1");
    expect(attributeChanges(scimAttributes(next, spec), found!.attributes, conn.managedAttributes)).toEqual(
      {},
    );
    // A path the schema does not have is refused by the service, once, with its detail.
    const before = await server.requestCount();
    const err = await conn.updateAttributes(account, { 'bogus[type eq "x"].value': ["1"] }).catch((e) => e);
    expect(err).toBeInstanceOf(ScimHttpError);
    expect((err as ScimHttpError).status).toBe(400);
    expect((err as ScimHttpError).scimType).toBe("invalidPath");
    expect((await server.requests(before)).filter((r) => r.method === "PATCH")).toHaveLength(1);
  });

  it("disables and enables, also when the service answers a PATCH with 204", async () => {
    const account = await conn.createAccount(desired(employee("1")));
    await conn.setEnabled(account, false);
    expect((await stored(account.id))!.active).toBe(false);
    // The User changed by hand back and forth: the connector's PATCH changes nothing (204).
    await server.putUser({ ...((await stored(account.id)) as Rec & { id: string }), active: true });
    const mark = await server.requestCount();
    await conn.setEnabled(account, true);
    expect((await server.requests(mark)).every((r) => r.method === "GET")).toBe(true);
    await server.onNext({
      method: "PATCH",
      path: `/Users/${account.id}`,
      users: [{ ...((await stored(account.id)) as Rec & { id: string }), active: false }],
    });
    await conn.setEnabled(account, false);
    expect((await server.requests(mark)).find((r) => r.method === "PATCH")?.status).toBe(204);
    expect((await conn.findAccount("E-1", "user1"))!.enabled).toBe(false);
  });

  it("changes membership with PATCH deltas; group names that differ in case are different groups", async () => {
    const a = await conn.createAccount(desired(employee("1")));
    const b = await conn.createAccount(desired(employee("2")));
    const mark = await server.requestCount();
    await conn.addToGroup("staff", a);
    await conn.addToGroup("staff", b);
    await conn.addToGroup("staff", a); // twice is fine
    // The strict filter finds "staff" for "Staff" too; Roster compares group names exactly.
    await conn.addToGroup("Staff", b);
    expect((await server.groups()).map((g) => g.displayName).sort()).toEqual(["Staff", "staff"]);
    expect(await members("staff")).toEqual([a.id, b.id]);
    expect(await members("Staff")).toEqual([b.id]);
    await conn.removeFromGroup("staff", a);
    await conn.removeFromGroup("staff", a);
    await conn.removeFromGroup("nonexistent", a);
    expect(await members("staff")).toEqual([b.id]);
    expect((await conn.findAccount("E-2", "user2"))!.groups.sort()).toEqual(["Staff", "staff"]);
    expect(await refused(mark)).toEqual([]);
  });

  it("lists every owned account over several pages, also when the service pages smaller than asked", async () => {
    for (let i = 1; i <= 8; i++)
      await server.putUser({ id: `u${i}`, userName: `user${i}`, externalId: `E-${i}`, active: i % 2 === 0 });
    await server.putUser({ id: "nobody", userName: "admin", active: true });
    await server.putGroup({ id: "g", displayName: "staff", members: [{ value: "u2" }, { value: "u5" }] });
    const accounts = await conn.listAccounts(3);
    expect(accounts.map((x) => x.employeeId).sort()).toEqual([
      "E-1",
      "E-2",
      "E-3",
      "E-4",
      "E-5",
      "E-6",
      "E-7",
      "E-8",
    ]);
    expect(accounts.find((x) => x.id === "u5")).toMatchObject({ groups: ["staff"], enabled: false });

    const small = await startStrictScimServer({ token: server.token, maxPageSize: 2 });
    try {
      for (const u of await server.users()) await small.putUser(u as Rec & { id: string });
      expect(await connector({ baseURL: small.baseURL }).listAccounts(5)).toHaveLength(8);
    } finally {
      await small.stop();
    }
  });

  describe("faults", () => {
    it("honours 429 with Retry-After, retries 500s and 503s, and gives up after a bounded number of tries", async () => {
      await conn.createAccount(desired(employee("1")));
      await server.faults.throttleNext(1, 1);
      let mark = await server.requestCount();
      expect((await conn.findAccount("E-1", "user1"))?.username).toBe("user1");
      const [throttled, retried] = await server.requests(mark);
      expect(throttled!.status).toBe(429);
      expect(retried!.path).toBe(throttled!.path);
      expect(retried!.at - throttled!.at).toBeGreaterThanOrEqual(990);

      await server.faults.failNext(2, 500);
      await server.faults.failNext(1, 503);
      mark = await server.requestCount();
      expect((await conn.findAccount("E-1", "user1"))?.username).toBe("user1");
      expect((await server.requests(mark)).slice(0, 4).map((r) => r.status)).toEqual([500, 500, 503, 200]);

      await server.faults.failNext(20, 503);
      mark = await server.requestCount();
      const err = await conn.findAccount("E-1", "user1").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ScimUnavailableError);
      expect(await server.requests(mark)).toHaveLength(5);
    });

    it("adopts its own account when the answer to a POST was lost", async () => {
      await conn.discover();
      // The service creates the user, but the connection closes before the answer arrives.
      await server.onNext({
        method: "POST",
        path: "/Users",
        users: [{ id: "created", userName: "user1", externalId: "E-1", active: true }],
        faults: [{ kind: "drop" }],
      });
      const mark = await server.requestCount();
      const account = await conn.createAccount(desired(employee("1")));
      expect(account).toMatchObject({ id: "created", employeeId: "E-1" });
      expect((await server.requests(mark)).filter((r) => r.method === "POST").map((r) => r.status)).toEqual([
        0, 409,
      ]);
      expect(await server.users()).toHaveLength(1);
    });
  });
});
