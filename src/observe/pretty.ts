// A readable rendering of pino's JSON lines for `roster dev` and --log-format pretty:
// "12:00:01 INFO  message key=value ...". Redaction already happened in pino.
import { Writable } from "node:stream";

const SKIP = new Set(["time", "level", "msg", "name", "pid", "hostname"]);

export function formatLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof record.time === "string" ? record.time.slice(11, 19) : "";
  const level = String(record.level ?? "")
    .toUpperCase()
    .padEnd(5);
  const fields = Object.entries(record)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${time} ${level} ${String(record.msg ?? "")}${fields ? `  ${fields}` : ""}`;
}

export function prettyDestination(out: NodeJS.WritableStream = process.stdout): Writable {
  let pending = "";
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      pending += chunk.toString("utf8");
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        out.write(formatLine(pending.slice(0, newline)) + "\n");
        pending = pending.slice(newline + 1);
      }
      callback();
    },
  });
}
