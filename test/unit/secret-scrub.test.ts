// Values read from Secrets never leave a connector: credentials that cannot be used are refused by
// Secret name and key before use, and whatever errors and log lines a library or target produces
// are scrubbed of every secret the connector holds (no servers: scripted fetch, fake Secrets).
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Connector } from "../../src/api/types.ts";
import {
  bearerToken,
  bindPassword,
  CredentialError,
  MAX_PASSWORD_LENGTH,
  MAX_TOKEN_LENGTH,
} from "../../src/connectors/base/credentials.ts";
import { nonCertificateText, REDACTED, scrubberFor } from "../../src/connectors/base/scrub.ts";
import { createLdapConnector } from "../../src/connectors/ldap/connector.ts";
import { ScimHttpError, ScimUnavailableError } from "../../src/connectors/scim/client.ts";
import { createScimConnector } from "../../src/connectors/scim/connector.ts";
import type { ConnectorLogger } from "../../src/connectors/types.ts";
import { ConfigurationError } from "../../src/controller/errors.ts";
import { TargetPool } from "../../src/controller/targets.ts";

const PEM = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
  type: "pkcs8",
  format: "pem",
}) as string;
const TOKEN = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/** Any 12 characters of `secret` in `text`. */
function hasPiece(text: string, secret: string, n = 12): boolean {
  for (let i = 0; i + n <= secret.length; i++) if (text.includes(secret.slice(i, i + n))) return true;
  return false;
}

function capture(): { logger: ConnectorLogger; text(): string } {
  const lines: unknown[] = [];
  const push = (obj: object, msg?: string) => lines.push({ ...obj, msg });
  return { logger: { debug: push, info: push, warn: push }, text: () => JSON.stringify(lines) };
}

describe("scrubberFor", () => {
  const scrub = scrubberFor([PEM, TOKEN]);

  it("replaces the whole value, pieces of it, and its base64, JSON-escaped and URL-encoded forms", () => {
    const body = PEM.split("\n")[1]!;
    for (const text of [
      `Headers.append: "Bearer ${TOKEN}" is an invalid header value.`,
      `Headers.append: "Bearer ${PEM.trim()}" is an invalid header value.`,
      `partial: ${body.slice(3, 40)} end`,
      `escaped: ${JSON.stringify(PEM)}`,
      `base64: ${Buffer.from(TOKEN).toString("base64")}`,
      `url: ${encodeURIComponent(PEM)}`,
    ]) {
      const out = scrub.text(text);
      expect(out).toContain(REDACTED);
      expect(hasPiece(out, PEM)).toBe(false);
      expect(hasPiece(out, TOKEN)).toBe(false);
      expect(hasPiece(out, Buffer.from(TOKEN).toString("base64"))).toBe(false);
    }
    // One run of pieces becomes one "[redacted]"; the words around it stay.
    expect(scrub.text(`Bearer ${TOKEN}; gave up`)).toBe(`Bearer ${REDACTED}; gave up`);
  });

  it("leaves text without secrets alone, and secrets too short to matter", () => {
    expect(scrub.text("SCIM GET /Users: HTTP 401 (invalidToken)")).toBe(
      "SCIM GET /Users: HTTP 401 (invalidToken)",
    );
    expect(scrubberFor(["abc"]).text("abc def")).toBe("abc def");
    expect(scrubberFor(["hunter2"]).text("password hunter2 refused")).toBe(`password ${REDACTED} refused`);
    expect(scrubberFor([undefined]).text("x")).toBe("x");
  });

  it("scrubs an error in place: message, stack, string fields and causes; the class stays", () => {
    const cause = new TypeError(`Headers.append: "Bearer ${TOKEN}" is an invalid header value.`);
    const error = new ScimUnavailableError(`SCIM GET /Users: ${cause.message}; gave up`, { cause });
    const http = new ScimHttpError("GET", "/Users", 401, { detail: `token ${TOKEN} is not valid` });
    const aggregate = new AggregateError([new Error(`pw ${TOKEN}`)], "several");
    for (const e of [error, http, aggregate]) {
      const out = scrub.error(e);
      expect(out).toBe(e);
      const seen = JSON.stringify({
        message: e.message,
        stack: e.stack,
        fields: { ...e },
        cause: (e.cause as Error | undefined)?.message,
        causeStack: (e.cause as Error | undefined)?.stack,
        errors: e instanceof AggregateError ? e.errors.map((x: Error) => [x.message, x.stack]) : [],
      });
      expect(hasPiece(seen, TOKEN)).toBe(false);
    }
    expect(error).toBeInstanceOf(ScimUnavailableError);
    expect(http.status).toBe(401);
    expect(http.message).toBe(`SCIM GET /Users: HTTP 401: token ${REDACTED} is not valid`);
    expect(scrub.error(`thrown ${TOKEN}`)).toBe(`thrown ${REDACTED}`);
  });

  it("scrubs log fields and messages without changing the caller's object", () => {
    const { logger, text } = capture();
    const fields = { err: `Headers.append: "Bearer ${TOKEN}"`, nested: { list: [TOKEN] }, attempt: 1 };
    scrub.logger(logger).info(fields, `failed with ${TOKEN}`);
    expect(hasPiece(text(), TOKEN)).toBe(false);
    expect(text()).toContain('"attempt":1');
    expect(fields.nested.list[0]).toBe(TOKEN);
  });

  it("guards functions: thrown and rejected errors are scrubbed, results are not touched", async () => {
    expect(() =>
      scrub.guard(() => {
        throw new Error(`sync ${TOKEN}`);
      })(),
    ).toThrow(`sync ${REDACTED}`);
    await expect(scrub.guard(async () => Promise.reject(new Error(`async ${TOKEN}`)))()).rejects.toThrow(
      `async ${REDACTED}`,
    );
    expect(await scrub.guard(async (x: string) => x)(TOKEN)).toBe(TOKEN);
    const more = scrub.with(["initial-password-123"]);
    expect(more.text("initial-password-123 and " + TOKEN)).toBe(`${REDACTED} and ${REDACTED}`);
  });

  it("keeps what of a CA bundle is not a certificate", () => {
    const cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    expect(nonCertificateText(cert + cert)).toBeUndefined();
    expect(nonCertificateText(undefined)).toBeUndefined();
    expect(nonCertificateText(cert + PEM)).toBe(PEM.trim());
  });
});

