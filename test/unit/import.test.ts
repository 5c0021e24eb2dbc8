import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import type { Employee } from "../../src/api/types.ts";
import {
  appliedPaths,
  getTarget,
  leaverLimit,
  planImport,
  PlanError,
  type ExistingEmployee,
} from "../../src/hr/diff.ts";
import {
  employeeName,
  formatProblem,
  isValidDate,
  mapRecord,
  type MappedRecord,
} from "../../src/hr/employee.ts";
import { manifestPath, readManifestDirectory, toManifest } from "../../src/hr/manifest.ts";
import {
  buildMapping,
  MappingError,
  parseMapFlags,
  parseMappingYaml,
  type Mapping,
} from "../../src/hr/mapping.ts";
import { cell, detectFormat, readRecords, SourceError, type SourceRecord } from "../../src/hr/source.ts";
import { planJson, renderPlanText } from "../../src/hr/summary.ts";

const fixtures = join(import.meta.dirname, "../fixtures/hr");
const fixtureMapping = () =>
  buildMapping(parseMappingYaml(readFileSync(join(fixtures, "mapping.yaml"), "utf8"), "mapping.yaml"));

const mapping: Mapping = buildMapping([
  ["employeeId", "id"],
  ["username", "login"],
  ["givenName", "first"],
  ["familyName", "last"],
  ["email", "mail"],
  ["department", "dept"],
  ["startDate", "start"],
  ["endDate", "end"],
  ["attributes.badge", "badge"],
  ["labels.team", "team"],
]);

async function collect(text: string, format: "csv" | "jsonl" = "csv"): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of readRecords(text, { format })) out.push(r);
  return out;
}

const row = (line: number, values: Record<string, string>): SourceRecord => ({ line, values });
const good = (id: string, login: string, extra: Record<string, string> = {}) => ({
  id,
  login,
  first: login.charAt(0).toUpperCase() + login.slice(1),
  last: "Tester",
  mail: `${login}@example.com`,
  ...extra,
});

function employee(name: string, spec: Partial<Employee["spec"]>, labels?: Record<string, string>): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: {
      employeeId: "E0",
      username: name,
      givenName: "X",
      familyName: "Tester",
      email: `${name}@example.com`,
      ...spec,
    },
  };
}

describe("mapping", () => {
  it("reads a YAML mapping with nested and dotted attributes and labels", () => {
    const m = fixtureMapping();
    expect(m.fields.find((f) => f.key === "attributes.badge")).toMatchObject({
      column: "Badge",
      target: { kind: "attribute", name: "badge" },
    });
    expect(m.fields.find((f) => f.key === "labels.roster.dev/source")?.target).toEqual({
      kind: "label",
      key: "roster.dev/source",
    });
  });

  it("--map flags split at the first =, later ones replace earlier ones", () => {
    expect(parseMapFlags(["employeeId=Employee ID", "title=A=B"])).toEqual([
      ["employeeId", "Employee ID"],
      ["title", "A=B"],
    ]);
    const m = buildMapping([
      ...parseMapFlags(["employeeId=a", "username=b", "givenName=c", "familyName=d", "email=e"]),
      ["email", "Mail"],
    ]);
    expect(m.fields.find((f) => f.key === "email")?.column).toBe("Mail");
  });

  it("names unknown fields, bad attribute names and missing required fields", () => {
    expect(() => parseMapFlags(["nope"])).toThrow(/expected field=Column/);
    expect(() => buildMapping([["salary", "Salary"]])).toThrow(/"salary" is not an Employee field/);
    expect(() => buildMapping([["attributes.a b", "X"]])).toThrow(/attribute names must match/);
    expect(() => buildMapping([["labels.-bad", "X"]])).toThrow(/not a valid label key/);
    expect(() => buildMapping([["employeeId", "id"]])).toThrow(
      /required field\(s\) username, givenName, familyName, email/,
    );
    expect(() => parseMappingYaml("- a\n- b\n", "m.yaml")).toThrow(MappingError);
    expect(() => parseMappingYaml("grants: X\n", "m.yaml")).toThrow(/^m\.yaml: "grants"/);
  });
});

