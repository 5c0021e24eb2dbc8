// Secrets never reach log lines.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createAuditLogger, createLogger } from "../../src/observe/logger.ts";

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

  it("redacts at any depth, in arrays, in errors' own fields, in child bindings and on the audit trail", () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination, level: "info" });
    const err = Object.assign(new Error("refused"), { request: { headers: { Authorization: "Bearer e1" } } });
    log.child({ connector: "ldap", spec: { auth: { token: "c1" } } }).warn(
      {
        err,
        a: { b: { c: { d: { e: { apiKey: "k1" } } } } },
        items: [{ name: "x", clientSecret: "k2" }, "plain"],
        when: new Date(0),
        data: "top-level data is a field of ours",
      },
      "deep",
    );
    createAuditLogger(log).info({ changes: { userPassword: { before: "", after: "k3" } } }, "audit");
    expect(lines).toHaveLength(2);
    const [line, audit] = lines;
    for (const secret of ["e1", "c1", "k1", "k2", "k3"]) expect(JSON.stringify(lines)).not.toContain(secret);
    expect(line).toMatchObject({
      err: { message: "refused", stack: expect.stringContaining("refused") as unknown },
      connector: "ldap",
      spec: { auth: { token: "[REDACTED]" } },
      a: { b: { c: { d: { e: { apiKey: "[REDACTED]" } } } } },
      items: [{ name: "x", clientSecret: "[REDACTED]" }, "plain"],
      when: new Date(0).toISOString(),
      data: "top-level data is a field of ours",
    });
    expect((line!.err as { request: unknown }).request).toEqual({ headers: { Authorization: "[REDACTED]" } });
    expect(audit).toMatchObject({
      audit: true,
      name: "roster.audit",
      changes: { userPassword: "[REDACTED]" },
    });
  });

  it("leaves the logged object itself unchanged", () => {
    const { destination } = capture();
    const fields = { connector: { bindPassword: "p1" }, err: new Error("x") };
    createLogger({ destination }).info(fields, "m");
    expect(fields.connector.bindPassword).toBe("p1");
    expect(fields.err).toBeInstanceOf(Error);
  });

  it("serializes errors", () => {
    const { lines, destination } = capture();
    createLogger({ destination }).error({ err: new Error("boom") }, "failed");
    expect((lines[0]!.err as { message: string; stack: string }).message).toBe("boom");
  });
});
