// Looks at the LDAP directory directly, as a user checking the operator's work would.
import { Client, type Entry } from "ldapts";
import { escapeFilterValue } from "../../src/connectors/ldap/escape.ts";
import type { HarnessInfo } from "../harness/info.ts";

export type LdapLook = {
  client: Client;
  /** The person entries under `base` with this employeeNumber. */
  people(base: string, employeeId: string): Promise<Entry[]>;
  person(base: string, employeeId: string): Promise<Entry | undefined>;
  /** Names (cn) of the groups under `base` that list `dn` as a member. */
  groupsOf(base: string, dn: string): Promise<string[]>;
  /** Member DNs of group cn=<name> under base ([] when the group is missing). */
  members(base: string, name: string): Promise<string[]>;
  close(): Promise<void>;
};

export async function ldapLook(ldap: HarnessInfo["ldap"]): Promise<LdapLook> {
  const client = new Client({ url: ldap.url, timeout: 10_000 });
  await client.bind(ldap.adminDN, ldap.adminPassword);
  const values = (v: Entry[string] | undefined) =>
    v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String);
  const look: LdapLook = {
    client,
    async people(base, employeeId) {
      const { searchEntries } = await client.search(base, {
        scope: "sub",
        filter: `(employeeNumber=${escapeFilterValue(employeeId)})`,
        attributes: ["*", "+"],
      });
      return searchEntries;
    },
    async person(base, employeeId) {
      const found = await look.people(base, employeeId);
      if (found.length > 1)
        throw new Error(`duplicate entries for ${employeeId}: ${found.map((e) => e.dn).join("; ")}`);
      return found[0];
    },
    async groupsOf(base, dn) {
      const { searchEntries } = await client.search(base, {
        scope: "sub",
        filter: `(member=${escapeFilterValue(dn)})`,
        attributes: ["cn"],
      });
      return searchEntries.map((e) => values(e.cn)[0]!).sort();
    },
    async members(base, name) {
      const { searchEntries } = await client.search(base, {
        scope: "one",
        filter: `(cn=${escapeFilterValue(name)})`,
        attributes: ["member"],
      });
      return values(searchEntries[0]?.member).filter((m) => m !== "");
    },
    close: () => client.unbind(),
  };
  return look;
}

export const attr = (entry: Entry | undefined, name: string): string[] => {
  const v = entry?.[name];
  return v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String);
};

/** Creates ou=<name> under each parent (idempotent), for per-test-file subtrees. */
export async function ensureOUs(client: Client, name: string, parents: string[]): Promise<string[]> {
  const created: string[] = [];
  for (const parent of parents) {
    const dn = `ou=${name},${parent}`;
    try {
      await client.add(dn, { objectClass: ["organizationalUnit"], ou: name });
    } catch (error) {
      if (
        !String((error as Error).message).includes("Already Exists") &&
        (error as { code?: number }).code !== 68
      )
        throw error;
    }
    created.push(dn);
  }
  return created;
}
