// Whether a credential read from a Secret can be used as it is, checked before it is used.
//
// A Secret's key may hold anything (a TLS private key, a kubeconfig, a value with a line break):
// used as a bearer token or a bind password, libraries fail on it with messages that quote it
// (fetch: `Headers.append: "Bearer <value>" is an invalid header value`). So a value that cannot
// be used is refused first, with a CredentialError that says what is wrong with it and never any
// of the value itself; the caller adds where the value came from (Secret name and key).

/** A credential that cannot be used; the message never contains any of its value. */
export class CredentialError extends Error {
  override name = "CredentialError";
}

/** Longer bearer tokens do not fit the request header limits of common servers (8 KiB). */
export const MAX_TOKEN_LENGTH = 8192;
/** Longer is no password (Active Directory allows 256 characters, slapd's anonymous PDUs 256 KiB). */
export const MAX_PASSWORD_LENGTH = 1024;

/** HTTP whitespace, which fetch strips around a header value anyway (a Secret's trailing newline). */
const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/** What is wrong with a bearer token's characters (visible ASCII and inner spaces only), or undefined. */
function tokenCharacterProblem(token: string): string | undefined {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return "it contains a line break";
    if (c < 0x20 || c === 0x7f) return "it contains a control character";
    if (c > 0x7e) return "it contains a character that is not ASCII";
  }
  return undefined;
}

/**
 * The bearer token as it is sent: surrounding whitespace removed (as fetch does for a header
 * value). Throws CredentialError when it cannot be an HTTP header value: empty, a line break or
 * another control character, a character that is not ASCII, longer than MAX_TOKEN_LENGTH.
 */
export function bearerToken(value: string): string {
  const token = value.replace(HTTP_WHITESPACE, "");
  const problem =
    token.length === 0
      ? "it is empty"
      : token.length > MAX_TOKEN_LENGTH
        ? `it is longer than ${MAX_TOKEN_LENGTH} characters`
        : tokenCharacterProblem(token);
  if (problem) throw new CredentialError(`cannot be used as a bearer token: ${problem}`);
  return token;
}

/**
 * The bind password, unchanged (every character of a password counts). Throws CredentialError
 * when it is empty (an unauthenticated bind), longer than MAX_PASSWORD_LENGTH, contains a NUL, or
 * was not UTF-8 text (decoding left U+FFFD replacement characters: binary data).
 */
export function bindPassword(value: string): string {
  const problem =
    value.length === 0
      ? "it is empty"
      : value.length > MAX_PASSWORD_LENGTH
        ? `it is longer than ${MAX_PASSWORD_LENGTH} characters`
        : value.includes("\u0000")
          ? "it contains a NUL character"
          : value.includes("\ufffd")
            ? "it is not UTF-8 text"
            : undefined;
  if (problem) throw new CredentialError(`cannot be used as a bind password: ${problem}`);
  return value;
}
