// `roster report -o html` as its reader gets it: the page rendered in headless Chromium (Debian's
// chromium), read back as the reader sees it (innerText), with no console errors (the page's
// Content-Security-Policy turns any external asset into one), and a screenshot and the printed PDF
// kept under .roster/test-artifacts/report-html (or $ROSTER_ARTIFACTS_DIR).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connector, Employee } from "../../src/api/types.ts";
import { buildReview } from "../../src/hr/review.ts";
import { renderReviewHtml } from "../../src/hr/review-html.ts";
import { visitPage, type PageVisit } from "../support/chromium.ts";
import { root } from "./tools.ts";

const fixtures = join(root, "test/packaging/fixtures");
const read = <T>(name: string) => JSON.parse(readFileSync(join(fixtures, `${name}.json`), "utf8")) as T;
const artifacts = process.env.ROSTER_ARTIFACTS_DIR ?? join(root, ".roster/test-artifacts/report-html");

function reviewPage(): string {
  const ada = read<Employee>("employee-active");
  // A leaver whose accounts are still Active: the exception an auditor must see first.
  const bob = read<Employee>("employee-active");
  bob.metadata.name = "bob";
  Object.assign(bob.spec, { employeeId: "E1002", username: "bob", employmentStatus: "Terminated" });
  bob.spec.grants = [];
  // A leaver whose deprovisioning the brake holds.
  const held = read<Employee>("employee-held");
  held.metadata.name = "cy";
  Object.assign(held.spec, { employeeId: "E1003", username: "cy" });
  held.spec.grants = [];
  for (const e of [bob, held])
    for (const a of e.status!.accounts!)
      a.id =
        a.connector === "wiki"
          ? `${e.metadata.name}-wiki-id`
          : `uid=${e.metadata.name},ou=people,dc=roster,dc=test`;
  // A joiner with an account made before Roster that matches and waits to be linked.
  const dee = read<Employee>("employee-new");
  dee.metadata.name = "dee";
  Object.assign(dee.spec, { employeeId: "E1004", username: "dee", grants: [] });
  dee.status = {
    observedGeneration: 1,
    phase: "Pending",
    accounts: [{ connector: "wiki", id: "7d1e-dee", state: "Unlinked", groups: [] }],
    entitlements: [{ connector: "wiki", source: "AccessPolicy/everyone" }],
  };
  const ldap = read<Connector>("connector-held");
  const wiki = read<Connector>("connector-ready");
  wiki.metadata.name = "wiki";
  wiki.status = {
    ...wiki.status,
    orphanAccounts: { count: 2, ids: ["uid=<b>old-admin</b>,ou=people,dc=roster,dc=test"] },
    driftedAccounts: 1,
  };
  const review = buildReview({
    employees: [ada, bob, held, dee],
    connectors: [ldap, wiki],
    now: new Date("2027-06-20T12:00:00Z"),
    scope: "namespace people",
    expiringWithinMs: 14 * 24 * 3_600_000,
    notes: [
      "Connector people/legacy has neither spec.ldap nor spec.scim: its leavers were checked from status only",
    ],
  });
  return renderReviewHtml(
    review,
    { cluster: "prod (https://k8s.example.com:6443)" },
    { allNamespaces: false },
  );
}

let dir: string;
let page: PageVisit;
let html: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "roster-report-html-"));
  html = reviewPage();
  const file = join(dir, "access-review.html");
  writeFileSync(file, html);
  page = await visitPage(file, ["header", "#exceptions", "#connectors", "#people", "#notes"]);
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, "access-review.html"), html);
  writeFileSync(join(artifacts, "access-review.png"), page.screenshot);
  writeFileSync(join(artifacts, "access-review.pdf"), page.pdf);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("roster report -o html in Chromium", () => {
  it("is one self-contained page that loads without console errors", () => {
    expect(page.problems).toEqual([]);
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
    expect(html).not.toMatch(/\b(src|href)=/i);
    expect(page.screenshot.subarray(1, 4).toString()).toBe("PNG");
    expect(page.pdf.subarray(0, 5).toString()).toBe("%PDF-");
  });

  it("says when and from which cluster it was taken, with the counts at the top", () => {
    expect(page.title).toBe("Access review, namespace people, 2027-06-20T12:00:00.000Z");
    const header = page.text.header!;
    expect(header).toContain(
      "Taken 2027-06-20T12:00:00.000Z from cluster prod (https://k8s.example.com:6443), namespace people.",
    );
    const counts = header.slice(header.indexOf("\n", header.indexOf("Taken")) + 1).trim();
    expect(counts.split("\n")).toEqual(
      [
        "10 Exceptions",
        "4 People",
        "2 Leavers",
        "7 Accounts",
        "4 Leaver with access",
        "0 Target could not be checked",
        "2 Orphan account",
        "1 Drift",
        "1 Deprovisioning held",
        "1 Expiring grant",
        "1 Adoption candidate",
        "0 Adoption conflict",
        "0 Members added by hand",
      ].flatMap((c) => c.split(/(?<=^\d+) /)),
    );
  });

  it("lists the exceptions first, leavers with access at the top, as a reader sees them", () => {
    const rows = page.text["#exceptions"]!.split("\n").filter((l) => l.includes("\t"));
    expect(rows[0]).toBe("Exception\tPerson\tConnector\tAccount\tDetail");
    const body = rows.slice(1).map((r) => r.split("\t").slice(0, 4).join(" | "));
    expect(body).toEqual([
      "Leaver with access | bob | corp-ldap | uid=bob,ou=people,dc=roster,dc=test",
      "Leaver with access | bob | wiki | bob-wiki-id",
      "Leaver with access | cy | corp-ldap | uid=cy,ou=people,dc=roster,dc=test",
      "Leaver with access | cy | wiki | cy-wiki-id",
      "Orphan account | – | wiki | –",
      "Orphan account | – | wiki | uid=<b>old-admin</b>,ou=people,dc=roster,dc=test",
      "Drift | – | wiki | –",
      "Deprovisioning held | – | corp-ldap | –",
      "Expiring grant | ada | wiki | –",
      "Adoption candidate | dee | wiki | 7d1e-dee",
    ]);
    expect(page.text["#exceptions"]).toMatch(/Terminated.*status says the account is Active/);
    expect(page.text["#exceptions"]).toContain("12 deprovisions held");
    expect(page.text["#exceptions"]).toMatch(
      /grant \(groups project-apollo\) expires 2027-06-30T00:00:00Z, in 9d/,
    );
  });

  it("shows per connector and per person the accounts, groups and where each came from", () => {
    const connectors = page.text["#connectors"]!;
    expect(connectors).toContain("corp-ldap (3 people)");
    expect(connectors).toMatch(
      /ada\tada\tActive\tActive\tuid=ada,ou=people,dc=roster,dc=test\tAccessPolicy\/engineering, AccessPolicy\/everyone/,
    );
    const people = page.text["#people"]!;
    expect(people).toContain("username bob · employee id E1002 · employment Terminated");
    expect(people).toContain("people-managers (GroupRule/managers)");
    expect(people).toContain("project-apollo (Grant)");
    expect(page.text["#notes"]).toContain("its leavers were checked from status only");
  });
});
