// The SCIM 2.0 connector (RFC 7643/7644): Users with the enterprise extension, Groups; the
// connector base (base/connector.ts: ownership guard, adoption, fencing, dangling members,
// membership inversion) over SCIM primitives.
//
// Ownership: a User is Roster's when its externalId equals the employeeId exactly (string compare;
// ids are opaque). Every write to a User first reads it (GET /Users/{id}). Accounts are looked up
// by externalId, then by userName, before creating; a POST that fails with 409 (uniqueness) is
// looked up again and adopted only when the existing User is owned (e.g. created by an earlier
// attempt whose answer was lost). A User with the same userName and another or no externalId is
// never adopted: it is outside the managed scope (api.md: the operator touches only Users whose
// externalId matches), so createAccount fails with NotOwnedError and someone must resolve it by hand.
//
// Discovery: /ServiceProviderConfig decides PATCH (PatchOp, lowercase op names) or PUT of the full
// resource for attribute and enabled changes; /ResourceTypes gives the Users and Groups endpoints.
// When the ServiceProviderConfig cannot be read PATCH is assumed, and a 501/405 answer to a PATCH
// switches to PUT. Group membership is only ever changed with PATCH deltas (add members /
// remove members[value eq "id"]), never by PUT of the member list; without PATCH it fails.
//
// Groups are found by displayName (exact compare) and created when missing; the groups of a User
// are the Groups that list it as a member (filter members[value eq "id"]).
//
// HTTP, pacing and retries: see client.ts. The token is checked before it is used (it must be a
// valid HTTP header value, base/credentials.ts) and is never logged nor put into an error: errors
// and log lines are scrubbed of it (base/scrub.ts).
import type { ScimSpecT } from "../../api/types.ts";
import { createConnector } from "../base/connector.ts";
import { bearerToken } from "../base/credentials.ts";
import type { TargetPrimitives } from "../base/primitives.ts";
import { nonCertificateText, scrubberFor } from "../base/scrub.ts";
import { silentLogger, type ActualAccount, type ConnectorLogger, type TargetConnector } from "../types.ts";
import {
  applyChanges,
  buildResource,
  CORE_GROUP_SCHEMA,
  CORE_USER_SCHEMA,
  EMPLOYEE_ID_ATTRIBUTE,
  field,
  keyOf,
  PATCH_OP_SCHEMA,
  parseScimPath,
  patchOperations,
  readAttributes,
  scimManagedAttributes,
  USERNAME_ATTRIBUTE,
  type PatchOperation,
} from "./attributes.ts";
import { createScimClient, isHttpError, type ScimClient } from "./client.ts";
import {
  readListResponse,
  readResourceTypes,
  readServiceProviderConfig,
  toBoolean,
  ownershipKey,
  toId,
  type ScimCapabilities,
} from "./dialect.ts";
import { eqFilter, valuePathFilter } from "./filter.ts";
import type { RetryTiming } from "./ratelimit.ts";

export type ScimConnectorOptions = {
  /** PEM CA bundle for https (from caSecretRef). */
  ca?: string;
  logger?: ConnectorLogger;
  /** Called right before every request that changes the target; throws (or exits) to stop it. */
  fence?: () => void;
  /** The fetch to use (tests); by default the global fetch, or undici's with a custom CA. */
  fetch?: typeof fetch;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Retry bounds (defaults: 5 tries, backoff 250 ms doubling up to 8 s, Retry-After up to 60 s). */
  retry?: Partial<RetryTiming>;
};

export interface ScimConnector extends TargetConnector {
  /** Reads /ServiceProviderConfig and /ResourceTypes (for Connector status.capabilities). */
  discover(): Promise<ScimCapabilities>;
  /** The attribute paths Roster manages (for the planner). */
  readonly managedAttributes: string[];
}

type Json = Record<string, unknown>;
type Group = { id: string; displayName: string };

export const DEFAULT_REQUESTS_PER_SECOND = 10;
const DEFAULT_PAGE_SIZE = 100;
/** Attributes of a User that updateAttributes never writes. */
const NOT_UPDATABLE = new Set(["externalid", "id", "meta", "schemas", "active", "password", "groups"]);

type Transport = { fetch: typeof fetch; close(): Promise<void> };

