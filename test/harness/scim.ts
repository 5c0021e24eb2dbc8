// A real SCIM 2.0 service provider for tests, on scimmy + scimmy-routers (Express 5), listening on
// 127.0.0.1 with in-memory storage per server.
//
// The protocol (filters, PATCH operations, schema validation, ListResponse, startIndex/count
// pagination, /Schemas, /ResourceTypes, /ServiceProviderConfig, bearer authentication) is scimmy's;
// this file only stores resources (ingress/egress/degress handlers), enforces uniqueness (409
// uniqueness for userName, externalId and, unless uniqueGroupNames is false, group displayName),
// injects faults and logs requests.
//
// scimmy keeps its declarations and configuration in module-level singletons, so the resources and
// the router are set up once per process and every server passes its own storage as the handler
// context. Known limits of scimmy 1.3.5 (not of the client under test):
// - the filter lexer does not understand escaped quotes or backslashes in string values
//   (`externalId eq "a\"b"` is a 400), so test identifiers should avoid `"` and `\`;
// - `eq` compares strings case-sensitively, also for case-insensitive attributes like userName
//   (uniqueness below is case-insensitive for userName, as RFC 7643 asks).
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

type Rec = Record<string, unknown>;

export type ScimRequestLog = {
  method: string;
  /** The request's path and query below the server root, e.g. /scim/v2/Users?filter=... */
  path: string;
  /** Arrival time (Date.now()). */
  at: number;
  /** Response status; 0 while pending or when the connection was dropped. */
  status: number;
  /** The parsed JSON body, if any. */
  body?: unknown;
};

export type ScimFaults = {
  /** The next n requests fail with this status (a SCIM error body). */
  failNext(n: number, status: 500 | 503): void;
  /** The next n requests get 429 with `Retry-After: retryAfterSeconds`. */
  throttleNext(n: number, retryAfterSeconds: number): void;
  /** The next n requests are answered normally after ms milliseconds. */
  delayNext(n: number, ms: number): void;
  /** The next n requests have their connection destroyed without an answer. */
  dropNext(n: number): void;
  /** Forgets every pending fault. */
  clear(): void;
  /** Faults not yet consumed. */
  pending(): number;
};

export type ScimStorage = {
  /** Users by id, as stored (no meta.location, no groups); tests may change them by hand. */
  users: Map<string, Rec>;
  groups: Map<string, Rec>;
};

export type ScimServer = {
  /** http://127.0.0.1:PORT/scim/v2 */
  baseURL: string;
  token: string;
  /** Copies of the stored users / groups. */
  users(): Promise<Rec[]>;
  groups(): Promise<Rec[]>;
  /** The storage itself, for inspection and changes made "by hand". */
  storage: ScimStorage;
  /** Every request, in arrival order. */
  requests: ScimRequestLog[];
  faults: ScimFaults;
  /** Called for every request before it is handled (e.g. to change storage "concurrently"). */
  onRequest: ((request: ScimRequestLog) => void) | undefined;
  stop(): Promise<void>;
};

export type ScimServerOptions = {
  /** The accepted bearer token (default: random). */
  token?: string;
  /** Silently caps `count` of list requests, as many services do (default 200 = filter.maxResults). */
  maxPageSize?: number;
  /**
   * Refuse a second group with the same displayName (409 uniqueness; default true). RFC 7643 gives
   * Group displayName no uniqueness, and strict services accept duplicates: false does too.
   */
  uniqueGroupNames?: boolean;
};

const MOUNT = "/scim/v2";
const MAX_RESULTS = 200;
const SCIM_JSON = ["application/scim+json", "application/json"];

type Fault =
  | { kind: "fail"; status: number }
  | { kind: "throttle"; seconds: number }
  | { kind: "delay"; ms: number }
  | { kind: "drop" };

type Instance = {
  token: string;
  storage: ScimStorage;
  maxPageSize: number;
  uniqueGroupNames: boolean;
  origin: string;
};

// Minimal shapes of Express 5 (no @types/express in the project).
type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
type ErrorHandler = (err: unknown, req: IncomingMessage, res: ServerResponse, next: () => void) => void;
type ExpressApp = ((req: IncomingMessage, res: ServerResponse) => void) & {
  use(...handlers: (Handler | string)[]): ExpressApp;
  set(name: string, value: unknown): ExpressApp;
};
type ExpressModule = { default: (() => ExpressApp) & { json(opts: object): Handler } };
type ExpressRequest = IncomingMessage & { query: Rec; body?: unknown; originalUrl: string };
type ExpressResponse = ServerResponse & {
  status(code: number): ExpressResponse;
  send(body: unknown): ExpressResponse;
};

const instances = new WeakMap<IncomingMessage, Instance>();
const logEntries = new WeakMap<IncomingMessage, ScimRequestLog>();
let router: Handler | undefined;

function instanceOf(req: IncomingMessage): Instance {
  const instance = instances.get(req);
  if (!instance) throw new Error("scim harness: request without a server instance");
  return instance;
}

