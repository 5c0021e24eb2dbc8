// `roster import` as users run it (a child process): a generated 1,000-row HR export with new
// hires, movers against an existing directory, leavers and 20 bad rows; then the same export
// server-side applied to a real kube-apiserver, with a real operator provisioning into slapd.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Employee } from "../../src/api/types.ts";
import { toManifest } from "../../src/hr/manifest.ts";
import { registerDirectory } from "../harness/processes.ts";
import { attr } from "../support/ldap.ts";
import { startOperator, type OperatorProcess } from "../support/operator.ts";
import { scenario, type Scenario } from "../support/scenario.ts";

const info = inject("harness");
const bin = join(import.meta.dirname, "../../bin/roster.js");
const mappingFile = join(import.meta.dirname, "../fixtures/hr/mapping.yaml");

type Result = { code: number; stdout: string; stderr: string };
function roster(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

// --- the generated export -------------------------------------------------------------------

const HEADER = [
  "Employee ID",
  "Login",
  "First Name",
  "Last Name",
  "Work Email",
  "Department",
  "Job Title",
  "Manager",
  "Type",
  "Status",
  "Start Date",
  "End Date",
  "Badge",
  "Source",
];
type Row = Record<string, string>;
const pad = (n: number) => String(n).padStart(4, "0");
const DEPARTMENTS = ["Sales", "Engineering", "Finance", "Support"];

/** Person n as HR knows them before any change. Every 25th hire has a login that is not DNS-safe. */
function person(n: number): Row {
  const login = n > 1000 && n % 25 === 0 ? `u_${n}` : `u${pad(n)}`;
  return {
    "Employee ID": `E${pad(n)}`,
    Login: login,
    "First Name": `First${n}`,
    "Last Name": n % 7 === 0 ? `O'Brien, ${n}` : `Last${n}`,
    "Work Email": `${login}@example.com`,
    Department: DEPARTMENTS[n % 4]!,
    "Job Title": "Analyst",
    Manager: n === 1 ? "" : "u0001",
    Type: n % 10 === 0 ? "contractor" : "Employee",
    Status: "Active",
    "Start Date": "2024-01-15",
    "End Date": "",
    Badge: `B-${n}`,
    Source: "hr",
  };
}

function csv(rows: Row[]): string {
  const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  return (
    [HEADER.join(","), ...rows.map((r) => HEADER.map((h) => quote(r[h] ?? "")).join(","))].join("\n") + "\n"
  );
}

/** Bad rows, each with the field and reason expected in its refusal. */
const BAD: { row: Row; expect: RegExp }[] = [
  ...[1, 2, 3, 4].map((k) => ({
    row: { ...person(3000 + k), "Employee ID": "" },
    expect: /spec\.employeeId \(column "Employee ID"\): missing employee id/,
  })),
  ...["2026-02-30", "13/01/2026", "2026-13-01", "tomorrow"].map((d, k) => ({
    row: { ...person(3010 + k), "Start Date": d },
    expect: /spec\.startDate \(column "Start Date"\): ".*" is not a valid date/,
  })),
  ...[100, 101, 102].map((n) => ({
    row: { ...person(n), Login: `dup${n}` },
    expect: new RegExp(`spec\\.employeeId: duplicate employeeId "E0${n}" \\(first on line \\d+\\)`),
  })),
  ...[110, 111, 112].map((n, k) => ({
    row: { ...person(3020 + k), Login: `u0${n}` },
    expect: new RegExp(`spec\\.username: duplicate username "u0${n}" \\(first on line \\d+\\)`),
  })),
  ...["Bad.User", "9lives", "ada lovelace"].map((login, k) => ({
    row: { ...person(3030 + k), Login: login },
    expect: /spec\.username \(column "Login"\): ".*" is not a valid username/,
  })),
  {
    row: { ...person(3040), "Work Email": "not-an-email" },
    expect: /spec\.email \(column "Work Email"\): "not-an-email" must match/,
  },
  {
    row: { ...person(3041), Type: "Robot" },
    expect: /spec\.employmentType \(column "Type"\): "Robot" is not one of/,
  },
  {
    row: { ...person(3042), "First Name": "" },
    expect: /spec\.givenName \(column "First Name"\): is required/,
  },
];

/**
 * 1,000 rows: E0001-E0270 of the 300 existing people (E0001-E0040 move to Research, E0041-E0050
 * get a new title and badge), 710 hires E1001-E1710, and the 20 bad rows spread through the
 * second half. E0271-E0290 are missing (leavers); E0291-E0300 were Terminated already.
 */
function exportRows(): { rows: Row[]; badLines: Map<number, RegExp> } {
  const good: Row[] = [];
  for (let n = 1; n <= 270; n++) {
    const r = person(n);
    if (n <= 40) r.Department = "Research";
    else if (n <= 50) Object.assign(r, { "Job Title": "Senior Analyst", Badge: `B-${n}-2` });
    good.push(r);
  }
  for (let n = 1001; n <= 1710; n++) good.push(person(n));
  const rows: Row[] = [];
  const badLines = new Map<number, RegExp>();
  let bad = 0;
  for (const r of good) {
    rows.push(r);
    if (rows.length >= 500 && rows.length % 24 === 0 && bad < BAD.length) {
      rows.push(BAD[bad]!.row);
      badLines.set(rows.length + 1, BAD[bad]!.expect); // +1: the header is line 1
      bad++;
    }
  }
  while (bad < BAD.length) {
    rows.push(BAD[bad]!.row);
    badLines.set(rows.length + 1, BAD[bad]!.expect);
    bad++;
  }
  return { rows, badLines };
}

type Summary = {
  counts: Record<string, number>;
  hires: { name: string; employeeId: string; line: number }[];
  movers: { name: string; employeeId: string; changes: { field: string; old?: string; new?: string }[] }[];
  leavers: { name: string; employeeId: string }[];
  refused: { line: number; messages: string[] }[];
  written: string[];
};

const snapshot = (dir: string) =>
  new Map(
    readdirSync(dir).map((f) => [
      f,
      { text: readFileSync(join(dir, f), "utf8"), mtime: statSync(join(dir, f)).mtimeMs },
    ]),
  );

let work: string;
let hrCsv: string;
let people: string;
let badLines: Map<number, RegExp>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "roster-import-e2e-"));
  registerDirectory(work);
  people = join(work, "people");
  // The directory as a previous import left it: E0001-E0300, then edits by hand.
  const previous = join(work, "previous.csv");
  writeFileSync(previous, csv(Array.from({ length: 300 }, (_, i) => person(i + 1))));
  const first = await roster(["import", previous, "--mapping", mappingFile, "--out", people, "-o", "json"]);
  expect(first.stderr).toBe("");
  expect(first.code).toBe(0);
  expect((JSON.parse(first.stdout) as Summary).counts.hires).toBe(300);
  const edit = (name: string, change: (e: Employee) => void) => {
    const file = join(people, `${name}.yaml`);
    const e = load(readFileSync(file, "utf8")) as Employee;
    change(e);
    writeFileSync(file, toManifest(e));
  };
  for (let n = 291; n <= 300; n++) edit(`u${pad(n)}`, (e) => (e.spec.employmentStatus = "Terminated"));
  edit(
    "u0001",
    (e) => (e.spec.grants = [{ connector: "corp-ldap", groups: ["admins"], until: "2030-01-01" }]),
  );

  const generated = exportRows();
  badLines = generated.badLines;
  expect(generated.rows).toHaveLength(1000);
  hrCsv = join(work, "hr.csv");
  writeFileSync(hrCsv, csv(generated.rows));
});