/** undici's fetch with its own Agent: the global fetch cannot take a CA or skip verification. */
async function undiciTransport(ca: string | undefined, insecure: boolean): Promise<Transport> {
  const undici = await import("undici");
  const agent = new undici.Agent({ connect: { ...(ca ? { ca } : {}), rejectUnauthorized: !insecure } });
  const fetchWithAgent = (input: string, init: RequestInit) =>
    undici.fetch(input, { ...(init as object), dispatcher: agent });
  return { fetch: fetchWithAgent as unknown as typeof fetch, close: () => agent.close() };
}

/** Throws CredentialError (never quoting the token) when `token` cannot be a bearer token. */
export function createScimConnector(
  spec: ScimSpecT,
  tokenValue: string,
  opts: ScimConnectorOptions = {},
): ScimConnector {
  const token = bearerToken(tokenValue);
  const secrets = scrubberFor([tokenValue, token, nonCertificateText(opts.ca)]);
  const log = secrets.logger(opts.logger ?? silentLogger);
  const managed = scimManagedAttributes(spec);
  let transport: Promise<Transport> | undefined;
  const getTransport = () =>
    (transport ??=
      opts.fetch === undefined && (opts.ca || spec.insecureSkipTLSVerify)
        ? undiciTransport(opts.ca, !!spec.insecureSkipTLSVerify)
        : Promise.resolve({ fetch: opts.fetch ?? globalThis.fetch, close: async () => {} }));
  const client: ScimClient = createScimClient({
    baseURL: spec.baseURL,
    token,
    requestsPerSecond: spec.requestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND,
    fetch: async () => (await getTransport()).fetch,
    logger: log,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
  });

  let capabilities: ScimCapabilities | undefined;
  let discovering: Promise<ScimCapabilities> | undefined;
  let usersPath = "/Users";
  let groupsPath = "/Groups";

  async function discover(): Promise<ScimCapabilities> {
    let config: unknown;
    try {
      config = (await client.request("GET", "/ServiceProviderConfig")).body;
    } catch (err) {
      // Optional in practice: some services do not serve it. Authentication errors still count.
      if (!isHttpError(err, 404, 405, 501)) throw err;
      log.info({ baseURL: spec.baseURL }, "scim: no ServiceProviderConfig, assuming PATCH support");
    }
    let resourceTypes: ScimCapabilities["resourceTypes"] = [];
    try {
      resourceTypes = readResourceTypes((await client.request("GET", "/ResourceTypes")).body);
    } catch (err) {
      if (!isHttpError(err, 404, 405, 501)) throw err;
    }
    const endpoint = (name: string, fallback: string) => {
      const e = resourceTypes.find((t) => t.name.toLowerCase() === name.toLowerCase())?.endpoint;
      return e && /^\/[^?#\s]*$/.test(e) ? e.replace(/\/+$/, "") : fallback;
    };
    usersPath = endpoint("User", "/Users");
    groupsPath = endpoint("Group", "/Groups");
    capabilities = { ...readServiceProviderConfig(config), resourceTypes };
    return capabilities;
  }

  async function known(): Promise<ScimCapabilities> {
    if (capabilities) return capabilities;
    discovering ??= discover().finally(() => (discovering = undefined));
    return discovering;
  }

  const userPath = (id: string) => `${usersPath}/${encodeURIComponent(id)}`;
  const groupPath = (id: string) => `${groupsPath}/${encodeURIComponent(id)}`;

  /** Every resource of a list request, page by page (startIndex/count) until totalResults. */
  async function listAll(path: string, query: Record<string, string>, pageSize: number): Promise<Json[]> {
    const caps = await known();
    const count = Math.max(1, Math.min(pageSize, caps.maxResults || pageSize));
    const byId = new Map<string, Json>();
    let startIndex = 1;
    for (let page = 1; ; page++) {
      const { resources, totalResults } = readListResponse(
        (await client.request("GET", path, { query: { ...query, startIndex, count } })).body,
      );
      for (const r of resources) {
        const id = toId(field(r, "id"));
        if (id === undefined) throw new Error(`SCIM GET ${path}: a resource without id in the list`);
        byId.set(id, r);
      }
      startIndex += resources.length;
      if (totalResults !== undefined && startIndex > totalResults) break;
      if (resources.length === 0) {
        if (totalResults === undefined) break;
        // Never take a short listing for the whole: the caller would miss accounts.
        throw new Error(
          `SCIM GET ${path}: listing ended after ${startIndex - 1} of ${totalResults} resources (empty page)`,
        );
      }
      if (page >= 100_000) throw new Error(`SCIM GET ${path}: too many pages`);
    }
    return [...byId.values()];
  }

  async function readUser(id: string): Promise<Json> {
    const body = (await client.request("GET", userPath(id))).body;
    if (typeof body !== "object" || body === null) throw new Error(`SCIM GET ${userPath(id)}: no resource`);
    return body as Json;
  }

  const externalIdOf = (user: Json) => ownershipKey(field(user, EMPLOYEE_ID_ATTRIBUTE));
  const idOf = (user: Json) => toId(field(user, "id")) ?? "";
  const byExternalId = (employeeId: string) =>
    listAll(usersPath, { filter: eqFilter(EMPLOYEE_ID_ATTRIBUTE, employeeId) }, DEFAULT_PAGE_SIZE);

  async function findGroup(name: string): Promise<Group | undefined> {
    const found = (
      await listAll(groupsPath, { filter: eqFilter("displayName", name), attributes: "displayName" }, 50)
    )
      .map((g) => ({ id: toId(field(g, "id"))!, displayName: String(field(g, "displayName") ?? "") }))
      .filter((g) => g.displayName === name);
    if (found.length > 1) throw new Error(`SCIM: ${found.length} groups are named ${JSON.stringify(name)}`);
    return found[0];
  }

  function toAccount(user: Json, groups: string[]): ActualAccount {
    return {
      id: idOf(user),
      employeeId: externalIdOf(user) ?? "",
      username: String(field(user, USERNAME_ATTRIBUTE) ?? ""),
      attributes: readAttributes(user, managed),
      // active is optional (RFC 7643 section 4.1.1); a User without it is taken as enabled.
      enabled: toBoolean(field(user, "active")) ?? true,
      groups,
    };
  }

  async function patchSupported(): Promise<boolean> {
    return (await known()).patch;
  }

  /** The resource as sent back with PUT: without meta and the read-only groups. */
  function forPut(user: Json): Json {
    const out = { ...user };
    for (const name of ["meta", "groups"]) {
      const key = keyOf(out, name);
      if (key !== undefined) delete out[key];
    }
    return out;
  }

  /** Changes a User with PATCH ops, or with PUT of `replaced` when the service lacks PATCH. */
  async function writeUser(id: string, ops: PatchOperation[], replaced: () => Json): Promise<void> {
    if (!ops.length) return;
    if (await patchSupported()) {
      try {
        await client.request("PATCH", userPath(id), {
          body: { schemas: [PATCH_OP_SCHEMA], Operations: ops },
        });
        return;
      } catch (err) {
        if (!isHttpError(err, 405, 501)) throw err;
        if (capabilities) capabilities.patch = false;
        log.info({ baseURL: spec.baseURL }, "scim: PATCH not supported, using PUT");
      }
    }
    await client.request("PUT", userPath(id), { body: forPut(replaced()) });
  }

  async function patchGroup(group: Group, ops: PatchOperation[]): Promise<void> {
    if (!(await patchSupported())) {
      throw new Error(
        `SCIM service at ${spec.baseURL} does not support PATCH; group membership is only changed with PATCH deltas`,
      );
    }
    await client.request("PATCH", groupPath(group.id), {
      body: { schemas: [PATCH_OP_SCHEMA], Operations: ops },
    });
  }

  const primitives: TargetPrimitives<Json, Group> = {
    name: "scim",
    idLabel: "id",
    employeeIdAttribute: EMPLOYEE_ID_ATTRIBUTE,
    accountsLabel: "SCIM users",
    describe: (id, username) =>
      username === undefined ? `SCIM user ${id}` : `SCIM user ${username} (${id})`,

    async check() {
      await known();
      // The ServiceProviderConfig may be anonymous: a list request proves the token works.
      readListResponse(
        (
          await client.request("GET", usersPath, {
            query: { startIndex: 1, count: 1, attributes: "userName" },
          })
        ).body,
      );
    },
    groupKey: (name) => name,
    async close() {
      client.close();
      await (await transport?.catch(() => undefined))?.close();
    },
    isNotFound: (err) => isHttpError(err, 404),
    isConflict: (err) => isHttpError(err, 409),

    readById: readUser,
    searchByEmployeeId: byExternalId,
    async searchByUsername(username) {
      const found = await listAll(
        usersPath,
        { filter: eqFilter(USERNAME_ATTRIBUTE, username) },
        DEFAULT_PAGE_SIZE,
      );
      // userName is case-insensitive (RFC 7643), whatever the service's filter does.
      return found.filter(
        (u) => String(field(u, USERNAME_ATTRIBUTE) ?? "").toLowerCase() === username.toLowerCase(),
      );
    },
    // Looked up by externalId, then by userName (see above).
    findsByUsername: true,
    async listAccounts(pageSize = DEFAULT_PAGE_SIZE) {
      let users: Json[];
      try {
        users = await listAll(usersPath, { filter: `${EMPLOYEE_ID_ATTRIBUTE} pr` }, pageSize);
      } catch (err) {
        // Services without the "pr" operator: list everything and keep those with an externalId.
        if (!isHttpError(err, 400)) throw err;
        users = await listAll(usersPath, {}, pageSize);
      }
      return users.filter((u) => externalIdOf(u) !== undefined);
    },
    idOf,
    employeeIdsOf: (user) => {
      const id = externalIdOf(user);
      return id === undefined ? [] : [id];
    },
    toAccount,
    idKey: (id) => id,

    async addAccount(a, password) {
      const body = buildResource({
        ...a.attributes,
        [USERNAME_ATTRIBUTE]: [a.username],
        [EMPLOYEE_ID_ATTRIBUTE]: [a.employeeId],
      });
      body.active = a.enabled;
      if (password !== undefined) body.password = password;
      const res = await client.request("POST", usersPath, { body });
      const id = toId(field(res.body, "id"));
      return id === undefined ? undefined : { id, entry: res.body as Json };
    },
    validateChanges(changes) {
      for (const path of Object.keys(changes)) {
        const p = parseScimPath(path);
        const core = !p.schema || p.schema.toLowerCase() === CORE_USER_SCHEMA.toLowerCase();
        if (core && NOT_UPDATABLE.has(p.attribute.toLowerCase())) {
          throw new Error(`updateAttributes: ${path} is managed by the connector and cannot be changed`);
        }
      }
    },
    async modifyAttributes(ref, user, changes) {
      await writeUser(ref.id, patchOperations(user, changes), () => applyChanges(user, changes));
    },
    async setEnabled(ref, user, enabled) {
      if ((toBoolean(field(user, "active")) ?? true) === enabled) return;
      await writeUser(ref.id, [{ op: "replace", path: "active", value: enabled }], () => ({
        ...user,
        [keyOf(user, "active") ?? "active"]: enabled,
      }));
    },
    async removeAccount(ref) {
      await client.request("DELETE", userPath(ref.id));
    },

    /** The Groups that have userId as a member. */
    async groupsOf(userId) {
      const filter = valuePathFilter("members", "value", userId);
      return (await listAll(groupsPath, { filter, attributes: "displayName" }, DEFAULT_PAGE_SIZE)).map(
        (g) => ({
          id: toId(field(g, "id"))!,
          displayName: String(field(g, "displayName") ?? ""),
        }),
      );
    },
    groupName: (g) => g.displayName,
    findGroup,
    async listGroups(pageSize = DEFAULT_PAGE_SIZE) {
      return (await listAll(groupsPath, { attributes: "displayName,members" }, pageSize)).map((g) => {
        const members = field(g, "members");
        return {
          name: String(field(g, "displayName") ?? ""),
          members: (Array.isArray(members) ? members : [])
            .map((m) => toId(field(m, "value")))
            .filter((id): id is string => id !== undefined),
        };
      });
    },
    async addMember(name, userId) {
      let group = await findGroup(name);
      if (!group) {
        try {
          await client.request("POST", groupsPath, {
            body: { schemas: [CORE_GROUP_SCHEMA], displayName: name, members: [{ value: userId }] },
          });
          log.info({ group: name }, "scim: created group");
          return;
        } catch (err) {
          if (!isHttpError(err, 409)) throw err;
          group = await findGroup(name); // created concurrently
          if (!group) throw err;
        }
      }
      try {
        await patchGroup(group, [{ op: "add", path: "members", value: [{ value: userId }] }]);
      } catch (err) {
        if (!isHttpError(err, 409)) throw err; // already a member
      }
    },
    async removeMember(group, userId) {
      try {
        await patchGroup(group, [{ op: "remove", path: valuePathFilter("members", "value", userId) }]);
      } catch (err) {
        // Not a member (any more): RFC 7644 noTarget, or the group went away.
        if (isHttpError(err, 404) || (isHttpError(err, 400) && err.scimType === "noTarget")) return;
        throw err;
      }
    },
    // Without PATCH membership cannot change: delete without removing memberships first.
    canChangeMembers: patchSupported,
  };

  return {
    ...createConnector(primitives, { logger: log, fence: opts.fence, scrubber: secrets }),
    managedAttributes: managed,
    discover: secrets.guard(discover),
  };
}
