// Pure helpers for LDAP string representations: DN values (RFC 4514) and filter values (RFC 4515).
//
// ldapts's DN/RDN classes quote values with leading or trailing spaces ("..." is RFC 2253 only,
// not valid RFC 4514) and do not escape NUL, so DN escaping and parsing live here. Filter escaping
// uses ldapts's Filter.escape, which is correct (RFC 4515: * ( ) \ NUL; UTF-8 passes through).
import { Filter } from "ldapts";

/**
 * Escapes one attribute value for use in a DN (RFC 4514 section 2.4): `"+,;<>\` and `=` anywhere,
 * '#' and space at the start, space at the end (as "\ "), NUL as \00. Other characters, including
 * non-ASCII, are kept as UTF-8.
 */
export function escapeDNValue(value: string): string {
  let out = "";
  const chars = [...value];
  chars.forEach((ch, i) => {
    if (ch === "\0") out += "\\00";
    else if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`;
    else if (ch === "#" && i === 0) out += "\\#";
    else if (ch === " " && (i === 0 || i === chars.length - 1)) out += "\\ ";
    else out += ch;
  });
  return out;
}

/** `<type>=<escaped value>,<parent>` (or without parent). */
export function childDN(type: string, value: string, parent?: string): string {
  const rdn = `${type}=${escapeDNValue(value)}`;
  return parent ? `${rdn},${parent}` : rdn;
}

/** Escapes a value for use inside a filter string (RFC 4515): `*`, `(`, `)`, `\`, NUL as \XX. */
export function escapeFilterValue(value: string): string {
  return Filter.escape(value);
}

/** `(<attribute>=<escaped value>)`. */
export function equalityFilter(attribute: string, value: string): string {
  return `(${attribute}=${escapeFilterValue(value)})`;
}

/**
 * A comparison key approximating caseIgnoreMatch (RFC 4517/4518), the matching rule of cn, uid and
 * most naming attributes: Unicode NFKC, case folded, leading/trailing spaces dropped and inner runs
 * of spaces collapsed. "Team  A " and "team a" name the same LDAP entry.
 */
export function caseIgnoreKey(value: string): string {
  // NFKC leaves printable ASCII as it is; skipping it matters, a scan keys every group of every account.
  const normalized = PRINTABLE_ASCII.test(value) ? value : value.normalize("NFKC");
  return normalized.toLowerCase().replace(/ +/g, " ").trim();
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** One attribute-value assertion of an RDN; `value` is unescaped (a '#' BER form is kept verbatim). */
export type AVA = { type: string; value: string };
/** A DN as a list of RDNs, the leftmost (most specific) first; each RDN has one or more AVAs. */
export type ParsedDN = AVA[][];

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Parses an RFC 4514 DN (leniently: also spaces around separators, ';' as separator and RFC 2253
 * quoted values). Throws on malformed input. Escaped UTF-8 byte sequences (\C3\A9) are decoded.
 */
export function parseDN(dn: string): ParsedDN {
  const rdns: ParsedDN = [];
  let i = 0;
  const n = dn.length;
  const fail = (why: string): never => {
    throw new Error(`invalid DN ${JSON.stringify(dn)}: ${why} at position ${i}`);
  };
  const skipSpaces = () => {
    while (i < n && dn[i] === " ") i++;
  };
  skipSpaces();
  if (i === n) return rdns;
  let rdn: AVA[] = [];
  for (;;) {
    skipSpaces();
    const typeStart = i;
    while (i < n && /[A-Za-z0-9.-]/.test(dn[i]!)) i++;
    const type = dn.slice(typeStart, i);
    if (!type) fail("expected an attribute type");
    skipSpaces();
    if (dn[i] !== "=") fail("expected '='");
    i++;
    skipSpaces();
    let value: string;
    if (dn[i] === "#") {
      const start = i++;
      while (i < n && /[0-9A-Fa-f]/.test(dn[i]!)) i++;
      value = dn.slice(start, i);
      if (value.length < 3 || value.length % 2 === 0) fail("bad hex string value");
    } else if (dn[i] === '"') {
      i++;
      const bytes: number[] = [];
      while (i < n && dn[i] !== '"') i = readChar(dn, i, bytes, fail);
      if (dn[i] !== '"') fail("unterminated quoted value");
      i++;
      value = Buffer.from(bytes).toString("utf8");
    } else {
      const bytes: number[] = [];
      let trailingUnescapedSpaces = 0;
      while (i < n && !",;+".includes(dn[i]!)) {
        trailingUnescapedSpaces = dn[i] === " " ? trailingUnescapedSpaces + 1 : 0;
        i = readChar(dn, i, bytes, fail);
      }
      // Unescaped trailing spaces are not part of the value.
      value = Buffer.from(bytes.slice(0, bytes.length - trailingUnescapedSpaces)).toString("utf8");
    }
    skipSpaces();
    rdn.push({ type, value });
    if (i === n) {
      rdns.push(rdn);
      return rdns;
    }
    const sep = dn[i];
    if (sep === "+") {
      i++;
      continue;
    }
    if (sep === "," || sep === ";") {
      rdns.push(rdn);
      rdn = [];
      i++;
      continue;
    }
    fail("expected ',' or '+'");
  }
}

/** Reads one (possibly escaped) character at i into bytes (UTF-8); returns the next index. */
function readChar(dn: string, i: number, bytes: number[], fail: (why: string) => never): number {
  const ch = dn[i]!;
  if (ch !== "\\") {
    const cp = dn.codePointAt(i)!;
    if (cp < 0x80) {
      bytes.push(cp); // ASCII is its own UTF-8
      return i + 1;
    }
    const s = String.fromCodePoint(cp);
    bytes.push(...Buffer.from(s, "utf8"));
    return i + s.length;
  }
  const next = dn.slice(i + 1, i + 3);
  if (HEX.test(next)) {
    bytes.push(parseInt(next, 16));
    return i + 3;
  }
  const escaped = dn[i + 1];
  if (escaped === undefined) fail("dangling backslash");
  if (!' "#+,;<=>\\'.includes(escaped!)) fail(`invalid escape \\${escaped}`);
  bytes.push(escaped!.charCodeAt(0));
  return i + 2;
}

/** Builds the string form of a parsed DN, escaping every value. */
export function formatDN(dn: ParsedDN): string {
  return dn
    .map((rdn) =>
      rdn
        .map((ava) => (isHexForm(ava.value) ? `${ava.type}=${ava.value}` : childDN(ava.type, ava.value)))
        .join("+"),
    )
    .join(",");
}

function isHexForm(value: string): boolean {
  return /^#([0-9A-Fa-f]{2})+$/.test(value);
}

/**
 * Single-valued RDNs whose values are letters, digits, `._@-` and single inner spaces (AD's
 * `CN=Ada Lovelace`): nothing to unescape, trim, re-escape or sort.
 */
const PLAIN_RDN = String.raw`[A-Za-z][A-Za-z0-9-]*=[A-Za-z0-9._@-]+(?: [A-Za-z0-9._@-]+)*`;
const PLAIN_DN = new RegExp(`^${PLAIN_RDN}(?:,${PLAIN_RDN})*$`);

/**
 * A comparison key for DNs: attribute types and values lower-cased, AVAs of an RDN sorted, values
 * re-escaped canonically. It approximates the server's distinguishedNameMatch for naming attributes
 * that are case-insensitive (cn, uid, ou, dc), and makes `cn=a\2Cb` and `cn=a\,b` equal.
 */
export function normalizeDN(dn: string): string {
  // A full scan keys every group member this way (90,000 values at 30,000 people in 3 groups); most
  // are plain `type=value,...` DNs, whose canonical form is just the lower-cased string.
  return PLAIN_DN.test(dn) ? dn.toLowerCase() : parsedDNKey(dn);
}

/** normalizeDN's key through the full parse, for any DN. */
export function parsedDNKey(dn: string): string {
  return formatDN(
    parseDN(dn).map((rdn) =>
      rdn
        .map((ava) => ({ type: ava.type.toLowerCase(), value: ava.value.toLowerCase() }))
        .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.value < b.value ? -1 : 1)),
    ),
  );
}

export function dnEquals(a: string, b: string): boolean {
  return normalizeDN(a) === normalizeDN(b);
}

/** True when dn is below (not equal to) base. */
export function isDescendantOf(dn: string, base: string): boolean {
  const d = parseDN(normalizeDN(dn));
  const b = parseDN(normalizeDN(base));
  if (d.length <= b.length) return false;
  return b.length === 0 || formatDN(d.slice(d.length - b.length)) === formatDN(b);
}

/** The value of the DN's first RDN if it is a single AVA of `type` (case-insensitive), else undefined. */
export function firstRDNValue(dn: string, type: string): string | undefined {
  if (PLAIN_DN.test(dn)) {
    const comma = dn.indexOf(",");
    const rdn = comma === -1 ? dn : dn.slice(0, comma);
    const equals = rdn.indexOf("=");
    return rdn.slice(0, equals).toLowerCase() === type.toLowerCase() ? rdn.slice(equals + 1) : undefined;
  }
  const first = parseDN(dn)[0];
  if (!first || first.length !== 1 || first[0]!.type.toLowerCase() !== type.toLowerCase()) return undefined;
  return first[0]!.value;
}

/** The DN without its first RDN. */
export function parentDN(dn: string): string {
  return formatDN(parseDN(dn).slice(1));
}
