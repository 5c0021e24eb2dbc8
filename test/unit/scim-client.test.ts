// The SCIM HTTP client against a scripted fetch (no server).
import { describe, expect, it } from "vitest";
import { createScimClient, ScimHttpError, ScimUnavailableError } from "../../src/connectors/scim/client.ts";
import { silentLogger } from "../../src/connectors/types.ts";

type Step = { status: number; body?: unknown; headers?: Record<string, string> } | Error;

function scripted(steps: Step[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const step = steps.shift() ?? { status: 200, body: {} };
    if (step instanceof Error) throw step;
    return new Response(step.body === undefined ? null : JSON.stringify(step.body), {
      status: step.status,
      headers: step.headers ?? {},
    });
  }) as unknown as typeof fetch;
  const client = createScimClient({
    baseURL: "https://scim.example.com/v2/",
    token: "secret-token",
    requestsPerSecond: 1000,
    fetch: async () => fetchFn,
    logger: silentLogger,
    retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
  });
  return { client, calls };
}

const networkError = () => new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });

describe("SCIM client", () => {
  it("sends the bearer token and SCIM JSON, encoding query values with %20", async () => {
    const { client, calls } = scripted([{ status: 201, body: { id: 7 } }]);
    const res = await client.request("POST", "/Users", {
      query: { filter: 'userName eq "a b"', count: 5, skipped: undefined },
      body: { userName: "a b" },
    });
    expect(res).toEqual({ status: 201, body: { id: 7 } });
    expect(calls[0]!.url).toBe(
      "https://scim.example.com/v2/Users?filter=userName%20eq%20%22a%20b%22&count=5",
    );
    expect(calls[0]!.init.headers).toMatchObject({
      Authorization: "Bearer secret-token",
      "Content-Type": "application/scim+json",
    });
    expect(calls[0]!.init.body).toBe('{"userName":"a b"}');
  });

  it("retries 5xx and network errors, then succeeds", async () => {
    const { client, calls } = scripted([
      { status: 500 },
      networkError(),
      { status: 502, body: "<html>bad gateway</html>" },
      { status: 200, body: { ok: true } },
    ]);
    expect((await client.request("GET", "/Users")).body).toEqual({ ok: true });
    expect(calls).toHaveLength(4);
  });

  it("honours 429 with Retry-After in seconds or as an HTTP date", async () => {
    const { client, calls } = scripted([
      { status: 429, headers: { "Retry-After": "0" } },
      { status: 429, headers: { "Retry-After": new Date(Date.now() - 1000).toUTCString() } },
      { status: 200, body: {} },
    ]);
    await client.request("GET", "/Users");
    expect(calls).toHaveLength(3);
  });

  it("gives up after the bounded number of tries with ScimUnavailableError", async () => {
    const { client, calls } = scripted(Array.from({ length: 10 }, () => ({ status: 503 })));
    const err = await client.request("GET", "/Users").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScimUnavailableError);
    expect((err as Error).message).toMatch(/HTTP 503.*gave up after 4 tries, will retry later/);
    expect(calls).toHaveLength(4);
    const net = scripted(Array.from({ length: 10 }, networkError));
    await expect(net.client.request("GET", "/Users")).rejects.toThrow(/ECONNRESET.*gave up after 4 tries/);
  });

  it("throws other 4xx at once with the SCIM detail, never the token", async () => {
    const { client, calls } = scripted([
      { status: 400, body: { scimType: "invalidFilter", detail: "bad filter", status: "400" } },
    ]);
    const err = (await client.request("GET", "/Users").catch((e: unknown) => e)) as ScimHttpError;
    expect(err).toBeInstanceOf(ScimHttpError);
    expect(err).toMatchObject({ status: 400, scimType: "invalidFilter", detail: "bad filter" });
    expect(err.message).toBe("SCIM GET /Users: HTTP 400 (invalidFilter): bad filter");
    expect(err.message).not.toContain("secret-token");
    expect(calls).toHaveLength(1);
    // 501 is not retried either.
    const notImpl = scripted([{ status: 501 }]);
    await expect(notImpl.client.request("PATCH", "/Users/1")).rejects.toMatchObject({ status: 501 });
    expect(notImpl.calls).toHaveLength(1);
  });

  it("stops after close", async () => {
    const { client } = scripted([]);
    client.close();
    await expect(client.request("GET", "/Users")).rejects.toThrow(/closed/);
  });
});
