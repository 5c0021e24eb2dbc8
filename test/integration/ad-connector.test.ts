// The LDAP connector with `flavor: ActiveDirectory` against the real Samba AD DC of the harness,
// bound as the delegated service account: what an AD admin would check in "Users and Computers".
// The cases every target shares are in connector-contract.test.ts; these are AD's own.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { Attribute, Change, Client, InvalidCredentialsError, type Entry } from "ldapts";
import type { EmployeeSpecT, LdapSpecT } from "../../src/api/types.ts";
import { ldapAttributes } from "../../src/connectors/ldap/attributes.ts";
import { createLdapConnector, type LdapConnector } from "../../src/connectors/ldap/connector.ts";
import { TerminalError } from "../../src/controller/errors.ts";
import { adOrganizationalUnits, asAdmin, emptySubtree, type AdInfo } from "../harness/samba.ts";
import { startRangeProxy, type RangeProxy } from "../harness/range-proxy.ts";

const ad: AdInfo = inject("harness").ad;
let usersDN: string;
let groupsDN: string;
let othersDN: string;
let spec: LdapSpecT;
let conn: LdapConnector;

const values = (v: unknown): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
const uac = (e: Entry | undefined) => Number(values(e?.userAccountControl)[0]);

async function read(dn: string, attributes = ["*"]): Promise<Entry | undefined> {
  return asAdmin(ad, async (c) => {
    try {
      return (await c.search(dn, { scope: "base", attributes })).searchEntries[0];
    } catch (err) {
      if ((err as { code?: number }).code === 32) return undefined;
      throw err;
    }
  });
}

/** Whether `who` (a UPN or DN) can bind with `password` over ldaps: what the person would try. */
async function canBind(who: string, password: string): Promise<boolean> {
  const c = new Client({ url: ad.url, tlsOptions: { ca: [ad.ca] }, connectTimeout: 2000 });
  try {
    await c.bind(who, password);
    return true;
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false;
    throw err;
  } finally {
    await c.unbind().catch(() => {});
  }
}

function employee(username: string, extra: Partial<EmployeeSpecT> = {}): EmployeeSpecT {
  return {
    employeeId: `E-${username}`,
    username,
    givenName: "Given",
    familyName: username,
    email: `${username}@example.com`,
    title: "Engineer",
    ...extra,
  };
}
const desired = (e: EmployeeSpecT, groups: string[] = [], enabled = true) => ({
  employeeId: e.employeeId,
  username: e.username,
  attributes: ldapAttributes(e, spec),
  enabled,
  groups,
});

beforeAll(async () => {
  ({ usersDN, groupsDN } = await adOrganizationalUnits(ad, "adconn"));
  othersDN = `OU=adconn-others,${ad.baseDN}`;
  await asAdmin(ad, async (c) => {
    await emptySubtree(c, othersDN);
    await c.add(othersDN, { objectClass: "organizationalUnit" }).catch(() => {});
  });
  spec = {
    url: ad.url,
    flavor: "ActiveDirectory",
    bindDN: ad.serviceDN,
    bindPasswordSecretRef: { name: "ad", key: "password" },
    usersDN,
    groupsDN,
  };
  conn = createLdapConnector(spec, ad.servicePassword, { ca: ad.ca, timeoutMs: 20_000 });
});
afterAll(async () => {
  await conn?.close();
});
beforeEach(async () => {
  await asAdmin(ad, async (c) => {
    await emptySubtree(c, groupsDN);
    await emptySubtree(c, usersDN);
  });
});

