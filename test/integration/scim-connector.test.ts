// The SCIM connector against the scimmy-based test server (test/harness/scim.ts).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { EmployeeSpecT, ScimSpecT } from "../../src/api/types.ts";
import { ENTERPRISE_USER_SCHEMA, scimAttributes } from "../../src/connectors/scim/attributes.ts";
import { ScimHttpError, ScimUnavailableError } from "../../src/connectors/scim/client.ts";
import {
  createScimConnector,
  type ScimConnector,
  type ScimConnectorOptions,
} from "../../src/connectors/scim/connector.ts";
import type { ConnectorLogger, DesiredAccount } from "../../src/connectors/types.ts";
import { attributeChanges } from "../../src/plan/plan.ts";
import { startScimServer, type ScimServer } from "../harness/scim.ts";

const E = ENTERPRISE_USER_SCHEMA;
const FAST_RETRY = { baseDelayMs: 20, maxDelayMs: 100 };

let server: ScimServer;
let spec: ScimSpecT;
let conn: ScimConnector;
const logged: string[] = [];
const logger: ConnectorLogger = {
  debug: (obj, msg) => logged.push(JSON.stringify({ obj, msg })),
  info: (obj, msg) => logged.push(JSON.stringify({ obj, msg })),
  warn: (obj, msg) => logged.push(JSON.stringify({ obj, msg })),
};
const opened: ScimConnector[] = [];

function connector(extra: Partial<ScimSpecT> = {}, opts: ScimConnectorOptions = {}): ScimConnector {
  const c = createScimConnector({ ...spec, ...extra }, server.token, { logger, retry: FAST_RETRY, ...opts });
  opened.push(c);
  return c;
}

function employee(n: string, extra: Partial<EmployeeSpecT> = {}): EmployeeSpecT {
  return {
    employeeId: `E-${n}`,
    username: `user${n}`,
    givenName: `Given${n}`,
    familyName: `Family${n}`,
    email: `user${n}@example.com`,
    department: "Engineering",
    title: "Engineer",
    costCenter: "CC-1",
    manager: "boss",
    attributes: { nick: `nick${n}` },
    ...extra,
  };
}

function desired(emp: EmployeeSpecT, groups: string[] = [], enabled = true): DesiredAccount {
  return {
    employeeId: emp.employeeId,
    username: emp.username,
    // The manager's account id as the planner resolves it (here simply "boss").
    attributes: scimAttributes(emp, spec, { managerId: "boss" }),
    enabled,
    groups,
  };
}

const stored = (id: string) => server.storage.users.get(id)!;
const members = (group: string) =>
  (
    ([...server.storage.groups.values()].find((g) => g.displayName === group)?.members ?? []) as {
      value: string;
    }[]
  ).map((m) => m.value);
const since = (mark: number) => server.requests.slice(mark);

beforeAll(async () => {
  server = await startScimServer({ token: "t0ken-that-must-not-leak" });
  spec = {
    baseURL: server.baseURL,
    tokenSecretRef: { name: "scim", key: "token" },
    requestsPerSecond: 1000,
    attributes: { nickName: "{{attributes.nick}}", 'addresses[type eq "work"].locality': "{{location}}" },
  };
});

beforeEach(() => {
  server.faults.clear();
  server.onRequest = undefined;
  server.storage.users.clear();
  server.storage.groups.clear();
  conn = connector();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await server?.stop();
  expect(logged.join("\n")).not.toContain("t0ken-that-must-not-leak");
});

