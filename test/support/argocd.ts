// Runs the Argo CD health checks of deploy/argocd/health in Lua 5.1 (what Argo CD embeds), with
// the object handed over as a Lua table literal in the global `obj`, as Argo CD does, and only
// Lua's safe base, string, table and math libraries.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const healthDir = join(import.meta.dirname, "../../deploy/argocd/health");
export const KINDS = {
  Employee: "employee",
  AccessPolicy: "accesspolicy",
  GroupRule: "grouprule",
  Connector: "connector",
};
export type Kind = keyof typeof KINDS;
export type Health = { status: string; message: string };

/** A Lua 5.1 string literal: printable ASCII as is, everything else escaped as decimal bytes. */
export function luaString(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, "utf8")) {
    const ch = String.fromCharCode(byte);
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (byte >= 0x20 && byte < 0x7f) out += ch;
    else out += `\\${byte}`;
  }
  return `${out}"`;
}

/** A JSON value as a Lua table literal (null becomes nil, as Argo CD's conversion leaves it out). */
export function luaValue(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "string") return luaString(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot express ${value} in Lua`);
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `{${value.map(luaValue).join(", ")}}`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null);
  return `{${entries.map(([k, v]) => `[${luaString(k)}] = ${luaValue(v)}`).join(", ")}}`;
}

export function scriptPath(kind: Kind): string {
  return join(healthDir, `${KINDS[kind]}.lua`);
}

/** Runs a health script in lua5.1 as Argo CD would and returns hs.status and hs.message. */
export function health(object: { kind: Kind }): Health {
  const harness = `
local check = assert(loadfile(${luaString(scriptPath(object.kind))}))
setfenv(check, {
  obj = ${luaValue(object)},
  ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring, tonumber = tonumber,
  select = select, unpack = unpack, error = error, pcall = pcall,
  string = string, table = table, math = math,
})
local hs = check()
assert(type(hs) == "table", "the script returned no table")
io.write(tostring(hs.status), "\\n", tostring(hs.message))
`;
  const out = execFileSync("lua5.1", ["-"], { input: harness, encoding: "utf8" });
  const newline = out.indexOf("\n");
  return { status: out.slice(0, newline), message: out.slice(newline + 1) };
}
