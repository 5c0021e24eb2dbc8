// Child processes of the test harness: started with logs in a file, always stopped when the
// Node process ends (normally, by an uncaught error or by SIGINT/SIGTERM).
//
// Each child leads its own process group (detached), so a terminal's Ctrl-C, which signals the
// whole foreground group, reaches only the Node process: it decides the order of shutdown
// (`roster dev` stops the operator while the API server still answers) and then stops the
// servers itself, the whole group of each: SIGTERM, SIGKILL after a grace period, and SIGKILL
// from the "exit" hook for any still running. Out of the group, a child no longer dies with it
// (`kill -9 -PGID`), so each runs under setpriv --pdeathsig: the kernel SIGKILLs it when this
// process dies without running any cleanup.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SETPRIV = "/usr/bin/setpriv";
const children = new Set<ChildProcess>();
const directories = new Set<string>();
let hooked = false;

/** Signals the child's process group (it leads one), or the child alone if that fails. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  // Not after its exit was seen: the pid (and so the group id) may belong to someone else by now.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function cleanupNow(): void {
  for (const child of children) signalGroup(child, "SIGKILL");
  children.clear();
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  directories.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", cleanupNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    // When the program has its own handler (roster dev stops the operator first), leave the exit
    // to it: the "exit" hook still cleans up.
    process.on(signal, () => {
      if (process.listenerCount(signal) > 1) return;
      cleanupNow();
      process.exit(130);
    });
  }
}

/** Removes `dir` when the process ends, unless removeDirectory was called before. */
export function registerDirectory(dir: string): void {
  hook();
  directories.add(dir);
}

export function removeDirectory(dir: string): void {
  directories.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export type Managed = {
  child: ChildProcess;
  logFile: string;
  /** The last lines of the log, for error messages. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
};

export function startProcess(
  command: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): Managed {
  hook();
  if (existsSync(SETPRIV) && command !== SETPRIV) {
    args = ["--pdeathsig", "KILL", "--", command, ...args];
    command = SETPRIV;
  }
  const fd = openSync(logFile, "a");
  const child = spawn(command, args, {
    stdio: ["ignore", fd, fd],
    env: env ?? process.env,
    // Its own process group: see the top of this file.
    detached: true,
  });
  closeSync(fd);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      children.delete(child);
      resolve(code);
    });
    child.once("error", () => {
      children.delete(child);
      resolve(null);
    });
  });
  const tail = (lines = 20) => {
    try {
      return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };
  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    signalGroup(child, signal);
    const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return {
    child,
    logFile,
    tail,
    exited,
    stop: (graceMs = 5000) => signalAndWait("SIGTERM", graceMs),
    kill: () => signalAndWait("SIGKILL", 0),
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Polls `check` until it returns true; throws with `describe()` after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // A zombie (exited, not yet reaped) still answers kill(pid, 0).
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/**
 * Removes the temporary directories (named `prefix…`) of runs whose Node process was SIGKILLed:
 * their servers died with them through the parent-death signal, but no cleanup code ran. Each
 * directory names its owner in a file `owner`.
 */
export function sweepStaleDirectories(prefix: string): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(dir, "owner"), "utf8").trim());
      if (owner > 0 && owner !== process.pid && !processAlive(owner))
        rmSync(dir, { recursive: true, force: true });
    } catch {
      // no owner file (yet): not ours to judge
    }
  }
}