describe("SCIM connector", () => {
  it("discovers capabilities and checks the token", async () => {
    const caps = await conn.discover();
    expect(caps).toMatchObject({ discovered: true, patch: true, filter: true, maxResults: 200, etag: false });
    expect(caps.authenticationSchemes).toEqual(["oauthbearertoken"]);
    expect(caps.resourceTypes.find((t) => t.name === "User")).toMatchObject({
      endpoint: "/Users",
      schemaExtensions: [E],
    });
    await conn.check();

    const bad = createScimConnector(spec, "wrong", { retry: FAST_RETRY });
    opened.push(bad);
    const mark = server.requests.length;
    const err = await bad.check().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScimHttpError);
    expect((err as ScimHttpError).status).toBe(401);
    expect(since(mark)).toHaveLength(1); // not retried
  });

  it("creates an account with its attributes, groups and state, and finds it by externalId", async () => {
    const emp = employee("1", { location: "London" });
    const want = desired(emp, ["staff", "eng"]);
    const created = await conn.createAccount(want, "Initial-Pa55");
    expect(created).toMatchObject({
      employeeId: "E-1",
      username: "user1",
      enabled: true,
      groups: ["eng", "staff"],
    });
    expect(attributeChanges(want.attributes, created.attributes, conn.managedAttributes)).toEqual({});

    const user = stored(created.id);
    expect(user).toMatchObject({
      userName: "user1",
      externalId: "E-1",
      name: { givenName: "Given1", familyName: "Family1" },
      displayName: "Given1 Family1",
      emails: [{ value: "user1@example.com", type: "work", primary: true }],
      title: "Engineer",
      active: true,
      nickName: "nick1",
      addresses: [{ type: "work", locality: "London" }],
      [E]: {
        employeeNumber: "E-1",
        department: "Engineering",
        costCenter: "CC-1",
        manager: { value: "boss" },
      },
    });
    expect(user.schemas).toEqual(expect.arrayContaining([E]));
    expect(members("staff")).toEqual([created.id]);

    const found = await conn.findAccount("E-1", "user1");
    expect(found).toEqual(created);
    expect(await conn.findAccount("E-2", "user2")).toBeUndefined();
    // Creating again returns the existing account.
    expect((await conn.createAccount(want)).id).toBe(created.id);
    expect(server.storage.users.size).toBe(1);
    // The password was sent but is never logged.
    expect(logged.join("\n")).not.toContain("Initial-Pa55");
  });

  it("finds only accounts whose externalId matches exactly", async () => {
    const a = await conn.createAccount(desired(employee("1")));
    server.storage.users.set("hand-made", { id: "hand-made", userName: "user2", externalId: "e-2" });
    expect(await conn.findAccount("E-2", "user2")).toBeUndefined();
    expect(await conn.findAccount("E-1 ", "user1")).toBeUndefined();
    expect((await conn.findAccount("E-1", "someone-else"))?.id).toBe(a.id);
  });

  it("adopts an owned account that another replica created between look-up and POST (409)", async () => {
    const emp = employee("1");
    // Another replica (or a lost answer) creates the user between the look-up and the POST.
    server.onRequest = (r) => {
      if (r.method === "POST" && r.path.endsWith("/Users")) {
        server.onRequest = undefined;
        server.storage.users.set("concurrent", {
          id: "concurrent",
          schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
          userName: "user1",
          externalId: "E-1",
          active: true,
        });
      }
    };
    const adopted = await conn.createAccount(desired(emp, ["staff"]));
    expect(adopted).toMatchObject({ id: "concurrent", employeeId: "E-1", groups: ["staff"] });
    expect(server.requests.some((r) => r.method === "POST" && r.status === 409)).toBe(true);
    expect(server.storage.users.size).toBe(1);
    // A User of that userName that is not Roster's is refused instead: connector-contract.test.ts.
  });

  it("updates attributes with PATCH (strict op names), leaving other attributes alone", async () => {
    const emp = employee("1");
    const account = await conn.createAccount(desired(emp));
    stored(account.id).emails = [
      ...(stored(account.id).emails as object[]),
      { type: "home", value: "home@example.org" },
    ];
    stored(account.id).preferredLanguage = "en";
    const next = employee("1", {
      email: "new@example.com",
      department: "Research",
      title: undefined,
      manager: undefined,
    });
    const changes = attributeChanges(scimAttributes(next, spec), account.attributes, conn.managedAttributes);
    expect(Object.keys(changes).sort()).toEqual(
      ['emails[type eq "work"].value', "title", `${E}:department`, `${E}:manager.value`].sort(),
    );
    const mark = server.requests.length;
    await conn.updateAttributes(account, changes);
    const writes = since(mark).filter((r) => r.method !== "GET");
    expect(writes.map((r) => r.method)).toEqual(["PATCH"]);
    const ops = (writes[0]!.body as { Operations: { op: string }[] }).Operations;
    expect(ops.every((o) => ["add", "replace", "remove"].includes(o.op))).toBe(true);

    const user = stored(account.id);
    expect(user.emails).toEqual([
      { value: "new@example.com", type: "work", primary: true },
      { type: "home", value: "home@example.org" },
    ]);
    expect(user.title).toBeUndefined();
    expect(user.preferredLanguage).toBe("en");
    expect(user[E]).toEqual({ employeeNumber: "E-1", department: "Research", costCenter: "CC-1" });
    const after = await conn.findAccount("E-1", "user1");
    expect(attributeChanges(scimAttributes(next, spec), after!.attributes, conn.managedAttributes)).toEqual(
      {},
    );

    await expect(conn.updateAttributes(account, { externalId: ["E-2"] })).rejects.toThrow(
      /cannot be changed/,
    );
    // A 4xx is thrown at once with the service's detail, without retries.
    const before = server.requests.length;
    const err = await conn.updateAttributes(account, { 'bogus[type eq "x"].value': ["1"] }).catch((e) => e);
    expect(err).toBeInstanceOf(ScimHttpError);
    expect((err as ScimHttpError).status).toBe(400);
    expect(since(before).filter((r) => r.method === "PATCH")).toHaveLength(1);
  });

  it("uses PUT of the full resource when the service does not support PATCH", async () => {
    // A service whose ServiceProviderConfig says patch.supported "False" (a string, as some send).
    const noPatch: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith("/ServiceProviderConfig")) return res;
      const body = (await res.json()) as Record<string, unknown>;
      return new Response(JSON.stringify({ ...body, patch: { supported: "False" } }), {
        status: 200,
        headers: { "Content-Type": "application/scim+json" },
      });
    };
    const put = connector({}, { fetch: noPatch });
    expect((await put.discover()).patch).toBe(false);
    const account = await put.createAccount(desired(employee("1")));
    stored(account.id).preferredLanguage = "en";
    const mark = server.requests.length;
    await put.updateAttributes(account, { title: ["Boss"], [`${E}:costCenter`]: null });
    await put.setEnabled(account, false);
    expect(
      since(mark)
        .filter((r) => r.method !== "GET")
        .map((r) => r.method),
    ).toEqual(["PUT", "PUT"]);
    expect(stored(account.id)).toMatchObject({ title: "Boss", active: false, preferredLanguage: "en" });
    expect((stored(account.id)[E] as Record<string, unknown>).costCenter).toBeUndefined();
    // A new group is created with its first member; after that, membership is never replaced
    // wholesale, so without PATCH it cannot be changed.
    await put.addToGroup("staff", account);
    expect(members("staff")).toEqual([account.id]);
    const other = await put.createAccount(desired(employee("2")));
    await expect(put.addToGroup("staff", other)).rejects.toThrow(/PATCH/);
    expect(server.requests.some((r) => r.method === "PUT" && r.path.includes("/Groups"))).toBe(false);
  });

  it("setEnabled without a change sends no write", async () => {
    // Disabling and enabling as such is in connector-contract.test.ts.
    const account = await conn.createAccount(desired(employee("1"), [], false));
    const mark = server.requests.length;
    await conn.setEnabled(account, false);
    await conn.createAccount(desired(employee("1"), [], false));
    expect(since(mark).every((r) => r.method === "GET")).toBe(true);
    await conn.setEnabled(account, true);
    expect(
      since(mark)
        .filter((r) => r.method !== "GET")
        .map((r) => r.method),
    ).toEqual(["PATCH"]);
  });

  it("changes group membership with PATCH deltas, leaving other members alone", async () => {
    const a = await conn.createAccount(desired(employee("1")));
    const b = await conn.createAccount(desired(employee("2")));
    await conn.addToGroup("staff", a);
    await conn.addToGroup("staff", b);
    await conn.addToGroup("staff", a); // twice is fine
    const group = [...server.storage.groups.values()].find((g) => g.displayName === "staff")!;
    group.members = [...(group.members as object[]), { value: "added-by-hand" }];
    expect(members("staff")).toEqual([a.id, b.id, "added-by-hand"]);

    const mark = server.requests.length;
    await conn.removeFromGroup("staff", a);
    await conn.removeFromGroup("staff", a); // not a member any more: fine
    await conn.removeFromGroup("nonexistent", a);
    expect(members("staff")).toEqual([b.id, "added-by-hand"]);
    const groupWrites = since(mark).filter((r) => r.path.includes("/Groups") && r.method !== "GET");
    expect(groupWrites.map((r) => r.method)).toEqual(["PATCH", "PATCH"]);
    expect(groupWrites[0]!.body).toEqual({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: [{ op: "remove", path: `members[value eq "${a.id}"]` }],
    });
    expect(server.requests.some((r) => r.method === "PUT" && r.path.includes("/Groups"))).toBe(false);
    expect((await conn.findAccount("E-1", "user1"))!.groups).toEqual([]);
    expect((await conn.findAccount("E-2", "user2"))!.groups).toEqual(["staff"]);
    // Group names compare exactly.
    expect(conn.groupKey("Staff")).not.toBe(conn.groupKey("staff"));
  });

  it("adds to and removes from a large group without losing its other members", async () => {
    const first = await conn.createAccount(desired(employee("1")));
    await conn.addToGroup("staff", first);
    const group = [...server.storage.groups.values()].find((g) => g.displayName === "staff")!;
    const byHand = Array.from({ length: 200 }, (_, i) => `hand-${i}`);
    group.members = [...(group.members as object[]), ...byHand.map((value) => ({ value }))];
    const second = await conn.createAccount(desired(employee("2")));
    const mark = server.requests.length;
    await conn.addToGroup("staff", second);
    await conn.removeFromGroup("staff", first);
    // No attributes/excludedAttributes on the PATCH: scimmy 1.3.5 applies them to the Group it
    // patches, and `excludedAttributes=members` left it with no other members.
    const patches = since(mark).filter((r) => r.method === "PATCH" && r.path.includes("/Groups/"));
    expect(patches.map((r) => new URL(r.path, "http://x").search)).toEqual(["", ""]);
    expect(members("staff")).toEqual([...byHand, second.id]);
  });

  it("lists every owned account over several pages", async () => {
    for (let i = 1; i <= 8; i++) {
      server.storage.users.set(`u${i}`, {
        id: `u${i}`,
        userName: `user${i}`,
        externalId: `E-${i}`,
        active: i % 2 === 0,
      });
    }
    server.storage.users.set("nobody", { id: "nobody", userName: "admin", active: true });
    server.storage.groups.set("g", {
      id: "g",
      displayName: "staff",
      members: [{ value: "u2" }, { value: "u5" }],
    });
    const mark = server.requests.length;
    const accounts = await conn.listAccounts(3);
    expect(accounts.map((a) => a.employeeId).sort()).toEqual(
      ["E-1", "E-2", "E-3", "E-4", "E-5", "E-6", "E-7", "E-8"].sort(),
    );
    expect(accounts.find((a) => a.id === "u5")).toMatchObject({ groups: ["staff"], enabled: false });
    expect(accounts.find((a) => a.id === "u2")).toMatchObject({ groups: ["staff"], enabled: true });
    const pages = since(mark).filter((r) => r.method === "GET" && /\/Users\?/.test(r.path));
    expect(pages.map((r) => new URL(r.path, "http://x").searchParams.get("startIndex"))).toEqual([
      "1",
      "4",
      "7",
    ]);

    // A service that silently returns smaller pages than asked for.
    const small = await startScimServer({ token: server.token, maxPageSize: 2 });
    try {
      for (const [id, u] of server.storage.users) small.storage.users.set(id, structuredClone(u));
      const c = connector({ baseURL: small.baseURL });
      expect(await c.listAccounts(5)).toHaveLength(8);
    } finally {
      await small.stop();
    }
  });

  it("reads the members without externalId of the groups asked about one by one, and no other User", async () => {
    for (let i = 1; i <= 5; i++)
      server.storage.users.set(`u${i}`, {
        id: `u${i}`,
        userName: `user${i}`,
        externalId: `E-${i}`,
        active: true,
      });
    // Added by hand: h1 to staff (and everyone), h2 only to everyone, which no policy names.
    for (const id of ["h1", "h2"]) server.storage.users.set(id, { id, userName: id, active: true });
    server.storage.groups.set("g-staff", {
      id: "g-staff",
      displayName: "staff",
      // A dangling member (deleted without leaving the group) and a nested group are no Users.
      members: [{ value: "u1" }, { value: "h1" }, { value: "gone" }, { value: "g-sub", type: "Group" }],
    });
    server.storage.groups.set("g-all", {
      id: "g-all",
      displayName: "everyone",
      members: ["u1", "u2", "h1", "h2"].map((value) => ({ value })),
    });
    server.storage.groups.set("g-sub", { id: "g-sub", displayName: "sub" });
    const byId = (mark: number) =>
      since(mark)
        .filter((r) => r.method === "GET" && /\/Users\/[^?]/.test(r.path))
        .map((r) => r.path.split("/").pop());

    let mark = server.requests.length;
    const accounts = await conn.listAccounts(2, undefined, ["staff"]);
    expect(accounts.map((a) => a.id).sort()).toEqual(["h1", "u1", "u2", "u3", "u4", "u5"]);
    expect(accounts.find((a) => a.id === "h1")).toMatchObject({
      employeeId: "",
      username: "h1",
      groups: ["everyone", "staff"],
    });
    expect(accounts.find((a) => a.id === "u1")!.groups).toEqual(["everyone", "staff"]);
    expect(byId(mark).sort()).toEqual(["gone", "h1"]);

    // Without groups asked about (or none with such members): owned Users only, no read by id.
    mark = server.requests.length;
    expect((await conn.listAccounts(2)).map((a) => a.id).sort()).toEqual(["u1", "u2", "u3", "u4", "u5"]);
    expect((await conn.listAccounts(2, undefined, ["sub"])).map((a) => a.id)).not.toContain("h1");
    expect(byId(mark)).toEqual([]);
  });

  describe("faults", () => {
    it("honours 429 with Retry-After", async () => {
      await conn.discover();
      server.faults.throttleNext(1, 1);
      const mark = server.requests.length;
      expect(await conn.findAccount("E-1", "user1")).toBeUndefined();
      const [throttled, retried] = since(mark);
      expect(throttled!.status).toBe(429);
      expect(retried!.path).toBe(throttled!.path);
      expect(retried!.at - throttled!.at).toBeGreaterThanOrEqual(990);
    });

    it("does not wait for a Retry-After that is too long", async () => {
      await conn.discover();
      server.faults.throttleNext(1, 3600);
      const err = await conn.findAccount("E-1", "user1").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ScimUnavailableError);
      expect((err as ScimUnavailableError).retryAfterMs).toBe(3_600_000);
    });

    it("retries 500s and 503s, then succeeds", async () => {
      await conn.createAccount(desired(employee("1")));
      server.faults.failNext(2, 500);
      server.faults.failNext(1, 503);
      const mark = server.requests.length;
      expect((await conn.findAccount("E-1", "user1"))?.username).toBe("user1");
      expect(
        since(mark)
          .slice(0, 4)
          .map((r) => r.status),
      ).toEqual([500, 500, 503, 200]);
    });

    it("gives up after a bounded number of tries with a clear error", async () => {
      await conn.discover();
      server.faults.failNext(20, 503);
      const mark = server.requests.length;
      const err = await conn.findAccount("E-1", "user1").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ScimUnavailableError);
      expect((err as Error).message).toMatch(/503.*gave up after 5 tries/);
      expect(since(mark)).toHaveLength(5);
    });

    it("retries a dropped connection", async () => {
      await conn.discover();
      server.faults.dropNext(1);
      const created = await conn.createAccount(desired(employee("1")));
      expect(created.username).toBe("user1");
      expect(server.requests.some((r) => r.status === 0)).toBe(true);
    });

    it("adopts its own account when the answer to a POST was lost", async () => {
      await conn.discover();
      server.onRequest = (r) => {
        if (r.method !== "POST") return;
        server.onRequest = undefined;
        // The service creates the user, but the connection drops before the answer arrives.
        server.storage.users.set("created", {
          id: "created",
          userName: "user1",
          externalId: "E-1",
          active: true,
        });
        server.faults.dropNext(1);
      };
      const mark = server.requests.length;
      const account = await conn.createAccount(desired(employee("1")));
      expect(account).toMatchObject({ id: "created", employeeId: "E-1" });
      expect(
        since(mark)
          .filter((r) => r.method === "POST")
          .map((r) => r.status),
      ).toEqual([0, 409]);
      expect(server.storage.users.size).toBe(1);
    });

    it("never sends more than requestsPerSecond requests in any second", async () => {
      const rps = 20;
      const paced = connector({ requestsPerSecond: rps });
      const mark = server.requests.length;
      const started = Date.now();
      // One look-up each (by externalId): more requests than one second allows.
      await Promise.all(Array.from({ length: 30 }, (_, i) => paced.findAccount(`E-${i}`, `user${i}`)));
      const log = since(mark).map((r) => r.at);
      expect(log.length).toBeGreaterThanOrEqual(30);
      expect(Date.now() - started).toBeGreaterThanOrEqual(((log.length - 1) * 1000) / rps - 50);
      for (let i = 0; i < log.length; i++) {
        const inWindow = log.filter((t) => t >= log[i]! && t < log[i]! + 1000).length;
        expect(inWindow).toBeLessThanOrEqual(rps);
      }
    });
  });
});

