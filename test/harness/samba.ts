// A real Active Directory domain controller for tests: Samba's AD DC (Debian's samba, samba-ad-dc,
// samba-ad-provision), LDAP only (`server services = ldap`, no DNS, no Kerberos KDC), with TLS from
// a CA made per run, on 389/636 of a random loopback address (Samba's ports are fixed; all of
// 127/8 routes to lo, so runs side by side each get their own address).
//
//   const ad = await startSamba();       // realm ROSTER.TEST, base DC=roster,DC=test
//   ... bind as ad.serviceDN / ad.servicePassword (delegated rights only) on ad.url (ldaps) ...
//   await ad.stop();                     // stops and removes the directory
//
// Provisioning takes about 10 s, so a provisioned domain is kept as a template under
// ~/.cache/roster/samba-ad/ (keyed by Samba's version and this layout) and copied per run; a run
// then only writes smb.conf, makes its certificates and starts samba (well under 2 s). Passwords
// of the template are reset per run over LDAP, so no two runs share one.
//
// The domain (made once, in the template):
//   OU=Contacts                     1,600 contacts (contact-0000...), for groups larger than 1,500
//   OU=Roster                       svc-roster, the operator's service account (not Administrator)
//     OU=People, OU=Groups          where Roster creates users and groups; svc-roster may create
//                                   and delete user (group) objects in them, read and write their
//                                   properties and reset user passwords, nothing else
// The child runs in the foreground (`-i -M single`: one process) with a parent-death signal
// (processes.ts), and is killed and its directory removed when the Node process ends. Directories
// of runs that were SIGKILLed are swept by the next startSamba.
import { execFile } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Attribute, Change, Client } from "ldapts";
import {
  registerDirectory,
  removeDirectory,
  startProcess,
  sweepStaleDirectories,
  waitFor,
  type Managed,
} from "./processes.ts";

const run = promisify(execFile);

export type SambaAD = {
  /** ldaps://<address>:636 */
  url: string;
  /** ldap://<address>:389 (StartTLS; Samba refuses simple binds without TLS). */
  startTLSURL: string;
  address: string;
  /** PEM of the CA that issued the DC's certificate. */
  ca: string;
  realm: string;
  /** The DNS domain, also the UPN suffix: roster.test. */
  dnsDomain: string;
  baseDN: string;
  adminDN: string;
  adminPassword: string;
  /** The operator's service account, with rights delegated on usersDN and groupsDN only. */
  serviceDN: string;
  servicePassword: string;
  /** OU=People,OU=Roster,<base> */
  usersDN: string;
  /** OU=Groups,OU=Roster,<base> */
  groupsDN: string;
  /** DNs of the template's contacts (CN=contact-NNNN,OU=Contacts,<base>), not Roster's. */
  contacts: string[];
  dir: string;
  pid: number;
  /** SIGTERM (SIGKILL after a grace period), then removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, simulating a crash; restart() brings it back with the same data. */
  kill(): Promise<void>;
  restart(): Promise<void>;
};

const SAMBA = "/usr/sbin/samba";
const SAMBA_TOOL = "/usr/bin/samba-tool";
const REALM = "ROSTER.TEST";
const DNS_DOMAIN = "roster.test";
const BASE_DN = "DC=roster,DC=test";
const SERVICE_ACCOUNT = "svc-roster";
/** Bumped when the template's contents change, so that a stale cache is not used. */
const LAYOUT = "2";
/** Contacts the template holds (OU=Contacts): members for large-group tests, made once. */
const CONTACTS = 1600;
const CONTACTS_DN = `OU=Contacts,${BASE_DN}`;
// Adds them in one transaction straight to sam.ldb (over LDAP each add takes ~10 ms).
const BULK_CONTACTS = `
import sys
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
base, n = sys.argv[3], int(sys.argv[4])
db.transaction_start()
db.add({"dn": base, "objectClass": "organizationalUnit"})
for i in range(n):
    db.add({"dn": "CN=contact-%04d,%s" % (i, base), "objectClass": "contact"})
db.transaction_commit()
`;
const DIR_PREFIX = "roster-samba-";
// schemaIDGUIDs of the user and group classes, and the Reset Password extended right.
const USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2";
const GROUP_CLASS = "bf967a9c-0de6-11d0-a285-00aa003049e2";
const RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529";

function cacheRoot(): string {
  return (
    process.env.ROSTER_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "roster")
  );
}

/** A password that meets AD's default complexity rules (3 of 4 character classes, 7+ long). */
function adPassword(): string {
  // Starts with a letter: samba-tool would take a leading "-" for an option.
  return `Aa1-${randomBytes(18).toString("base64url")}`;
}