describe("source", () => {
  it("detects the format from the extension or --format", () => {
    expect(detectFormat("hr.CSV")).toBe("csv");
    expect(detectFormat("hr.ndjson")).toBe("jsonl");
    expect(detectFormat("hr.txt")).toBeUndefined();
    expect(detectFormat("hr.txt", "jsonl")).toBe("jsonl");
    expect(detectFormat("hr.csv", "xml")).toBeUndefined();
  });

  it("gives each CSV record the line it starts on, across quoted newlines and blank lines", async () => {
    const records = await collect('\uFEFFid,name\r\n1,"two\r\nlines"\r\n\r\n2,x\r\n3\r\n');
    expect(records.map((r) => [r.line, r.values])).toEqual([
      [2, { id: "1", name: "two\r\nlines" }],
      [5, { id: "2", name: "x" }],
      [6, { id: "3" }],
    ]);
    expect(records[2]!.problem).toBe("has 1 fields, the header has 2");
  });

  it("counts lines in bytes-safe way for UTF-8 and plain newlines", async () => {
    const records = await collect('id,name\n1,"Zoë\nNuñez"\n\n\n2,日本\n3,"a\n\nb"\n4,x');
    expect(records.map((r) => r.line)).toEqual([2, 6, 7, 10]);
  });

  it("fails on a broken file with the line, and on a bad header", async () => {
    await expect(collect('id,name\n1,"open\n')).rejects.toThrow(SourceError);
    await expect(collect("id,id\n1,2\n")).rejects.toThrow(/names column "id" twice/);
    await expect(collect("")).rejects.toThrow(/empty/);
    const seen: string[][] = [];
    for await (const r of readRecords("a,b\n", { format: "csv", onHeader: (c) => seen.push(c) })) void r;
    expect(seen).toEqual([["a", "b"]]);
  });

  it("reads JSON lines, refusing bad lines by number", async () => {
    const records = await collect('{"id":"1","n":{"x":2}}\n\n[1]\nnot json\n{"id":3}\n', "jsonl");
    expect(records.map((r) => [r.line, r.problem ?? "ok"])).toEqual([
      [1, "ok"],
      [3, "not a JSON object"],
      [4, expect.stringContaining("not valid JSON")],
      [5, "ok"],
    ]);
  });
});

