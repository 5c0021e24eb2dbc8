// A second SCIM 2.0 service provider for tests, strict where scimmy (test/harness/scim.ts) is
// lenient: the Go server in test/harness/scim-strict, whose protocol handling is the
// github.com/elimity-com/scim library (resources validated against the RFC 7643 schemas, PATCH
// paths and values validated, filters parsed by scim2/filter-parser and evaluated with each
// attribute's case rules, so userName and Group displayName compare case-insensitively and
// externalId exactly), over an in-memory store of its own: userName has uniqueness "server" (409
// uniqueness, case-insensitive), Group displayName none (RFC 7643: duplicates are allowed), Group
// members and the enterprise manager.value must be ids of existing Users, a PATCH value filter
// that matches nothing is 400 noTarget, a PATCH that changes nothing is 204, read-only attributes
// are 400 mutability.
//
// The binary is built once by test/harness/scim-strict/build.sh (cached under ~/.cache/roster,
// keyed by the library's version and the sources) and runs as its own process on 127.0.0.1; it
// starts in a few milliseconds. It serves a request log, faults and storage access on an admin
// API (see main.go); this handle wraps it with the shape of the scimmy server's handle, async
// where that one is synchronous.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerDirectory, removeDirectory, startProcess, waitFor } from "./processes.ts";
import type { ScimRequestLog } from "./scim.ts";

type Rec = Record<string, unknown>;

export type StrictScimFaults = {
  /** The next n requests fail with this status (a SCIM error body). */
  failNext(n: number, status: 500 | 503): Promise<void>;
  /** The next n requests get 429 with `Retry-After: retryAfterSeconds`. */
  throttleNext(n: number, retryAfterSeconds: number): Promise<void>;
  /** The next n requests are answered normally after ms milliseconds. */
  delayNext(n: number, ms: number): Promise<void>;
  /** The next n requests have their connection closed without an answer. */
  dropNext(n: number): Promise<void>;
  /** Forgets every pending fault. */
  clear(): Promise<void>;
  /** Faults not yet consumed. */
  pending(): Promise<number>;
};

/** What happens, once, when the next request with this method and path (suffix) arrives. */
export type StrictScimTrigger = {
  method: string;
  /** Matched against the end of the request's path, e.g. "/Users". */
  path: string;
  /** Users stored (as given, unvalidated) before the request is handled. */
  users?: (Rec & { id: string })[];
  /** Faults for this request and the next ones, ahead of those already queued. */
  faults?: {
    kind: "fail" | "throttle" | "delay" | "drop";
    n?: number;
    status?: number;
    seconds?: number;
    ms?: number;
  }[];
};

export type StrictScimServer = {
  /** http://127.0.0.1:PORT/scim/v2 */
  baseURL: string;
  token: string;
  pid: number;
  /** The request log from entry `since` (default 0), in arrival order. */
  requests(since?: number): Promise<ScimRequestLog[]>;
  /** How many requests arrived so far (a mark for requests(mark)). */
  requestCount(): Promise<number>;
  /** The stored Users / Groups (with id and meta; meta.version counts the writes). */
  users(): Promise<Rec[]>;
  groups(): Promise<Rec[]>;
  /** Stores a resource as given, unvalidated, replacing one with its id: a change made "by hand". */
  putUser(user: Rec & { id: string }): Promise<void>;
  putGroup(group: Rec & { id: string }): Promise<void>;
  /** Deletes a User by hand: its Groups keep it as a (dangling) member. */
  deleteUser(id: string): Promise<void>;
  deleteGroup(id: string): Promise<void>;
  /** Forgets every resource, pending fault and trigger (the request log stays). */
  reset(): Promise<void>;
  faults: StrictScimFaults;
  /** Arms a trigger (a concurrent writer, a lost answer). */
  onNext(trigger: StrictScimTrigger): Promise<void>;
  stop(): Promise<void>;
};

export type StrictScimServerOptions = {
  /** The accepted bearer token (default: random). */
  token?: string;
  /** Silently caps `count` of list requests, as many services do (default: maxResults, 200). */
  maxPageSize?: number;
};

const root = join(import.meta.dirname, "../..");
let binary: string | undefined;

/** Builds the server once (cached by build.sh) and returns the binary's path. */
export function strictScimBinary(): string {
  binary ??= execFileSync("bash", [join(root, "test/harness/scim-strict/build.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .pop()!;
  return binary;
}

export async function startStrictScimServer(opts: StrictScimServerOptions = {}): Promise<StrictScimServer> {
  const token = opts.token ?? randomUUID();
  const dir = mkdtempSync(join(tmpdir(), "roster-scim-strict-"));
  registerDirectory(dir);
  const logFile = join(dir, "scim-strict.log");
  const args = ["--token", token];
  if (opts.maxPageSize !== undefined) args.push("--max-page-size", String(opts.maxPageSize));
  const managed = startProcess(strictScimBinary(), args, logFile);
  let ready: { baseURL: string; adminURL: string } | undefined;
  await waitFor(
    async () => {
      const line = readFileSync(logFile, "utf8")
        .split("\n")
        .find((l) => l.startsWith('{"adminURL"'));
      if (line) ready = JSON.parse(line) as typeof ready;
      return ready !== undefined;
    },
    10_000,
    () => `the strict SCIM server did not start:\n${managed.tail()}`,
    5,
  );
  const admin = ready!.adminURL;

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${admin}${path}`, {
      method,
      ...(body !== undefined
        ? { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }
        : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`strict SCIM admin ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
  const store = () => call("GET", "/store") as Promise<{ users: Rec[]; groups: Rec[] }>;
  const fault = (kind: string, n: number, extra: object = {}) =>
    call("POST", "/faults", { kind, n, ...extra }) as Promise<void>;
  const put = (kind: string, r: Rec & { id: string }) =>
    call("PUT", `/${kind}/${encodeURIComponent(r.id)}`, r) as Promise<void>;
  const remove = (kind: string, id: string) =>
    call("DELETE", `/${kind}/${encodeURIComponent(id)}`) as Promise<void>;

  return {
    baseURL: ready!.baseURL,
    token,
    pid: managed.child.pid!,
    requests: async (since = 0) =>
      ((await call("GET", `/requests?since=${since}`)) as { entries: ScimRequestLog[] }).entries,
    requestCount: async () => ((await call("GET", "/requests?since=999999999")) as { total: number }).total,
    users: async () => (await store()).users,
    groups: async () => (await store()).groups,
    putUser: (u) => put("users", u),
    putGroup: (g) => put("groups", g),
    deleteUser: (id) => remove("users", id),
    deleteGroup: (id) => remove("groups", id),
    reset: () => call("POST", "/reset") as Promise<void>,
    faults: {
      failNext: (n, status) => fault("fail", n, { status }),
      throttleNext: (n, seconds) => fault("throttle", n, { seconds }),
      delayNext: (n, ms) => fault("delay", n, { ms }),
      dropNext: (n) => fault("drop", n),
      clear: () => call("DELETE", "/faults") as Promise<void>,
      pending: async () => ((await call("GET", "/faults")) as { pending: number }).pending,
    },
    onNext: (trigger) => call("POST", "/triggers", trigger) as Promise<void>,
    async stop() {
      await managed.stop(2000);
      removeDirectory(dir);
    },
  };
}