/** smb.conf for a domain in `dir` listening on `address` (also used while provisioning). */
function smbConf(dir: string, address: string, tls?: { key: string; cert: string; ca: string }): string {
  const lines = [
    "[global]",
    `netbios name = DC1`,
    `realm = ${REALM}`,
    `workgroup = ROSTER`,
    "server role = active directory domain controller",
    "server services = ldap",
    // An address without a netmask must be on an interface; with /8 it matches lo's 127.0.0.1/8.
    `interfaces = ${address}/8`,
    "bind interfaces only = yes",
    `private dir = ${join(dir, "private")}`,
    `state directory = ${join(dir, "state")}`,
    `cache directory = ${join(dir, "cache")}`,
    `lock directory = ${dir}`,
    `pid directory = ${dir}`,
    `binddns dir = ${join(dir, "bind-dns")}`,
    `ncalrpc dir = ${join(dir, "ncalrpc")}`,
    "logging = file",
    `log file = ${join(dir, "samba.log")}`,
    "log level = 1",
    "idmap_ldb:use rfc2307 = yes",
    // A throwaway domain: no fsync per write (as Samba's own selftest), ~40 ms -> ~2 ms per add.
    "ldb:nosync = true",
  ];
  if (tls)
    lines.push(
      "tls enabled = yes",
      `tls keyfile = ${tls.key}`,
      `tls certfile = ${tls.cert}`,
      `tls cafile = ${tls.ca}`,
    );
  return `${lines.join("\n\t")}\n`;
}

async function sambaVersion(): Promise<string> {
  const { stdout } = await run(SAMBA, ["-V"]);
  return stdout.trim().replace(/^Version\s+/i, "");
}

async function tool(dir: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(SAMBA_TOOL, [
      ...args,
      "-s",
      join(dir, "etc", "smb.conf"),
      "-H",
      `tdb://${join(dir, "private", "sam.ldb")}`,
    ]);
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`samba-tool ${args.slice(0, 2).join(" ")} failed: ${e.stderr || e.message}`, {
      cause: err,
    });
  }
}

/** The provisioned template (made once per Samba version and LAYOUT); returns its directory. */
async function template(): Promise<string> {
  const version = await sambaVersion();
  const root = join(cacheRoot(), "samba-ad");
  const dir = join(root, `${version.replace(/[^A-Za-z0-9.+-]/g, "_")}-layout${LAYOUT}`);
  if (existsSync(join(dir, "ready"))) return dir;
  mkdirSync(root, { recursive: true });
  // Builds of runs killed half-way (a build takes under a minute).
  for (const name of readdirSync(root))
    if (name.startsWith(".build-") && Date.now() - statSync(join(root, name)).mtimeMs > 30 * 60_000)
      rmSync(join(root, name), { recursive: true, force: true });
  // Built beside the cache entry and renamed into place, so a half-made template is never used.
  const work = mkdtempSync(join(root, ".build-"));
  try {
    const adminPassword = adPassword();
    const started = Date.now();
    await run(
      SAMBA_TOOL,
      [
        "domain",
        "provision",
        `--targetdir=${work}`,
        `--realm=${REALM}`,
        "--domain=ROSTER",
        "--server-role=dc",
        "--dns-backend=NONE",
        "--use-rfc2307",
        "--host-name=dc1",
        `--adminpass=${adminPassword}`,
        "--option=server services = ldap",
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    ).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`samba-tool domain provision failed: ${err.stderr || err.message}`, { cause: err });
    });
    // provision rewrote smb.conf with its own paths: write ours back.
    writeFileSync(join(work, "etc", "smb.conf"), smbConf(work, "127.0.0.1"));
    for (const ou of ["OU=Roster", "OU=People,OU=Roster", "OU=Groups,OU=Roster"])
      await tool(work, ["ou", "create", ou]);
    const servicePassword = adPassword();
    await tool(work, ["user", "create", SERVICE_ACCOUNT, servicePassword, "--userou=OU=Roster"]);
    const sid = /objectSid: (S-[0-9-]+)/.exec(
      await tool(work, ["user", "show", SERVICE_ACCOUNT, "--attributes=objectSid"]),
    )?.[1];
    if (!sid) throw new Error("samba: could not read the service account's objectSid");
    // Delegation as an AD admin would set it up in "Delegate Control": create/delete user (group)
    // objects in the OU and its sub-OUs, read and write all their properties, reset passwords.
    await tool(work, [
      "dsacl",
      "set",
      `--objectdn=OU=People,OU=Roster,${BASE_DN}`,
      `--sddl=(OA;CI;CCDC;${USER_CLASS};;${sid})(OA;CIIO;RPWP;;${USER_CLASS};${sid})(OA;CIIO;CR;${RESET_PASSWORD};${USER_CLASS};${sid})`,
    ]);
    await tool(work, [
      "dsacl",
      "set",
      `--objectdn=OU=Groups,OU=Roster,${BASE_DN}`,
      `--sddl=(OA;CI;CCDC;${GROUP_CLASS};;${sid})(OA;CIIO;RPWP;;${GROUP_CLASS};${sid})`,
    ]);
    await run("/usr/bin/python3", [
      "-c",
      BULK_CONTACTS,
      join(work, "etc", "smb.conf"),
      `tdb://${join(work, "private", "sam.ldb")}`,
      CONTACTS_DN,
      String(CONTACTS),
    ]).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`samba: adding the contacts failed: ${err.stderr || err.message}`, { cause: err });
    });
    writeFileSync(join(work, "passwords.json"), JSON.stringify({ adminPassword, servicePassword }), {
      mode: 0o600,
    });
    writeFileSync(join(work, "ready"), `provisioned in ${Date.now() - started} ms\n`);
    // Templates of other Samba versions or layouts are of no more use.
    for (const name of readdirSync(root))
      if (!name.startsWith(".") && join(root, name) !== dir)
        rmSync(join(root, name), { recursive: true, force: true });
    try {
      renameSync(work, dir);
    } catch (err) {
      // Another run made it at the same time: use theirs.
      if (!existsSync(join(dir, "ready"))) throw err;
      rmSync(work, { recursive: true, force: true });
    }
    return dir;
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
}

