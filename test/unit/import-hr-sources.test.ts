// HR exports as they come (Workday, BambooHR): generated usernames, value maps, managers by
// reference and date formats, through the same parse -> map -> plan path `roster import` takes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Employee } from "../../src/api/types.ts";
import { planImport, type ExistingEmployee } from "../../src/hr/diff.ts";
import { formatProblem, mapRecord, type MappedRecord } from "../../src/hr/employee.ts";
import {
  buildMapping,
  mappingColumns,
  mappingFromYaml,
  MappingError,
  parseDateFormat,
  reformatDate,
  type FieldSpec,
  type Mapping,
} from "../../src/hr/mapping.ts";
import { readRecords } from "../../src/hr/source.ts";
import { BAMBOOHR_MAPPING, WORKDAY_MAPPING } from "../../src/hr/examples.ts";
import { displayUrl, formatFromContentType } from "../../src/hr/fetch.ts";
import { importEvent, LeaverGuardError, rowCounts } from "../../src/hr/outcome.ts";
import { renderPlanText } from "../../src/hr/summary.ts";
import {
  normalizeUsername,
  parseTemplate,
  pickUsername,
  usernameCandidates,
  type UsernameRule,
} from "../../src/hr/username.ts";

const fixtures = join(import.meta.dirname, "../fixtures/hr");
const fixture = (name: string) => readFileSync(join(fixtures, name), "utf8");

async function mapped(csv: string, mapping: Mapping): Promise<MappedRecord[]> {
  const out: MappedRecord[] = [];
  for await (const r of readRecords(csv, { format: "csv" })) out.push(mapRecord(r, mapping));
  return out;
}

const rule = (templates: string[], extra: Partial<UsernameRule> = {}): UsernameRule => ({
  templates: templates.map(parseTemplate),
  maxLength: 64,
  suffix: "numeric",
  ...extra,
});

