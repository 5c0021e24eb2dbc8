// `roster test DIR...`: the AccessTest documents in the directories, run against the manifests
// beside them with no cluster. Reads only files; see HELP for the format and exit codes.
import { parseArgs } from "node:util";
import junitModule from "junit-report-builder";
import {
  ACCESS_TEST_KIND,
  accessTestProblems,
  runAccessTest,
  type AccessTestSpecT,
  type CaseResult,
  type TestObjects,
} from "../policy/access-test.ts";
import { CliUsageError, commandName, nowFlag, runCli, writeOut } from "./kube.ts";
import { loadManifests, manifestObjects, type Loaded } from "./plan.ts";

// The package's types describe an ES module, but Node loads its CommonJS build, whose
// module.exports is the builder itself.
const junit = junitModule as unknown as (typeof junitModule)["default"];

/** Exit code when a test or invariant fails. */
export const EXIT_TEST_FAILED = 5;

const HELP = (cmd: string) => `Usage: ${cmd} test DIR... [flags]

Runs the policy tests (AccessTest documents) found in the directories against the Employees,
AccessPolicies, GroupRules and Connectors beside them, with no cluster: what each person would
hold is what the operator would give them (the same evaluation, including startDate, endDate,
grant until, OnLeave and Terminated). A pause or the mass-change brake only delays a change, so
tests ignore them. Several directories are read as one set (YAML files, searched recursively).

An AccessTest (a file format for this command, not a CRD; put it beside the manifests):

  apiVersion: roster.dev/v1alpha1
  kind: AccessTest
  metadata:
    name: release-duties
  spec:
    now: "2026-03-01"             # optional: the moment dates are judged at (else --now, else now)
    expect:                       # what named or inline Employees hold
      - employee: ada             # an Employee in DIR, by metadata.name
        accounts:                 # an account in each (enabled or disabled)...
          - connector: corp-ldap
            groups: [engineering, staff]   # ...in all of these groups
            notGroups: [release-approvers] # ...in none of these
            enabled: true         # optional: false = kept but disabled (OnLeave)
      - employee: grace
        noAccounts: [wiki]        # no account in these connectors
      - name: a new contractor never gets production   # optional name of the case
        now: "2026-04-01"         # optional, for this expectation only
        inlineEmployee:           # an Employee given here, not in DIR
          metadata: {labels: {roster.dev/team: platform}}
          spec: {employeeId: T1, username: tcontract, givenName: T, familyName: C,
                 email: t@example.com, department: Engineering, employmentType: Contractor}
        accounts: [{connector: corp-ldap, notGroups: [prod-deploy]}]
    invariants:                   # over every Employee in DIR; each has one of:
      - separationOfDuties:       # nobody in two (or more) of these groups of one connector
          connector: corp-ldap
          groups: [prod-deploy, release-approvers]
      - never:                    # nobody matching gets the groups (or, without groups, an account)
          selector: {matchLabels: {roster.dev/team: platform}}  # selector and match as in AccessPolicy
          match: [{key: employmentType, operator: In, values: [Contractor, Vendor]}]
          connector: corp-ldap
          groups: [prod-deploy]
      - name: release approvers are staffed   # optional, on any invariant
        members:                  # how many people (enabled or disabled) a group has
          connector: corp-ldap
          group: release-approvers
          atLeast: 1
          atMost: 5

Names of groups compare as the target compares them (LDAP ignores case). A failing case says
who holds what and from which source; '${cmd} explain emp/NAME --dir DIR' says why in full.

Flags:
  -o, --output FORMAT      text (default), json, or junit (JUnit XML for CI test reports)
  --now RFC3339            judge dates at this moment when a test has no spec.now (default: now)
  -h, --help               this help

Exit codes:
  0  every expectation and invariant holds
  1  error (a file, document or field that is wrong: named; an unknown Employee or Connector)
  2  usage error
  5  an expectation or invariant fails

Examples:
  ${cmd} test people/
  ${cmd} test people/ policies/ -o junit > roster-test.xml
  ${cmd} test people/ --now 2026-12-31 -o json
`;

type TestRun = {
  file: string;
  document: number;
  name: string;
  at: string;
  cases: CaseResult[];
};