function openssl(args: string[], cwd: string): Promise<unknown> {
  return run("openssl", args, { cwd });
}

/** A CA and a server certificate for the DC's name and address (EC keys: fast to make). */
async function makeCertificates(dir: string, address: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=roster-ad-test-ca",
    ],
    dir,
  );
  await openssl(
    ["req", "-new", ...ec, "-keyout", "dc.key", "-subj", `/CN=dc1.${DNS_DOMAIN}`, "-out", "dc.csr"],
    dir,
  );
  writeFileSync(
    join(dir, "dc.ext"),
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:${address},DNS:dc1.${DNS_DOMAIN},DNS:localhost\n`,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "dc.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
    ].concat(["-sha256", "-extfile", "dc.ext", "-out", "dc.crt"]),
    dir,
  );
}

/** A loopback address whose port 636 is free (127.0.0.0/16 left to the usual 127.0.0.1 users). */
async function freeLoopbackAddress(): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const address = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(636, address, () => s.close(() => resolve(true)));
    });
    if (free) return address;
  }
  throw new Error("samba: no free loopback address found");
}

async function bound<T>(
  url: string,
  ca: string,
  dn: string,
  password: string,
  fn: (c: Client) => Promise<T>,
) {
  const c = new Client({ url, connectTimeout: 1000, timeout: 10_000, tlsOptions: { ca: [ca] } });
  try {
    await c.bind(dn, password);
    return await fn(c);
  } finally {
    await c.unbind().catch(() => {});
  }
}

const unicodePwd = (password: string) =>
  new Change({
    operation: "replace",
    modification: new Attribute({ type: "unicodePwd", values: [Buffer.from(`"${password}"`, "utf16le")] }),
  });

export async function startSamba(): Promise<SambaAD> {
  if (!existsSync(SAMBA) || !existsSync(SAMBA_TOOL))
    throw new Error(`${SAMBA} not found: run \`npm run setup\` (installs Debian's samba, samba-ad-dc)`);
  if (process.getuid?.() !== 0) throw new Error("samba's AD DC runs only as root");
  sweepStaleDirectories(DIR_PREFIX);
  const templateDir = await template();
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  registerDirectory(dir);
  const address = await freeLoopbackAddress();
  const url = `ldaps://${address}:636`;
  const adminDN = `CN=Administrator,CN=Users,${BASE_DN}`;
  const serviceDN = `CN=${SERVICE_ACCOUNT},OU=Roster,${BASE_DN}`;
  let passwords: { adminPassword: string; servicePassword: string };
  let ca: string;
  try {
    writeFileSync(join(dir, "owner"), `${process.pid}\n`);
    // Everything but the template's own files (its smb.conf names its paths; passwords).
    cpSync(templateDir, dir, {
      recursive: true,
      filter: (src) => !["etc", "passwords.json", "ready"].includes(src.slice(templateDir.length + 1)),
    });
    passwords = JSON.parse(readFileSync(join(templateDir, "passwords.json"), "utf8")) as typeof passwords;
    mkdirSync(join(dir, "etc"));
    mkdirSync(join(dir, "tls"), { mode: 0o700 });
    await makeCertificates(join(dir, "tls"), address);
    ca = readFileSync(join(dir, "tls", "ca.crt"), "utf8");
    const tls = {
      key: join(dir, "tls", "dc.key"),
      cert: join(dir, "tls", "dc.crt"),
      ca: join(dir, "tls", "ca.crt"),
    };
    writeFileSync(join(dir, "etc", "smb.conf"), smbConf(dir, address, tls));
  } catch (err) {
    removeDirectory(dir);
    throw err;
  }

  const logFile = join(dir, "samba.out");
  let proc: Managed | undefined;
  let stopped = false;
  let currentAdmin = passwords.adminPassword;

  const launch = async () => {
    const p = startProcess(SAMBA, ["-i", "-M", "single", "-s", join(dir, "etc", "smb.conf")], logFile);
    proc = p;
    let exited = false;
    void p.exited.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error("samba exited");
        return bound(url, ca, adminDN, currentAdmin, async () => true);
      },
      30_000,
      () => `samba on ${url} did not accept a bind${exited ? " (it exited)" : ""}:\n${p.tail()}`,
      50,
    ).catch(async (err) => {
      await p.kill();
      throw err;
    });
  };

  try {
    await launch();
    // This run's own passwords (the template's are in the cache).
    const adminPassword = adPassword();
    const servicePassword = adPassword();
    await bound(url, ca, adminDN, currentAdmin, async (c) => {
      await c.modify(serviceDN, unicodePwd(servicePassword));
      await c.modify(adminDN, unicodePwd(adminPassword));
    });
    currentAdmin = passwords.adminPassword = adminPassword;
    passwords.servicePassword = servicePassword;
  } catch (err) {
    await proc?.kill();
    removeDirectory(dir);
    throw err;
  }

  return {
    url,
    startTLSURL: `ldap://${address}:389`,
    address,
    ca,
    realm: REALM,
    dnsDomain: DNS_DOMAIN,
    baseDN: BASE_DN,
    adminDN,
    adminPassword: passwords.adminPassword,
    serviceDN,
    servicePassword: passwords.servicePassword,
    usersDN: `OU=People,OU=Roster,${BASE_DN}`,
    groupsDN: `OU=Groups,OU=Roster,${BASE_DN}`,
    contacts: Array.from(
      { length: CONTACTS },
      (_, i) => `CN=contact-${String(i).padStart(4, "0")},${CONTACTS_DN}`,
    ),
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
      if (stopped) throw new Error("samba was stopped; start a new one");
      await proc?.stop(10_000);
      await launch();
    },
  };
}

