// A real OpenLDAP slapd (Debian's package) for tests and `roster dev`: a per-run cn=config and mdb
// database in a temporary directory, memberof and ppolicy overlays, listening on a free loopback port.
//
//   const slapd = await startSlapd();            // suffix dc=roster,dc=test
//   ... bind as slapd.adminDN / slapd.adminPassword on slapd.url ...
//   await slapd.restart();                        // same port, same data
//   await slapd.stop();                           // stops and removes the directory
//
// The child runs in the foreground (`-d 0`) with a parent-death signal (setpriv --pdeathsig), and
// processes.ts kills it and removes the directory when the Node process exits or gets a signal.
// Directories of runs that were SIGKILLed are swept by the next startSlapd.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "ldapts";
import {
  freePort,
  registerDirectory,
  removeDirectory,
  startProcess,
  sweepStaleDirectories,
  waitFor,
  type Managed,
} from "./processes.ts";

const run = promisify(execFile);

export type Slapd = {
  url: string;
  baseDN: string;
  adminDN: string;
  adminPassword: string;
  usersDN: string;
  groupsDN: string;
  /** DN of the default password policy entry (ou=policies). */
  policyDN: string;
  /** The temporary directory holding slapd.d, the database and slapd.log. */
  dir: string;
  /** The pid of the running slapd (changes on restart). */
  pid: number;
  /** SIGTERM (SIGKILL after a grace period), then removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, simulating a crash; the data stays, so restart() brings it back. */
  kill(): Promise<void>;
  /** Stops (if running) and starts again on the same port with the same data. */
  restart(): Promise<void>;
};

export type SlapdOptions = {
  /** Suffix of the database (default dc=roster,dc=test); its first RDN must be dc=<value>. */
  baseDN?: string;
  /** slapd's log level (olcLogLevel), default none; the log goes to <dir>/slapd.log. */
  logLevel?: string;
  /**
   * Keep an equality index on `member` (default true). Without it a `(member=<dn>)` search reads
   * every group in scope, but back-mdb no longer re-indexes every member of a group on each
   * membership change (the bench's --slapd-no-member-index experiment).
   */
  memberIndex?: boolean;
};

const SLAPD = "/usr/sbin/slapd";
const SLAPADD = "/usr/sbin/slapadd";
const SCHEMA_DIR = "/etc/ldap/schema";
const MODULE_DIR = "/usr/lib/ldap";
const SCHEMAS = ["core", "cosine", "nis", "inetorgperson"];

/** {SSHA} hash for olcRootPW, so the password is not stored in clear text. */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash("sha1").update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
}

function configLdif(
  dir: string,
  baseDN: string,
  adminDN: string,
  adminPassword: string,
  logLevel: string,
  memberIndex: boolean,
): string {
  const policyDN = `cn=default,ou=policies,${baseDN}`;
  const schemas = SCHEMAS.map((s) => `include: file://${SCHEMA_DIR}/${s}.ldif\n`).join("\n");
  return `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${join(dir, "slapd.pid")}
olcArgsFile: ${join(dir, "slapd.args")}
olcLogLevel: ${logLevel}

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: ${MODULE_DIR}
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}memberof
olcModuleLoad: {2}ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

${schemas}
dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: unlimited

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${baseDN}
olcRootDN: ${adminDN}
olcRootPW: ${ssha(adminPassword)}
olcDbDirectory: ${join(dir, "data")}
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: employeeNumber eq
${memberIndex ? "olcDbIndex: member eq\n" : ""}olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by self read by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: ${policyDN}
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: FALSE
`;
}

function dataLdif(baseDN: string): string {
  const dc = /^dc=([^,]+),/i.exec(`${baseDN},`)?.[1];
  if (!dc) throw new Error(`startSlapd: baseDN must start with dc=<value>, got ${baseDN}`);
  return `dn: ${baseDN}
objectClass: dcObject
objectClass: organization
dc: ${dc}
o: Roster test directory

dn: ou=people,${baseDN}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${baseDN}
objectClass: organizationalUnit
ou: groups

dn: ou=policies,${baseDN}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,${baseDN}
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 0
pwdAllowUserChange: TRUE
pwdMustChange: FALSE
pwdCheckQuality: 0
`;
}

