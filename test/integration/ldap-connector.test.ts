// The LDAP connector against a real slapd (its own instance: the tests restart and kill it).
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Attribute, Change, Client, EqualityFilter, InvalidCredentialsError, type Entry } from "ldapts";
import type { EmployeeSpecT, LdapSpecT } from "../../src/api/types.ts";
import { ldapAttributes } from "../../src/connectors/ldap/attributes.ts";
import {
  AssertionControl,
  createLdapConnector,
  type LdapConnector,
} from "../../src/connectors/ldap/connector.ts";
import { AccountNotFoundError, NotOwnedError, type DesiredAccount } from "../../src/connectors/types.ts";
import { startSlapd, type Slapd } from "../harness/slapd.ts";
import { startLdapProxy } from "../support/ldap-proxy.ts";

let slapd: Slapd;
let spec: LdapSpecT;
let conn: LdapConnector;

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ url: slapd.url, timeout: 10_000 });
  try {
    await c.bind(slapd.adminDN, slapd.adminPassword);
    return await fn(c);
  } finally {
    await c.unbind().catch(() => {});
  }
}

const readEntry = (dn: string, attributes = ["*", "+"]) =>
  admin(async (c): Promise<Entry | undefined> => {
    try {
      return (await c.search(dn, { scope: "base", attributes })).searchEntries[0];
    } catch {
      return undefined;
    }
  });

const list = (v: unknown): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];

async function canBind(dn: string, password: string): Promise<boolean> {
  const c = new Client({ url: slapd.url, timeout: 10_000 });
  try {
    await c.bind(dn, password);
    return true;
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false;
    throw err;
  } finally {
    await c.unbind().catch(() => {});
  }
}

function employee(n: string, extra: Partial<EmployeeSpecT> = {}): EmployeeSpecT {
  return {
    employeeId: `E-${n}`,
    username: `user${n}`,
    givenName: `Given${n}`,
    familyName: `Family${n}`,
    email: `user${n}@example.com`,
    department: "Engineering",
    title: "Engineer",
    location: "Berlin",
    ...extra,
  };
}

function desired(e: EmployeeSpecT, groups: string[] = [], enabled = true): DesiredAccount {
  return {
    employeeId: e.employeeId,
    username: e.username,
    attributes: ldapAttributes(e, spec),
    enabled,
    groups,
  };
}

beforeAll(async () => {
  slapd = await startSlapd();
  spec = {
    url: slapd.url,
    bindDN: slapd.adminDN,
    bindPasswordSecretRef: { name: "ldap", key: "password" },
    usersDN: slapd.usersDN,
    groupsDN: slapd.groupsDN,
    attributes: { cn: "{{givenName}} {{familyName}}", o: "{{attributes.company}}", l: "" },
  };
  conn = createLdapConnector(spec, slapd.adminPassword, { timeoutMs: 10_000, connectTimeoutMs: 2_000 });
});

afterAll(async () => {
  await conn?.close();
  await slapd?.stop();
});