const clone = <T>(value: T): T => structuredClone(value);
/** A scimmy schema instance (getters, frozen parts) as plain JSON data. */
const plain = (value: unknown): Rec => JSON.parse(JSON.stringify(value)) as Rec;

function scimError(status: number, scimType: string | null, message: string): Error {
  return new SCIMMY.Types.Error(status, scimType as never, message);
}

function notFound(id: string): Error {
  return scimError(404, null, `Resource ${id} not found`);
}

type ResourceLike = { id?: string; filter?: { match(values: Rec[]): Rec[] } };

function egressFrom(store: Map<string, Rec>, resource: ResourceLike, decorate: (r: Rec) => Rec): Rec | Rec[] {
  if (resource.id !== undefined) {
    const found = store.get(resource.id);
    if (!found) throw notFound(resource.id);
    return decorate(clone(found));
  }
  const all = [...store.values()].map((r) => decorate(clone(r)));
  return resource.filter ? resource.filter.match(all) : all;
}

function lower(value: unknown): string | undefined {
  return typeof value === "string" ? value.toLowerCase() : undefined;
}

function stamp(type: string, previous: Rec | undefined): Rec {
  const now = new Date().toISOString();
  const created = (previous?.meta as Rec | undefined)?.created ?? now;
  return { resourceType: type, created, lastModified: now };
}

function setUp(): Handler {
  if (router) return router;
  const User = SCIMMY.Resources.User;
  const Group = SCIMMY.Resources.Group;

  SCIMMY.Resources.declare(User, {
    extensions: [{ schema: SCIMMY.Schemas.EnterpriseUser, required: false }],
    egress: (resource: ResourceLike, ctx: Instance) =>
      egressFrom(ctx.storage.users, resource, (user) => {
        // groups is readOnly and derived from the groups' members, as in most services.
        const groups = [...ctx.storage.groups.values()]
          .filter((g) => ((g.members as Rec[] | undefined) ?? []).some((m) => m.value === user.id))
          .map((g) => ({ value: g.id, display: g.displayName, type: "direct" }));
        return groups.length ? { ...user, groups } : user;
      }),
    ingress: (resource: ResourceLike, instance: unknown, ctx: Instance) => {
      const users = ctx.storage.users;
      const data = plain(instance);
      delete data.groups;
      delete data.id;
      const previous = resource.id !== undefined ? users.get(resource.id) : undefined;
      if (resource.id !== undefined && !previous) throw notFound(resource.id);
      for (const [otherId, other] of users) {
        if (otherId === resource.id) continue;
        if (lower(other.userName) !== undefined && lower(other.userName) === lower(data.userName)) {
          throw scimError(409, "uniqueness", `userName ${String(data.userName)} is already taken`);
        }
        if (data.externalId !== undefined && other.externalId === data.externalId) {
          throw scimError(409, "uniqueness", `externalId ${String(data.externalId)} is already taken`);
        }
      }
      const id = resource.id ?? randomUUID();
      const stored: Rec = { ...data, id, meta: stamp("User", previous) };
      users.set(id, stored);
      return clone(stored);
    },
    degress: (resource: ResourceLike, ctx: Instance) => {
      const id = resource.id!;
      if (!ctx.storage.users.delete(id)) throw notFound(id);
      for (const group of ctx.storage.groups.values()) {
        const members = (group.members as Rec[] | undefined) ?? [];
        if (!members.some((m) => m.value === id)) continue;
        const kept = members.filter((m) => m.value !== id);
        if (kept.length) group.members = kept;
        else delete group.members;
      }
    },
  });

  SCIMMY.Resources.declare(Group, {
    // An empty member list, not a missing one: scimmy 1.3.5's members[value eq ...] filter throws on
    // a group without the attribute.
    egress: (resource: ResourceLike, ctx: Instance) =>
      egressFrom(ctx.storage.groups, resource, (g) => ({ members: [], ...g })),
    ingress: (resource: ResourceLike, instance: unknown, ctx: Instance) => {
      const groups = ctx.storage.groups;
      const data = plain(instance);
      delete data.id;
      const previous = resource.id !== undefined ? groups.get(resource.id) : undefined;
      if (resource.id !== undefined && !previous) throw notFound(resource.id);
      for (const [otherId, other] of ctx.uniqueGroupNames ? groups : []) {
        if (otherId !== resource.id && other.displayName === data.displayName) {
          throw scimError(409, "uniqueness", `group ${String(data.displayName)} already exists`);
        }
      }
      // Adding a member twice leaves one (RFC 7644 section 3.5.2.1: no change, success).
      const seen = new Set<unknown>();
      const members = ((data.members as Rec[] | undefined) ?? []).filter((m) => {
        if (seen.has(m.value)) return false;
        seen.add(m.value);
        return true;
      });
      const id = resource.id ?? randomUUID();
      const stored: Rec = { ...data, members, id, meta: stamp("Group", previous) };
      if (!members.length) delete stored.members;
      groups.set(id, stored);
      return clone(stored);
    },
    degress: (resource: ResourceLike, ctx: Instance) => {
      if (!ctx.storage.groups.delete(resource.id!)) throw notFound(resource.id!);
    },
  });

  const routers = new SCIMMYRouters({
    type: "bearer",
    docUri: "https://datatracker.ietf.org/doc/html/rfc6750",
    handler: (req: IncomingMessage) => {
      const header = req.headers.authorization ?? "";
      if (header !== `Bearer ${instanceOf(req).token}`) throw new Error("Authorization failure");
      return "harness-admin";
    },
    context: (req: IncomingMessage) => instanceOf(req),
    baseUri: (req: IncomingMessage) => instanceOf(req).origin,
  }) as unknown as Handler;

  SCIMMY.Config.set({
    documentationUri: "https://datatracker.ietf.org/doc/html/rfc7644",
    patch: true,
    filter: { supported: true, maxResults: MAX_RESULTS },
    sort: true,
    bulk: false,
    etag: false,
    changePassword: false,
  });
  router = routers;
  return routers;
}

