// Structured JSON logs (pino). Secrets must never reach a log line: credentials pass through Connector
// specs, Secrets and HTTP headers, so every secret-ish key is censored, whatever logs it.
import { hostname } from "node:os";
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";

export type { Logger } from "pino";

const SECRET_KEYS = [
  "password",
  "bindPassword",
  "newPassword",
  "passwd",
  // LDAP password attributes, should an entry or a modification be logged.
  "userPassword",
  "unicodePwd",
  "token",
  "accessToken",
  "refreshToken",
  "bearerToken",
  "apiKey",
  "secret",
  "clientSecret",
  "credential",
  "credentials",
  "privateKey",
  "authorization",
  "Authorization",
  "cookie",
  "Cookie",
  "stringData",
  // Header names as Node and fetch spell them, and a TLS Secret's private key.
  "x-api-key",
  "X-Api-Key",
  "proxy-authorization",
  "Proxy-Authorization",
  "set-cookie",
  "tls.key",
];

const SECRET_KEY_SET: ReadonlySet<string> = new Set(SECRET_KEYS);
const CENSOR = "[REDACTED]";
/** Deeper than any line of ours; stops the walk on cycles. */
const MAX_DEPTH = 8;

/**
 * `value` with the value of every secret-ish key censored, at any depth; `data` (a Secret's payload)
 * only below the top level, where it is a Secret's or a request's body rather than a log field of
 * our own. Copies only the objects it changes, and leaves objects with their own JSON form (Dates,
 * Buffers) alone. Values inside messages are not its business: the connectors scrub their secrets
 * out of errors and messages themselves.
 *
 * Not pino's `redact`: its wildcard paths (every key at four depths) cost about 400 µs a line, and
 * every change's audit line went through them; this walk costs a few µs.
 */
function censorSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((item, i) => {
      const next = censorSecrets(item, depth + 1);
      if (next !== item) (out ??= [...value])[i] = next;
    });
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const secret = SECRET_KEY_SET.has(key) || (key === "data" && depth > 0);
    const next = secret ? CENSOR : censorSecrets(item, depth + 1);
    if (next === item) continue;
    out ??= copyOf(value);
    Object.defineProperty(out, key, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return out ?? value;
}

/** A copy with the same prototype and own properties, so that an Error stays one, message and all. */
function copyOf(value: object): Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === Object.prototype || proto === null) return { ...value };
  const copy = Object.create(proto, Object.getOwnPropertyDescriptors(value)) as Record<string, unknown>;
  // V8's `stack` accessor reads the original's internal slot, which the copy has not.
  if (value instanceof Error)
    Object.defineProperty(copy, "stack", { value: value.stack, writable: true, configurable: true });
  return copy;
}

const censorFields = (fields: Record<string, unknown>) => censorSecrets(fields) as Record<string, unknown>;

/**
 * `logger` with its children's bindings censored too: pino passes only the root's bindings through
 * `formatters.bindings`. Children inherit the wrapped `child`, so grandchildren are covered.
 */
function censoringChildren(logger: Logger): Logger {
  const pinoChild = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return pinoChild.call(this, censorFields(bindings), options);
  } as Logger["child"];
  return logger;
}

export type LoggerOptions = {
  /** Default: $LOG_LEVEL or "info". */
  level?: LevelWithSilent;
  /** Bound as `name` on every line (e.g. "roster"). */
  name?: string;
  /** Where lines go; default stdout. Tests pass a stream to read them back. */
  destination?: DestinationStream;
};

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  const logger = pino(
    {
      name: options.name ?? "roster",
      level,
      // ISO time and the level as a word read better in `kubectl logs` than epoch ms and numbers.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: censorFields, bindings: censorFields },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    options.destination,
  );
  return censoringChildren(logger);
}

/**
 * The audit trail's logger (src/observe/audit.ts): name "roster.audit", `audit: true` on every
 * line, on the same stream as `logger` and redacted the same way, always at level info whatever
 * --log-level says: a trail that a warn level silences is no trail. Not a child of `logger`: a
 * child keeps its parent's `name` binding, so a renamed child writes `name` twice. Its lines carry
 * their own `time` (when the change was confirmed), so pino adds none.
 */
export function createAuditLogger(logger: Logger): Logger {
  const stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
  const trail = pino(
    {
      name: "roster.audit",
      level: "info",
      base: { pid: process.pid, hostname: hostname(), audit: true },
      timestamp: false,
      formatters: { level: (label) => ({ level: label }), log: censorFields, bindings: censorFields },
    },
    stream,
  );
  return censoringChildren(trail);
}

/** A logger that drops everything: the default for library code when the caller passes none. */
export const silentLogger: Logger = pino({ level: "silent" });
