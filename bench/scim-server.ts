// The bench's SCIM target, run as its own process so that serving SCIM never shares an event loop
// with the bench's 10 ms polling:
//
//   node bench/scim-server.ts --port P --admin-port A --token T [--impl indexed|harness]
//
// `indexed` (default) is a small SCIM 2.0 service provider with in-memory indexes on externalId,
// userName, group displayName and membership: every request the connector makes costs O(page), as
// in real services. `harness` serves test/harness/scim.ts (scimmy), whose every filtered list
// clones and filters all users: about 10 µs per stored user per request, so 10,000 accounts take
// hours through it. Both answer the same admin API on --admin-port (loopback, no auth):
//   GET /stats                      -> { requests: {METHOD: n}, total, users, activeUsers, groups,
//                                        groupMembers: {displayName: n} }
//   GET /user?externalId=X          -> { id, active, groups: [displayName] } | 404
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";

type Rec = Record<string, unknown>;
type Stats = {
  requests: Record<string, number>;
  total: number;
  users: number;
  activeUsers: number;
  groups: number;
  groupMembers: Record<string, number>;
};
type Admin = { stats(): Stats; user(externalId: string): Rec | undefined };

const USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";
const MOUNT = "/scim/v2";
const MAX_RESULTS = 200;

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    "admin-port": { type: "string" },
    token: { type: "string" },
    impl: { type: "string", default: "indexed" },
  },
});
const token = args.token ?? randomUUID();

class ScimError extends Error {
  readonly status: number;
  readonly scimType: string | undefined;
  constructor(status: number, message: string, scimType?: string) {
    super(message);
    this.status = status;
    this.scimType = scimType;
  }
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/scim+json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ScimError(400, "request body is not JSON", "invalidSyntax");
  }
}

/** `attr eq "value"`, `attr pr` and `members[value eq "value"]`, the filters the connector sends. */
function parseFilter(filter: string): { attr: string; op: "eq" | "pr" | "member"; value?: string } {
  let m = /^\s*members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]\s*$/i.exec(filter);
  if (m) return { attr: "members", op: "member", value: JSON.parse(m[1]!) as string };
  m = /^\s*([A-Za-z][\w.:-]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$/i.exec(filter);
  if (m) return { attr: m[1]!.toLowerCase(), op: "eq", value: JSON.parse(m[2]!) as string };
  m = /^\s*([A-Za-z][\w.:-]*)\s+pr\s*$/i.exec(filter);
  if (m) return { attr: m[1]!.toLowerCase(), op: "pr" };
  throw new ScimError(400, `unsupported filter ${filter}`, "invalidFilter");
}

function page<T>(items: T[], query: URLSearchParams, render: (item: T) => Rec): Rec {
  const startIndex = Math.max(1, Number(query.get("startIndex") ?? 1) || 1);
  const count = Math.min(MAX_RESULTS, Math.max(0, Number(query.get("count") ?? MAX_RESULTS) || 0));
  const slice = items.slice(startIndex - 1, startIndex - 1 + count);
  return {
    schemas: [LIST_SCHEMA],
    totalResults: items.length,
    startIndex,
    itemsPerPage: slice.length,
    Resources: slice.map(render),
  };
}

const clone = <T>(value: T): T => structuredClone(value);

// --- indexed implementation ---------------------------------------------------------------------

type Group = { id: string; displayName: string; members: Set<string>; meta: Rec };

