// A TCP proxy in front of the real slapd that breaks chosen LDAP requests, for faults a directory
// cannot be made to produce on cue: a write whose answer never comes, a Password Modify that fails
// after the add went through. Everything else passes both ways untouched. Plain ldap:// only (it
// reads the request's BER tag: the LDAPMessage is SEQUENCE { messageID, protocolOp }).
import { createServer, connect, type Server, type Socket } from "node:net";

/** protocolOp tags of the requests that change the directory. */
const WRITE_TAGS = new Set([
  0x66, // modifyRequest
  0x68, // addRequest
  0x4a, // delRequest
  0x6c, // modDNRequest
  0x77, // extendedReq
]);
const PASSWORD_MODIFY = Buffer.from("1.3.6.1.4.1.4203.1.11.1");

export type LdapFault =
  /** Pass everything. */
  | "none"
  /** Writes are swallowed: the server never sees them, the client never gets an answer. */
  | "swallow-writes"
  /** A Password Modify request closes the connection instead of reaching the server. */
  | "drop-password-modify";

export type LdapProxy = {
  url: string;
  fault: LdapFault;
  /** How many requests the fault has hit. */
  hits: number;
  close(): Promise<void>;
};

/** BER length at `at`: [value length, header bytes]. */
function berLength(buf: Buffer, at: number): [number, number] {
  const first = buf[at]!;
  if (first < 0x80) return [first, 1];
  const n = first & 0x7f;
  let len = 0;
  for (let i = 1; i <= n; i++) len = len * 256 + buf[at + i]!;
  return [len, 1 + n];
}

/** The protocolOp tag of the first LDAPMessage in `chunk`, if it starts one. */
function operationTag(chunk: Buffer): number | undefined {
  if (chunk[0] !== 0x30 || chunk.length < 2) return undefined;
  const [, seqHeader] = berLength(chunk, 1);
  const id = 1 + seqHeader;
  if (chunk[id] !== 0x02) return undefined;
  const [idLen, idHeader] = berLength(chunk, id + 1);
  return chunk[id + 1 + idHeader + idLen];
}

export async function startLdapProxy(targetUrl: string): Promise<LdapProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const proxy: LdapProxy = { url: "", fault: "none", hits: 0, close: async () => {} };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    client.on("data", (chunk: Buffer) => {
      const tag = operationTag(chunk);
      if (proxy.fault === "swallow-writes" && tag !== undefined && WRITE_TAGS.has(tag)) {
        proxy.hits++;
        return;
      }
      if (proxy.fault === "drop-password-modify" && tag === 0x77 && chunk.includes(PASSWORD_MODIFY)) {
        proxy.hits++;
        end();
        return;
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  proxy.url = `ldap://127.0.0.1:${address.port}`;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