describe("mapping a record to an Employee", () => {
  it("maps columns, attributes and labels, and always sets employmentStatus", () => {
    const r = mapRecord(
      row(2, good("E1", "ada", { dept: " R&D ", badge: "B-7", team: "core", start: "2026-01-31" })),
      mapping,
    );
    expect(r.problems).toEqual([]);
    expect(r.employee).toEqual({
      apiVersion: "roster.dev/v1alpha1",
      kind: "Employee",
      metadata: { name: "ada", labels: { team: "core" } },
      spec: {
        employeeId: "E1",
        username: "ada",
        givenName: "Ada",
        familyName: "Tester",
        email: "ada@example.com",
        department: "R&D",
        startDate: "2026-01-31",
        attributes: { badge: "B-7" },
        employmentStatus: "Active",
      },
    });
  });

  it("marks rows whose account exists already for adoption (roster.dev/adopt), and nothing else", () => {
    const m = buildMapping([
      ...mapping.fields.map((f) => [f.key, f.column] as [string, string]),
      ["annotations.roster.dev/adopt", { column: "has", values: { yes: "corp-ldap,wiki", no: "" } }],
    ]);
    const marked = mapRecord(row(1, { ...good("E1", "ada"), has: "Yes" }), m);
    expect(marked.problems).toEqual([]);
    expect(marked.employee?.metadata.annotations).toEqual({ "roster.dev/adopt": "corp-ldap,wiki" });
    const unmarked = mapRecord(row(2, { ...good("E2", "bo"), has: "no" }), m);
    expect(unmarked.employee?.metadata.annotations?.["roster.dev/adopt"] ?? "").toBe("");
    expect(() => buildMapping([["annotations.example.com/other", "x"]])).toThrow(
      /annotations\.roster\.dev\/adopt/,
    );
  });

  it("accepts HR spellings of enums and JSON numbers", () => {
    const m = buildMapping([
      ...mapping.fields.map((f) => [f.key, f.column] as [string, string]),
      ["employmentStatus", "s"],
      ["employmentType", "t"],
    ]);
    const r = mapRecord(
      { line: 1, values: { ...good("x", "bo"), id: 42, s: "on leave", t: "CONTRACTOR" } },
      m,
    );
    expect(r.employee?.spec).toMatchObject({
      employeeId: "42",
      employmentStatus: "OnLeave",
      employmentType: "Contractor",
    });
    const empty = mapRecord(row(1, good("E2", "cy")), m);
    expect(empty.employee?.spec).toMatchObject({ employmentStatus: "Active", employmentType: "Employee" });
  });

  it("refuses rows naming field, column and reason", () => {
    const problems = (values: Record<string, string>) =>
      mapRecord(row(7, values), mapping).problems.map((p) => formatProblem("hr.csv", 7, p));
    expect(problems(good("", "ada"))).toEqual([
      'hr.csv:7: spec.employeeId (column "id"): missing employee id (empty cell)',
    ]);
    expect(problems(good("E1", "Ada"))).toEqual([
      'hr.csv:7: spec.username (column "login"): "Ada" is not a valid username (^[a-z][a-z0-9._-]{0,63}$)',
    ]);
    expect(problems(good("E1", "ada", { start: "2026-02-30" }))).toEqual([
      'hr.csv:7: spec.startDate (column "start"): "2026-02-30" is not a valid date (YYYY-MM-DD or RFC 3339 date-time)',
    ]);
    expect(problems(good("E1", "ada", { start: "2026-03-01", end: "2026-02-01" }))).toEqual([
      'hr.csv:7: spec.endDate (column "end"): 2026-02-01 is before startDate 2026-03-01',
    ]);
    expect(problems(good("E1", "ada", { mail: "nope" }))).toEqual([
      'hr.csv:7: spec.email (column "mail"): "nope" must match ^[^@\\s]+@[^@\\s]+$',
    ]);
    expect(problems({ ...good("E1", "ada"), first: "" })).toEqual([
      'hr.csv:7: spec.givenName (column "first"): is required (no column or an empty cell)',
    ]);
    expect(problems(good("E1", "ada", { badge: "x".repeat(1025) }))).toEqual([
      `hr.csv:7: spec.attributes.badge (column "badge"): "${"x".repeat(57)}..." must NOT have more than 1024 characters`,
    ]);
    expect(problems(good("E1", "ada", { team: "has space" }))[0]).toMatch(
      /^hr\.csv:7: metadata\.labels\.team \(column "team"\): "has space" is not a valid label value/,
    );
  });

  it("keeps the id and username of refused rows", () => {
    const r = mapRecord(
      { line: 3, values: good("E1", "ada"), problem: "has 3 fields, the header has 5" },
      mapping,
    );
    expect(r).toMatchObject({
      employeeId: "E1",
      username: "ada",
      problems: [{ message: "has 3 fields, the header has 5" }],
    });
    expect(r.employee).toBeUndefined();
  });

  it("validates real calendar dates and RFC 3339 date-times", () => {
    expect(isValidDate("2024-02-29")).toBe(true);
    expect(isValidDate("2025-02-29")).toBe(false);
    expect(isValidDate("2026-01-31T09:00:00Z")).toBe(true);
    expect(isValidDate("2026-01-31T24:00:00Z")).toBe(false);
    expect(isValidDate("2026-01-31T09:00:00+02:00")).toBe(true);
    expect(isValidDate("31/01/2026")).toBe(false);
  });
});

describe("stable, DNS-safe names", () => {
  it("keeps usernames that are already DNS names, hashes the others deterministically", () => {
    expect(employeeName("ada")).toBe("ada");
    expect(employeeName("ada.lovelace")).toBe("ada.lovelace");
    const a = employeeName("ada_lovelace");
    expect(a).toMatch(/^ada-lovelace-[0-9a-f]{8}$/);
    expect(employeeName("ada_lovelace")).toBe(a);
    expect(employeeName("ada-lovelace")).toBe("ada-lovelace");
    expect(employeeName("ada.-x")).not.toBe(employeeName("ada-.x"));
    for (const u of ["a_", "a.", "a..b", "x-", `a${"_".repeat(63)}`]) {
      expect(employeeName(u)).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(employeeName(u).length).toBeLessThanOrEqual(63);
    }
  });

  it("writes sorted keys, quotes date-like strings, and reads back the same object", () => {
    const e = employee("ada", { employeeId: "007", startDate: "2026-01-31", title: "yes" }, { team: "core" });
    const text = toManifest(e);
    expect(text.split("\n").slice(0, 5)).toEqual([
      "apiVersion: roster.dev/v1alpha1",
      "kind: Employee",
      "metadata:",
      "  labels:",
      "    team: core",
    ]);
    expect(text).toContain("startDate: '2026-01-31'");
    expect(text).toContain("employeeId: '007'");
    expect(load(text)).toEqual(e);
    expect(toManifest(structuredClone(e))).toBe(text);
    expect(manifestPath("/d", { name: "ada" })).toBe("/d/ada.yaml");
  });
});

