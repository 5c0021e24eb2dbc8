// An HR export fetched over HTTP(S) (a Workday RaaS or BambooHR report URL), for the scheduled
// import. The body is streamed into the reader; a failed status, a cut connection or fewer bytes
// than Content-Length announced is an error, so a truncated export never reads as "people left".
// SECURITY: tokens and passwords go into the Authorization header only, never into a message.
import { Readable, Transform, type TransformCallback } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Agent, fetch } from "undici";
import type { SourceFormat } from "./source.ts";

export type FetchAuth = { token: string } | { username: string; password: string };

export type FetchOptions = {
  auth?: FetchAuth;
  /** PEM CA bundle for a private CA. */
  ca?: string;
  timeoutMs: number;
};

export type FetchedExport = {
  stream: Readable;
  /** From the Content-Type, when it tells. */
  format: SourceFormat | undefined;
};

export class FetchError extends Error {
  override name = "FetchError";
}

export const isUrl = (value: string) => /^https?:\/\//i.test(value);

/** The URL as shown in messages: no user info, no query (either may hold a secret). */
export function displayUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return "<url>";
  }
}

export function formatFromContentType(contentType: string | null): SourceFormat | undefined {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "text/csv" || type === "application/csv") return "csv";
  if (
    ["application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json"].includes(
      type,
    )
  )
    return "jsonl";
  return undefined;
}

/** Counts bytes and fails at the end when fewer (or more) arrived than announced. */
class LengthCheck extends Transform {
  private received = 0;
  private readonly expected: number;
  private readonly where: string;
  constructor(expected: number, where: string) {
    super();
    this.expected = expected;
    this.where = where;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    if (this.received !== this.expected)
      done(
        new FetchError(
          `${this.where}: the export is truncated: ${this.received} of ${this.expected} bytes (Content-Length) arrived`,
        ),
      );
    else done();
  }
}

export async function fetchExport(url: string, options: FetchOptions): Promise<FetchedExport> {
  const where = displayUrl(url);
  const headers: Record<string, string> = { accept: "text/csv, application/x-ndjson;q=0.9, */*;q=0.1" };
  if (options.auth && "token" in options.auth) headers.authorization = `Bearer ${options.auth.token}`;
  else if (options.auth)
    headers.authorization = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString("base64")}`;
  const dispatcher = new Agent({
    ...(options.ca ? { connect: { ca: options.ca } } : {}),
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  let response: Awaited<ReturnType<typeof fetch>>;
  try {
    response = await fetch(url, { headers, dispatcher, signal: AbortSignal.timeout(options.timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    throw new FetchError(`${where}: ${cause ?? (error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const hint =
      response.status === 401 || response.status === 403
        ? ": check the credentials (--token-file, or --user-file and --password-file)"
        : "";
    throw new FetchError(`${where}: HTTP ${response.status} ${response.statusText}${hint}; nothing imported`);
  }
  if (!response.body) throw new FetchError(`${where}: the response has no body`);
  const raw = Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
  const length = response.headers.get("content-length");
  // With a content encoding, Content-Length counts the encoded bytes; undici checks those itself.
  const out: Transform =
    length !== null && /^\d+$/.test(length) && !response.headers.get("content-encoding")
      ? new LengthCheck(Number(length), where)
      : new Transform({ transform: (chunk, _e, done) => done(null, chunk) });
  raw.on("error", (error) => out.destroy(wrap(error, where)));
  raw.pipe(out);
  return { stream: out, format: formatFromContentType(response.headers.get("content-type")) };
}

/** undici's "terminated" says little: name the URL and what it means for the import. */
function wrap(error: Error, where: string): FetchError {
  if (error instanceof FetchError) return error;
  const cause = (error as { cause?: { message?: string } }).cause?.message;
  return new FetchError(
    `${where}: the export is truncated: the connection ended early (${cause ?? error.message})`,
  );
}