function employee(name: string, spec: Partial<Employee["spec"]>): Employee {
  return {
    apiVersion: "roster.dev/v1alpha1",
    kind: "Employee",
    metadata: { name },
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

describe("username templates", () => {
  it("transliterates accents and other scripts, lower-cases and drops what the pattern forbids", () => {
    expect(normalizeUsername("Zoë Martínez-García")).toBe("zoemartinez-garcia");
    expect(normalizeUsername("Łukasz Żółć")).toBe("lukaszzolc");
    expect(normalizeUsername("Иван Петров")).toBe("ivanpetrov");
    expect(normalizeUsername("王芳")).toBe("wangfang");
    expect(normalizeUsername("Straße")).toBe("strasse");
    expect(normalizeUsername("O'Brien")).toBe("obrien");
    expect(normalizeUsername("  9 -- lives..x. ")).toBe("lives.x");
    expect(normalizeUsername("12345")).toBeUndefined();
    expect(normalizeUsername("abcdefghij", 6)).toBe("abcdef");
    expect(normalizeUsername("abcde-ghij", 6)).toBe("abcde");
  });

  it("fills columns through filters: first, last, word, initials, before, after, clean", () => {
    const values = {
      First: "Élodie",
      Last: "van der Berg-Smit",
      Mail: "e.vdb@example.com",
      Middle: "",
      Code: "X-17",
    };
    const names = (t: string) => usernameCandidates(rule([t]), values).candidates;
    expect(names("{First|first:1}{Last}")).toEqual(["evanderberg-smit"]);
    expect(names("{First}.{Last|word:1}")).toEqual(["elodie.van"]);
    expect(names("{Last|initials}{First}")).toEqual(["vdbselodie"]);
    expect(names("{Mail|before:@}")).toEqual(["e.vdb"]);
    expect(names("{Mail|after:@|before:.}")).toEqual(["example"]);
    expect(names("{Last|last:4}{Code|clean}")).toEqual(["smitx-17"]);
    // An empty column makes a template unusable; the next one is tried.
    expect(usernameCandidates(rule(["{First}.{Middle}.{Last}", "{First}.{Last}"]), values)).toEqual({
      candidates: ["elodie.vanderberg-smit"],
      empty: ["Middle"],
    });
    expect(usernameCandidates(rule(["{Middle}{Nope}"]), values)).toEqual({
      candidates: [],
      empty: ["Middle"],
    });
  });

  it("refuses templates it cannot read, naming the template", () => {
    expect(() => parseTemplate("{First")).toThrow(/"\{First": "\{" without "\}"/);
    expect(() => parseTemplate("first}")).toThrow(/"\}" without "\{"/);
    expect(() => parseTemplate("static")).toThrow(/names no column/);
    expect(() => parseTemplate("{First|first}")).toThrow(/"first" needs a positive number/);
    expect(() => parseTemplate("{First|upper}")).toThrow(/unknown filter "upper"/);
  });

  it("takes the first free candidate, then numbers the first one, within maxLength", () => {
    const taken = new Set(["jsmith", "john.smith", "jsmith2"]);
    const isTaken = (u: string) => taken.has(u);
    expect(pickUsername(rule([]), ["jsmith", "john.smith", "johns"], isTaken)).toBe("johns");
    expect(pickUsername(rule([]), ["jsmith", "john.smith"], isTaken)).toBe("jsmith3");
    expect(pickUsername(rule([], { suffix: "none" }), ["jsmith"], isTaken)).toBeUndefined();
    expect(pickUsername(rule([], { maxLength: 6 }), ["jsmith"], isTaken)).toBe("jsmit2");
  });
});

describe("mapping options", () => {
  const base: [string, FieldSpec][] = [
    ["employeeId", "id"],
    ["givenName", "first"],
    ["familyName", "last"],
    ["email", "mail"],
  ];

  it("accepts generate instead of a username column, and names the columns it reads", () => {
    const m = buildMapping([...base, ["username", { generate: ["{first}.{last}"], maxLength: 12 }]]);
    expect(m.username?.maxLength).toBe(12);
    expect(m.fields.some((f) => f.key === "username")).toBe(false);
    expect(mappingColumns(m).map((c) => `${c.column}:${c.feeds}`)).toEqual([
      "id:spec.employeeId",
      "first:spec.givenName",
      "last:spec.familyName",
      "mail:spec.email",
    ]);
    const own = buildMapping([...base, ["username", { generate: "{Login Hint}" }]]);
    expect(mappingColumns(own).at(-1)).toEqual({ column: "Login Hint", feeds: "spec.username (generate)" });
  });

  it("refuses options that do not fit the field, and enum value maps onto unknown values", () => {
    const bad = (key: string, spec: FieldSpec) => () =>
      buildMapping([...base, ["username", "u"], [key, spec]]);
    expect(bad("employmentType", { column: "T", values: { Regular: "Permanent" } })).toThrow(
      /"employmentType": values: "Regular" maps to "Permanent", which is not one of Employee, Contractor/,
    );
    expect(bad("department", { column: "D", values: { a: "x", " A ": "y" } })).toThrow(
      /" A " is given twice/,
    );
    expect(bad("title", { column: "T", reference: "employeeId" })).toThrow(
      /reference applies to manager only/,
    );
    expect(bad("manager", { column: "M", reference: "name" })).toThrow(
      /expected one of username, employeeId, email/,
    );
    expect(bad("title", { column: "T", generate: "{x}" })).toThrow(/apply to username only/);
    expect(bad("title", { column: "T", colum: "x" } as FieldSpec)).toThrow(/unknown option\(s\) colum/);
    expect(bad("startDate", { column: "S", dateFormat: "MM/DD" })).toThrow(/needs YYYY, a month and a day/);
    expect(() => buildMapping([...base, ["username", { generate: "{a}", suffix: "letters" }]])).toThrow(
      /suffix: expected numeric or none/,
    );
    expect(() => buildMapping(base)).toThrow(MappingError);
    expect(() => mappingFromYaml("employeeId: id\n", "m.yaml")).toThrow(/^m\.yaml: no column is mapped/);
  });

  it("reformats dates from the export's format", () => {
    const us = parseDateFormat("MM/DD/YYYY");
    expect(reformatDate("03/01/2021", us)).toBe("2021-03-01");
    expect(reformatDate("3/1/2021", us)).toBeUndefined();
    expect(reformatDate("1.3.2021", parseDateFormat("D.M.YYYY"))).toBe("2021-03-01");
  });
});

describe("a Workday-shaped export", () => {
  const mapping = mappingFromYaml(fixture("workday-mapping.yaml"), "workday-mapping.yaml");
  // A rehire: Ana worked here as Ana Silva (username asilva), left, and comes back as Ana Costa.
  const asilva = employee("asilva", {
    employeeId: "21004",
    givenName: "Ana",
    familyName: "Silva",
    email: "ana.silva@example.com",
    employmentStatus: "Terminated",
    endDate: "2024-05-31",
  });

  it("imports with no hand edits: usernames, collision suffixed, rehire kept, values mapped, managers resolved", async () => {
    const records = await mapped(fixture("workday.csv"), mapping);
    const plan = planImport([{ employee: asilva }], records, mapping, { mode: "apply" });
    expect(plan.refused).toEqual([]);
    const usernames = Object.fromEntries(plan.hires.map((h) => [h.employeeId, h.username]));
    expect(usernames).toEqual({
      "21000": "alovelace",
      "21001": "zmartinez-garcia",
      "21002": "jsmith",
      "21003": "jsmith2",
      "21005": "skierkegaard",
      "21006": "lzolc",
      "21007": "ipetrov",
      "21008": "fwang",
    });
    const spec = (id: string) => plan.hires.find((h) => h.employeeId === id)!.object.spec;
    expect(spec("21003")).toMatchObject({
      employmentType: "Contractor",
      manager: "jsmith",
      givenName: "Jane",
    });
    expect(spec("21005")).toMatchObject({ employmentStatus: "OnLeave", manager: "zmartinez-garcia" });
    expect(spec("21006")).toMatchObject({
      startDate: "2031-03-02",
      employmentStatus: "Active",
      manager: "zmartinez-garcia",
    });
    expect(spec("21007")).toMatchObject({ employmentType: "Intern", givenName: "Иван" });
    expect(spec("21000")).not.toHaveProperty("manager");
    expect(plan.hires.find((h) => h.employeeId === "21001")!.object.metadata.name).toBe("zmartinez-garcia");

    // The rehire keeps the username; the name change is a mover change, and a note says why.
    expect(plan.movers.map((m) => [m.name, m.username])).toEqual([["asilva", "asilva"]]);
    expect(plan.movers[0]!.changes).toEqual(
      expect.arrayContaining([
        { field: "spec.familyName", old: "Silva", new: "Costa" },
        { field: "spec.employmentStatus", old: "Terminated", new: "Active" },
      ]),
    );
    expect(plan.movers[0]!.object.spec).toMatchObject({ username: "asilva", manager: "alovelace" });
    expect(plan.notes).toEqual([
      {
        line: 6,
        employeeId: "21004",
        message: 'username "asilva" is kept (usernames are immutable); the export\'s name now gives "acosta"',
      },
    ]);
    expect(renderPlanText(plan, "workday.csv", { namespace: "people" })).toContain(
      'Notes (1):\n  workday.csv:6: 21004: username "asilva" is kept',
    );
  });

  it("a second import of the same export against what the first wrote changes nothing", async () => {
    const first = planImport([{ employee: asilva }], await mapped(fixture("workday.csv"), mapping), mapping, {
      mode: "merge",
    });
    const written: ExistingEmployee[] = [...first.hires, ...first.movers].map((c) => ({
      employee: c.object,
    }));
    // John Smith is now listed after Jane: existing people keep their usernames whatever the order.
    const lines = fixture("workday.csv").trimEnd().split("\n");
    const reordered = [lines[0], ...lines.slice(1).reverse()].join("\n");
    const second = planImport(written, await mapped(reordered, mapping), mapping, { mode: "merge" });
    expect(second).toMatchObject({ hires: [], movers: [], leavers: [], refused: [], unchanged: 9 });
    expect(second.notes.map((n) => n.employeeId)).toEqual(["21004"]);
  });

  it("refuses unknown values, unknown managers and bad dates per row, with line, column and value", async () => {
    const csv = [
      fixture("workday.csv").split("\n")[0],
      "30001,Kim,Lee,kim.lee@example.com,Sales,Rep,Seoul,01/02/2024,,Sabbatical,Regular,21000",
      "30002,Max,Mustermann,max@example.com,Sales,Rep,Berlin,01/02/2024,,Active,Seasonal,21000",
      "30003,Eva,Ng,eva@example.com,Sales,Rep,Berlin,2024-13-01,,Active,Regular,",
      "30004,Tom,Ng,tom@example.com,Sales,Rep,Berlin,01/02/2024,,Active,Regular,99999",
      "30005,Ria,Ng,ria@example.com,Sales,Rep,Berlin,01/02/2024,,Active,Regular,30003",
      "30006,,Ng,noname@example.com,Sales,Rep,Berlin,01/02/2024,,Active,Regular,",
      "21000,Ada,Lovelace,ada.lovelace@example.com,Executive,CEO,London,01/15/2019,,Active,Regular,",
    ].join("\n");
    const plan = planImport([], await mapped(csv, mapping), mapping, { mode: "merge" });
    const messages = plan.refused.flatMap((r) => r.problems.map((p) => formatProblem("hr.csv", r.line, p)));
    expect(messages).toEqual([
      'hr.csv:2: spec.employmentStatus (column "Worker Status"): "Sabbatical" is not in the value map ("Active", "Leave of Absence", "Terminated")',
      'hr.csv:3: spec.employmentType (column "Worker Type"): "Seasonal" is not in the value map ("Regular", "Fixed Term", "Temporary", "Intern", "Contingent Worker")',
      'hr.csv:4: spec.startDate (column "Hire Date"): "2024-13-01" is not a date in the format MM/DD/YYYY (or YYYY-MM-DD)',
      'hr.csv:5: spec.manager (column "Manager"): manager employeeId "99999" is neither in the export nor an existing Employee',
      'hr.csv:6: spec.manager (column "Manager"): manager employeeId "30003" is on line 4, which was refused',
      'hr.csv:7: spec.username: cannot generate a username: column "Legal First Name" is empty',
      'hr.csv:7: spec.givenName (column "Legal First Name"): is required (no column or an empty cell)',
    ]);
    expect(plan.hires.map((h) => h.username)).toEqual(["alovelace"]);
  });

  it("resolves a manager from the existing Employees when the export does not hold them", async () => {
    const boss = employee("mboss", { employeeId: "20000", email: "boss@example.com" });
    const csv = [
      fixture("workday.csv").split("\n")[0],
      "30001,Kim,Lee,kim.lee@example.com,Sales,Rep,Seoul,01/02/2024,,Active,Regular,20000",
    ].join("\n");
    const plan = planImport([{ employee: boss }], await mapped(csv, mapping), mapping, { mode: "apply" });
    expect(plan.hires[0]!.object.spec.manager).toBe("mboss");
    // A generated username never takes one reserved elsewhere (outside a selector, in a target).
    const reserved = planImport([{ employee: boss }], await mapped(csv, mapping), mapping, {
      mode: "apply",
      reservedUsernames: new Set(["klee", "klee2"]),
    });
    expect(reserved.hires[0]!.username).toBe("klee3");
  });
});

describe("a BambooHR-shaped export", () => {
  it("first.last, then the middle initial, then a number; managers by email; Inactive is Terminated", async () => {
    const mapping = mappingFromYaml(fixture("bamboohr-mapping.yaml"), "bamboohr-mapping.yaml");
    const plan = planImport([], await mapped(fixture("bamboohr.csv"), mapping), mapping, { mode: "merge" });
    expect(plan.refused).toEqual([]);
    expect(plan.hires.map((h) => [h.employeeId, h.username, h.object.spec.manager ?? ""])).toEqual([
      ["5", "ashley.adams", "charlotte.abbott"],
      ["7", "ashley.adams2", "ashley.j.adams"],
      ["6", "ashley.j.adams", "charlotte.abbott"],
      ["4", "charlotte.abbott", ""],
    ]);
    expect(plan.hires.find((h) => h.employeeId === "5")!.object.spec).toMatchObject({
      displayName: "Ash",
      attributes: { division: "North America" },
      employmentType: "Employee",
    });
    expect(plan.skipped).toEqual([
      { line: 6, employeeId: "8", reason: "Terminated in the export and not present" },
    ]);
  });
});

describe("the mappings --help shows", () => {
  it("are the fixtures this file imports", () => {
    expect(WORKDAY_MAPPING).toBe(fixture("workday-mapping.yaml"));
    expect(BAMBOOHR_MAPPING).toBe(fixture("bamboohr-mapping.yaml"));
  });
});

describe("what a scheduled import reports", () => {
  const mapping = mappingFromYaml(fixture("workday-mapping.yaml"), "m.yaml");
  const outcome = { source: "s", target: { namespace: "people" }, dryRun: false, written: ["a"], failed: [] };

  it("an Event per result: Imported, RowsRefused with the first refusals, TooManyLeavers, ImportFailed", async () => {
    const good = planImport([], await mapped(fixture("workday.csv"), mapping), mapping, { mode: "apply" });
    expect(importEvent("https://hr/x.csv", { plan: good, outcome })).toEqual({
      type: "Normal",
      reason: "Imported",
      message: "https://hr/x.csv: 9 new hires, 0 movers, 0 leavers, 0 refused rows, 0 unchanged; 1 written",
    });
    expect(rowCounts(good)).toEqual({ hire: 9, mover: 0, leaver: 0, refused: 0, unchanged: 0, skipped: 0 });
    const csv = `${fixture("workday.csv").split("\n")[0]}\n1,A,B,a@x.io,S,T,L,01/01/2020,,Gone,Regular,\n`;
    const bad = planImport([], await mapped(csv, mapping), mapping, { mode: "apply" });
    expect(importEvent("x.csv", { plan: bad, outcome })).toMatchObject({
      type: "Warning",
      reason: "RowsRefused",
      message: expect.stringContaining(
        'refused: x.csv:2: spec.employmentStatus (column "Worker Status"): "Gone"',
      ),
    });
    expect(
      importEvent("x.csv", { error: new LeaverGuardError("12 leavers is more"), plan: good }),
    ).toMatchObject({
      reason: "TooManyLeavers",
      message: "x.csv (9 new hires, 0 movers, 0 leavers, 0 refused rows, 0 unchanged): 12 leavers is more",
    });
    expect(importEvent("x.csv", { error: new Error("HTTP 401 Unauthorized") })).toEqual({
      type: "Warning",
      reason: "ImportFailed",
      message: "x.csv: HTTP 401 Unauthorized; nothing applied",
    });
  });

  it("never shows a URL's user info or query, and reads the format from Content-Type", () => {
    expect(displayUrl("https://u:secret@hr.example.com/r/workers?token=abc&format=csv")).toBe(
      "https://hr.example.com/r/workers",
    );
    expect(formatFromContentType("text/csv; charset=utf-8")).toBe("csv");
    expect(formatFromContentType("application/x-ndjson")).toBe("jsonl");
    expect(formatFromContentType("text/html")).toBeUndefined();
  });
});