describe("LDAP connector", () => {
  it("check() binds; a wrong password is reported", async () => {
    await conn.check();
    const bad = createLdapConnector(spec, "wrong-password");
    await expect(bad.check()).rejects.toBeInstanceOf(InvalidCredentialsError);
    await bad.close();
  });

  it("creates an account with the mapped attributes and finds it by employeeId", async () => {
    const e = employee("1", { attributes: { company: "ACME" }, employmentType: "Contractor" });
    const created = await conn.createAccount(desired(e));
    expect(created.id).toBe(`uid=user1,${slapd.usersDN}`);
    expect(created).toMatchObject({ employeeId: "E-1", username: "user1", enabled: true, groups: [] });
    expect(created.attributes).toMatchObject({
      cn: ["Given1 Family1"],
      sn: ["Family1"],
      givenName: ["Given1"],
      mail: ["user1@example.com"],
      displayName: ["Given1 Family1"],
      departmentNumber: ["Engineering"],
      title: ["Engineer"],
      employeeType: ["Contractor"],
      employeeNumber: ["E-1"],
      uid: ["user1"],
      o: ["ACME"],
    });
    expect(created.attributes.l).toBeUndefined();
    const entry = await readEntry(created.id);
    expect(list(entry!.objectClass)).toContain("inetOrgPerson");
    expect(entry!.employeeNumber).toBe("E-1");

    expect(await conn.findAccount("E-1", "user1")).toEqual(created);
    expect(await conn.findAccount("E-2", "user2")).toBeUndefined();
    // Exact matching: the directory compares employeeNumber case-insensitively, Roster does not.
    expect(await conn.findAccount("e-1", "user1")).toBeUndefined();
    // Filter metacharacters are escaped, not interpreted.
    expect(await conn.findAccount("E-*", "user1")).toBeUndefined();
    expect(await conn.findAccount("*)(uid=*", "user1")).toBeUndefined();
  });

  it("updates and deletes attributes", async () => {
    const ref = { id: `uid=user1,${slapd.usersDN}`, employeeId: "E-1" };
    await conn.updateAttributes(ref, { title: ["Staff Engineer"], o: null, description: ["a", "b"] });
    const a = (await conn.findAccount("E-1", "user1"))!;
    expect(a.attributes.title).toEqual(["Staff Engineer"]);
    expect(a.attributes.o).toBeUndefined();
    expect(a.attributes.description?.sort()).toEqual(["a", "b"]);
    await conn.updateAttributes(ref, { o: null }); // deleting an absent attribute is fine
    await expect(conn.updateAttributes(ref, { employeeNumber: ["E-9"] })).rejects.toThrow(
      /cannot be changed/,
    );
    await expect(
      conn.updateAttributes({ id: `uid=nobody,${slapd.usersDN}`, employeeId: "E-404" }, { title: ["x"] }),
    ).rejects.toBeInstanceOf(AccountNotFoundError);
  });

  it("disable blocks the bind, enable restores it", async () => {
    const e = employee("2");
    const a = await conn.createAccount(desired(e), "initial-Pa55word");
    expect(await canBind(a.id, "initial-Pa55word")).toBe(true);
    const stored = await readEntry(a.id, ["userPassword"]);
    expect(String(stored!.userPassword)).toMatch(/^\{SSHA\}/); // hashed by the server, not stored in clear

    await conn.setEnabled(a, false);
    expect(await canBind(a.id, "initial-Pa55word")).toBe(false);
    expect((await readEntry(a.id))!.pwdAccountLockedTime).toBe("000001010000Z");
    expect((await conn.findAccount("E-2", "user2"))!.enabled).toBe(false);
    await conn.setEnabled(a, false); // idempotent

    await conn.setEnabled(a, true);
    expect(await canBind(a.id, "initial-Pa55word")).toBe(true);
    expect((await conn.findAccount("E-2", "user2"))!.enabled).toBe(true);
    await conn.setEnabled(a, true);

    const disabled = await conn.createAccount(desired(employee("3"), [], false), "pw-3-Secret");
    expect(disabled.enabled).toBe(false);
    expect(await canBind(disabled.id, "pw-3-Secret")).toBe(false);
  });

  it("adds and removes members one at a time, without touching hand-added members", async () => {
    const u1 = (await conn.findAccount("E-1", "user1"))!;
    const u2 = (await conn.findAccount("E-2", "user2"))!;
    const gdn = `cn=developers,${slapd.groupsDN}`;
    const hand = `uid=someone-else,${slapd.usersDN}`;

    await conn.addToGroup("developers", u1); // creates the group with its first member
    expect(list((await readEntry(gdn))!.member)).toEqual([u1.id]);
    await admin((c) =>
      c.modify(
        gdn,
        new Change({ operation: "add", modification: new Attribute({ type: "member", values: [hand] }) }),
      ),
    );
    await conn.addToGroup("developers", u2);
    await conn.addToGroup("developers", u2); // already a member
    expect(list((await readEntry(gdn))!.member).sort()).toEqual([hand, u1.id, u2.id].sort());
    expect((await conn.findAccount("E-2", "user2"))!.groups).toEqual(["developers"]);

    await conn.removeFromGroup("developers", u1);
    await conn.removeFromGroup("developers", u1); // not a member any more
    await conn.removeFromGroup("no-such-group", u1);
    await conn.removeFromGroup("developers", u2);
    expect(list((await readEntry(gdn))!.member)).toEqual([hand]);
    expect((await conn.findAccount("E-1", "user1"))!.groups).toEqual([]);

    // The last member goes: the empty-DN placeholder keeps groupOfNames valid.
    await conn.addToGroup("solo", u1);
    await conn.removeFromGroup("solo", u1);
    const solo = await readEntry(`cn=solo,${slapd.groupsDN}`);
    expect(list(solo!.member)).toEqual([""]);
    expect((await conn.listGroups()).find((g) => g.name === "solo")!.members).toEqual([]);
    await conn.addToGroup("solo", u2); // replaces the placeholder
    expect(list((await readEntry(`cn=solo,${slapd.groupsDN}`))!.member)).toEqual([u2.id]);
    expect(list((await readEntry(u2.id, ["memberOf"]))!.memberOf).sort()).toEqual([
      `cn=solo,${slapd.groupsDN}`,
    ]);
  });

  it("refuses entries outside usersDN", async () => {
    // Refusing entries with another or no employeeNumber is in connector-contract.test.ts.
    const ref = { id: `cn=developers,${slapd.groupsDN}`, employeeId: "E-1" };
    const before = await readEntry(ref.id);
    const err = await conn.updateAttributes(ref, { cn: ["taken over"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotOwnedError);
    expect((err as Error).message).toMatch(/outside usersDN/);
    await expect(conn.setEnabled(ref, false)).rejects.toBeInstanceOf(NotOwnedError);
    await expect(conn.addToGroup("developers", ref)).rejects.toBeInstanceOf(NotOwnedError);
    await expect(conn.removeFromGroup("developers", ref)).rejects.toBeInstanceOf(NotOwnedError);
    await expect(conn.deleteAccount(ref)).rejects.toBeInstanceOf(NotOwnedError);
    expect(await readEntry(ref.id)).toEqual(before);
  });

  it("the assertion control makes the server itself refuse a write to a changed entry", async () => {
    const id = `uid=user1,${slapd.usersDN}`;
    const assert = (employeeId: string) =>
      admin((c) =>
        c.modify(
          id,
          new Change({
            operation: "replace",
            modification: new Attribute({ type: "title", values: ["asserted"] }),
          }),
          new AssertionControl(new EqualityFilter({ attribute: "employeeNumber", value: employeeId })),
        ),
      );
    await expect(assert("E-other")).rejects.toThrow();
    await assert("E-1");
    expect((await readEntry(id))!.title).toBe("asserted");
  });

  it("stores and matches names with special characters exactly", async () => {
    const names = [
      'a,b+c"d\\e<f>g;h=i#j',
      "#leading hash",
      " lead and trail ",
      "star*(paren)\\",
      "Zoë Ødegård 日本",
      "semi;colon and = equals",
    ];
    const e = employee("7", {
      employeeId: 'E-7,+"\\<>;=#*()',
      givenName: ' Zoë, "the" <first> ',
      familyName: "O'Brien*(x)\\ #",
      attributes: { company: "Ünïcødé AG" },
    });
    const a = await conn.createAccount(desired(e, names));
    expect(a.groups.sort()).toEqual([...names].sort());
    expect(a.employeeId).toBe('E-7,+"\\<>;=#*()');
    const entry = (await readEntry(a.id))!;
    expect(entry.givenName).toBe(' Zoë, "the" <first> ');
    expect(entry.cn).toBe(' Zoë, "the" <first>  O\'Brien*(x)\\ #');
    expect(entry.o).toBe("Ünïcødé AG");

    const found = (await conn.findAccount('E-7,+"\\<>;=#*()', "user7"))!;
    expect(found.id).toBe(a.id);
    expect(found.attributes.givenName).toEqual([' Zoë, "the" <first> ']);
    expect(found.groups.sort()).toEqual([...names].sort());
    // Similar-looking ids do not match.
    expect(await conn.findAccount('E-7,+"\\<>;=#*', "user7")).toBeUndefined();
    expect(await conn.findAccount("E-7*", "user7")).toBeUndefined();

    const groups = await conn.listGroups();
    for (const name of names) {
      const g = groups.find((x) => x.name === name);
      expect(g, name).toBeDefined();
      expect(g!.members).toHaveLength(1);
    }
    // Like the directory, groupKey ignores case and insignificant spaces: these are one group.
    expect(conn.groupKey(" LEAD  and trail ")).toBe(conn.groupKey("lead and trail"));
    await conn.addToGroup("Lead and  Trail", a);
    expect((await conn.findAccount(a.employeeId, "user7"))!.groups).toContain(" lead and trail ");
    expect((await conn.listGroups()).filter((g) => conn.groupKey(g.name) === "lead and trail")).toHaveLength(
      1,
    );

    for (const name of names) await conn.removeFromGroup(name, a);
    expect((await conn.findAccount(a.employeeId, "user7"))!.groups).toEqual([]);
    await conn.updateAttributes(a, { sn: [" spaced sn "] });
    expect((await readEntry(a.id))!.sn).toBe(" spaced sn ");
  });

  it("lists accounts with the paged results control, entries without employeeNumber too", async () => {
    await conn.createAccount(desired(employee("4"), ["developers", "new-team"]));
    // Made by hand, no employeeNumber: listed with employeeId "" (the full scan's orphans).
    await admin((c) =>
      c.add(`uid=mallory,${slapd.usersDN}`, {
        objectClass: "inetOrgPerson",
        uid: "mallory",
        cn: "M",
        sn: "M",
      }),
    );
    const accounts = await conn.listAccounts(2);
    const ids = accounts
      .map((a) => a.employeeId)
      .filter((id) => id !== "")
      .sort();
    expect(ids).toEqual(["E-1", "E-2", "E-3", "E-4", 'E-7,+"\\<>;=#*()'].sort());
    expect(accounts.find((a) => a.username === "mallory")).toMatchObject({ employeeId: "", groups: [] });
    expect(accounts.find((a) => a.employeeId === "E-4")!.groups).toEqual(["developers", "new-team"]);
    expect(accounts.find((a) => a.employeeId === "E-3")!.enabled).toBe(false);
    expect(accounts.every((a) => !("userPassword" in a.attributes))).toBe(true);
  });

  it("deletes accounts and their memberships; deleting again is fine", async () => {
    const a = (await conn.findAccount("E-4", "user4"))!;
    await conn.deleteAccount(a);
    expect(await readEntry(a.id)).toBeUndefined();
    expect(await conn.findAccount("E-4", "user4")).toBeUndefined();
    const newTeam = await readEntry(`cn=new-team,${slapd.groupsDN}`);
    expect(list(newTeam!.member)).toEqual([""]);
    await conn.deleteAccount(a);
    // A rehire gets the same entry again.
    const back = await conn.createAccount(desired(employee("4"), ["new-team"]));
    expect(back.id).toBe(a.id);
    expect(list((await readEntry(`cn=new-team,${slapd.groupsDN}`))!.member)).toEqual([a.id]);
  });

  it("survives a slapd restart and reports errors while slapd is down", async () => {
    await conn.check();
    await slapd.restart();
    expect((await conn.findAccount("E-1", "user1"))!.username).toBe("user1");

    await slapd.kill();
    await expect(conn.findAccount("E-1", "user1")).rejects.toThrow();
    await slapd.restart();
    expect((await conn.findAccount("E-1", "user1"))!.username).toBe("user1");
    await conn.setEnabled({ id: `uid=user1,${slapd.usersDN}`, employeeId: "E-1" }, false);
    await slapd.restart();
    await conn.setEnabled({ id: `uid=user1,${slapd.usersDN}`, employeeId: "E-1" }, true);
    expect((await conn.findAccount("E-1", "user1"))!.enabled).toBe(true);
  });

  it("retries an operation once when its connection dies in flight, then surfaces the error", async () => {
    // A TCP proxy in front of slapd that can swallow requests and cut the connection.
    let dropRequests = 0;
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const upstream = connect(Number(new URL(slapd.url).port), "127.0.0.1");
      sockets.add(client).add(upstream);
      client.on("data", (chunk) => {
        if (dropRequests > 0) {
          dropRequests--;
          client.destroy();
          upstream.destroy();
        } else upstream.write(chunk);
      });
      upstream.on("data", (chunk) => client.write(chunk));
      for (const s of [client, upstream])
        s.on("error", () => {}).on("close", () => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const port = (proxy.address() as { port: number }).port;
    const viaProxy = createLdapConnector({ ...spec, url: `ldap://127.0.0.1:${port}` }, slapd.adminPassword);
    try {
      await viaProxy.check(); // connected and bound
      dropRequests = 1; // the next request dies with its connection
      expect((await viaProxy.findAccount("E-1", "user1"))!.username).toBe("user1");
      dropRequests = 2; // the request and the retry (its bind) both die: the error reaches the caller
      await expect(viaProxy.findAccount("E-1", "user1")).rejects.toThrow();
      dropRequests = 0;
      expect((await viaProxy.findAccount("E-1", "user1"))!.username).toBe("user1");
    } finally {
      await viaProxy.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it("a write whose answer does not come is given up after writeTimeoutMs (reads keep timeoutMs)", async () => {
    const proxy = await startLdapProxy(slapd.url);
    const viaProxy = createLdapConnector({ ...spec, url: proxy.url }, slapd.adminPassword, {
      timeoutMs: 10_000,
      writeTimeoutMs: 300,
    });
    try {
      const e = employee("wt");
      const account = await viaProxy.createAccount(desired(e));
      proxy.fault = "swallow-writes";
      // The read before the write passes; the write and its one retry on a fresh connection go
      // unanswered and are dropped long before the 10 s operation timeout.
      await expect(viaProxy.updateAttributes(account, { title: ["Changed"] })).rejects.toThrow(
        /modify not answered within 300 ms/,
      );
      expect(proxy.hits).toBe(2);
      expect((await readEntry(account.id))!.title).toBe("Engineer");
      proxy.fault = "none";
      await viaProxy.updateAttributes(account, { title: ["Changed"] });
      expect((await readEntry(account.id))!.title).toBe("Changed");
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  it("createAccount leaves the account with the password also when it finds the account already there", async () => {
    const e = employee("pw");
    // A create whose password never took: the entry exists, owned, without a password.
    await conn.createAccount(desired(e));
    const dn = conn.accountDN(e.username);
    expect(await canBind(dn, "Generated-Password-1")).toBe(false);
    const again = await conn.createAccount(desired(e), "Generated-Password-1");
    expect(again.id).toBe(dn);
    expect(await canBind(dn, "Generated-Password-1")).toBe(true);
    await conn.setPassword(again, "Generated-Password-2");
    expect(await canBind(dn, "Generated-Password-2")).toBe(true);
    await expect(
      conn.setPassword({ id: dn, employeeId: "E-someone-else" }, "x-y-z-1234"),
    ).rejects.toBeInstanceOf(NotOwnedError);
  });

  it("rejects use after close", async () => {
    const c = createLdapConnector(spec, slapd.adminPassword);
    await c.check();
    await c.close();
    await expect(c.check()).rejects.toThrow(/closed/);
  });
});
