// What slapd alone spends on a leaver's group removals: 10,000 people in 3 groups of 10,000
// members, then 50 leavers' three removals sent at once, slapd's CPU time read from /proc.
//
//   npx node bench/slapd-removals.ts [--no-member-index]     (npx: the pinned Node 24)
//
// bench/findings.md point 5 quotes it, with and without the harness's index on member.
import { parseArgs } from "node:util";
import { Attribute, Change, Client } from "ldapts";
import { startSlapd } from "../test/harness/slapd.ts";
import { cpuSeconds } from "./support.ts";

const { values: flags } = parseArgs({ options: { "no-member-index": { type: "boolean", default: false } } });
const PEOPLE = 10_000;
const LEAVERS = 50;
const GROUPS = ["staff", "vpn", "wiki"];

const slapd = await startSlapd({ memberIndex: !flags["no-member-index"] });
const client = new Client({ url: slapd.url });
try {
  await client.bind(slapd.adminDN, slapd.adminPassword);
  const cpuMs = () => cpuSeconds({ [slapd.pid]: "slapd" }).slapd! * 1000;
  const dn = (i: number) => `uid=u${i},${slapd.usersDN}`;
  for (let i = 0; i < PEOPLE; i += 200)
    await Promise.all(
      Array.from({ length: 200 }, (_, k) =>
        client.add(dn(i + k), {
          objectClass: ["inetOrgPerson"],
          uid: `u${i + k}`,
          cn: `U ${i + k}`,
          sn: "x",
        }),
      ),
    );
  for (const g of GROUPS)
    await client.add(`cn=${g},${slapd.groupsDN}`, {
      objectClass: ["groupOfNames"],
      cn: g,
      member: Array.from({ length: PEOPLE }, (_, i) => dn(i)),
    });
  const cpuBefore = cpuMs();
  const wallBefore = performance.now();
  for (let i = 0; i < LEAVERS; i++) {
    const member = new Attribute({ type: "member", values: [dn(i)] });
    await Promise.all(
      GROUPS.map((g) =>
        client.modify(`cn=${g},${slapd.groupsDN}`, new Change({ operation: "delete", modification: member })),
      ),
    );
  }
  const perLeaver = (ms: number) => Math.round((ms / LEAVERS) * 10) / 10;
  console.log(
    `member index ${flags["no-member-index"] ? "off" : "on"}: per leaver (${GROUPS.length} removals from ${PEOPLE}-member groups) ` +
      `slapd CPU ${perLeaver(cpuMs() - cpuBefore)} ms, wall ${perLeaver(performance.now() - wallBefore)} ms`,
  );
} finally {
  await client.unbind().catch(() => {});
  await slapd.stop();
}
