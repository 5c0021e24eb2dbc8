import { describe, expect, it } from "vitest";
import { eqFilter, scimString, valuePathFilter } from "../../src/connectors/scim/filter.ts";

describe("SCIM filter strings", () => {
  it("quotes values as JSON strings, escaping quotes, backslashes and control characters", () => {
    expect(eqFilter("externalId", "E-1")).toBe('externalId eq "E-1"');
    expect(eqFilter("externalId", 'a"b')).toBe('externalId eq "a\\"b"');
    expect(eqFilter("externalId", "a\\b")).toBe('externalId eq "a\\\\b"');
    expect(eqFilter("userName", 'x" or userName pr or "')).toBe('userName eq "x\\" or userName pr or \\""');
    expect(scimString("tab\there\nnew")).toBe('"tab\\there\\nnew"');
    expect(scimString("\u0001")).toBe('"\\u0001"');
    expect(scimString("Zoë 名前")).toBe('"Zoë 名前"');
  });

  it("round-trips through a JSON parser", () => {
    for (const v of ['a"b', "a\\b", '\\"', "end\\", "é\u2028x"]) {
      expect(JSON.parse(scimString(v))).toBe(v);
    }
  });

  it("builds value path filters", () => {
    expect(valuePathFilter("members", "value", "2819c223")).toBe('members[value eq "2819c223"]');
    expect(valuePathFilter("members", "value", 'a"]')).toBe('members[value eq "a\\"]"]');
  });
});