describe("SCIM groups and requests (a service without displayName uniqueness, as RFC 7643 has it)", () => {
  let free: ScimServer;
  let freeSpec: ScimSpecT;
  const make = (opts: ScimConnectorOptions = {}) => {
    const c = createScimConnector(freeSpec, free.token, { logger, retry: FAST_RETRY, name: "wiki", ...opts });
    opened.push(c);
    return c;
  };
  const groupsNamed = (name: string) =>
    [...free.storage.groups.values()].filter((g) => g.displayName === name) as {
      id: string;
      externalId?: string;
      members?: { value: string }[];
    }[];
  const user = (n: string): string => {
    const id = `u-${n}`;
    free.storage.users.set(id, { id, userName: `user${n}`, externalId: `E-${n}`, schemas: [] });
    return id;
  };
  const freeSince = (mark: number) => free.requests.slice(mark);

  beforeAll(async () => {
    free = await startScimServer({ token: "t0ken-that-must-not-leak", uniqueGroupNames: false });
    freeSpec = { ...spec, baseURL: free.baseURL };
  });
  beforeEach(() => {
    free.storage.users.clear();
    free.storage.groups.clear();
  });
  afterAll(async () => {
    await free?.stop();
  });

  it("concurrent adds to a new group create it once, with Roster's externalId, and add everyone", async () => {
    for (let round = 0; round < 5; round++) {
      const c = make();
      const ids = Array.from({ length: 8 }, (_, i) => user(`${round}-${i}`));
      const name = `burst-${round}`;
      await Promise.all(ids.map((id, i) => c.addToGroup(name, { id, employeeId: `E-${round}-${i}` })));
      const made = groupsNamed(name);
      expect(made).toHaveLength(1);
      expect(made[0]!.externalId).toBe(`roster:wiki:${name}`);
      expect(made[0]!.members!.map((m) => m.value).sort()).toEqual([...ids].sort());
    }
  });

  it("with duplicates, adds to Roster's own one, removes from all, names them, and never fails", async () => {
    const c = make();
    const a = user("a");
    const b = user("b");
    free.storage.groups.set("g-0", { id: "g-0", displayName: "team", members: [{ value: a }] });
    free.storage.groups.set("g-2", { id: "g-2", displayName: "team", externalId: "roster:wiki:team" });
    free.storage.groups.set("g-1", { id: "g-1", displayName: "team", members: [{ value: a }] });
    await c.addToGroup("team", { id: b, employeeId: "E-b" });
    expect(free.storage.groups.get("g-2")!.members).toEqual([{ value: b }]);
    expect(c.duplicateGroups()).toEqual(["team"]);
    expect((await c.findAccount("E-a", "usera"))!.groups).toEqual(["team"]);

    await c.removeFromGroup("team", { id: a, employeeId: "E-a" });
    expect(
      groupsNamed("team")
        .flatMap((g) => g.members ?? [])
        .map((m) => m.value),
    ).toEqual([b]);
    expect((await c.findAccount("E-a", "usera"))!.groups).toEqual([]);
    // A listing (the scan) sees the duplicates too, and sees them go.
    await c.listAccounts();
    expect(c.duplicateGroups()).toEqual(["team"]);
    free.storage.groups.delete("g-0");
    free.storage.groups.delete("g-1");
    await c.listAccounts();
    expect(c.duplicateGroups()).toEqual([]);
  });

  it("keeps group ids: a second add sends no look-up; a group deleted by hand is looked up and made again", async () => {
    const c = make();
    const [a, b, d] = [user("a"), user("b"), user("d")];
    await c.addToGroup("staff", { id: a, employeeId: "E-a" });
    let mark = free.requests.length;
    await c.addToGroup("staff", { id: b, employeeId: "E-b" });
    expect(
      freeSince(mark)
        .filter((r) => r.path.includes("/Groups"))
        .map((r) => r.method),
    ).toEqual(["PATCH"]);

    free.storage.groups.clear();
    mark = free.requests.length;
    await c.addToGroup("staff", { id: d, employeeId: "E-d" });
    expect(groupsNamed("staff").map((g) => g.members)).toEqual([[{ value: d }]]);
    expect(
      freeSince(mark)
        .filter((r) => r.path.includes("/Groups"))
        .map((r) => `${r.method} ${r.status}`),
    ).toEqual(["PATCH 404", "GET 200", "POST 201"]);
  });

  it("a hire sends its look-up by externalId, its POST and a PATCH per group; a read uses the User's groups", async () => {
    const c = make();
    await c.discover();
    const emp = employee("9");
    const other = user("x");
    await c.addToGroup("readers", { id: other, employeeId: "E-x" }); // the group exists, its id is known
    const mark = free.requests.length;
    expect(await c.findAccount(emp.employeeId, emp.username)).toBeUndefined();
    const created = await c.createAccount({
      employeeId: emp.employeeId,
      username: emp.username,
      attributes: scimAttributes(emp, freeSpec),
      enabled: true,
      groups: ["readers"],
    });
    expect(created).toMatchObject({ employeeId: "E-9", enabled: true, groups: ["readers"] });
    expect(
      freeSince(mark).map((r) => `${r.method} ${decodeURIComponent(r.path).replace(/\?.*filter=/, " ")}`),
    ).toEqual([
      expect.stringMatching(/^GET \/scim\/v2\/Users externalId eq "E-9"/),
      "POST /scim/v2/Users",
      expect.stringMatching(/^PATCH \/scim\/v2\/Groups\//),
    ]);
    const again = free.requests.length;
    expect((await c.findAccount(emp.employeeId, emp.username))!.groups).toEqual(["readers"]);
    expect(freeSince(again)).toHaveLength(1);
  });

  it("discovery is read once per connector, not on every check", async () => {
    const c = make();
    const mark = free.requests.length;
    for (let i = 0; i < 3; i++) {
      await c.discover();
      await c.check();
    }
    const discovery = freeSince(mark).filter((r) => /ServiceProviderConfig|ResourceTypes/.test(r.path));
    expect(discovery).toHaveLength(2);
    // The first check probes the token; later ones rely on that success.
    expect(freeSince(mark).filter((r) => r.path.includes("/Users"))).toHaveLength(1);
  });
});
