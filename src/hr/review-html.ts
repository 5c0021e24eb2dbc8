// `roster report -o html`: the access review as one self-contained page for people who do not
// use kubectl (an auditor, a manager): counts at the top, the exceptions first, then per connector
// and per person the accounts, groups and where each came from. No script, no external asset
// (the Content-Security-Policy forbids loading any), a print stylesheet. Pure: review in, page out.
import { EXCEPTION_KINDS, type ExceptionKind, type PersonAccess, type Review } from "./review.ts";

export type HtmlContext = {
  /** Where the review was taken from: the kubeconfig's context and API server. */
  cluster: string;
};

const EXCEPTION_TITLES: Record<ExceptionKind, string> = {
  LeaverWithAccess: "Leaver with access",
  TargetUnreadable: "Target could not be checked",
  OrphanAccount: "Orphan account",
  Drifted: "Drift",
  DeprovisioningHeld: "Deprovisioning held",
  ExpiringGrant: "Expiring grant",
  AdoptionCandidate: "Adoption candidate",
  AdoptionConflict: "Adoption conflict",
  UnmanagedMembers: "Members added by hand",
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const e = escapeHtml;
const cell = (value: string) => (value === "" ? '<td class="none">–</td>' : `<td>${e(value)}</td>`);

const STYLE = `
:root { color-scheme: light; --line: #d0d4da; --muted: #5b6470; --bad: #a4161a; --bad-bg: #fdecea; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232a;
  margin: 2rem auto; max-width: 80rem; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #1d232a; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .35rem; }
.taken { color: var(--muted); margin: 0 0 1rem; }
.counts { display: flex; flex-wrap: wrap; gap: .5rem; margin: 0; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .75rem; min-width: 9rem; }
.counts li.bad { border-color: var(--bad); background: var(--bad-bg); }
.counts .n { display: block; font-size: 1.4rem; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: .25rem 0 1rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid var(--line); }
th { background: #f1f3f5; font-weight: 600; }
td.none { color: var(--muted); }
td ul { margin: 0; padding-left: 1.1rem; }
tr.exception td:first-child { color: var(--bad); font-weight: 600; }
.clean { padding: .5rem .75rem; border: 1px solid var(--line); border-radius: 6px; }
.person-meta { color: var(--muted); margin: 0 0 .25rem; }
.pending { color: var(--muted); font-style: italic; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.notes li { color: var(--muted); }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10pt; }
  @page { size: A4 landscape; margin: 12mm; }
  h2 { break-after: avoid; }
  h3, .person-meta { break-after: avoid; }
  tr, .counts li { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: none; border-bottom: 1.5px solid #000; }
  .counts li.bad, tr.exception td { background: none; }
  a { color: inherit; text-decoration: none; }
}
`;

function counts(review: Review): string {
  const accounts = review.people.reduce((n, p) => n + p.accounts.filter((a) => a.state !== "").length, 0);
  const leavers = review.people.filter((p) => p.lifecycle === "Terminated").length;
  const items: [string, number, boolean][] = [
    ["Exceptions", review.exceptions.length, review.exceptions.length > 0],
    ["People", review.people.length, false],
    ["Leavers", leavers, false],
    ["Accounts", accounts, false],
    ...EXCEPTION_KINDS.map((kind): [string, number, boolean] => {
      const n = review.exceptions.filter((x) => x.kind === kind).length;
      return [EXCEPTION_TITLES[kind], n, n > 0];
    }),
  ];
  return `<ul class="counts">${items
    .map(
      ([label, n, bad]) =>
        `<li${bad ? ' class="bad"' : ""} data-count="${e(label)}"><span class="n">${n}</span>${e(label)}</li>`,
    )
    .join("")}</ul>`;
}

function exceptionsSection(review: Review, withNs: boolean): string {
  if (review.exceptions.length === 0)
    return `<section id="exceptions"><h2>Exceptions</h2><p class="clean">None: no leaver with access, no orphan, no drift, nothing held.</p></section>`;
  const head = ["Exception", ...(withNs ? ["Namespace"] : []), "Person", "Connector", "Account", "Detail"];
  const rows = review.exceptions.map(
    (x) =>
      `<tr class="exception" data-kind="${x.kind}"><td>${e(EXCEPTION_TITLES[x.kind])}</td>${
        withNs ? cell(x.namespace) : ""
      }${cell(x.employee ?? "")}${cell(x.connector ?? "")}${
        x.account ? `<td><code>${e(x.account)}</code></td>` : cell("")
      }${cell(x.detail)}</tr>`,
  );
  return `<section id="exceptions"><h2>Exceptions (${review.exceptions.length})</h2>${table(head, rows)}</section>`;
}

function table(head: string[], rows: string[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function groupsCell(groups: PersonAccess["accounts"][number]["groups"]): string {
  if (groups.length === 0) return cell("");
  const items = groups.map((g) => {
    const from = g.sources.length ? g.sources.join(", ") : "no entitlement";
    return `<li>${e(g.name)} <span class="from">(${e(from)})</span>${
      g.member ? "" : ' <span class="pending">not yet a member</span>'
    }</li>`;
  });
  return `<td><ul>${items.join("")}</ul></td>`;
}

function connectorsSection(review: Review, withNs: boolean): string {
  const byConnector = new Map<
    string,
    { person: PersonAccess; account: PersonAccess["accounts"][number] }[]
  >();
  for (const person of review.people)
    for (const account of person.accounts) {
      const key = withNs ? `${person.namespace}/${account.connector}` : account.connector;
      byConnector.set(key, [...(byConnector.get(key) ?? []), { person, account }]);
    }
  if (byConnector.size === 0)
    return `<section id="connectors"><h2>By connector</h2><p>No accounts.</p></section>`;
  const parts = [...byConnector]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([connector, entries]) => {
      const rows = entries.map(
        ({ person, account }) =>
          `<tr>${cell(person.name)}${cell(person.username)}${cell(person.employmentStatus)}${cell(
            account.state || "not created",
          )}${account.id ? `<td><code>${e(account.id)}</code></td>` : cell("")}${cell(
            account.sources.join(", "),
          )}${groupsCell(account.groups)}</tr>`,
      );
      return `<h3>${e(connector)} <small>(${entries.length} ${entries.length === 1 ? "person" : "people"})</small></h3>${table(
        [
          "Person",
          "Username",
          "Employment",
          "Account",
          "Account id",
          "Account granted by",
          "Groups (granted by)",
        ],
        rows,
      )}`;
    });
  return `<section id="connectors"><h2>By connector</h2>${parts.join("")}</section>`;
}

function peopleSection(review: Review, withNs: boolean): string {
  if (review.people.length === 0)
    return `<section id="people"><h2>By person</h2><p>No Employees.</p></section>`;
  const parts = review.people.map((p) => {
    const title = withNs ? `${p.namespace}/${p.name}` : p.name;
    const meta = [
      `username ${p.username}`,
      `employee id ${p.employeeId}`,
      `employment ${p.employmentStatus}`,
      ...(p.lifecycle !== p.employmentStatus ? [`now ${p.lifecycle}`] : []),
      ...(p.phase ? [`phase ${p.phase}`] : []),
    ];
    const rows = p.accounts.map(
      (a) =>
        `<tr>${cell(a.connector)}${cell(a.state || "not created")}${
          a.id ? `<td><code>${e(a.id)}</code></td>` : cell("")
        }${cell(a.sources.join(", "))}${groupsCell(a.groups)}</tr>`,
    );
    return `<article class="person"><h3>${e(title)}</h3><p class="person-meta">${e(meta.join(" · "))}</p>${
      rows.length
        ? table(["Connector", "Account", "Account id", "Account granted by", "Groups (granted by)"], rows)
        : "<p>No accounts.</p>"
    }</article>`;
  });
  return `<section id="people"><h2>By person</h2>${parts.join("")}</section>`;
}

export function renderReviewHtml(
  review: Review,
  context: HtmlContext,
  options: { allNamespaces: boolean },
): string {
  const withNs = options.allNamespaces;
  const title = `Access review, ${review.scope}, ${review.generatedAt}`;
  const notes = review.notes.length
    ? `<section id="notes"><h2>Not covered</h2><ul class="notes">${review.notes.map((n) => `<li>${e(n)}</li>`).join("")}</ul></section>`
    : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="roster report">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Access review</h1>
<p class="taken">Taken <time datetime="${e(review.generatedAt)}">${e(review.generatedAt)}</time> from cluster <code>${e(
    context.cluster,
  )}</code>, ${e(review.scope)}.</p>
${counts(review)}
</header>
<main>
${exceptionsSection(review, withNs)}
${connectorsSection(review, withNs)}
${peopleSection(review, withNs)}
${notes}
</main>
</body>
</html>
`;
}
