// HTTP for the SCIM connector: bearer token, request pacing, bounded retries.
//
// - Every attempt takes a token from one TokenBucket per connector (requestsPerSecond).
// - 429: waits for Retry-After (delta-seconds or HTTP date; exponential backoff when absent) and
//   pauses the whole bucket until then; a Retry-After beyond maxRetryAfterMs is not waited for.
// - 5xx (except 501) and network errors (refused, reset, dropped, timed out): retried with
//   exponential backoff and full jitter.
// - After `attempts` tries, or for a long Retry-After, ScimUnavailableError: the controller
//   requeues and tries again later. Any other 4xx is thrown at once as ScimHttpError with the
//   service's scimType and detail.
// - Every attempt of a write (non-GET) checks the fence of the connector write in progress right
//   before it is sent (base/fence.ts): waiting for a token or a retry may outlast the leader Lease.
// The token and request bodies (which may carry a password) are never logged nor put in errors.
import { checkFence } from "../base/fence.ts";
import type { ConnectorLogger } from "../types.ts";
import { readError } from "./dialect.ts";
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, TokenBucket, type RetryTiming } from "./ratelimit.ts";

/** The service answered with an error status that retrying does not fix. */
export class ScimHttpError extends Error {
  override name = "ScimHttpError";
  readonly status: number;
  readonly scimType: string | undefined;
  readonly detail: string | undefined;
  constructor(method: string, path: string, status: number, body: unknown) {
    const { scimType, detail } = readError(body);
    super(
      `SCIM ${method} ${path}: HTTP ${status}${scimType ? ` (${scimType})` : ""}${detail ? `: ${detail}` : ""}`,
    );
    this.status = status;
    this.scimType = scimType;
    this.detail = detail;
  }
}

/** The service is unreachable, failing or throttling; try again later. */
export class ScimUnavailableError extends Error {
  override name = "ScimUnavailableError";
  /** How long the service asked to wait, when it did. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

export const isHttpError = (err: unknown, ...statuses: number[]): err is ScimHttpError =>
  err instanceof ScimHttpError && (statuses.length === 0 || statuses.includes(err.status));

export type ScimRequest = {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** The caller does not read a success's body: it is drained, not parsed (error bodies still are). */
  discardSuccessBody?: boolean;
};

export type ScimResponse = { status: number; body: unknown };

export type ScimClientOptions = {
  baseURL: string;
  token: string;
  requestsPerSecond: number;
  fetch: () => Promise<typeof fetch>;
  logger: ConnectorLogger;
  timeoutMs?: number;
  retry?: Partial<RetryTiming>;
};

