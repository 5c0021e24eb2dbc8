// Defence in depth for credentials: no text that leaves a connector (an error, a log line) carries
// a secret it was given (bind password, bearer token, an account's initial password, what of a CA
// bundle is not a certificate), whatever a library or a target put into a message (an error
// quoting a header it could not build, a service echoing the request). The checks in credentials.ts keep unusable values from
// being used at all; this catches what they cannot foresee.
//
// Scrubbing replaces every occurrence of a secret, and every run of text made of pieces of at least
// PIECE characters of it, with "[redacted]"; also of its base64, JSON-escaped and URL-encoded
// forms. Secrets shorter than MIN_SECRET are left alone: replacing every "abc" would garble every
// message, and so short a value protects nothing. Forms longer than 64 KiB are only replaced whole
// (the credential checks refuse such values long before).
import type { ConnectorLogger } from "../types.ts";

export const REDACTED = "[redacted]";
/** The shortest piece of a secret that is redacted wherever it appears. */
export const PIECE = 12;
/** Shorter secrets are not scrubbed. */
export const MIN_SECRET = 4;
/** Longer forms are replaced only whole (indexing every piece would take too much memory). */
const MAX_INDEXED = 64 * 1024;

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * What of a CA bundle is to be kept secret: everything but its certificates, which are public
 * (caSecretRef may point at a key that holds a private key too, or at nothing like a CA at all).
 */
export function nonCertificateText(ca: string | undefined): string | undefined {
  const rest = ca?.replace(CERTIFICATE, "").trim();
  return rest ? rest : undefined;
}

export interface Scrubber {
  /** `text` with every secret (or piece of one) replaced by "[redacted]". */
  text(text: string): string;
  /**
   * The error with its message, stack, string properties and causes scrubbed, in place (so its
   * class, and what callers tell from it, stays); anything else thrown is returned scrubbed.
   */
  error(error: unknown): unknown;
  /** A scrubber for these secrets and some more (e.g. an initial password, for one call). */
  with(more: readonly (string | undefined)[]): Scrubber;
  /** A logger that scrubs every field and message before passing it on. */
  logger(logger: ConnectorLogger): ConnectorLogger;
  /** `fn`, whose errors (thrown or rejected) are scrubbed before they reach the caller. */
  guard<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
}

/** The forms in which a value may show up in a message. */
function forms(secret: string): string[] {
  const out = new Set([secret, secret.trim(), Buffer.from(secret, "utf8").toString("base64")]);
  out.add(JSON.stringify(secret).slice(1, -1));
  try {
    out.add(encodeURIComponent(secret));
  } catch {
    // a lone surrogate: not URL-encodable, so it cannot show up URL-encoded either
  }
  return [...out].filter((f) => f.length >= MIN_SECRET);
}

/** Replaces, in `text`, every secret shorter than PIECE and every run of PIECE-long pieces. */
function scrubWith(text: string, whole: string[], pieces: Set<string>): string {
  let out = text;
  for (const s of whole) if (out.includes(s)) out = out.split(s).join(REDACTED);
  if (pieces.size === 0 || out.length < PIECE) return out;
  // Mark every character covered by a piece, then replace each covered run once.
  const covered = new Uint8Array(out.length);
  let any = false;
  for (let i = 0; i + PIECE <= out.length; i++) {
    if (pieces.has(out.slice(i, i + PIECE))) {
      covered.fill(1, i, i + PIECE);
      any = true;
    }
  }
  if (!any) return out;
  let result = "";
  for (let i = 0; i < out.length;) {
    if (!covered[i]) {
      result += out[i];
      i++;
      continue;
    }
    while (i < out.length && covered[i]) i++;
    result += REDACTED;
  }
  return result;
}

function scrubValue(value: unknown, text: (s: string) => string, seen: Set<object>, depth: number): unknown {
  if (typeof value === "string") return text(value);
  if (value === null || typeof value !== "object" || depth > 6 || seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, text, seen, depth + 1));
  if (value instanceof Error) return scrubErrorInPlace(value, text, seen, depth);
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value; // a class instance: leave it
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [text(k), scrubValue(v, text, seen, depth + 1)]),
  );
}

function scrubErrorInPlace(
  error: Error,
  text: (s: string) => string,
  seen: Set<object>,
  depth: number,
): Error {
  const names = new Set<string | symbol>(["message", "stack", ...Object.keys(error)]);
  if ("cause" in error) names.add("cause");
  if (error instanceof AggregateError) names.add("errors");
  for (const name of names) {
    let current: unknown;
    try {
      current = (error as unknown as Record<string | symbol, unknown>)[name];
    } catch {
      continue;
    }
    const next = scrubValue(current, text, seen, depth + 1);
    if (next === current) continue;
    try {
      Object.defineProperty(error, name, { value: next, writable: true, configurable: true });
    } catch {
      // A property that cannot be changed: give up on this error, keep nothing of it.
      const replacement = new Error(text(String(error.message)));
      replacement.name = error.name;
      return replacement;
    }
  }
  return error;
}

/** A Scrubber for these secrets (undefined and too short ones are ignored). */
export function scrubberFor(secrets: readonly (string | undefined)[]): Scrubber {
  const values = [...new Set(secrets.filter((s): s is string => typeof s === "string"))];
  let built: { whole: string[]; pieces: Set<string> } | undefined;
  const build = () => {
    if (built) return built;
    const all = [...new Set(values.flatMap(forms))];
    const pieces = new Set<string>();
    for (const f of all) {
      if (f.length > MAX_INDEXED) continue;
      for (let i = 0; i + PIECE <= f.length; i++) pieces.add(f.slice(i, i + PIECE));
    }
    // Longest first: a secret that contains another is replaced whole.
    const whole = all
      .filter((f) => f.length < PIECE || f.length > MAX_INDEXED)
      .sort((a, b) => b.length - a.length);
    built = { whole, pieces };
    return built;
  };
  const text = (s: string) => (values.length === 0 ? s : scrubWith(s, build().whole, build().pieces));

  const scrubber: Scrubber = {
    text,
    error(error) {
      if (values.length === 0) return error;
      if (error instanceof Error) return scrubErrorInPlace(error, text, new Set(), 0);
      return scrubValue(error, text, new Set(), 0);
    },
    with(more) {
      const extra = more.filter((s): s is string => typeof s === "string" && !values.includes(s));
      return extra.length === 0 ? scrubber : scrubberFor([...values, ...extra]);
    },
    logger(logger) {
      if (values.length === 0) return logger;
      const clean = (obj: object) => scrubValue(obj, text, new Set(), 0) as object;
      return {
        debug: (obj, msg) => logger.debug(clean(obj), msg === undefined ? msg : text(msg)),
        info: (obj, msg) => logger.info(clean(obj), msg === undefined ? msg : text(msg)),
        warn: (obj, msg) => logger.warn(clean(obj), msg === undefined ? msg : text(msg)),
      };
    },
    guard(fn) {
      return (...args) => {
        let result;
        try {
          result = fn(...args);
        } catch (error) {
          throw scrubber.error(error);
        }
        if (result instanceof Promise) {
          return result.catch((error: unknown) => {
            throw scrubber.error(error);
          }) as typeof result;
        }
        return result;
      };
    },
  };
  return scrubber;
}
