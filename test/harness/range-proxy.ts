// An LDAPS proxy in front of the Samba AD DC that answers as Windows AD does with large groups:
// at most `maxValues` values of `member` per entry, as `member;range=0-1499`, and ranged
// requests (`member;range=1500-*`) cut the same way. Samba keeps the MaxValRange of its query
// policy but does not enforce it on plain reads, so without this no test could see a ranged answer.
//
// Requests pass through untouched; of the answers only SearchResultEntry messages are re-encoded
// (BER, RFC 4511 section 4.5.2), everything else is forwarded byte for byte. TLS on both sides:
// the proxy's own certificate (a CA it makes), and the DC's CA upstream.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, createServer, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { registerDirectory, removeDirectory } from "./processes.ts";

const run = promisify(execFile);

export type RangeProxy = {
  /** ldaps://127.0.0.1:<port> */
  url: string;
  /** PEM of the CA of the proxy's certificate. */
  ca: string;
  /** SearchResultEntry messages whose member values were cut into a range so far. */
  rangedAnswers(): number;
  stop(): Promise<void>;
};

/** A BER element: tag, where it begins (off), where its content begins and ends. */
type TLV = { tag: number; off: number; start: number; end: number; next: number };

/** The BER element at `off` of buf, or undefined when buf does not hold all of it yet. */
function readTLV(buf: Buffer, off: number): TLV | undefined {
  if (off + 2 > buf.length) return undefined;
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error(`range proxy: unsupported BER length form ${len}`);
    if (start + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > buf.length) return undefined;
  return { tag, off, start, end: start + len, next: start + len };
}

function children(buf: Buffer, from: number, to: number): TLV[] {
  const out: TLV[] = [];
  for (let off = from; off < to;) {
    const t = readTLV(buf, off);
    if (!t || t.end > to) throw new Error("range proxy: malformed BER");
    out.push(t);
    off = t.next;
  }
  return out;
}

function encode(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let header: Buffer;
  if (n < 0x80) header = Buffer.from([tag, n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
    header = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([header, content]);
}

const SEARCH_RESULT_ENTRY = 0x64;

/** The message with member values cut to maxValues, or undefined when nothing needs cutting. */
function rangeMessage(msg: Buffer, m: TLV, maxValues: number): Buffer | undefined {
  const [id, op, ...rest] = children(msg, m.start, m.end);
  if (!id || !op || op.tag !== SEARCH_RESULT_ENTRY) return undefined;
  const [name, attrs] = children(msg, op.start, op.end);
  if (!name || !attrs) return undefined;
  let changed = false;
  const newAttrs = children(msg, attrs.start, attrs.end).map((a) => {
    const [type, vals] = children(msg, a.start, a.end);
    const description = msg.subarray(type!.start, type!.end).toString("utf8");
    const [attr, ...options] = description.split(";");
    if (attr!.toLowerCase() !== "member") return whole(msg, a);
    const values = children(msg, vals!.start, vals!.end);
    const range = options.map((o) => /^range=(\d+)-(\d+|\*)$/i.exec(o)).find((x) => x);
    const low = range ? Number(range[1]) : 0;
    const openEnded = !range || range[2] === "*";
    if (!openEnded || values.length <= maxValues) return whole(msg, a);
    changed = true;
    const kept = values.slice(0, maxValues).map((v) => whole(msg, v));
    const newType = Buffer.from(`member;range=${low}-${low + maxValues - 1}`, "utf8");
    return encode(0x30, Buffer.concat([encode(0x04, newType), encode(0x31, Buffer.concat(kept))]));
  });
  if (!changed) return undefined;
  const newOp = encode(
    SEARCH_RESULT_ENTRY,
    Buffer.concat([whole(msg, name), encode(0x30, Buffer.concat(newAttrs))]),
  );
  const tail = rest.map((r) => whole(msg, r));
  return encode(0x30, Buffer.concat([msg.subarray(m.start, id.end), newOp, ...tail]));
}

/** The whole element t (tag, length and content). */
const whole = (buf: Buffer, t: TLV) => buf.subarray(t.off, t.end);

export async function startRangeProxy(opts: {
  host: string;
  port: number;
  /** The upstream DC's CA. */
  ca: string;
  maxValues?: number;
}): Promise<RangeProxy> {
  const maxValues = opts.maxValues ?? 1500;
  const dir = mkdtempSync(join(tmpdir(), "roster-range-proxy-"));
  registerDirectory(dir);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run(
    "openssl",
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
      "/CN=range-proxy-ca",
    ],
    { cwd: dir },
  );
  await run(
    "openssl",
    ["req", "-new", ...ec, "-keyout", "p.key", "-subj", "/CN=127.0.0.1", "-out", "p.csr"],
    { cwd: dir },
  );
  writeFileSync(
    join(dir, "p.ext"),
    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
  );
  await run(
    "openssl",
    [
      "x509",
      "-req",
      "-in",
      "p.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      "p.ext",
      "-out",
      "p.crt",
    ],
    { cwd: dir },
  );
  const ca = readFileSync(join(dir, "ca.crt"), "utf8");
  let ranged = 0;
  const sockets = new Set<TLSSocket>();

  const server = createServer(
    { key: readFileSync(join(dir, "p.key")), cert: readFileSync(join(dir, "p.crt")) },
    (client) => {
      sockets.add(client);
      const upstream = tlsConnect({ host: opts.host, port: opts.port, ca: [opts.ca] });
      sockets.add(upstream);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
      client.pipe(upstream);
      let pending = Buffer.alloc(0);
      upstream.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        const out: Buffer[] = [];
        for (;;) {
          const m = readTLV(pending, 0);
          if (!m) break;
          const msg = pending.subarray(0, m.next);
          const rewritten = rangeMessage(msg, m, maxValues);
          if (rewritten) ranged++;
          out.push(rewritten ?? msg);
          pending = pending.subarray(m.next);
        }
        if (out.length) client.write(Buffer.concat(out));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `ldaps://127.0.0.1:${port}`,
    ca,
    rangedAnswers: () => ranged,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      removeDirectory(dir);
    },
  };
}