function indexedServer(): { handle: (req: IncomingMessage, res: ServerResponse) => void; admin: Admin } {
  const users = new Map<string, Rec>();
  const byExternalId = new Map<string, string>();
  const byUserName = new Map<string, string>();
  const groups = new Map<string, Group>();
  const groupByName = new Map<string, string>();
  const memberOf = new Map<string, Set<string>>();
  const requests: Record<string, number> = {};
  let total = 0;
  // The users in listing order, and those with an externalId, kept between writes so that a page
  // of a full listing costs O(page), not O(users): a scan of n users is n/200 pages.
  let listed: { all: Rec[]; owned: Rec[] } | undefined;
  const listing = () => {
    if (!listed) {
      const all = [...users.values()];
      listed = { all, owned: all.filter((u) => externalId(u) !== undefined) };
    }
    return listed;
  };
  let origin = "";

  const now = () => new Date().toISOString();
  const userName = (u: Rec) => String(u.userName ?? "").toLowerCase();
  const externalId = (u: Rec) => (typeof u.externalId === "string" ? u.externalId : undefined);

  const renderUser = (u: Rec): Rec => {
    const gs = [...(memberOf.get(u.id as string) ?? [])].map((gid) => groups.get(gid)!);
    const out: Rec = {
      ...clone(u),
      meta: { ...(u.meta as Rec), location: `${origin}${MOUNT}/Users/${u.id}` },
    };
    if (gs.length) out.groups = gs.map((g) => ({ value: g.id, display: g.displayName, type: "direct" }));
    return out;
  };
  const renderGroup = (g: Group, attributes?: string | null): Rec => {
    const wanted = attributes ? new Set(attributes.split(",").map((a) => a.trim().toLowerCase())) : undefined;
    const out: Rec = { schemas: [GROUP_SCHEMA], id: g.id, displayName: g.displayName };
    if (!wanted || wanted.has("members")) out.members = [...g.members].map((value) => ({ value }));
    out.meta = { ...g.meta, location: `${origin}${MOUNT}/Groups/${g.id}` };
    return out;
  };

  const unindexUser = (u: Rec) => {
    byUserName.delete(userName(u));
    const ext = externalId(u);
    if (ext !== undefined) byExternalId.delete(ext);
  };
  const storeUser = (id: string, data: Rec, previous: Rec | undefined): Rec => {
    const clash = byUserName.get(userName(data));
    if (!userName(data)) throw new ScimError(400, "userName is required", "invalidValue");
    if (clash !== undefined && clash !== id)
      throw new ScimError(409, `userName ${String(data.userName)} is already taken`, "uniqueness");
    const ext = externalId(data);
    if (ext !== undefined && byExternalId.has(ext) && byExternalId.get(ext) !== id)
      throw new ScimError(409, `externalId ${ext} is already taken`, "uniqueness");
    if (previous) unindexUser(previous);
    listed = undefined;
    const stored: Rec = { ...data, id };
    delete stored.groups;
    delete stored.password;
    stored.meta = {
      resourceType: "User",
      created: (previous?.meta as Rec | undefined)?.created ?? now(),
      lastModified: now(),
    };
    users.set(id, stored);
    byUserName.set(userName(stored), id);
    if (ext !== undefined) byExternalId.set(ext, id);
    return stored;
  };

  const userOr404 = (id: string) => {
    const u = users.get(id);
    if (!u) throw new ScimError(404, `Resource ${id} not found`);
    return u;
  };
  const groupOr404 = (id: string) => {
    const g = groups.get(id);
    if (!g) throw new ScimError(404, `Resource ${id} not found`);
    return g;
  };

  /** Applies a PATCH path (attr, attr.sub or urn:...:attr[.sub]) to a copy of the user. */
  const patchUser = (user: Rec, ops: Rec[]): Rec => {
    const out = clone(user);
    for (const op of ops) {
      const kind = String(op.op ?? "").toLowerCase();
      const path = op.path === undefined ? undefined : String(op.path);
      if (path === undefined) {
        if (kind === "remove") throw new ScimError(400, "remove needs a path", "noTarget");
        Object.assign(out, op.value as Rec);
        continue;
      }
      if (path.includes("[")) throw new ScimError(400, `unsupported path ${path}`, "invalidPath");
      let container: Rec = out;
      let rest = path;
      const urn = /^(urn:[^ ]+):([^:]+)$/i.exec(path);
      if (urn && urn[1]!.toLowerCase() !== USER_SCHEMA.toLowerCase()) {
        container = (out[urn[1]!] as Rec | undefined) ?? (out[urn[1]!] = {});
        rest = urn[2]!;
      } else if (urn) rest = urn[2]!;
      const parts = rest.split(".");
      for (const part of parts.slice(0, -1))
        container = (container[part] as Rec | undefined) ?? (container[part] = {});
      const last = parts.at(-1)!;
      if (kind === "remove") delete container[last];
      else container[last] = op.value;
    }
    return out;
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const path = url.pathname.slice(MOUNT.length).replace(/\/+$/, "");
    const method = req.method ?? "GET";
    const q = url.searchParams;
    const [, collection, id] = path.split("/").map(decodeURIComponent);
    if (path === "/ServiceProviderConfig") {
      return send(res, 200, {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: MAX_RESULTS },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [{ type: "oauthbearertoken", name: "Bearer", description: "bench" }],
      });
    }
    if (path === "/ResourceTypes") {
      const types = [
        { name: "User", endpoint: "/Users", schema: USER_SCHEMA },
        { name: "Group", endpoint: "/Groups", schema: GROUP_SCHEMA },
      ].map((t) => ({ schemas: ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], id: t.name, ...t }));
      return send(
        res,
        200,
        page(types, q, (t) => t),
      );
    }
    if (collection === "Users") {
      if (id === undefined && method === "GET") {
        const filter = q.get("filter");
        let found: Rec[];
        if (!filter) found = listing().all;
        else {
          const f = parseFilter(filter);
          if (f.op === "eq" && f.attr === "externalid") {
            const hit = byExternalId.get(f.value!);
            found = hit ? [users.get(hit)!] : [];
          } else if (f.op === "eq" && f.attr === "username") {
            const hit = byUserName.get(f.value!.toLowerCase());
            found = hit ? [users.get(hit)!] : [];
          } else if (f.op === "eq" && f.attr === "id") {
            found = users.has(f.value!) ? [users.get(f.value!)!] : [];
          } else if (f.op === "pr" && f.attr === "externalid") {
            found = listing().owned;
          } else throw new ScimError(400, `unsupported filter ${filter}`, "invalidFilter");
        }
        return send(res, 200, page(found, q, renderUser));
      }
      if (id === undefined && method === "POST") {
        const body = (await readBody(req)) as Rec;
        const stored = storeUser(randomUUID(), { ...body }, undefined);
        return send(res, 201, renderUser(stored));
      }
      if (id === undefined) throw new ScimError(405, `${method} not allowed`);
      const user = userOr404(id);
      if (method === "GET") return send(res, 200, renderUser(user));
      if (method === "PUT") {
        const body = (await readBody(req)) as Rec;
        return send(res, 200, renderUser(storeUser(id, { ...body }, user)));
      }
      if (method === "PATCH") {
        const body = (await readBody(req)) as Rec;
        const ops = (body?.Operations as Rec[] | undefined) ?? [];
        return send(res, 200, renderUser(storeUser(id, patchUser(user, ops), user)));
      }
      if (method === "DELETE") {
        unindexUser(user);
        users.delete(id);
        listed = undefined;
        for (const gid of memberOf.get(id) ?? []) groups.get(gid)?.members.delete(id);
        memberOf.delete(id);
        return send(res, 204);
      }
      throw new ScimError(405, `${method} not allowed`);
    }
    if (collection === "Groups") {
      if (id === undefined && method === "GET") {
        const filter = q.get("filter");
        let found: Group[];
        if (!filter) found = [...groups.values()];
        else {
          const f = parseFilter(filter);
          if (f.op === "eq" && f.attr === "displayname") {
            const hit = groupByName.get(f.value!);
            found = hit ? [groups.get(hit)!] : [];
          } else if (f.op === "member") {
            found = [...(memberOf.get(f.value!) ?? [])].map((gid) => groups.get(gid)!);
          } else throw new ScimError(400, `unsupported filter ${filter}`, "invalidFilter");
        }
        return send(
          res,
          200,
          page(found, q, (g) => renderGroup(g, q.get("attributes"))),
        );
      }
      const addMembers = (g: Group, members: unknown) => {
        for (const m of (members as Rec[] | undefined) ?? []) {
          const value = String(m.value);
          if (!users.has(value)) throw new ScimError(400, `member ${value} is not a user`, "invalidValue");
          g.members.add(value);
          let set = memberOf.get(value);
          if (!set) memberOf.set(value, (set = new Set()));
          set.add(g.id);
        }
      };
      if (id === undefined && method === "POST") {
        const body = (await readBody(req)) as Rec;
        const name = String(body.displayName ?? "");
        if (!name) throw new ScimError(400, "displayName is required", "invalidValue");
        if (groupByName.has(name)) throw new ScimError(409, `group ${name} already exists`, "uniqueness");
        const g: Group = {
          id: randomUUID(),
          displayName: name,
          members: new Set(),
          meta: { resourceType: "Group", created: now(), lastModified: now() },
        };
        addMembers(g, body.members);
        groups.set(g.id, g);
        groupByName.set(name, g.id);
        return send(res, 201, renderGroup(g));
      }
      if (id === undefined) throw new ScimError(405, `${method} not allowed`);
      const g = groupOr404(id);
      if (method === "GET") return send(res, 200, renderGroup(g, q.get("attributes")));
      if (method === "PATCH") {
        const body = (await readBody(req)) as Rec;
        for (const op of (body?.Operations as Rec[] | undefined) ?? []) {
          const kind = String(op.op ?? "").toLowerCase();
          const path = String(op.path ?? "");
          const removal = /^members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$/i.exec(path);
          if (kind === "add" && path.toLowerCase() === "members") addMembers(g, op.value);
          else if (kind === "remove" && removal) {
            const value = JSON.parse(removal[1]!) as string;
            if (!g.members.delete(value)) throw new ScimError(400, `${value} is not a member`, "noTarget");
            memberOf.get(value)?.delete(g.id);
          } else throw new ScimError(400, `unsupported group patch ${kind} ${path}`, "invalidPath");
        }
        g.meta.lastModified = now();
        // 204, which RFC 7644 section 3.5.2 allows: the whole Group would make every member change
        // cost O(members), and a bulk load into one group quadratic in this server.
        return send(res, 204);
      }
      if (method === "DELETE") {
        for (const m of g.members) memberOf.get(m)?.delete(g.id);
        groups.delete(id);
        groupByName.delete(g.displayName);
        return send(res, 204);
      }
      throw new ScimError(405, `${method} not allowed`);
    }
    throw new ScimError(404, `no such endpoint ${path}`);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    requests[method] = (requests[method] ?? 0) + 1;
    total++;
    origin ||= `http://${req.headers.host ?? "127.0.0.1"}`;
    const url = new URL(req.url ?? "/", "http://bench");
    if (!url.pathname.startsWith(MOUNT)) return send(res, 404, { detail: "not found" });
    if (req.headers.authorization !== `Bearer ${token}`)
      return send(res, 401, { schemas: [ERROR_SCHEMA], status: "401", detail: "Authorization failure" });
    route(req, res, url).catch((err: unknown) => {
      const e = err instanceof ScimError ? err : new ScimError(500, String((err as Error)?.message ?? err));
      send(res, e.status, {
        schemas: [ERROR_SCHEMA],
        status: String(e.status),
        ...(e.scimType ? { scimType: e.scimType } : {}),
        detail: e.message,
      });
    });
  };

  const admin: Admin = {
    stats: () => ({
      requests: { ...requests },
      total,
      users: users.size,
      activeUsers: [...users.values()].filter((u) => u.active !== false).length,
      groups: groups.size,
      groupMembers: Object.fromEntries([...groups.values()].map((g) => [g.displayName, g.members.size])),
    }),
    user(ext) {
      const id = byExternalId.get(ext);
      const u = id === undefined ? undefined : users.get(id);
      if (!u) return undefined;
      return {
        id,
        active: u.active !== false,
        groups: [...(memberOf.get(id!) ?? [])].map((gid) => groups.get(gid)!.displayName),
      };
    },
  };
  return { handle, admin };
}