const DIR_PREFIX = "roster-slapd-";

async function canBind(url: string, dn: string, password: string): Promise<boolean> {
  const client = new Client({ url, connectTimeout: 1000, timeout: 2000 });
  try {
    await client.bind(dn, password);
    return true;
  } finally {
    await client.unbind().catch(() => {});
  }
}

export async function startSlapd(opts: SlapdOptions = {}): Promise<Slapd> {
  if (!existsSync(SLAPD))
    throw new Error(`${SLAPD} not found: run \`npm run setup\` (installs Debian's slapd)`);
  const baseDN = opts.baseDN ?? "dc=roster,dc=test";
  const adminDN = `cn=admin,${baseDN}`;
  const adminPassword = randomBytes(18).toString("base64url");
  sweepStaleDirectories(DIR_PREFIX);
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  registerDirectory(dir);
  try {
    writeFileSync(join(dir, "owner"), `${process.pid}\n`);
    const configDir = join(dir, "slapd.d");
    mkdirSync(configDir, { mode: 0o700 });
    mkdirSync(join(dir, "data"), { mode: 0o700 });
    writeFileSync(
      join(dir, "config.ldif"),
      configLdif(dir, baseDN, adminDN, adminPassword, opts.logLevel ?? "none", opts.memberIndex ?? true),
      {
        mode: 0o600,
      },
    );
    writeFileSync(join(dir, "data.ldif"), dataLdif(baseDN), { mode: 0o600 });
    await run(SLAPADD, ["-n0", "-F", configDir, "-l", join(dir, "config.ldif")]);
    await run(SLAPADD, ["-F", configDir, "-b", baseDN, "-l", join(dir, "data.ldif")]);
  } catch (err) {
    removeDirectory(dir);
    const e = err as { stderr?: string; message: string };
    throw new Error(`startSlapd: generating the configuration failed: ${e.stderr || e.message}`, {
      cause: err,
    });
  }

  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const logFile = join(dir, "slapd.log");
  const slapdArgs = ["-h", `ldap://127.0.0.1:${port}/`, "-F", join(dir, "slapd.d"), "-d", "0"];
  // setpriv makes the kernel SIGKILL slapd if this process dies without running any cleanup.
  const usePdeathsig = existsSync("/usr/bin/setpriv");
  let proc: Managed | undefined;
  let stopped = false;

  const launch = async () => {
    const p = usePdeathsig
      ? startProcess("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", SLAPD, ...slapdArgs], logFile)
      : startProcess(SLAPD, slapdArgs, logFile);
    proc = p;
    let exited = false;
    void p.exited.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error("slapd exited");
        return canBind(url, adminDN, adminPassword);
      },
      15_000,
      () => `slapd on ${url} did not accept a bind${exited ? " (it exited)" : ""}:\n${p.tail()}`,
      50,
    ).catch(async (err) => {
      await p.kill();
      throw err;
    });
    if (exited) throw new Error(`slapd on ${url} exited:\n${p.tail()}`);
  };

  try {
    await launch();
  } catch (err) {
    removeDirectory(dir);
    throw err;
  }

  const slapd: Slapd = {
    url,
    baseDN,
    adminDN,
    adminPassword,
    usersDN: `ou=people,${baseDN}`,
    groupsDN: `ou=groups,${baseDN}`,
    policyDN: `cn=default,ou=policies,${baseDN}`,
    dir,
    get pid() {
      return proc?.child.pid ?? 0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc?.stop(10_000);
      removeDirectory(dir);
    },
    async kill() {
      await proc?.kill();
    },
    async restart() {
      if (stopped) throw new Error("slapd was stopped; start a new one");
      await proc?.stop(10_000);
      await launch();
    },
  };
  return slapd;
}
