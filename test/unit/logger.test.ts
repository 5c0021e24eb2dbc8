// Secrets never reach log lines.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observe/logger.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { lines, destination };
}

describe("createLogger", () => {
  it("writes JSON with level names and redacts secret-ish fields", () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination, level: "info" });
    log.info(
      {
        password: "p0",
        connector: { ldap: { bindPassword: "p1", bindDN: "cn=admin" } },
        object: { metadata: { name: "bind" }, data: { password: "cDI=" } },
        secret: "s3",
        request: { headers: { authorization: "Bearer t0", accept: "json" }, token: "t1" },
        user: "ada",
      },
      "hello",
    );
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({ level: "info", msg: "hello", name: "roster", user: "ada" });
    const text = JSON.stringify(line);
    for (const secret of ["p0", "p1", "cDI=", "s3", "Bearer t0", "t1"]) expect(text).not.toContain(secret);
    expect(line.password).toBe("[REDACTED]");
    expect(line.connector).toEqual({ ldap: { bindPassword: "[REDACTED]", bindDN: "cn=admin" } });
    expect((line.object as { data: unknown }).data).toBe("[REDACTED]");
    expect(line.secret).toBe("[REDACTED]");
    expect((line.request as { headers: { accept: string } }).headers.accept).toBe("json");
  });

  it("serializes errors", () => {
    const { lines, destination } = capture();
    createLogger({ destination }).error({ err: new Error("boom") }, "failed");
    expect((lines[0]!.err as { message: string; stack: string }).message).toBe("boom");
  });
});
