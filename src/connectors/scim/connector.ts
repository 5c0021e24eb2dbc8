// The SCIM 2.0 connector (RFC 7643/7644): Users with the enterprise extension, Groups; the
// connector base (base/connector.ts: ownership guard, adoption, fencing, dangling members,
// membership inversion) over SCIM primitives.
//
// Ownership: a User is Roster's when its externalId equals the employeeId exactly (string compare;
// ids are opaque). Every write to a User first reads it (GET /Users/{id}). Accounts are looked up
// by externalId, then by userName, before creating; a POST that fails with 409 (uniqueness) is
// looked up again and adopted only when the existing User is owned (e.g. created by an earlier
// attempt whose answer was lost). A User with the same userName and another or no externalId is
// never taken over by a create: it is outside the managed scope (api.md: the operator touches only
// Users whose externalId matches), so createAccount fails with NotOwnedError. One without an
// externalId can be linked (Connector spec.adoption, linkAccount), which writes the externalId
// first; one with another externalId never is.
//
// Discovery: /ServiceProviderConfig decides PATCH (PatchOp, lowercase op names) or PUT of the full
// resource for attribute and enabled changes; /ResourceTypes gives the Users and Groups endpoints.
// When the ServiceProviderConfig cannot be read PATCH is assumed, and a 501/405 answer to a PATCH
// switches to PUT. Group membership is only ever changed with PATCH deltas (add members /
// remove members[value eq "id"]), never by PUT of the member list; without PATCH it fails.
//
// Groups are found by displayName (exact compare) and created when missing, once per name (the
// connector base's single-flight: displayName is not unique in SCIM, RFC 7643 section 8.7.1), with
// externalId `roster:<connector>:<name>` so that Roster's own groups are recognisable. Group ids are
// kept per connector (from look-ups, creations and every full listing; dropped on a 404). When
// several groups share a name, adds go to one picked the same way every time (Roster's own first,
// then the smallest id), removals go to all of them, and duplicateGroups() names them.
// The groups of a User are those its own `groups` attribute lists (direct ones, by the group ids
// known from the last listing or look-up) when the service fills it in, else the Groups that list
// it as a member (filter members[value eq "id"]).
//
// Listing (the full scan): only Users with an externalId (filter `externalId pr`; a service without
// `pr` lists every User and those are kept), as an app holds many users Roster has nothing to do
// with. The members without one of the groups the scan names (those Roster hands out) are read one
// by one with GET /Users/{id} (a 404: a dangling member, left out), so that members added by hand
// are seen at a cost per such member, not per User of the app.
//
// Requests: discovery is read once per connector client (a Connector change makes a new one) and
// again after DISCOVERY_MAX_AGE_MS; check() sends no probe while requests keep succeeding.
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
  /** The Connector's name: the groups Roster creates carry externalId `roster:<name>:<group>`. */
  name?: string;
};

export interface ScimConnector extends TargetConnector {
  /** Reads /ServiceProviderConfig and /ResourceTypes (for Connector status.capabilities). */
  discover(): Promise<ScimCapabilities>;
  /** The attribute paths Roster manages (for the planner). */
  readonly managedAttributes: string[];
}

type Json = Record<string, unknown>;
type Group = { id: string; displayName: string; externalId?: string };

