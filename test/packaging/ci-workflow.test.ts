// The pull-request workflow (deploy/ci): the GitHub Actions workflow and the GitLab CI job, run as
// their CI systems would run them on a fixture repository of manifests, a main branch and three
// pull requests onto it (a harmless change, a policy edit that takes a group from 20 people, and a
// grant that breaks a separation-of-duties test). What runs is the workflow's own text: its
// environment, its `run:` / `script:` commands, and deploy/ci/roster-pr.sh that they call, with
// roster from this checkout in place of the release the install step fetches (the one step not
// run: it needs the network). The comment goes to a local HTTP listener standing in for the
// GitHub / GitLab comment API (test plumbing, reached through the variables both systems set,
// GITHUB_API_URL and CI_API_V4_URL). Asserted: the comment text and the check's exit code.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dump, load } from "js-yaml";
import { root } from "./tools.ts";

type Posted = {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
};

let api: Server;
let apiUrl: string;
const posted: Posted[] = [];
let repo: string;
let runnerTemp: string;
const sha: Record<string, string> = {};

function git(...args: string[]): string {
  const r = spawnSync("git", args, { cwd: repo, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

// --- the fixture repository ---------------------------------------------------------------------

const API_VERSION = "roster.dev/v1alpha1";
const doc = (kind: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: API_VERSION,
  kind,
  metadata: { name },
  spec,
});
const pad = (i: number) => String(i).padStart(2, "0");

/** 30 people: e00..e19 in Engineering, e20..e29 in Sales; e02 manages releases, e03 deploys. */
function employee(i: number, extra: Record<string, unknown> = {}) {
  const name = `e${pad(i)}`;
  return doc("Employee", name, {
    employeeId: `F-${pad(i)}`,
    username: name,
    givenName: `Person${pad(i)}`,
    familyName: "Fixture",
    email: `${name}@example.com`,
    department: i < 20 ? "Engineering" : "Sales",
    title: i === 2 ? "Release Manager" : i === 3 ? "SRE" : "Engineer",
    ...extra,
  });
}

function policies(engineering = ["Engineering"]) {
  const grant = (groups: string[]) => [{ connector: "corp-ldap", groups }];
  return [
    doc("AccessPolicy", "everyone", { grants: grant(["staff"]) }),
    doc("AccessPolicy", "engineering", {
      match: [{ key: "department", operator: "In", values: engineering }],
      grants: grant(["engineering"]),
    }),
    doc("AccessPolicy", "release", {
      match: [{ key: "title", operator: "In", values: ["Release Manager"] }],
      grants: grant(["release-approvers"]),
    }),
    doc("AccessPolicy", "deploy", {
      match: [{ key: "title", operator: "In", values: ["SRE"] }],
      grants: grant(["prod-deploy"]),
    }),
  ];
}

const connector = doc("Connector", "corp-ldap", {
  ldap: {
    url: "ldaps://ldap.example.com",
    bindDN: "cn=roster,ou=services,dc=example,dc=com",
    bindPasswordSecretRef: { name: "corp-ldap-bind", key: "password" },
    usersDN: "ou=people,dc=example,dc=com",
    groupsDN: "ou=groups,dc=example,dc=com",
  },
});

const accessTest = doc("AccessTest", "duties", {
  expect: [{ employee: "e00", accounts: [{ connector: "corp-ldap", groups: ["staff"] }] }],
  invariants: [
    { separationOfDuties: { connector: "corp-ldap", groups: ["release-approvers", "prod-deploy"] } },
  ],
});

function writeTree(employees: ReturnType<typeof employee>[], policyDocs = policies()) {
  rmSync(join(repo, "people"), { recursive: true, force: true });
  mkdirSync(join(repo, "people"));
  const yaml = (docs: unknown[]) => docs.map((d) => dump(d)).join("---\n");
  writeFileSync(join(repo, "people", "connector.yaml"), yaml([connector]));
  writeFileSync(join(repo, "people", "policies.yaml"), yaml(policyDocs));
  writeFileSync(join(repo, "people", "access-tests.yaml"), yaml([accessTest]));
  for (const e of employees) writeFileSync(join(repo, "people", `${e.metadata.name}.yaml`), yaml([e]));
}

const everyone = () => Array.from({ length: 30 }, (_, i) => employee(i));

function commit(branch: string, message: string, change: () => void) {
  git("checkout", "--quiet", "-B", branch, "main");
  change();
  git("add", "-A");
  git("commit", "--quiet", "-m", message);
  sha[branch] = git("rev-parse", "HEAD");
}

beforeAll(async () => {
  repo = mkdtempSync(join(tmpdir(), "roster-ci-repo-"));
  runnerTemp = mkdtempSync(join(tmpdir(), "roster-ci-runner-"));
  // Where the workflow's install step puts the release: here, this checkout.
  symlinkSync(root, join(runnerTemp, "roster"));
  git("init", "--quiet", "--initial-branch=main");
  git("config", "user.email", "ci@example.com");
  git("config", "user.name", "CI");
  writeTree(everyone());
  git("add", "-A");
  git("commit", "--quiet", "-m", "30 people");
  sha.main = git("rev-parse", "HEAD");
  commit("harmless", "hire e30, e01 becomes a lead", () =>
    writeTree([
      ...everyone().map((e) => (e.metadata.name === "e01" ? employee(1, { title: "Lead Engineer" }) : e)),
      employee(30, { department: "Sales" }),
    ]),
  );
  commit("reorg", "engineering group only for Platform", () => writeTree(everyone(), policies(["Platform"])));
  commit("duties", "e02 may deploy to production", () =>
    writeTree(
      everyone().map((e) =>
        e.metadata.name === "e02"
          ? employee(2, { grants: [{ connector: "corp-ldap", groups: ["prod-deploy"] }] })
          : e,
      ),
    ),
  );
  api = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      posted.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(201, { "Content-Type": "application/json" }).end(JSON.stringify({ id: posted.length }));
    });
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => api?.close(resolve));
  for (const dir of [repo, runnerTemp]) if (dir) rmSync(dir, { recursive: true, force: true });
});