function records(rows: [number, Record<string, string>][], m: Mapping = mapping): MappedRecord[] {
  return rows.map(([line, values]) => mapRecord(row(line, values), m));
}

describe("the plan: hires, movers, leavers", () => {
  const existing: ExistingEmployee[] = [
    {
      employee: employee("ada", { employeeId: "E1", department: "Sales", grants: [{ connector: "x" }] }),
      file: "/d/ada.yaml",
    },
    {
      employee: employee("bob", { employeeId: "E2", department: "Sales", employmentStatus: "Active" }),
      file: "/d/bob.yaml",
    },
    { employee: employee("cy", { employeeId: "E3", employmentStatus: "Active" }), file: "/d/cy.yaml" },
    { employee: employee("dee", { employeeId: "E4", employmentStatus: "Terminated" }), file: "/d/dee.yaml" },
    { employee: employee("eve", { employeeId: "E5" }), file: "/d/eve.yaml" },
  ];

  it("sorts people into hires, movers (field by field), leavers and unchanged", () => {
    const plan = planImport(
      existing,
      records([
        [2, good("E1", "ada", { first: "X", dept: "Engineering", badge: "B-1" })],
        [3, good("E2", "bob", { first: "X", dept: "Sales" })],
        [4, good("E9", "zed")],
        [5, good("E5", "eve", { first: "X", end: "2026-13-01" })],
      ]),
      mapping,
      { mode: "merge" },
    );
    expect(plan.hires.map((h) => [h.name, h.line])).toEqual([["zed", 4]]);
    expect(plan.movers).toHaveLength(1);
    expect(plan.movers[0]!.changes).toEqual([
      { field: "spec.department", old: "Sales", new: "Engineering" },
      { field: "spec.attributes.badge", new: "B-1" },
    ]);
    // Merge keeps what the import does not map (grants).
    expect(plan.movers[0]!.object.spec.grants).toEqual([{ connector: "x" }]);
    expect(plan.unchanged).toBe(1);
    // cy left; dee was already Terminated; eve's row was refused, so eve is not a leaver.
    expect(plan.leavers.map((l) => [l.name, l.changes])).toEqual([
      ["cy", [{ field: "spec.employmentStatus", old: "Active", new: "Terminated" }]],
    ]);
    expect(plan.leavers[0]!.object.spec.employmentStatus).toBe("Terminated");
    expect(plan.refused.map((r) => r.line)).toEqual([5]);
  });

  it("refuses duplicates, username changes and names taken by someone else", () => {
    const plan = planImport(
      existing,
      records([
        [2, good("E1", "ada", { first: "X", dept: "Sales" })],
        [3, good("E1", "ada2")],
        [4, good("E7", "ada")],
        [5, good("E2", "bobby")],
        [6, good("E8", "cy")],
      ]),
      mapping,
      { mode: "merge" },
    );
    expect(plan.refused.map((r) => [r.line, r.problems[0]!.message])).toEqual([
      [3, 'duplicate employeeId "E1" (first on line 2)'],
      [4, 'duplicate username "ada" (first on line 2)'],
      [5, 'username is immutable: /d/bob.yaml (employeeId E2) has "bob", the export says "bobby"'],
      [6, 'username "cy" belongs to employeeId "E3" (/d/cy.yaml)'],
    ]);
    // bob (refused row) and cy (username in a refused row) are protected from leaving.
    expect(plan.leavers.map((l) => l.name)).toEqual(["eve"]);
  });

  it("skips Terminated rows for people who do not exist, and reactivates returning leavers", () => {
    const m = buildMapping([
      ...mapping.fields.map((f) => [f.key, f.column] as [string, string]),
      ["employmentStatus", "s"],
    ]);
    const plan = planImport(
      existing,
      records(
        [
          [2, good("E9", "zed", { s: "Terminated" })],
          [3, good("E4", "dee", { first: "X" })],
        ],
        m,
      ),
      m,
      { mode: "merge" },
    );
    expect(plan.skipped).toEqual([
      { line: 2, employeeId: "E9", reason: "Terminated in the export and not present" },
    ]);
    expect(plan.movers[0]!.changes).toEqual([
      { field: "spec.employmentStatus", old: "Terminated", new: "Active" },
    ]);
  });

  it("apply mode sends only mapped fields and removes only what roster-import owns", () => {
    const live = employee("ada", {
      employeeId: "E1",
      department: "Sales",
      title: "Boss",
      employmentType: "Employee",
    });
    (live.metadata as Record<string, unknown>).managedFields = [
      {
        manager: "roster-import",
        operation: "Apply",
        fieldsV1: { "f:spec": { "f:department": {}, "f:attributes": { "f:badge": {} } } },
      },
      { manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": { "f:title": {} } } },
    ];
    expect([...appliedPaths(live, "roster-import")].sort()).toEqual([
      "spec",
      "spec.attributes",
      "spec.attributes.badge",
      "spec.department",
    ]);
    const m = buildMapping([
      ...mapping.fields.map((f) => [f.key, f.column] as [string, string]),
      ["title", "title"],
    ]);
    const unchanged = planImport(
      [{ employee: live }],
      records([[2, good("E1", "ada", { first: "X", dept: "Sales" })]], m),
      m,
      {
        mode: "apply",
      },
    );
    // title is mapped but empty and owned by kubectl: apply would not remove it, so nothing changes.
    expect(unchanged.unchanged).toBe(1);
    const moved = planImport([{ employee: live }], records([[2, good("E1", "ada", { first: "X" })]], m), m, {
      mode: "apply",
    });
    expect(moved.movers[0]!.changes).toEqual([{ field: "spec.department", old: "Sales" }]);
    expect(moved.movers[0]!.object.spec).not.toHaveProperty("department");
    expect(moved.movers[0]!.object.spec).not.toHaveProperty("grants");
    const left = planImport([{ employee: live }], [], m, { mode: "apply" });
    expect(left.leavers[0]!.object).toEqual({
      apiVersion: "roster.dev/v1alpha1",
      kind: "Employee",
      metadata: { name: "ada" },
      spec: {
        employeeId: "E1",
        username: "ada",
        givenName: "X",
        familyName: "Tester",
        email: "ada@example.com",
        department: "Sales",
        title: "Boss",
        employmentStatus: "Terminated",
      },
    });
  });

  it("refuses two existing objects with one employeeId, and limits leavers", () => {
    expect(() =>
      planImport([existing[0]!, { ...existing[0]!, file: "/d/other.yaml" }], [], mapping, { mode: "merge" }),
    ).toThrow(PlanError);
    expect(leaverLimit(undefined, 50)).toBe(10);
    expect(leaverLimit(undefined, 1000)).toBe(100);
    expect(leaverLimit("25%", 200)).toBe(50);
    expect(leaverLimit("3", 200)).toBe(3);
    expect(() => leaverLimit("lots", 1)).toThrow(/--max-leavers/);
  });
});

describe("the small fixture end to end (parse, map, plan)", () => {
  it("imports the good rows and refuses each bad one with its line and reason", async () => {
    const m = fixtureMapping();
    const mapped: MappedRecord[] = [];
    const text = readFileSync(join(fixtures, "small.csv"), "utf8");
    for await (const r of readRecords(text, { format: "csv" })) mapped.push(mapRecord(r, m));
    const plan = planImport([], mapped, m, { mode: "merge" });
    expect(plan.hires.map((h) => [h.name, h.line])).toEqual([
      ["ada", 2],
      [expect.stringMatching(/^grace-h-[0-9a-f]{8}$/), 3],
    ]);
    expect(plan.hires[1]!.object.spec).toMatchObject({
      familyName: "Hopper, Jr.",
      title: "Rear\nAdmiral",
      employmentStatus: "OnLeave",
      employmentType: "Contractor",
    });
    expect(plan.refused.map((r) => [r.line, r.problems.map((p) => p.field ?? "-").join(",")])).toEqual([
      [5, "spec.employeeId"],
      [6, "spec.username"],
      [7, "spec.startDate"],
      [8, "spec.employeeId"],
      [9, "spec.username"],
      [10, "spec.email"],
      [11, "-"],
      [12, "spec.employmentType"],
      [13, "spec.endDate"],
    ]);
    expect(plan.skipped.map((x) => x.line)).toEqual([14]);
  });
});

describe("directory and report", () => {
  it("reads Employee files, ignores other kinds, refuses multi-document Employee files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "roster-import-unit-"));
    writeFileSync(join(dir, "ada.yaml"), toManifest(employee("ada", { employeeId: "E1" })));
    writeFileSync(join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    writeFileSync(join(dir, "notes.txt"), "kind: Employee\n");
    const contents = await readManifestDirectory(dir);
    expect(contents.employees.map((e) => [e.file, e.employee.spec.employeeId])).toEqual([
      [join(dir, "ada.yaml"), "E1"],
    ]);
    expect((await readManifestDirectory(join(dir, "missing"))).employees).toEqual([]);
    writeFileSync(
      join(dir, "two.yaml"),
      `${toManifest(employee("b", { employeeId: "E2" }))}---\n${toManifest(employee("c", { employeeId: "E3" }))}`,
    );
    await expect(readManifestDirectory(dir)).rejects.toThrow(/two\.yaml: holds several documents/);
  });

  it("renders the summary as text and JSON", () => {
    const existing: ExistingEmployee[] = [
      { employee: employee("ada", { employeeId: "E1", department: "Sales" }), file: "/d/ada.yaml" },
      { employee: employee("cy", { employeeId: "E3" }), file: "/d/cy.yaml" },
    ];
    const plan = planImport(
      existing,
      records([
        [2, good("E1", "ada", { first: "X", dept: "Engineering" })],
        [3, good("E9", "zed")],
        [4, good("", "nob")],
      ]),
      mapping,
      { mode: "merge" },
    );
    const text = renderPlanText(plan, "hr.csv", { directory: "people" });
    expect(text).toBe(
      [
        "Import of hr.csv (3 rows) into people/: 1 new hire, 1 mover, 1 leaver, 1 refused row, 0 unchanged",
        "",
        "New hires (1):",
        "  + zed  E9  (line 3)",
        "",
        "Movers (1):",
        "  ~ ada  E1  (line 2)",
        '      spec.department: "Sales" -> "Engineering"',
        "",
        "Leavers (employmentStatus -> Terminated) (1):",
        "  - cy   E3",
        '      spec.employmentStatus: (none) -> "Terminated"',
        "",
        "Refused rows (1):",
        '  hr.csv:4: spec.employeeId (column "id"): missing employee id (empty cell)',
        "",
      ].join("\n"),
    );
    const json = planJson(plan, {
      source: "hr.csv",
      target: { directory: "people" },
      dryRun: true,
      written: [],
      failed: [],
    });
    expect(json).toMatchObject({
      counts: { hires: 1, movers: 1, leavers: 1, refused: 1, unchanged: 0, skipped: 0 },
      hires: [{ name: "zed", employeeId: "E9", username: "zed", line: 3 }],
      refused: [
        {
          file: "hr.csv",
          line: 4,
          username: "nob",
          messages: [expect.stringMatching(/^hr\.csv:4: spec\.employeeId/)],
        },
      ],
    });
  });
});

describe("getTarget", () => {
  it("reads a mapped attribute, label or annotation only where the Employee has it", () => {
    const employee: Employee = {
      apiVersion: "roster.dev/v1alpha1",
      kind: "Employee",
      metadata: { name: "ada", labels: { team: "platform" }, annotations: {} },
      spec: {
        employeeId: "E1",
        username: "ada",
        givenName: "Ada",
        familyName: "L",
        email: "a@x",
        attributes: { badge: "7" },
      },
    };
    expect(getTarget(employee, { kind: "attribute", name: "badge" })).toBe("7");
    expect(getTarget(employee, { kind: "label", key: "team" })).toBe("platform");
    expect(getTarget(employee, { kind: "attribute", name: "constructor" })).toBeUndefined();
    expect(getTarget(employee, { kind: "label", key: "toString" })).toBeUndefined();
    expect(getTarget(employee, { kind: "annotation", key: "valueOf" })).toBeUndefined();
  });
});

describe("HR columns read only what the record holds", () => {
  it("a column the record lacks is absent, even when a plain object inherits that name", () => {
    expect(cell({ org: { name: "Research" } }, "org.name")).toBe("Research");
    expect(cell({}, "constructor")).toBeUndefined();
    expect(cell({ org: { name: "Research" } }, "org.toString")).toBeUndefined();
    expect(cell({ org: { name: "Research" } }, "org.name.length")).toBeUndefined();
  });
});