/** How long discovered capabilities are used before they are read again. */
export const DISCOVERY_MAX_AGE_MS = 60 * 60_000;
/** check() probes the service when no request has succeeded for this long (or one failed since). */
export const PROBE_QUIET_MS = 5 * 60_000;

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
  let discoveredAt = 0;
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
    discoveredAt = Date.now();
    return capabilities;
  }

  /** The capabilities, discovered once (single-flight) and again once they are DISCOVERY_MAX_AGE_MS old. */
  async function known(): Promise<ScimCapabilities> {
    if (capabilities && Date.now() - discoveredAt < DISCOVERY_MAX_AGE_MS) return capabilities;
    discovering ??= discover().finally(() => (discovering = undefined));
    return discovering;
  }

  const userPath = (id: string) => `${usersPath}/${encodeURIComponent(id)}`;
  const groupPath = (id: string) => `${groupsPath}/${encodeURIComponent(id)}`;

  /** Every resource of a list request, page by page (startIndex/count) until totalResults. */
  async function listAll(path: string, query: Record<string, string>, pageSize: number): Promise<Json[]> {
    const all: Json[] = [];
    await listPages(path, query, pageSize, async (page) => void all.push(...page));
    return all;
  }

  /** The same, each page to `onPage` as it comes (a resource seen on an earlier page is left out). */
  async function listPages(
    path: string,
    query: Record<string, string>,
    pageSize: number,
    onPage: (resources: Json[]) => Promise<void>,
  ): Promise<void> {
    const caps = await known();
    const count = Math.max(1, Math.min(pageSize, caps.maxResults || pageSize));
    const seen = new Set<string>();
    let startIndex = 1;
    for (let page = 1; ; page++) {
      const { resources, totalResults } = readListResponse(
        (await client.request("GET", path, { query: { ...query, startIndex, count } })).body,
      );
      const fresh: Json[] = [];
      for (const r of resources) {
        const id = toId(field(r, "id"));
        if (id === undefined) throw new Error(`SCIM GET ${path}: a resource without id in the list`);
        if (seen.has(id)) continue;
        seen.add(id);
        fresh.push(r);
      }
      await onPage(fresh);
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

  // --- groups: ids kept per connector, duplicates noted ---------------------------------------

  const groupExternalId = (name: string) => `roster:${opts.name ?? "scim"}:${name}`;
  /** displayName -> the groups of that name, the one adds go to first. */
  const groupsByName = new Map<string, Group[]>();
  /** Group id -> displayName, for reading a User's `groups`. */
  const groupNames = new Map<string, string>();
  /** displayName -> how many groups have it, where more than one. */
  const duplicates = new Map<string, number>();

  const toGroup = (g: Json): Group => {
    const externalId = field(g, "externalId");
    return {
      id: toId(field(g, "id"))!,
      displayName: String(field(g, "displayName") ?? ""),
      ...(typeof externalId === "string" ? { externalId } : {}),
    };
  };

  /** Roster's own group first, then by id: every worker and every replica picks the same one. */
  const preferred = (a: Group, b: Group) =>
    Number(b.externalId === groupExternalId(b.displayName)) -
      Number(a.externalId === groupExternalId(a.displayName)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  function remember(name: string, found: Group[]): Group[] {
    const sorted = [...found].sort(preferred);
    if (sorted.length) groupsByName.set(name, sorted);
    else groupsByName.delete(name);
    for (const g of sorted) groupNames.set(g.id, g.displayName);
    if (sorted.length > 1) {
      if (duplicates.get(name) !== sorted.length)
        log.warn(
          { group: name, ids: sorted.map((g) => g.id) },
          `scim: ${sorted.length} groups are named ${JSON.stringify(name)}; adding to ${sorted[0]!.id}, removing from all`,
        );
      duplicates.set(name, sorted.length);
    } else duplicates.delete(name);
    return sorted;
  }

  function forgetGroup(group: Group): void {
    const kept = (groupsByName.get(group.displayName) ?? []).filter((g) => g.id !== group.id);
    if (kept.length) groupsByName.set(group.displayName, kept);
    else groupsByName.delete(group.displayName);
    groupNames.delete(group.id);
  }

  /** Every group of this name, looked up now (displayName compared exactly, whatever the filter did). */
  async function lookUpGroups(name: string): Promise<Group[]> {
    const found = (
      await listAll(
        groupsPath,
        { filter: eqFilter("displayName", name), attributes: "displayName,externalId" },
        50,
      )
    )
      .map(toGroup)
      .filter((g) => g.displayName === name);
    return remember(name, found);
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

  async function addMembers(name: string, userIds: string[]): Promise<boolean> {
    for (let lookedUp = false; ; lookedUp = true) {
      const cached = lookedUp ? undefined : groupsByName.get(name)?.[0];
      const group = cached ?? (await lookUpGroups(name))[0];
      if (!group) return false;
      try {
        await patchGroup(group, [{ op: "add", path: "members", value: userIds.map((value) => ({ value })) }]);
        return true;
      } catch (err) {
        // Already a member; of several, the caller adds them one by one.
        if (isHttpError(err, 409) && userIds.length === 1) return true;
        if (!isHttpError(err, 404)) throw err;
        forgetGroup(group); // deleted outside Roster: look again
        if (lookedUp) return false;
      }
    }
  }

  async function patchGroup(group: Group, ops: PatchOperation[]): Promise<void> {
    if (!(await patchSupported())) {
      throw new Error(
        `SCIM service at ${spec.baseURL} does not support PATCH; group membership is only changed with PATCH deltas`,
      );
    }
    // Not `excludedAttributes=members`, which would keep the answer small: scimmy 1.3.5 applies it
    // to the Group it patches and drops every other member. The answer is drained unread instead.
    await client.request("PATCH", groupPath(group.id), {
      body: { schemas: [PATCH_OP_SCHEMA], Operations: ops },
      discardSuccessBody: true,
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
      // Requests that keep succeeding prove reachability and the token: no probe of its own then.
      const { lastSuccessAt, lastFailureAt } = client.health();
      if (lastSuccessAt > lastFailureAt && Date.now() - lastSuccessAt < PROBE_QUIET_MS) return;
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
    async searchByEmail(email) {
      const found = await listAll(usersPath, { filter: eqFilter("emails.value", email) }, DEFAULT_PAGE_SIZE);
      // The primary email (the first, when none is marked primary), compared case-insensitively.
      return found.filter((u) => primaryEmail(u)?.toLowerCase() === email.toLowerCase());
    },
    async writeOwnershipKey(id, _user, employeeId) {
      if (!(await patchSupported()))
        throw new Error(`SCIM service at ${spec.baseURL} does not support PATCH; accounts cannot be linked`);
      await client.request("PATCH", userPath(id), {
        body: {
          schemas: [PATCH_OP_SCHEMA],
          Operations: [{ op: "add", path: "externalId", value: employeeId }],
        },
      });
    },
    // Looked up by externalId, then by userName (see above).
    findsByUsername: true,
    // Only Users with an externalId are listed (see above); hand-added members are read by id.
    listsOwnedOnly: true,
    async listAccounts(pageSize = DEFAULT_PAGE_SIZE, onPage) {
      const owned = (users: Json[]) => onPage(users.filter((u) => externalIdOf(u) !== undefined));
      let delivered = 0;
      try {
        await listPages(usersPath, { filter: `${EMPLOYEE_ID_ATTRIBUTE} pr` }, pageSize, (users) => {
          delivered++;
          return owned(users);
        });
      } catch (err) {
        // Services without the "pr" operator (refused on the first page): list everything and
        // keep those with an externalId.
        if (!isHttpError(err, 400) || delivered > 0) throw err;
        await listPages(usersPath, {}, pageSize, owned);
      }
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
    async setPassword(ref, password) {
      // Only needed when a create's password did not take (SCIM creates carry it in the POST).
      if (!(await patchSupported()))
        throw new Error(`SCIM service at ${spec.baseURL} does not support PATCH; the password cannot be set`);
      await client.request("PATCH", userPath(ref.id), {
        body: {
          schemas: [PATCH_OP_SCHEMA],
          Operations: [{ op: "replace", path: "password", value: password }],
        },
      });
    },
    async removeAccount(ref) {
      await client.request("DELETE", userPath(ref.id));
    },

    /** The Groups that have userId as a member. */
    async groupsOf(userId) {
      const filter = valuePathFilter("members", "value", userId);
      return (
        await listAll(groupsPath, { filter, attributes: "displayName,externalId" }, DEFAULT_PAGE_SIZE)
      ).map(toGroup);
    },
    groupsFromEntry(user) {
      // Only a non-empty list counts: services that leave `groups` out (RFC 7643 makes it
      // optional) cannot be told from a User in no group, so those are looked up.
      const listed = field(user, "groups");
      if (!Array.isArray(listed) || listed.length === 0) return undefined;
      const names = new Set<string>();
      for (const g of listed) {
        if (String(field(g, "type") ?? "direct").toLowerCase() === "indirect") continue;
        // By id, not by `display` (a label the service makes up): a group not known by id is asked.
        const id = toId(field(g, "value"));
        const name = id === undefined ? undefined : groupNames.get(id);
        if (name === undefined) return undefined;
        names.add(name);
      }
      return [...names].sort();
    },
    groupName: (g) => g.displayName,
    findGroups: lookUpGroups,
    async listGroups(pageSize = DEFAULT_PAGE_SIZE) {
      const listed = await listAll(groupsPath, { attributes: "displayName,externalId,members" }, pageSize);
      // The full listing is the best knowledge of group ids and of duplicates there is.
      const byName = new Map<string, Group[]>();
      for (const g of listed.map(toGroup))
        byName.set(g.displayName, [...(byName.get(g.displayName) ?? []), g]);
      groupsByName.clear();
      groupNames.clear();
      duplicates.clear();
      for (const [name, found] of byName) remember(name, found);
      return listed.map((g) => {
        const members = field(g, "members");
        return {
          name: String(field(g, "displayName") ?? ""),
          members: (Array.isArray(members) ? members : [])
            // A nested group is no User (RFC 7643 section 4.2: members may be Groups).
            .filter((m) => String(field(m, "type") ?? "").toLowerCase() !== "group")
            .map((m) => toId(field(m, "value")))
            .filter((id): id is string => id !== undefined),
        };
      });
    },
    addMember: (name, userId) => addMembers(name, [userId]),
    addMembers,
    async createGroup(name, userId) {
      const res = await client.request("POST", groupsPath, {
        body: {
          schemas: [CORE_GROUP_SCHEMA],
          displayName: name,
          externalId: groupExternalId(name),
          members: [{ value: userId }],
        },
      });
      const id = toId(field(res.body, "id"));
      if (id !== undefined)
        remember(name, [...(groupsByName.get(name) ?? []), { ...toGroup(res.body as Json), id }]);
    },
    duplicateGroups: () => [...duplicates.keys()].sort(),
    async removeMember(group, userId) {
      try {
        await patchGroup(group, [{ op: "remove", path: valuePathFilter("members", "value", userId) }]);
      } catch (err) {
        // Not a member (any more): RFC 7644 noTarget, or the group went away.
        if (isHttpError(err, 404)) return forgetGroup(group);
        if (isHttpError(err, 400) && err.scimType === "noTarget") return;
        throw err;
      }
    },
    // One PATCH with a remove per member; a member that is none fails it all (noTarget) and the
    // base goes one by one.
    removeMembers: (group, userIds) =>
      patchGroup(
        group,
        userIds.map((id) => ({ op: "remove", path: valuePathFilter("members", "value", id) })),
      ),
    // Without PATCH membership cannot change: delete without removing memberships first.
    canChangeMembers: patchSupported,
  };

  return {
    ...createConnector(primitives, { logger: log, fence: opts.fence, scrubber: secrets }),
    managedAttributes: managed,
    discover: secrets.guard(known),
  };
}

/** A User's primary email address: the one marked primary, else the first. */
function primaryEmail(user: Json): string | undefined {
  const emails = field(user, "emails");
  if (!Array.isArray(emails)) return undefined;
  const entries = emails.filter((e): e is Json => typeof e === "object" && e !== null);
  const chosen = entries.find((e) => field(e, "primary") === true) ?? entries[0];
  const value = chosen && field(chosen, "value");
  return typeof value === "string" ? value : undefined;
}