// --- running the CI definitions -------------------------------------------------------------------

/** PATH with this Node (24) first: the workflows set up Node 24 before they run roster. */
const PATH = `${dirname(process.execPath)}:${process.env.PATH}`;

type Run = { status: number; steps: { name: string; status: number; output: string }[]; posted: Posted[] };

/** Runs a step's commands as both systems do, in bash with -e and pipefail (not blocking: the API listener is in this process). */
function shell(script: string, env: Record<string, string>): Promise<{ status: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", script], {
      cwd: repo,
      env: { PATH, HOME: process.env.HOME ?? "/tmp", ...env },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ status: code ?? -1, output }));
  });
}

type Step = {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  id?: string;
  env?: Record<string, string>;
};

/** The GitHub workflow's job, on the pull request of `branch` (number 7 of acme/people). */
async function runGitHub(branch: string): Promise<Run> {
  const workflow = load(readFileSync(join(root, "deploy/ci/github/roster-plan.yaml"), "utf8")) as {
    on: Record<string, unknown>;
    jobs: { plan: { env: Record<string, string>; steps: Step[] } };
  };
  expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
  const contexts: Record<string, string> = {
    "runner.temp": runnerTemp,
    "github.event.pull_request.base.sha": sha.main!,
    "github.event.pull_request.number": "7",
    "github.token": "gh-test-token",
  };
  const expand = (value: unknown) =>
    String(value).replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
      if (!(expr in contexts)) throw new Error(`the test does not know the expression ${expr}`);
      return contexts[expr]!;
    });
  const expandAll = (env: Record<string, string> = {}) =>
    Object.fromEntries(Object.entries(env).map(([k, v]) => [k, expand(v)]));
  const jobEnv = {
    GITHUB_API_URL: apiUrl,
    GITHUB_REPOSITORY: "acme/people",
    GITHUB_WORKSPACE: repo,
    ...expandAll(workflow.jobs.plan.env),
  };
  git("checkout", "--quiet", branch);
  const before = posted.length;
  const steps: Run["steps"] = [];
  let failed = false;
  for (const step of workflow.jobs.plan.steps) {
    if (step.uses) continue; // checkout and setup-node: done by the test (the fixture, this Node)
    if (step.name === "Install roster") continue; // the symlink in runner.temp stands for it
    const runs = step.if === undefined ? !failed : step.if === "${{ !cancelled() }}";
    if (step.if !== undefined && step.if !== "${{ !cancelled() }}") throw new Error(`unknown if: ${step.if}`);
    if (!runs) continue;
    const result = await shell(step.run!, { ...jobEnv, ...expandAll(step.env) });
    steps.push({ name: step.name ?? "", ...result });
    if (result.status !== 0) failed = true;
  }
  return { status: failed ? 1 : 0, steps, posted: posted.slice(before) };
}

