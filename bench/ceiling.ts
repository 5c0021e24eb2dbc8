// The LDAP ceiling: a plain ldapts script doing what provisioning one account needs at the least
// (search by employeeNumber, add the entry, add it to 3 groups with single-member modifications)
// on a fresh subtree of the same slapd, with the operator's concurrency over one connection, as
// the operator's LDAP connector uses one connection per Connector.
import { randomBytes } from "node:crypto";
import { Attribute, Change, Client, AndFilter, EqualityFilter } from "ldapts";
import type { EmployeeSpecT } from "../src/api/types.ts";
import { ldapAttributes } from "../src/connectors/ldap/attributes.ts";
import { childDN } from "../src/connectors/ldap/escape.ts";
import { ensureOUs } from "../test/support/ldap.ts";
import { pool, progress } from "./support.ts";

export type CeilingResult = {
  accounts: number;
  concurrency: number;
  connections: number;
  seconds: number;
  accountsPerSecond: number;
  ldapOperations: number;
};

export async function runCeiling(options: {
  url: string;
  bindDN: string;
  password: string;
  usersParent: string;
  groupsParent: string;
  groups: string[];
  people: EmployeeSpecT[];
  concurrency: number;
}): Promise<CeilingResult> {
  const client = new Client({ url: options.url, timeout: 30_000 });
  await client.bind(options.bindDN, options.password);
  const ou = `ceiling-${randomBytes(3).toString("hex")}`;
  const [usersDN, groupsDN] = (await ensureOUs(client, ou, [options.usersParent, options.groupsParent])) as [
    string,
    string,
  ];
  // Groups exist before the run (the operator creates each once, with its first member).
  for (const group of options.groups)
    await client.add(childDN("cn", group, groupsDN), {
      objectClass: ["groupOfNames"],
      cn: group,
      member: [""],
    });

  let done = 0;
  const timer = setInterval(() => progress(`ceiling: ${done}/${options.people.length} accounts`), 5000);
  const t0 = performance.now();
  try {
    await pool(options.people, options.concurrency, async (person) => {
      const found = await client.search(usersDN, {
        scope: "sub",
        filter: new AndFilter({
          filters: [
            new EqualityFilter({ attribute: "objectClass", value: "inetOrgPerson" }),
            new EqualityFilter({ attribute: "employeeNumber", value: person.employeeId }),
          ],
        }),
        attributes: ["*", "pwdAccountLockedTime"],
      });
      if (found.searchEntries.length) throw new Error(`ceiling: ${person.employeeId} already exists`);
      const dn = childDN("uid", person.username, usersDN);
      await client.add(dn, { objectClass: ["inetOrgPerson"], ...ldapAttributes(person, {}) });
      for (const group of options.groups)
        await client.modify(
          childDN("cn", group, groupsDN),
          new Change({ operation: "add", modification: new Attribute({ type: "member", values: [dn] }) }),
        );
      done++;
    });
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  await client.unbind();
  return {
    accounts: options.people.length,
    concurrency: options.concurrency,
    connections: 1,
    seconds: Math.round(seconds * 100) / 100,
    accountsPerSecond: Math.round((options.people.length / seconds) * 10) / 10,
    ldapOperations: options.people.length * (2 + options.groups.length),
  };
}