describe("credential checks", () => {
  const refused = (fn: () => unknown, value: string, why: RegExp) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toMatch(why);
    expect(hasPiece((error as Error).message, value)).toBe(false);
  };

  it("a bearer token must be a valid HTTP header value", () => {
    expect(bearerToken(`${TOKEN}\n`)).toBe(TOKEN);
    expect(bearerToken(`  ${TOKEN}\r\n`)).toBe(TOKEN);
    refused(() => bearerToken(PEM), PEM, /cannot be used as a bearer token: it contains a line break/);
    refused(() => bearerToken(`${TOKEN}\r\nX-Evil: 1`), TOKEN, /line break/);
    refused(() => bearerToken(`${TOKEN}\u0000x`), TOKEN, /control character/);
    refused(() => bearerToken(`${TOKEN}\tx`), TOKEN, /control character/);
    refused(() => bearerToken(`${TOKEN}é`), TOKEN, /not ASCII/);
    refused(() => bearerToken("x".repeat(MAX_TOKEN_LENGTH + 1)), "x".repeat(20), /longer than 8192/);
    refused(() => bearerToken("\n"), "", /empty/);
  });

  it("a bind password must be of a sane length, without NUL, and UTF-8", () => {
    expect(bindPassword(`p a s s\n`)).toBe(`p a s s\n`);
    expect(bindPassword(PEM.slice(0, 200))).toBe(PEM.slice(0, 200));
    const huge = `${TOKEN}`.repeat(Math.ceil((MAX_PASSWORD_LENGTH + 1) / TOKEN.length));
    refused(() => bindPassword(huge), huge, /cannot be used as a bind password: it is longer than 1024/);
    refused(() => bindPassword(`${TOKEN}\u0000${TOKEN}`), TOKEN, /NUL/);
    refused(() => bindPassword(Buffer.from([0x70, 0xff, 0xfe, 0x71]).toString("utf8")), "p", /not UTF-8/);
    refused(() => bindPassword(""), "", /empty/);
  });
});

/** A fetch that answers every request with `answer`, recording what it was sent. */
function scriptedFetch(answer: (url: string, init: RequestInit) => Response | Promise<Response>) {
  const sent: { url: string; init: RequestInit }[] = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    sent.push({ url, init });
    return answer(url, init);
  }) as unknown as typeof fetch;
  return { fetchFn, sent };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/scim+json" } });
const list = (resources: unknown[] = []) =>
  json(200, {
    schemas: ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
    totalResults: resources.length,
    Resources: resources,
  });
const spec = { baseURL: "https://scim.example.com/v2", tokenSecretRef: { name: "t", key: "token" } };
const fastRetry = { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 };

