import { describe, expect, it } from "vitest";
import { EqualityFilter } from "ldapts";
import {
  caseIgnoreKey,
  childDN,
  dnEquals,
  equalityFilter,
  escapeDNValue,
  escapeFilterValue,
  firstRDNValue,
  formatDN,
  isDescendantOf,
  normalizeDN,
  parentDN,
  parsedDNKey,
  parseDN,
} from "../../src/connectors/ldap/escape.ts";

const tricky = [
  "plain",
  'a,b+c"d\\e<f>g;h=i#j',
  "#leading hash",
  "mid#hash",
  " leading space",
  "trailing space ",
  "  both  ",
  " ",
  "nul\0byte",
  "star*(paren)\\",
  "Zoë Ødegård",
  "日本語 名前",
  "emoji 🙂",
  "Müller, Jörg",
  "",
];

describe("escapeDNValue (RFC 4514)", () => {
  it.each([
    ["plain", "plain"],
    ["a,b", "a\\,b"],
    ['a+b"c\\d<e>f;g=h', 'a\\+b\\"c\\\\d\\<e\\>f\\;g\\=h'],
    ["#x", "\\#x"],
    ["x#", "x#"],
    [" x", "\\ x"],
    ["x ", "x\\ "],
    [" x y ", "\\ x y\\ "],
    [" ", "\\ "],
    ["a\0b", "a\\00b"],
    ["Zoë Ødegård 日本", "Zoë Ødegård 日本"],
    ["*()", "*()"],
  ])("%j -> %j", (input, expected) => {
    expect(escapeDNValue(input)).toBe(expected);
  });

  it.each(tricky)("round-trips %j through parseDN", (value) => {
    const dn = childDN("cn", value, "ou=groups,dc=roster,dc=test");
    const parsed = parseDN(dn);
    expect(parsed).toHaveLength(4);
    expect(parsed[0]).toEqual([{ type: "cn", value }]);
    expect(firstRDNValue(dn, "CN")).toBe(value);
    expect(parentDN(dn)).toBe("ou=groups,dc=roster,dc=test");
  });
});

describe("parseDN", () => {
  it("decodes hex escapes as UTF-8, as slapd returns them", () => {
    expect(parseDN("cn=a\\2Cb\\2Bc\\22d\\5Ce\\3Cf\\3Eg\\3Bh\\3Di#j,dc=x")[0]![0]!.value).toBe(
      'a,b+c"d\\e<f>g;h=i#j',
    );
    expect(parseDN("cn=\\20lead and trail\\20,dc=x")[0]![0]!.value).toBe(" lead and trail ");
    expect(parseDN("cn=\\23hash,dc=x")[0]![0]!.value).toBe("#hash");
    expect(parseDN("cn=nul\\00x,dc=x")[0]![0]!.value).toBe("nul\0x");
    expect(parseDN("cn=Zo\\C3\\AB,dc=x")[0]![0]!.value).toBe("Zoë");
    expect(parseDN("cn=star*(paren)\\5C,dc=x")[0]![0]!.value).toBe("star*(paren)\\");
  });

  it("handles multi-valued RDNs, spaces around separators, quoted values and the empty DN", () => {
    expect(parseDN("cn=a+uid=b, ou=people ,dc=x")).toEqual([
      [
        { type: "cn", value: "a" },
        { type: "uid", value: "b" },
      ],
      [{ type: "ou", value: "people" }],
      [{ type: "dc", value: "x" }],
    ]);
    expect(parseDN('cn=" quoted, value ",dc=x')[0]![0]!.value).toBe(" quoted, value ");
    expect(parseDN("")).toEqual([]);
    expect(parseDN("cn=#04024869,dc=x")[0]![0]!.value).toBe("#04024869");
  });

  it.each(["cn", "=x", "cn=a\\", "cn=a\\zz", "cn=a,", "cn=a,,dc=x", "c n=a"])("rejects %j", (dn) => {
    expect(() => parseDN(dn)).toThrow(/invalid DN/);
  });
});