export type ScimClient = {
  request(method: string, path: string, req?: ScimRequest): Promise<ScimResponse>;
  readonly bucket: TokenBucket;
  /**
   * When (Date.now()) a request last succeeded, and when one last showed the service unreachable,
   * failing, throttling or refusing the token (network error, 5xx, 429, 401, 403); 0 for never.
   */
  health(): { lastSuccessAt: number; lastFailureAt: number };
  close(): void;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `?a=1&b=x%20y`, spaces as %20 (some services do not read "+" as a space). */
function queryString(query: ScimRequest["query"]): string {
  const parts = Object.entries(query ?? {})
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${err.message} (${detail})` : err.message;
}

function parseBody(text: string): unknown {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { detail: text.slice(0, 500) };
  }
}

export const PACING_MARGIN = 0.9;

const DISCOVERY_PATH = /^\/(ServiceProviderConfig|ResourceTypes|Schemas)(\/|$)/;

export function createScimClient(opts: ScimClientOptions): ScimClient {
  const base = opts.baseURL.replace(/\/+$/, "");
  const retry: RetryTiming = { ...DEFAULT_RETRY, ...opts.retry };
  const attempts = Math.max(1, retry.attempts);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // Paced a little under the limit: requests that leave evenly spaced can still arrive bunched
  // (network, event loop), and the target must never see more than requestsPerSecond.
  const bucket = new TokenBucket(opts.requestsPerSecond * PACING_MARGIN);
  const log = opts.logger;
  let closed = false;
  let lastSuccessAt = 0;
  let lastFailureAt = 0;

  async function request(method: string, path: string, req: ScimRequest = {}): Promise<ScimResponse> {
    const url = `${base}${path}${queryString(req.query)}`;
    const headers: Record<string, string> = {
      Accept: "application/scim+json, application/json",
      Authorization: `Bearer ${opts.token}`,
    };
    if (req.body !== undefined) headers["Content-Type"] = "application/scim+json";
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
    const fetchFn = await opts.fetch();
    for (let attempt = 1; ; attempt++) {
      if (closed) throw new Error("scim connector is closed");
      await bucket.take();
      // After pacing and any backoff: check again that this replica may still write.
      if (method !== "GET") checkFence();
      const started = Date.now();
      let status: number;
      let body: unknown;
      let retryAfter: string | null;
      try {
        const res = await fetchFn(url, {
          method,
          headers,
          ...(payload !== undefined ? { body: payload } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.status;
        retryAfter = res.headers.get("retry-after");
        // A group PATCH may be answered with the whole Group, members included: parsing it on every
        // change would grow with the group.
        if (req.discardSuccessBody && status >= 200 && status < 300) await res.arrayBuffer();
        else body = parseBody(await res.text());
      } catch (err) {
        lastFailureAt = Date.now();
        if (attempt >= attempts || closed) {
          throw new ScimUnavailableError(
            `SCIM ${method} ${path}: ${describe(err)}; gave up after ${attempt} tries, will retry later`,
            { cause: err },
          );
        }
        const wait = backoffDelay(attempt, retry);
        log.info(
          { method, path, attempt, waitMs: wait, err: describe(err) },
          "scim: request failed, retrying",
        );
        await sleep(wait);
        continue;
      }
      log.debug({ method, path, status, ms: Date.now() - started }, "scim: request");
      if (status >= 200 && status < 300) {
        // Discovery endpoints may be anonymous: they prove nothing about the token.
        if (!DISCOVERY_PATH.test(path)) lastSuccessAt = Date.now();
        return { status, body };
      }
      if (status === 401 || status === 403 || status === 429 || status >= 500) lastFailureAt = Date.now();
      if (status === 429) {
        const asked = parseRetryAfter(retryAfter);
        if (asked !== undefined && asked > retry.maxRetryAfterMs) {
          throw new ScimUnavailableError(
            `SCIM ${method} ${path}: rate limited, asked to retry after ${Math.ceil(asked / 1000)} s; will retry later`,
            { retryAfterMs: asked },
          );
        }
        if (attempt >= attempts) {
          throw new ScimUnavailableError(
            `SCIM ${method} ${path}: still rate limited after ${attempt} tries; will retry later`,
            asked === undefined ? {} : { retryAfterMs: asked },
          );
        }
        const wait = asked ?? backoffDelay(attempt, retry);
        log.info({ method, path, attempt, waitMs: wait }, "scim: rate limited (429), waiting");
        bucket.pauseUntil(Date.now() + wait);
        continue;
      }
      if (status >= 500 && status !== 501) {
        const err = new ScimHttpError(method, path, status, body);
        if (attempt >= attempts) {
          throw new ScimUnavailableError(`${err.message}; gave up after ${attempt} tries, will retry later`, {
            cause: err,
          });
        }
        const wait = backoffDelay(attempt, retry);
        log.info({ method, path, attempt, status, waitMs: wait }, "scim: server error, retrying");
        await sleep(wait);
        continue;
      }
      throw new ScimHttpError(method, path, status, body);
    }
  }

  return {
    request,
    bucket,
    health: () => ({ lastSuccessAt, lastFailureAt }),
    close() {
      closed = true;
    },
  };
}