/** What a test file needs to reach the shared AD DC (plain data, as in HarnessInfo). */
export type AdInfo = Pick<
  SambaAD,
  | "url"
  | "startTLSURL"
  | "ca"
  | "dnsDomain"
  | "baseDN"
  | "adminDN"
  | "adminPassword"
  | "serviceDN"
  | "servicePassword"
  | "usersDN"
  | "groupsDN"
  | "contacts"
>;

export function adInfo(ad: SambaAD): AdInfo {
  const { url, startTLSURL, ca, dnsDomain, baseDN, adminDN, adminPassword, serviceDN, servicePassword } = ad;
  return {
    url,
    startTLSURL,
    ca,
    dnsDomain,
    baseDN,
    adminDN,
    adminPassword,
    serviceDN,
    servicePassword,
    usersDN: ad.usersDN,
    groupsDN: ad.groupsDN,
    contacts: ad.contacts,
  };
}

/** Runs fn bound as the domain's Administrator (for what a test does by hand, outside Roster). */
export function asAdmin<T>(ad: AdInfo, fn: (c: Client) => Promise<T>): Promise<T> {
  return bound(ad.url, ad.ca, ad.adminDN, ad.adminPassword, fn);
}

/**
 * A test file's own pair of OUs below usersDN and groupsDN (`OU=<name>`), made empty, so that
 * files sharing the DC do not see each other's accounts; the service account's rights reach them.
 */
export async function adOrganizationalUnits(
  ad: AdInfo,
  name: string,
): Promise<{ usersDN: string; groupsDN: string }> {
  const usersDN = `OU=${name},${ad.usersDN}`;
  const groupsDN = `OU=${name},${ad.groupsDN}`;
  await asAdmin(ad, async (c) => {
    for (const dn of [usersDN, groupsDN]) {
      await emptySubtree(c, dn);
      await c.add(dn, { objectClass: "organizationalUnit" }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 68) throw err; // already there
      });
    }
  });
  return { usersDN, groupsDN };
}

/** Deletes every entry below dn (not dn itself); missing dn is fine. */
export async function emptySubtree(c: Client, dn: string): Promise<void> {
  let entries;
  try {
    entries = (await c.search(dn, { scope: "one", attributes: ["1.1"], paged: { pageSize: 500 } }))
      .searchEntries;
  } catch (err) {
    if ((err as { code?: number }).code === 32) return;
    throw err;
  }
  for (const e of entries) {
    await emptySubtree(c, e.dn);
    await c.del(e.dn);
  }
}
