// The LDAP connection for the connector, on ldapts: connect, StartTLS, bind, reconnect once.
//
// One bound connection, re-established (connect, StartTLS, bind) before an operation when it was
// lost, and an operation that fails because the connection dropped is retried once on a fresh one.
// ldapts would silently reconnect without binding; each ldapts Client is limited to one socket
// instead, so no operation ever runs unauthenticated. The bind password is never logged.
//
// Every request sent during a write (add, modify, delete, modifyDN, extended operations such as
// Password Modify) checks the fence of the write in progress right before its bytes go to the
// socket (base/fence.ts): a reconnect, or the promise continuations queued ahead of it, may have
// taken a while since the base checked it.
import { BusyError, Client, ResultCodeError, UnavailableError } from "ldapts";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { checkFence } from "../base/fence.ts";
import type { ConnectorLogger } from "../types.ts";
import type { LdapSettings } from "./settings.ts";

export type LdapClientOptions = {
  /** PEM CA bundle for ldaps:// and StartTLS (from caSecretRef). */
  ca?: string;
  logger: ConnectorLogger;
  /** Per-operation timeout (default 30 s) and connect timeout (default 10 s). */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /**
   * How long a write may wait for its answer (default: timeoutMs). ldapts has one timeout for
   * every operation, and a paged read of a large directory needs long; a write that outlives the
   * leader's lease margin could land after another replica took over, so its connection is
   * dropped instead (and the write tried once more on a fresh one, through the fence again).
   */
  writeTimeoutMs?: number;
};

export type LdapClient = {
  /** Runs fn on a bound connection; when the connection is lost, reconnects and runs it once more. */
  run<T>(what: string, fn: (c: Client) => Promise<T>): Promise<T>;
  close(): Promise<void>;
};

class ConnectionLostError extends Error {
  override name = "ConnectionLostError";
}

/** Wraps a connect function so that it opens one socket; later calls fail as a lost connection. */
function onlyOnce<F extends (...args: never[]) => unknown>(connectFn: F): F {
  let used = false;
  return ((...args: Parameters<F>) => {
    if (used) throw new ConnectionLostError("ldap: connection lost (not reconnecting this client)");
    used = true;
    return connectFn(...args);
  }) as F;
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
]);

/** Errors after which a fresh connection may succeed (not LDAP result codes, not our own errors). */
function isConnectionError(err: unknown): boolean {
  if (err instanceof UnavailableError || err instanceof BusyError || err instanceof ConnectionLostError)
    return true;
  if (!(err instanceof Error) || err instanceof ResultCodeError) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && NETWORK_CODES.has(code)) return true;
  return /connection closed|socket error|connection timeout|timed out|connection not established/i.test(
    err.message,
  );
}

const WRITES = ["add", "modify", "del", "modifyDN", "exop"] as const;

/**
 * Makes every request of `c` check the fence of the write in progress (if any) as it is sent, and
 * drops the connection (`abandon`) when a write's answer takes longer than `timeoutMs`.
 */
function fenceWrites(c: Client, timeoutMs: number | undefined, abandon: () => void): void {
  // ldapts's Client._send encodes a request and writes it to the socket in one synchronous call,
  // after every await of the public method: the last moment a request can still be stopped.
  const transport = c as unknown as { _send?: (message: unknown) => Promise<unknown> };
  const send = transport._send?.bind(c);
  if (!send)
    throw new Error("ldapts Client has no _send: the write fence cannot check requests as they leave");
  transport._send = (message) => {
    checkFence();
    return send(message);
  };
  for (const method of WRITES) {
    const original = c[method].bind(c) as (...args: unknown[]) => Promise<unknown>;
    (c as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const sent = original(...args);
      if (timeoutMs === undefined) return sent;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abandon();
          reject(
            new Error(`ldap: ${method} not answered within ${timeoutMs} ms; connection timed out and closed`),
          );
        }, timeoutMs);
      });
      return Promise.race([sent, late]).finally(() => clearTimeout(timer));
    };
  }
}

export function createLdapClient(
  spec: LdapSettings,
  bindPassword: string,
  opts: LdapClientOptions,
): LdapClient {
  const log = opts.logger;
  const tls: ConnectionOptions = {
    ...(opts.ca ? { ca: [opts.ca] } : {}),
    rejectUnauthorized: !spec.insecureSkipTLSVerify,
  };
  const secureURL = spec.url.toLowerCase().startsWith("ldaps://");

  let client: Client | undefined;
  let connecting: Promise<Client> | undefined;
  let closed = false;

  const discard = (c: Client | undefined) => {
    if (!c) return;
    if (client === c) client = undefined;
    c.unbind().catch(() => {});
  };

  async function connect(): Promise<Client> {
    const c = new Client({
      url: spec.url,
      timeout: opts.timeoutMs ?? 30_000,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      ...(secureURL ? { tlsOptions: tls } : {}),
      // One socket per Client: ldapts would otherwise reconnect transparently without binding
      // (and without StartTLS), and the next operation would run anonymously.
      createConnection: onlyOnce(netConnect),
      createSecureConnection: onlyOnce(tlsConnect),
    });
    try {
      if (spec.startTLS && !secureURL) await c.startTLS({ ...tls });
      await c.bind(spec.bindDN, bindPassword);
    } catch (err) {
      await c.unbind().catch(() => {});
      throw err;
    }
    log.debug({ url: spec.url, bindDN: spec.bindDN }, "ldap: connected and bound");
    fenceWrites(c, opts.writeTimeoutMs, () => discard(c));
    return c;
  }

  async function getClient(): Promise<Client> {
    if (closed) throw new Error("ldap connector is closed");
    if (client?.isBound) return client;
    discard(client);
    connecting ??= connect().finally(() => (connecting = undefined));
    client = await connecting;
    return client;
  }

  return {
    async run<T>(what: string, fn: (c: Client) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        let c: Client | undefined;
        try {
          c = await getClient();
          const result = await fn(c);
          if (!c.isBound) throw new ConnectionLostError(`ldap: connection lost during ${what}`);
          return result;
        } catch (err) {
          if (attempt >= 2 || closed || !isConnectionError(err)) throw err;
          discard(c);
          log.info({ op: what, err: (err as Error).message }, "ldap: connection lost, reconnecting");
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },

    async close() {
      closed = true;
      const c = client ?? (await connecting?.catch(() => undefined));
      client = undefined;
      await c?.unbind().catch(() => {});
    },
  };
}