describe("ActiveDirectory flavor on Samba's AD DC", () => {
  it("hires a person with an awkward name: CN=<display name> escaped, sAMAccountName, UPN, enabled without PASSWD_NOTREQD, the password works", async () => {
    const zoe = employee("zoe.obrien", {
      givenName: "Zoë",
      familyName: "O'Brien, Jr.",
      displayName: "Zoë O'Brien, Jr. +1",
    });
    const password = "Initial-Pa55word!";
    const a = await conn.createAccount(desired(zoe, ["staff"]), password);
    expect(a.id).toBe(`CN=Zoë O'Brien\\, Jr. \\+1,${usersDN}`);
    const e = await read(a.id);
    expect(values(e?.objectClass)).toContain("user");
    expect(values(e?.cn)).toEqual(["Zoë O'Brien, Jr. +1"]);
    expect(values(e?.sAMAccountName)).toEqual(["zoe.obrien"]);
    expect(values(e?.userPrincipalName)).toEqual(["zoe.obrien@roster.test"]);
    expect(values(e?.employeeNumber)).toEqual(["E-zoe.obrien"]);
    expect(values(e?.givenName)).toEqual(["Zoë"]);
    expect(values(e?.sn)).toEqual(["O'Brien, Jr."]);
    expect(uac(e)).toBe(0x200); // NORMAL_ACCOUNT only: enabled, and a password is required
    expect(await canBind("zoe.obrien@roster.test", password)).toBe(true);
    expect(await canBind("zoe.obrien@roster.test", "Wrong-Pa55word!")).toBe(false);
    // The group was made by the operator, as an AD admin would: global security, with a pre-2000 name.
    const group = await read(`CN=staff,${groupsDN}`);
    expect(values(group?.objectClass)).toContain("group");
    expect(values(group?.groupType)).toEqual(["-2147483646"]);
    expect(values(group?.sAMAccountName)).toEqual(["staff"]);
    expect(values(group?.member)).toEqual([a.id]);
    expect(await conn.findAccount(zoe.employeeId, zoe.username)).toEqual(a);
  });

  it("with no password given (credentials: None) the account still gets one, random and unknown, never an empty one", async () => {
    const a = await conn.createAccount(desired(employee("sso.only")));
    const e = await read(a.id, ["userAccountControl", "pwdLastSet"]);
    expect(uac(e)).toBe(0x200);
    expect(values(e?.pwdLastSet)[0]).not.toBe("0"); // a password was set
    expect(await canBind("sso.only@roster.test", "")).toBe(false);
  });

  it("disables with ACCOUNTDISABLE (0x202) so the password no longer binds, and enables again", async () => {
    const password = "Initial-Pa55word!";
    const a = await conn.createAccount(desired(employee("leaver")), password);
    await conn.setEnabled(a, false);
    expect(uac(await read(a.id))).toBe(0x202);
    expect(await canBind("leaver@roster.test", password)).toBe(false);
    expect((await conn.findAccount(a.employeeId, a.username))!.enabled).toBe(false);
    await conn.setEnabled(a, true);
    expect(uac(await read(a.id))).toBe(0x200);
    expect(await canBind("leaver@roster.test", password)).toBe(true);
  });

  it("an owned account left with 0x222 and no password (by hand, or an older Roster) gets a random password and 0x200 when enabled", async () => {
    const dn = `CN=Old Account,${usersDN}`;
    await asAdmin(ad, (c) =>
      c.add(dn, { objectClass: "user", sAMAccountName: "old.account", employeeNumber: "E-old" }),
    );
    expect(uac(await read(dn))).toBe(0x222);
    await conn.setEnabled({ id: dn, employeeId: "E-old" }, false);
    expect(uac(await read(dn))).toBe(0x202);
    await conn.setEnabled({ id: dn, employeeId: "E-old" }, true);
    const e = await read(dn, ["userAccountControl", "pwdLastSet"]);
    expect(uac(e)).toBe(0x200);
    expect(values(e?.pwdLastSet)[0]).not.toBe("0");
  });

  it("a username that cannot be a sAMAccountName (over 20 characters) is refused with a clear, terminal error; nothing is created", async () => {
    const long = employee("a.very.long.username.x");
    const err = await conn.createAccount(desired(long)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as TerminalError).reason).toBe("InvalidUsername");
    expect((err as Error).message).toMatch(/22 characters.*sAMAccountName allows at most 20/);
    expect(await conn.listAccounts()).toEqual([]);
  });

  it("a namesake (same display name, another person) gets CN=<name> (<username>)", async () => {
    const first = await conn.createAccount(desired(employee("jsmith", { displayName: "John Smith" })));
    const second = await conn.createAccount(
      desired(employee("jsmith2", { employeeId: "E-other", displayName: "John Smith" })),
    );
    expect(first.id).toBe(`CN=John Smith,${usersDN}`);
    expect(second.id).toBe(`CN=John Smith (jsmith2),${usersDN}`);
    expect(values((await read(second.id))?.sAMAccountName)).toEqual(["jsmith2"]);
  });

  it("a sAMAccountName taken anywhere in the domain by an unowned account is refused, and that account is left alone", async () => {
    const dn = `CN=Someone Else,${othersDN}`;
    await asAdmin(ad, (c) => c.add(dn, { objectClass: "user", sAMAccountName: "taken" }));
    const before = values((await read(dn, ["uSNChanged"]))?.uSNChanged);
    const err = await conn.createAccount(desired(employee("taken"))).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/Someone Else.*exists and is not owned by Roster/);
    expect(values((await read(dn, ["uSNChanged"]))?.uSNChanged)).toEqual(before);
    await asAdmin(ad, (c) => c.del(dn));
  });

  it("renaming (a new display name) changes displayName but not the CN, which AD changes only by a rename", async () => {
    const e = employee("mover", { displayName: "Before Name" });
    const a = await conn.createAccount(desired(e));
    const after = ldapAttributes({ ...e, displayName: "After Name" }, spec);
    expect(after.cn).toEqual(["After Name"]);
    await conn.updateAttributes(a, { displayName: after.displayName! });
    const entry = await read(a.id);
    expect(values(entry?.displayName)).toEqual(["After Name"]);
    expect(values(entry?.cn)).toEqual(["Before Name"]);
  });
});

