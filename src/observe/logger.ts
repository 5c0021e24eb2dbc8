// Structured JSON logs (pino). Secrets must never reach a log line: credentials pass through Connector
// specs, Secrets and HTTP headers, so every secret-ish key is censored by path, whatever logs it.
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

/** `key` as a path step: `.key`, or `["x-api-key"]` for keys that are no identifier. */
const step = (key: string) => (/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

/**
 * Paths censored in every log line. pino's wildcards match one level, so keys are listed at the top
 * level and up to three levels down; `data` (a Secret's payload) only below the top level, where it
 * is a Secret's or a request's body rather than a log field of our own. Values inside messages are
 * not a path's business: the connectors scrub their secrets out of errors and messages themselves.
 */
export const REDACT_PATHS: string[] = [
  ...["", "*", "*.*", "*.*.*"].flatMap((prefix) =>
    SECRET_KEYS.map((k) => `${prefix}${step(k)}`.replace(/^\./, "")),
  ),
  "*.data",
  "*.*.data",
];

export type LoggerOptions = {
  /** Default: $LOG_LEVEL or "info". */
  level?: LevelWithSilent;
  /** Bound as `name` on every line (e.g. "roster"). */
  name?: string;
  /** Where lines go; default stdout. Tests pass a stream to read them back. */
  destination?: DestinationStream;
  /** Extra paths to censor. */
  redact?: string[];
};

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  return pino(
    {
      name: options.name ?? "roster",
      level,
      redact: { paths: [...REDACT_PATHS, ...(options.redact ?? [])], censor: "[REDACTED]" },
      // ISO time and the level as a word read better in `kubectl logs` than epoch ms and numbers.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    options.destination,
  );
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
  return pino(
    {
      name: "roster.audit",
      level: "info",
      base: { pid: process.pid, hostname: hostname(), audit: true },
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** A logger that drops everything: the default for library code when the caller passes none. */
export const silentLogger: Logger = pino({ level: "silent" });