// --- main -------------------------------------------------------------------------------------

const listen = (server: ReturnType<typeof createServer>, port: number) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });

let admin: Admin;
let baseURL: string;
if (args.impl === "harness") {
  const { startScimServer } = await import("../test/harness/scim.ts");
  const scim = await startScimServer({ token });
  baseURL = scim.baseURL;
  admin = {
    stats() {
      const requests: Record<string, number> = {};
      for (const r of scim.requests) requests[r.method] = (requests[r.method] ?? 0) + 1;
      const all = [...scim.storage.users.values()];
      return {
        requests,
        total: scim.requests.length,
        users: all.length,
        activeUsers: all.filter((u) => u.active !== false).length,
        groups: scim.storage.groups.size,
        groupMembers: Object.fromEntries(
          [...scim.storage.groups.values()].map((g) => [
            String(g.displayName),
            ((g.members as Rec[] | undefined) ?? []).length,
          ]),
        ),
      };
    },
    user(ext) {
      const u = [...scim.storage.users.values()].find((x) => x.externalId === ext);
      if (!u) return undefined;
      const groups = [...scim.storage.groups.values()]
        .filter((g) => ((g.members as Rec[] | undefined) ?? []).some((m) => m.value === u.id))
        .map((g) => String(g.displayName));
      return { id: u.id, active: u.active !== false, groups };
    },
  };
} else if (args.impl === "indexed") {
  const { handle, admin: a } = indexedServer();
  admin = a;
  const server = createServer({ keepAliveTimeout: 60_000 }, handle);
  await listen(server, Number(args.port ?? 0));
  const address = server.address();
  baseURL = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}${MOUNT}`;
} else {
  throw new Error(`--impl must be indexed or harness, got ${args.impl}`);
}

const adminServer = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://admin");
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (url.pathname === "/stats") return json(200, admin.stats());
  if (url.pathname === "/user") {
    const found = admin.user(url.searchParams.get("externalId") ?? "");
    return found ? json(200, found) : json(404, { detail: "no such user" });
  }
  json(404, { detail: "not found" });
});
await listen(adminServer, Number(args["admin-port"] ?? 0));
const adminAddress = adminServer.address();
console.log(
  JSON.stringify({
    ready: true,
    impl: args.impl,
    baseURL,
    adminURL: `http://127.0.0.1:${typeof adminAddress === "object" && adminAddress ? adminAddress.port : 0}`,
  }),
);
process.on("SIGTERM", () => process.exit(0));
// The harness server keeps its own event loop alive; the indexed one and the admin server do too.