export async function startScimServer(opts: ScimServerOptions = {}): Promise<ScimServer> {
  const scim = setUp();
  // Express 5 ships no type declarations; a non-literal specifier keeps tsc from looking for them.
  const express = ((await import("express" as string)) as ExpressModule).default;
  const token = opts.token ?? randomUUID();
  const storage: ScimStorage = { users: new Map(), groups: new Map() };
  const instance: Instance = {
    token,
    storage,
    maxPageSize: opts.maxPageSize ?? MAX_RESULTS,
    uniqueGroupNames: opts.uniqueGroupNames ?? true,
    origin: "",
  };
  const requests: ScimRequestLog[] = [];
  let queue: Fault[] = [];
  const enqueue = (n: number, fault: Fault) => {
    for (let i = 0; i < n; i++) queue.push(fault);
  };

  const handle: ScimServer = {
    baseURL: "",
    token,
    storage,
    requests,
    onRequest: undefined,
    users: async () => [...storage.users.values()].map(clone),
    groups: async () => [...storage.groups.values()].map(clone),
    faults: {
      failNext: (n, status) => enqueue(n, { kind: "fail", status }),
      throttleNext: (n, seconds) => enqueue(n, { kind: "throttle", seconds }),
      delayNext: (n, ms) => enqueue(n, { kind: "delay", ms }),
      dropNext: (n) => enqueue(n, { kind: "drop" }),
      clear: () => {
        queue = [];
      },
      pending: () => queue.length,
    },
    stop: async () => {
      queue = [];
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const app = express();
  app.set("query parser", "simple");
  app.set("x-powered-by", false);

  // Request log (arrival order) and fault injection, in front of everything else.
  const logAndFaults: Handler = (req, res, next) => {
    const entry: ScimRequestLog = {
      method: req.method ?? "",
      path: (req as ExpressRequest).originalUrl,
      at: Date.now(),
      status: 0,
    };
    requests.push(entry);
    logEntries.set(req, entry);
    res.on("finish", () => (entry.status = res.statusCode));
    instances.set(req, instance);
    handle.onRequest?.(entry);
    const fault = queue.shift();
    if (!fault) return next();
    const r = res as ExpressResponse;
    switch (fault.kind) {
      case "drop":
        req.socket.destroy();
        return;
      case "fail":
        r.setHeader("Content-Type", "application/scim+json");
        r.status(fault.status).send({
          schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
          status: String(fault.status),
          detail: "injected fault",
        });
        return;
      case "throttle":
        r.setHeader("Retry-After", String(fault.seconds));
        r.setHeader("Content-Type", "application/scim+json");
        r.status(429).send({
          schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
          status: "429",
          detail: "too many requests (injected)",
        });
        return;
      case "delay":
        setTimeout(() => next(), fault.ms);
        return;
    }
  };
  app.use(logAndFaults);

  app.use(express.json({ type: SCIM_JSON, limit: "1mb" }));
  const prepare: Handler = (req, _res, next) => {
    const r = req as ExpressRequest;
    const entry = logEntries.get(req);
    if (entry && r.body !== undefined && (typeof r.body !== "object" || Object.keys(r.body!).length)) {
      entry.body = r.body;
    }
    // Express 5 computes req.query anew on every access, so scimmy-routers' conversion of
    // startIndex/count to numbers would be lost: give the request a plain, writable query object.
    const query: Rec = { ...r.query };
    for (const key of ["startIndex", "count"]) {
      const value = query[key];
      if (typeof value === "string" && /^-?\d+$/.test(value)) query[key] = Number(value);
    }
    if (typeof query.count === "number") query.count = Math.min(query.count, instance.maxPageSize);
    Object.defineProperty(r, "query", { value: query, writable: true, configurable: true, enumerable: true });
    next();
  };
  app.use(prepare);

  app.use(MOUNT, scim);
  // scimmy-routers answers every error itself and passes 5xx on: nothing more to do.
  const swallow: ErrorHandler = (_err, _req, _res, _next) => {};
  app.use(swallow as unknown as Handler);

  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  instance.origin = `http://127.0.0.1:${port}`;

  handle.baseURL = `${instance.origin}${MOUNT}`;
  return handle;
}
