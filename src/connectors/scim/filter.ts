// SCIM filter strings (RFC 7644 section 3.4.2.2) built by the connector (pure).
//
// A comparison value is a JSON string (RFC 7159): `"` and `\` are escaped with a backslash and
// control characters as \uXXXX; JSON.stringify does exactly that. Attribute paths come from the
// connector's own constants, never from user input.

/** A filter string literal: the value quoted and escaped as a JSON string. */
export function scimString(value: string): string {
  return JSON.stringify(value);
}

/** `<attributePath> eq "<value>"`. */
export function eqFilter(attributePath: string, value: string): string {
  return `${attributePath} eq ${scimString(value)}`;
}

/** `<multiValuedAttribute>[<subAttribute> eq "<value>"]`, e.g. members[value eq "2819c223"]. */
export function valuePathFilter(attribute: string, subAttribute: string, value: string): string {
  return `${attribute}[${eqFilter(subAttribute, value)}]`;
}