describe("SCIM connector", () => {
  it("refuses a token that is no header value before sending anything", () => {
    const { fetchFn, sent } = scriptedFetch(() => list());
    expect(() => createScimConnector(spec, PEM, { fetch: fetchFn })).toThrow(CredentialError);
    expect(sent).toEqual([]);
  });

  it("sends the token without the Secret's trailing newline", async () => {
    const { fetchFn, sent } = scriptedFetch(() => list());
    await createScimConnector(spec, `${TOKEN}\n`, { fetch: fetchFn }).check();
    expect(new Headers(sent[0]!.init.headers).get("authorization")).toBe(`Bearer ${TOKEN}`);
  });

  it("a service that echoes the token: the error and the logs do not carry it", async () => {
    const { fetchFn } = scriptedFetch((_url, init) =>
      json(401, { detail: `bad credentials: ${new Headers(init.headers).get("authorization")}` }),
    );
    const { logger, text } = capture();
    const error = await createScimConnector(spec, TOKEN, { fetch: fetchFn, logger, retry: fastRetry })
      .check()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScimHttpError);
    expect((error as ScimHttpError).status).toBe(401);
    expect((error as Error).message).toContain(`bad credentials: Bearer ${REDACTED}`);
    expect(hasPiece(JSON.stringify({ ...(error as object), stack: (error as Error).stack }), TOKEN)).toBe(
      false,
    );
    expect(hasPiece(text(), TOKEN)).toBe(false);
  });

  it("a transport error quoting the header: retried and given up on without the token in logs or error", async () => {
    const { fetchFn } = scriptedFetch((_url, init) => {
      throw new TypeError(`Headers.append: "${new Headers(init.headers).get("authorization")}" is invalid`);
    });
    const { logger, text } = capture();
    const c = createScimConnector(spec, TOKEN, { fetch: fetchFn, logger, retry: fastRetry });
    const error = await c.discover().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScimUnavailableError);
    expect((error as Error).message).toContain(REDACTED);
    expect(hasPiece(`${(error as Error).message}${(error as Error).stack}`, TOKEN)).toBe(false);
    expect(hasPiece(String(((error as Error).cause as Error).message), TOKEN)).toBe(false);
    expect(text()).toContain("retrying");
    expect(hasPiece(text(), TOKEN)).toBe(false);
  });

  it("an initial password echoed back by the service does not reach the caller", async () => {
    const password = "Gen3rated-Passw0rd-xyz";
    const { fetchFn } = scriptedFetch((url, init) => {
      if (init.method === "POST") {
        const body = JSON.parse(String(init.body)) as { password?: string };
        return json(400, { scimType: "invalidValue", detail: `password ${body.password} is too weak` });
      }
      if (url.includes("/ServiceProviderConfig") || url.includes("/ResourceTypes")) return json(404, {});
      return list();
    });
    const c = createScimConnector(spec, TOKEN, { fetch: fetchFn, retry: fastRetry });
    const error = await c
      .createAccount(
        { employeeId: "E1", username: "ada", attributes: {}, enabled: true, groups: [] },
        password,
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScimHttpError);
    expect((error as Error).message).toBe(
      `SCIM POST /Users: HTTP 400 (invalidValue): password ${REDACTED} is too weak`,
    );
  });
});

describe("LDAP connector", () => {
  const ldap = {
    url: "ldap://127.0.0.1:1",
    bindDN: "cn=admin,dc=example,dc=org",
    bindPasswordSecretRef: { name: "b", key: "password" },
    usersDN: "ou=people,dc=example,dc=org",
    groupsDN: "ou=groups,dc=example,dc=org",
  };

  it("refuses a bind password with NUL or of absurd length before connecting", () => {
    expect(() => createLdapConnector(ldap, `a\u0000b-${TOKEN}`)).toThrow(CredentialError);
    expect(() => createLdapConnector(ldap, TOKEN.repeat(100))).toThrow(/longer than 1024/);
  });
});

describe("TargetPool", () => {
  const connector = (spec: Connector["spec"]): Connector =>
    ({
      apiVersion: "roster.dev/v1alpha1",
      kind: "Connector",
      metadata: { name: "c", namespace: "ns", uid: "u1", generation: 1 },
      spec,
    }) as Connector;
  const pool = (values: Record<string, string>) =>
    new TargetPool(async (_ns, ref) => ({ value: values[`${ref.name}/${ref.key}`]!, version: "1" }), {
      debug() {},
      info() {},
      warn() {},
    });

  it("names the Secret and key of a token that cannot be used, and nothing of its value", async () => {
    const error = await pool({ "tls/tls.key": PEM })
      .get(connector({ scim: { ...spec, tokenSecretRef: { name: "tls", key: "tls.key" } } }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe(
      "Secret ns/tls key tls.key cannot be used as a bearer token: it contains a line break (spec.scim.tokenSecretRef)",
    );
  });

  it("names the Secret and key of a bind password that cannot be used", async () => {
    const huge = `${TOKEN}\u0001`.repeat(2000);
    const error = await pool({ "b/password": huge })
      .get(
        connector({
          ldap: {
            url: "ldap://127.0.0.1:1",
            bindDN: "cn=a",
            bindPasswordSecretRef: { name: "b", key: "password" },
            usersDN: "ou=p",
            groupsDN: "ou=g",
          },
        }),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(
      /^Secret ns\/b key password cannot be used as a bind password: it is longer than 1024 characters/,
    );
    expect(hasPiece((error as Error).message, huge)).toBe(false);
  });

  it("builds a target for a usable token (a trailing newline is fine)", async () => {
    const target = await pool({ "t/token": `${TOKEN}\n` }).get(connector({ scim: spec }));
    expect(typeof target.client.check).toBe("function");
    expect(typeof target.discover).toBe("function");
  });
});