// Windows AD cuts at 1,500 values; the proxy here cuts at 100, so that 250 members take three
// ranges in a few seconds (the 1,600-member case runs end to end in e2e/ad-lifecycle.test.ts).
describe("ActiveDirectory flavor: a group larger than MaxValRange, through a server that answers in ranges", () => {
  let proxy: RangeProxy;
  let ranged: LdapConnector;
  const handMade: string[] = [];

  beforeAll(async () => {
    const upstream = new URL(ad.url);
    proxy = await startRangeProxy({
      host: upstream.hostname,
      port: Number(upstream.port),
      ca: ad.ca,
      maxValues: 100,
    });
    ranged = createLdapConnector({ ...spec, url: proxy.url }, ad.servicePassword, {
      ca: proxy.ca,
      timeoutMs: 60_000,
    });
  });
  afterAll(async () => {
    await ranged?.close();
    await proxy?.stop();
  });

  it("reads all 250 members of a group answered 100 at a time, adds and removes an Employee, and leaves the 250", async () => {
    // 250 of the domain's contacts (made by hand, not Roster's) in one group made by hand.
    handMade.push(...ad.contacts.slice(0, 250));
    await asAdmin(ad, async (c) => {
      await c.add(`CN=big,${groupsDN}`, {
        objectClass: "group",
        sAMAccountName: "big",
        member: handMade.slice(0, 120),
      });
      await c.modify(
        `CN=big,${groupsDN}`,
        new Change({
          operation: "add",
          modification: new Attribute({ type: "member", values: handMade.slice(120) }),
        }),
      );
    });

    const a = await ranged.createAccount(desired(employee("big.member"), ["big"]));
    const before = proxy.rangedAnswers();
    const groups = await ranged.listGroups();
    expect(proxy.rangedAnswers()).toBeGreaterThan(before); // the answer really came in ranges
    const big = groups.find((g) => g.name === "big")!;
    expect(big.members).toHaveLength(251);
    expect(new Set(big.members.map((m) => m.toLowerCase()))).toEqual(
      new Set([...handMade, a.id].map((m) => m.toLowerCase())),
    );
    // The full scan's view: the Employee is a member (a scan that read only `member` saw none).
    expect((await ranged.listAccounts()).find((x) => x.id === a.id)?.groups).toEqual(["big"]);

    await ranged.removeFromGroup("big", a);
    const members = (await ranged.listGroups()).find((g) => g.name === "big")!.members;
    expect(members).toHaveLength(250);
    expect(members.map((m) => m.toLowerCase())).not.toContain(a.id.toLowerCase());
  });
});
