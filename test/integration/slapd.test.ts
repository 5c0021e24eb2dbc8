// The slapd harness itself: a real OpenLDAP with memberof and ppolicy, restartable, cleaned up.
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Attribute, Change, Client, InvalidCredentialsError } from "ldapts";
import { startSlapd, type Slapd } from "../harness/slapd.ts";

let slapd: Slapd;

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ url: slapd.url, timeout: 10_000 });
  try {
    await c.bind(slapd.adminDN, slapd.adminPassword);
    return await fn(c);
  } finally {
    await c.unbind().catch(() => {});
  }
}

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

const person = (uid: string, password: string) => ({
  objectClass: ["inetOrgPerson"],
  uid,
  cn: uid,
  sn: uid,
  employeeNumber: `E-${uid}`,
  userPassword: password,
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  slapd = await startSlapd();
});

afterAll(async () => {
  await slapd?.stop();
});

describe("startSlapd", () => {
  it("listens on loopback with the documented layout", () => {
    expect(slapd.url).toMatch(/^ldap:\/\/127\.0\.0\.1:\d+$/);
    expect(slapd.baseDN).toBe("dc=roster,dc=test");
    expect(slapd.adminDN).toBe("cn=admin,dc=roster,dc=test");
    expect(slapd.usersDN).toBe("ou=people,dc=roster,dc=test");
    expect(slapd.groupsDN).toBe("ou=groups,dc=roster,dc=test");
    expect(slapd.adminPassword.length).toBeGreaterThanOrEqual(16);
    expect(alive(slapd.pid)).toBe(true);
  });

  it("has the base entries and the default password policy", async () => {
    const dns = await admin(async (c) =>
      (await c.search(slapd.baseDN, { attributes: ["1.1"] })).searchEntries.map((e) => e.dn),
    );
    expect(dns).toEqual(
      expect.arrayContaining([
        "dc=roster,dc=test",
        "ou=people,dc=roster,dc=test",
        "ou=groups,dc=roster,dc=test",
        "ou=policies,dc=roster,dc=test",
        "cn=default,ou=policies,dc=roster,dc=test",
      ]),
    );
    const policy = await admin((c) =>
      c.search(slapd.policyDN, { scope: "base", attributes: ["objectClass", "pwdAttribute"] }),
    );
    expect(policy.searchEntries[0]!.objectClass).toContain("pwdPolicy");
  });

  it("does not let anonymous clients read the directory", async () => {
    const c = new Client({ url: slapd.url });
    try {
      const res = await c.search(slapd.baseDN, { attributes: ["1.1"] }).catch(() => ({ searchEntries: [] }));
      expect(res.searchEntries).toEqual([]);
    } finally {
      await c.unbind();
    }
  });

  it("maintains memberOf for groupOfNames", async () => {
    const alice = `uid=alice,${slapd.usersDN}`;
    const group = `cn=staff,${slapd.groupsDN}`;
    await admin(async (c) => {
      await c.add(alice, person("alice", "alice-pw"));
      await c.add(group, { objectClass: "groupOfNames", cn: "staff", member: alice });
    });
    const read = () =>
      admin(
        async (c) =>
          (await c.search(alice, { scope: "base", attributes: ["memberOf"] })).searchEntries[0]!.memberOf,
      );
    expect(await read()).toBe(group);
    await admin((c) =>
      c.modify(group, [
        new Change({ operation: "add", modification: new Attribute({ type: "member", values: [""] }) }),
        new Change({ operation: "delete", modification: new Attribute({ type: "member", values: [alice] }) }),
      ]),
    );
    expect(await read()).toEqual([]);
  });

  it("blocks the bind of an account locked with pwdAccountLockedTime, not of others", async () => {
    const bob = `uid=bob,${slapd.usersDN}`;
    const carol = `uid=carol,${slapd.usersDN}`;
    await admin(async (c) => {
      await c.add(bob, person("bob", "bob-pw"));
      await c.add(carol, person("carol", "carol-pw"));
    });
    // ppolicy hashes the clear-text password on add.
    const stored = await admin(
      async (c) =>
        (
          await c.search(bob, {
            scope: "base",
            attributes: ["userPassword"],
            explicitBufferAttributes: ["userPassword"],
          })
        ).searchEntries[0]!.userPassword,
    );
    expect(String(stored)).toMatch(/^\{SSHA\}/);
    expect(await canBind(bob, "bob-pw")).toBe(true);
    expect(await canBind(bob, "wrong")).toBe(false);

    const lock = (values: string[]) =>
      admin((c) =>
        c.modify(
          bob,
          new Change({
            operation: "replace",
            modification: new Attribute({ type: "pwdAccountLockedTime", values }),
          }),
        ),
      );
    await lock(["000001010000Z"]);
    expect(await canBind(bob, "bob-pw")).toBe(false);
    expect(await canBind(carol, "carol-pw")).toBe(true);
    await lock([]);
    expect(await canBind(bob, "bob-pw")).toBe(true);
  });

  it("restart keeps the port and the data; kill + restart recovers", async () => {
    const before = slapd.pid;
    const url = slapd.url;
    await slapd.restart();
    expect(slapd.pid).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect(slapd.url).toBe(url);
    expect(await canBind(`uid=carol,${slapd.usersDN}`, "carol-pw")).toBe(true);

    const crashed = slapd.pid;
    await slapd.kill();
    expect(alive(crashed)).toBe(false);
    await expect(canBind(`uid=carol,${slapd.usersDN}`, "carol-pw")).rejects.toThrow();
    await slapd.restart();
    expect(await canBind(`uid=carol,${slapd.usersDN}`, "carol-pw")).toBe(true);
  });

  it("stop ends the process and removes the directory; a second instance is independent", async () => {
    const other = await startSlapd({ baseDN: "dc=other,dc=test" });
    expect(other.url).not.toBe(slapd.url);
    expect(other.usersDN).toBe("ou=people,dc=other,dc=test");
    const pid = other.pid;
    await other.stop();
    await other.stop(); // idempotent
    expect(alive(pid)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
  });
});