/** The GitLab job, on merge request !7 of project 42, from `branch`. */
async function runGitLab(branch: string): Promise<Run> {
  const ci = load(readFileSync(join(root, "deploy/ci/gitlab/roster-plan.gitlab-ci.yml"), "utf8")) as Record<
    string,
    { rules: { if: string }[]; variables: Record<string, string>; script: string[]; before_script: string[] }
  >;
  const job = ci["roster-plan"]!;
  expect(job.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
  const predefined: Record<string, string> = {
    CI_PIPELINE_SOURCE: "merge_request_event",
    CI_PROJECT_DIR: repo,
    CI_PROJECT_ID: "42",
    CI_MERGE_REQUEST_IID: "7",
    CI_MERGE_REQUEST_DIFF_BASE_SHA: sha.main!,
    CI_API_V4_URL: `${apiUrl}/api/v4`,
    ROSTER_GITLAB_TOKEN: "glpat-test-token",
  };
  // GitLab expands $VARIABLE in variables' values; the install location is this checkout.
  const variables = Object.fromEntries(
    Object.entries(job.variables).map(([k, v]) => [
      k,
      String(v)
        .replace(/\$([A-Z_][A-Z0-9_]*)/g, (_, name: string) => predefined[name] ?? `$${name}`)
        .replace(/^\/opt\/roster/, root)
        .replace(/ \/opt\/roster\//, ` ${root}/`),
    ]),
  );
  expect(job.before_script.join("\n")).toContain("git clone");
  git("checkout", "--quiet", branch);
  rmSync(join(repo, ".roster-ci"), { recursive: true, force: true });
  const before = posted.length;
  const result = await shell(job.script.join("\n"), { ...predefined, ...variables });
  return { status: result.status, steps: [{ name: "script", ...result }], posted: posted.slice(before) };
}

const commentOf = (run: Run, system: "github" | "gitlab"): string => {
  expect(run.posted, run.steps.map((s) => s.output).join("\n")).toHaveLength(1);
  const post = run.posted[0]!;
  if (system === "github") {
    expect([post.method, post.url, post.headers.authorization]).toEqual([
      "POST",
      "/repos/acme/people/issues/7/comments",
      "Bearer gh-test-token",
    ]);
    return (JSON.parse(post.body) as { body: string }).body;
  }
  expect([post.method, post.url, post.headers["private-token"]]).toEqual([
    "POST",
    "/api/v4/projects/42/merge_requests/7/notes",
    "glpat-test-token",
  ]);
  return new URLSearchParams(post.body).get("body")!;
};

// --- the checks ----------------------------------------------------------------------------------

describe.each(["github", "gitlab"] as const)("the %s pull-request check", (system) => {
  const runCheck = (branch: string) => (system === "github" ? runGitHub(branch) : runGitLab(branch));

  it("a harmless change: the plan is posted and the check passes", async () => {
    const run = await runCheck("harmless");
    expect(run.status, run.steps.map((s) => s.output).join("\n")).toBe(0);
    const comment = commentOf(run, system);
    expect(comment).toContain("## Roster plan");
    expect(comment).toContain(
      "1 to create, 1 to update, 0 to enable, 0 to disable, 0 to delete; 1 group memberships added, 0 removed.",
    );
    expect(comment).toContain("| e30 (e30) | create account | staff |  | active |");
    expect(comment).toContain("| e01 (e01) | update (title) |  |  | active |");
    expect(comment).toContain("**Policy tests** (`roster test people`): all pass.");
    expect(comment).toContain("This check passes.");
    expect(comment).not.toContain("Mass-change brake");
    if (system === "gitlab")
      expect(readFileSync(join(repo, ".roster-ci/roster-test.xml"), "utf8")).toMatch(/<testsuites?[\s>]/);
  });

  it("a policy edit that takes a group from 20 people trips the brake: posted, and the check fails", async () => {
    const run = await runCheck("reorg");
    expect(run.status).not.toBe(0);
    if (system === "github")
      expect(run.steps.find((s) => s.name === "roster test and roster plan")?.status).toBe(3);
    else expect(run.steps[0]!.status).toBe(3);
    const comment = commentOf(run, system);
    expect(comment).toContain(
      "0 to create, 0 to update, 0 to enable, 0 to disable, 0 to delete; 0 group memberships added, 20 removed.",
    );
    expect(comment).toContain("| e00 (e00) | groups |  | engineering | active |");
    expect(comment).toContain(
      "**Mass-change brake**: 20 deprovisions in corp-ldap exceed its limit of 5 per hour (30 managed accounts); Roster would hold 15 until approved.",
    );
    expect(comment).toContain("**Policy tests** (`roster test people`): all pass.");
    expect(comment).toContain("This check fails: the change would trip the mass-change brake.");
  });

  it("a grant that breaks separation of duties fails the tests: posted with the failure, and the check fails", async () => {
    const run = await runCheck("duties");
    if (system === "github")
      expect(run.steps.find((s) => s.name === "roster test and roster plan")?.status).toBe(5);
    else expect(run.steps[0]!.status).toBe(5);
    const comment = commentOf(run, system);
    expect(comment).toContain("| e02 (e02) | groups | prod-deploy |  | active |");
    expect(comment).toContain("**Policy tests** (`roster test people`): **failing**.");
    expect(comment).toMatch(/e02[^\n]*prod-deploy|prod-deploy[^\n]*e02/);
    expect(comment).toContain("This check fails: a policy test fails.");
  });
});

describe("deploy/ci/roster-pr.sh", () => {
  it("a roster that cannot run is an error (exit 1) that the comment names, not a pass", async () => {
    git("checkout", "--quiet", "harmless");
    const comment = join(runnerTemp, "broken.md");
    const r = await shell(`sh "${root}/deploy/ci/roster-pr.sh"`, {
      ROSTER_BASE_REF: sha.main!,
      ROSTER_DIR: "people",
      ROSTER_COMMENT: comment,
      ROSTER: "roster-not-installed",
    });
    expect(r.status).toBe(1);
    const text = readFileSync(comment, "utf8");
    expect(text).toContain("**The plan could not be made** (exit 127)");
    expect(text).toContain("This check fails: a command could not run.");
  });
});