describe("normalizeDN / dnEquals / isDescendantOf", () => {
  it("treats different escapings and case of types and values as equal", () => {
    expect(dnEquals("CN=A\\2Cb,OU=Groups,dc=roster,dc=test", "cn=a\\,B,ou=groups,dc=roster,dc=test")).toBe(
      true,
    );
    expect(dnEquals("cn=\\20x,dc=t", "cn=\\ x,dc=t")).toBe(true);
    expect(dnEquals("cn=x,dc=t", "cn=x ,dc=t")).toBe(true); // unescaped trailing space is not part of the value
    expect(dnEquals("cn=x\\20,dc=t", "cn=x,dc=t")).toBe(false);
    expect(dnEquals("cn=a+uid=b,dc=t", "uid=b+cn=a,dc=t")).toBe(true);
    expect(normalizeDN("UID=Alice,OU=People,DC=Roster")).toBe("uid=alice,ou=people,dc=roster");
  });

  it("gives plain DNs (the fast path) the key and first RDN value the full parse gives", () => {
    const typeChars = "abcXYZ019-";
    const valueChars = "aZ09._@- ";
    let seed = 7;
    const pick = (chars: string, n: number) =>
      Array.from(
        { length: n },
        () => chars[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % chars.length],
      ).join("");
    const dns = Array.from({ length: 500 }, () =>
      Array.from(
        { length: 1 + (seed % 4) },
        () => `${"uOc"[seed % 3]}${pick(typeChars, seed % 3)}=${pick(valueChars, 1 + (seed % 6))}`,
      ).join(","),
    );
    dns.push(
      "UID=Ada.Lovelace@Corp,OU=People,DC=Roster-Test",
      "cn=-x-,dc=_",
      "CN=Ada  Lovelace ,DC=x",
      "CN=Ada Lovelace,OU=People,DC=ad",
    );
    const parsedFirst = (dn: string, type: string) => {
      const first = parseDN(dn)[0]!;
      return first.length === 1 && first[0]!.type.toLowerCase() === type ? first[0]!.value : undefined;
    };
    for (const dn of dns) {
      expect(normalizeDN(dn), dn).toBe(parsedDNKey(dn));
      for (const type of ["uid", "ou", dn.slice(0, dn.indexOf("=")).toLowerCase()])
        expect(firstRDNValue(dn, type.toUpperCase()), `${type} of ${dn}`).toBe(parsedFirst(dn, type));
    }
  });

  it("knows what is below a base", () => {
    expect(isDescendantOf("uid=a,ou=people,dc=x", "OU=People,dc=x")).toBe(true);
    expect(isDescendantOf("uid=a,ou=sub,ou=people,dc=x", "ou=people,dc=x")).toBe(true);
    expect(isDescendantOf("ou=people,dc=x", "ou=people,dc=x")).toBe(false);
    expect(isDescendantOf("uid=a,ou=other,dc=x", "ou=people,dc=x")).toBe(false);
    expect(isDescendantOf("uid=a\\,ou=people,dc=x", "ou=people,dc=x")).toBe(false);
  });

  it("formatDN escapes every value", () => {
    expect(formatDN([[{ type: "cn", value: " a,b " }], [{ type: "dc", value: "x" }]])).toBe(
      "cn=\\ a\\,b\\ ,dc=x",
    );
  });
});

describe("filter escaping (RFC 4515)", () => {
  it.each([
    ["plain", "plain"],
    ["a*b", "a\\2ab"],
    ["(x)", "\\28x\\29"],
    ["back\\slash", "back\\5cslash"],
    ["nul\0", "nul\\00"],
    ["Zoë 日本", "Zoë 日本"],
    [" spaced ", " spaced "],
    [',+"<>;=#', ',+"<>;=#'],
  ])("%j -> %j", (input, expected) => {
    expect(escapeFilterValue(input)).toBe(expected);
  });

  it("builds equality filters that match ldapts's own", () => {
    for (const value of tricky) {
      expect(equalityFilter("cn", value)).toBe(new EqualityFilter({ attribute: "cn", value }).toString());
    }
    expect(equalityFilter("employeeNumber", "*)(uid=*")).toBe("(employeeNumber=\\2a\\29\\28uid=\\2a)");
  });
});

describe("caseIgnoreKey", () => {
  it("ignores case, insignificant spaces and Unicode normalization form", () => {
    expect(caseIgnoreKey(" Team  A ")).toBe("team a");
    expect(caseIgnoreKey("ZOË")).toBe(caseIgnoreKey("zoe\u0308"));
    expect(caseIgnoreKey("a,b")).not.toBe(caseIgnoreKey("ab"));
    expect(caseIgnoreKey("ＴＥＡＭ　Ａ")).toBe("team a");
    expect(caseIgnoreKey("ﬁnance")).toBe("finance");
  });
});