describe("roster import into a directory", () => {
  it("prints the plan as text on --dry-run and writes nothing", async () => {
    const before = snapshot(people);
    const result = await roster(["import", hrCsv, "--mapping", mappingFile, "--out", people, "--dry-run"]);
    expect(result.code).toBe(3);
    const out = result.stdout;
    expect(out).toContain(
      `Import of ${hrCsv} (1000 rows) into ${people}/: 710 new hires, 50 movers, 20 leavers, 20 refused rows, 220 unchanged`,
    );
    expect(out).toMatch(/^ {2}\+ u1001 +E1001 +\(line \d+\)$/m);
    expect(out).toMatch(
      /^ {2}~ u0001 +E0001 +\(line 2\)\n {6}spec\.department: "Engineering" -> "Research"$/m,
    );
    expect(out).toMatch(/^ {6}spec\.title: "Analyst" -> "Senior Analyst"$/m);
    expect(out).toMatch(/^ {2}- u0271 +E0271\n {6}spec\.employmentStatus: "Active" -> "Terminated"$/m);
    expect(out).not.toMatch(/u0291/);
    expect(out).toContain("Dry run: nothing written (780 files would change).");
    expect(snapshot(people)).toEqual(before);
  });

  it("writes hires, movers and leavers, and reports every bad row by line, field and reason", async () => {
    const before = snapshot(people);
    const result = await roster(["import", hrCsv, "--mapping", mappingFile, "--out", people, "-o", "json"]);
    expect(result.code).toBe(3);
    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary.counts).toEqual({
      hires: 710,
      movers: 50,
      leavers: 20,
      refused: 20,
      unchanged: 220,
      skipped: 0,
    });
    expect(summary.written).toHaveLength(780);

    // Refusals: the right line, the file, the field and column, the reason.
    expect(summary.refused.map((r) => r.line)).toEqual([...badLines.keys()]);
    for (const r of summary.refused) {
      expect(r.messages[0]).toMatch(
        new RegExp(`^${hrCsv.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${r.line}: `),
      );
      expect(r.messages.join("\n")).toMatch(badLines.get(r.line)!);
    }
    // The duplicates lost; the rows they copied were imported.
    expect(summary.hires.find((h) => h.employeeId === "E3020")).toBeUndefined();

    // A hire: the whole manifest, sorted keys, stable name.
    expect(readFileSync(join(people, "u1002.yaml"), "utf8")).toBe(
      [
        "apiVersion: roster.dev/v1alpha1",
        "kind: Employee",
        "metadata:",
        "  labels:",
        "    roster.dev/source: hr",
        "  name: u1002",
        "spec:",
        "  attributes:",
        "    badge: B-1002",
        "  department: Finance",
        "  email: u1002@example.com",
        "  employeeId: E1002",
        "  employmentStatus: Active",
        "  employmentType: Employee",
        "  familyName: Last1002",
        "  givenName: First1002",
        "  manager: u0001",
        "  startDate: '2024-01-15'",
        "  title: Analyst",
        "  username: u1002",
        "",
      ].join("\n"),
    );
    const hashed = readdirSync(people).filter((f) => f.startsWith("u-1025-"));
    expect(hashed).toEqual([expect.stringMatching(/^u-1025-[0-9a-f]{8}\.yaml$/)]);
    expect((load(readFileSync(join(people, hashed[0]!), "utf8")) as Employee).spec.username).toBe("u_1025");
    expect(readdirSync(people)).toHaveLength(1010);

    // A mover keeps what the import does not own (a grant added by hand).
    const ada = load(readFileSync(join(people, "u0001.yaml"), "utf8")) as Employee;
    expect(ada.spec.department).toBe("Research");
    expect(ada.spec.grants).toEqual([{ connector: "corp-ldap", groups: ["admins"], until: "2030-01-01" }]);
    expect(summary.movers.find((m) => m.employeeId === "E0045")?.changes).toEqual([
      { field: "spec.title", old: "Analyst", new: "Senior Analyst" },
      { field: "spec.attributes.badge", old: "B-45", new: "B-45-2" },
    ]);
    // Leavers are Terminated, not deleted; people Terminated before are untouched.
    const leaver = load(readFileSync(join(people, "u0271.yaml"), "utf8")) as Employee;
    expect(leaver.spec).toMatchObject({
      employmentStatus: "Terminated",
      department: "Support",
      employeeId: "E0271",
    });
    const after = snapshot(people);
    for (const name of ["u0291.yaml", "u0200.yaml", "u0100.yaml"])
      expect(after.get(name)).toEqual(before.get(name));
  });

  it("re-importing the same export writes nothing, and reports progress when asked", async () => {
    const before = snapshot(people);
    const result = await roster([
      "import",
      hrCsv,
      "--mapping",
      mappingFile,
      "--out",
      people,
      "-o",
      "json",
      "--progress",
      "--progress-every",
      "250",
    ]);
    expect(result.code).toBe(3);
    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary.counts).toEqual({
      hires: 0,
      movers: 0,
      leavers: 0,
      refused: 20,
      unchanged: 980,
      skipped: 0,
    });
    expect(summary.written).toEqual([]);
    expect(snapshot(people)).toEqual(before);
    expect(result.stderr).toContain("roster import: 250 rows read\n");
    expect(result.stderr).toContain("roster import: 1000 rows read\n");
  });

  it("--strict writes nothing when a row is refused; errors name the file and line", async () => {
    const strictDir = join(work, "strict");
    const strict = await roster(["import", hrCsv, "--mapping", mappingFile, "--out", strictDir, "--strict"]);
    expect(strict.code).toBe(3);
    expect(strict.stdout).toContain("Nothing written: --strict and 20 rows refused.");
    expect(() => readdirSync(strictDir)).toThrow();

    const broken = join(work, "broken.csv");
    writeFileSync(broken, `${HEADER.join(",")}\nE1,"u1\n`);
    const bad = await roster(["import", broken, "--mapping", mappingFile, "--out", strictDir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      new RegExp(`^roster import: ${broken.replace(/[.\\]/g, "\\$&")}:2: Quote Not Closed`),
    );

    const missing = await roster(["import", hrCsv, "--map", "employeeId=Nope", "--out", strictDir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required field(s) username, givenName, familyName, email");
    const column = await roster([
      "import",
      hrCsv,
      ...[
        "employeeId=Employee ID",
        "username=Login",
        "givenName=Given",
        "familyName=Last Name",
        "email=Work Email",
      ].flatMap((m) => ["--map", m]),
      "--out",
      strictDir,
    ]);
    expect(column.code).toBe(1);
    expect(column.stderr).toContain(
      `${hrCsv}:1: column "Given" (mapped to spec.givenName) is not in the header`,
    );
    const usage = await roster(["import", hrCsv, "--mapping", mappingFile]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("give exactly one of --out DIR or --apply");
    const help = await roster(["import", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: roster import FILE/);
    expect(help.stdout).toContain("Examples:");
  });
});

describe("roster import --apply", () => {
  let s: Scenario;
  let operator: OperatorProcess | undefined;

  beforeAll(async () => {
    s = await scenario(info, "import", {
      safety: { maxDeprovisionsPerHour: 1000, maxDeprovisionPercent: 100 },
    });
    await s.apply("AccessPolicy", "research", {
      match: [{ key: "department", operator: "In", values: ["Research"] }],
      grants: [{ connector: s.connector, groups: ["research"] }],
    });
  });
  afterAll(async () => {
    await operator?.stop();
    await s?.close();
  });

  const apply = (file: string, ...extra: string[]) =>
    roster([
      "import",
      file,
      "--mapping",
      mappingFile,
      "--apply",
      "--kubeconfig",
      info.kubeconfigPath,
      "-n",
      s.namespace,
      "-o",
      "json",
      ...extra,
    ]);

  it("server-side applies every good row with field manager roster-import, then skips unchanged objects", async () => {
    const result = await apply(hrCsv);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(3);
    const summary = JSON.parse(result.stdout) as Summary & { failed: unknown[] };
    expect(summary.failed).toEqual([]);
    expect(summary.counts).toMatchObject({ hires: 980, refused: 20, leavers: 0 });
    expect(summary.written).toHaveLength(980);
    const ada = await s.employee("u0001");
    expect(ada.spec).toMatchObject({
      employeeId: "E0001",
      department: "Research",
      employmentStatus: "Active",
    });
    expect(ada.metadata.labels).toEqual({ "roster.dev/source": "hr" });
    const managers = (ada.metadata as { managedFields?: { manager: string; operation: string }[] })
      .managedFields;
    expect(managers).toContainEqual(
      expect.objectContaining({ manager: "roster-import", operation: "Apply" }),
    );

    const version = ada.metadata.resourceVersion;
    const again = await apply(hrCsv);
    const second = JSON.parse(again.stdout) as Summary;
    expect(second.counts).toMatchObject({ hires: 0, movers: 0, leavers: 0, unchanged: 980 });
    expect(second.written).toEqual([]);
    expect((await s.employee("u0001")).metadata.resourceVersion).toBe(version);
  });

  it("the operator converges: imported people in Research get LDAP accounts and are Active", async () => {
    operator = await startOperator({ namespace: s.namespace });
    for (const n of [1, 17, 40]) {
      const name = `u${pad(n)}`;
      const e = await s.until(name, "Active", (x) => x.status?.phase === "Active", 90_000);
      expect(e.status?.accounts?.[0]).toMatchObject({
        connector: s.connector,
        state: "Active",
        groups: ["research"],
      });
      const entry = await s.ldap.person(s.usersDN, `E${pad(n)}`);
      expect(entry?.dn).toBe(`uid=${name},${s.usersDN}`);
      expect(attr(entry, "mail")).toEqual([`${name}@example.com`]);
    }
    // People no policy gives anything to stay Pending, without accounts.
    const other = await s.until("u0100", "Pending", (x) => x.status?.phase === "Pending", 90_000);
    expect(other.status?.accounts ?? []).toEqual([]);
  });

  it("people missing from a later export become Terminated and are deprovisioned, never deleted", async () => {
    const later = join(work, "later.csv");
    const { rows } = exportRows();
    writeFileSync(later, csv(rows.filter((r) => !["E0001", "E0002"].includes(r["Employee ID"]!))));
    const result = await apply(later);
    const summary = JSON.parse(result.stdout) as Summary;
    expect(summary.counts).toMatchObject({ hires: 0, movers: 0, leavers: 2 });
    expect(summary.leavers.map((l) => l.name)).toEqual(["u0001", "u0002"]);
    const gone = await s.until("u0001", "Deprovisioned", (x) => x.status?.phase === "Deprovisioned", 60_000);
    expect(gone.spec).toMatchObject({ employmentStatus: "Terminated", department: "Research" });
    // What roster-import does not own stays: the fields it never set are not dropped.
    expect(gone.spec.givenName).toBe("First1");
    const entry = await s.ldap.person(s.usersDN, "E0001");
    expect(attr(entry, "pwdAccountLockedTime")).toEqual(["000001010000Z"]);
  });
});