const where = (o: Loaded) =>
  `${o.file} (document ${o.document}, ${o.kind} ${String((o.object.metadata as { name?: string } | undefined)?.name)})`;

/** Two objects of one kind and name would be one object in a cluster: which is meant is unclear. */
function duplicateProblems(loaded: readonly Loaded[]): string[] {
  const seen = new Map<string, Loaded>();
  const problems: string[] = [];
  for (const o of loaded) {
    const key = `${o.kind}/${String((o.object.metadata as { name?: string } | undefined)?.name)}`;
    const first = seen.get(key);
    if (first) problems.push(`${where(o)}: ${key} is also in ${first.file} (document ${first.document})`);
    else seen.set(key, o);
  }
  return problems;
}

function renderText(runs: readonly TestRun[]): string {
  const lines: string[] = [];
  for (const run of runs) {
    lines.push(`${run.file}: AccessTest ${run.name} (at ${run.at})`);
    for (const c of run.cases) {
      lines.push(`  ${c.passed ? "ok  " : "FAIL"}  ${c.name}`);
      for (const f of c.failures) lines.push(`        ${f}`);
    }
    lines.push("");
  }
  const cases = runs.flatMap((r) => r.cases);
  lines.push(
    `${cases.filter((c) => c.passed).length} passed, ${cases.filter((c) => !c.passed).length} failed`,
  );
  return lines.join("\n") + "\n";
}

function renderJson(runs: readonly TestRun[]): string {
  const cases = runs.flatMap((r) => r.cases);
  const passed = cases.filter((c) => c.passed).length;
  return JSON.stringify({ passed, failed: cases.length - passed, tests: runs }, null, 2) + "\n";
}

function renderJunit(runs: readonly TestRun[]): string {
  const builder = junit.newBuilder().name("roster test");
  for (const run of runs) {
    const suite = builder.testSuite().name(`AccessTest ${run.name}`).property("file", run.file);
    for (const c of run.cases) {
      const test = suite.testCase().className(`${run.file}#${run.name}`).name(c.name).file(run.file);
      // The message attribute carries the text exactly; the body repeats it for CI systems that
      // show only the body, with "]]>" split because the library ends its CDATA at the second one.
      if (!c.passed)
        test
          .failure(c.failures.join("\n"), c.kind)
          .stacktrace(c.failures.join("\n").replaceAll("]]>", "]] >"));
    }
  }
  return builder.build() + "\n";
}

export async function testCommand(args: string[]): Promise<number> {
  return runCli("test", async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        help: { type: "boolean", short: "h" },
        output: { type: "string", short: "o", default: "text" },
        now: { type: "string" },
      },
    });
    if (values.help) {
      await writeOut(HELP(commandName()));
      return 0;
    }
    if (positionals.length === 0) throw new CliUsageError("expected one or more directories");
    const output = values.output!;
    if (!["text", "json", "junit"].includes(output))
      throw new CliUsageError(`--output must be text, json or junit, got ${output}`);
    const now = nowFlag(values.now);

    const loaded = positionals.flatMap((dir) => loadManifests(dir));
    const tests = loaded.filter((o) => o.kind === ACCESS_TEST_KIND);
    if (tests.length === 0) throw new Error(`no AccessTest documents in ${positionals.join(", ")}`);
    const objects: TestObjects = manifestObjects(loaded);
    const problems = duplicateProblems(loaded);
    for (const test of tests)
      for (const problem of accessTestProblems(test.object.spec as AccessTestSpecT, objects))
        problems.push(`${where(test)}: ${problem}`);
    if (problems.length) throw new Error(`invalid tests:\n  ${problems.join("\n  ")}`);

    const runs: TestRun[] = tests.map((test) => {
      const spec = (test.object.spec ?? {}) as AccessTestSpecT;
      const name =
        (test.object.metadata as { name?: string } | undefined)?.name ?? `${test.file}#${test.document}`;
      const { at, cases } = runAccessTest(spec, objects, now);
      return { file: test.file, document: test.document, name, at: at.toISOString(), cases };
    });
    await writeOut(
      output === "json" ? renderJson(runs) : output === "junit" ? renderJunit(runs) : renderText(runs),
    );
    return runs.some((r) => r.cases.some((c) => !c.passed)) ? EXIT_TEST_FAILED : 0;
  });
}
