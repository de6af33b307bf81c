/**
 * A SOCKS5 proxy (RFC 1928, CONNECT) for a tailnet node: `curl --socks5-hostname`, `ssh -o
 * ProxyCommand='nc -X 5 …'`, browsers and anything honouring `ALL_PROXY=socks5h://…` reach
 * tailnet hosts by MagicDNS short name, FQDN or 100.x / fd7a: address through it, as through
 * tailscaled's `--socks5-server`.
 *
 * Destinations outside the tailnet are refused (REP 0x02, "not allowed by ruleset") unless
 * `direct` is set. tailscaled hands them to the OS; we do not by default, because `--socks5`
 * is for reaching the tailnet, and a proxy that also reaches the LAN and the internet widens
 * what anyone holding its credentials can do from this host. (Our HTTP proxy does pass them
 * through: DuckDB sends all its HTTP to `http_proxy`, and cannot exempt MagicDNS names.)
 * `direct: true` restores tailscaled's behaviour, for clients that send everything to one
 * ALL_PROXY.
 *
 * Authentication is RFC 1929 username/password, random per node and required, as for our
 * HTTP proxy: a listener on 127.0.0.1 is open to every local user and process, and without
 * credentials any of them could use the tailnet with this node's identity (ACLs authorize by
 * node, so the proxy would grant them whatever this node may reach). The password crosses
 * only loopback.
 *
 * Reply codes (RFC 1928 §6): 0x02 refused destination; 0x04 host unreachable (a tailnet name
 * or address no node has, a short name that is not a node, or a connect timeout); 0x05
 * connection refused (the peer answered RST); 0x07 command not supported (BIND, UDP
 * ASSOCIATE); 0x08 address type not supported; 0x01 anything else.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { splice } from '../netstack/splice.js';
import { formatIp, parseIp } from '../wireguard/allowedips.js';

/** Where a destination host lies: a node of the netmap, the tailnet but no node, or elsewhere. */
export type Socks5Destination = 'peer' | 'tailnet-unknown' | 'other';

export interface Socks5ServerOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Classifies a destination host (a name, or an IP literal without brackets). */
  classify(host: string): Socks5Destination;
  /** Opens a TCP connection to a tailnet host. */
  dial(host: string, port: number): Promise<Duplex>;
  /** Send destinations outside the tailnet directly, through the OS (default false: refuse). */
  direct?: boolean;
  /** Credentials; username `quackscale` and a random password when absent. */
  username?: string;
  password?: string;
  /** How long a client may take to authenticate and send its request (default 10 s). */
  handshakeTimeoutMs?: number;
  logger?: { debug(m: string): void };
}

/** RFC 1928 §6 reply codes. */
export const SOCKS5_REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

const VERSION = 5;
const METHOD_USERPASS = 0x02;
const NO_ACCEPTABLE_METHOD = 0xff;
const CMD_CONNECT = 1;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** A client broke the protocol or went away during negotiation. */
class NegotiationEnded extends Error {}

/** Reads exactly the bytes the parser asks for, keeping what arrives early. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private want: { n: number; resolve(b: Buffer): void; reject(e: Error): void } | undefined;
  private ended = false;

  constructor(private readonly sock: net.Socket) {
    sock.on('data', this.onData);
    const end = () => {
      this.ended = true;
      this.want?.reject(new NegotiationEnded('client closed during negotiation'));
    };
    sock.once('end', end);
    sock.once('close', end);
  }

  private readonly onData = (d: Buffer): void => {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const w = this.want;
    if (w && this.buf.length >= w.n) {
      this.want = undefined;
      w.resolve(this.take(w.n));
    }
  };

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  read(n: number): Promise<Buffer> {
    if (this.buf.length >= n) return Promise.resolve(this.take(n));
    if (this.ended) return Promise.reject(new NegotiationEnded('client closed during negotiation'));
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
    });
  }

  /** Stops reading; returns what the client sent after its request (for the target). */
  detach(): Buffer {
    this.sock.off('data', this.onData);
    this.sock.pause();
    return this.buf;
  }
}

/** A failure with the SOCKS5 reply code it maps to. */
function replyFor(err: unknown): number {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ECONNREFUSED':
      return SOCKS5_REPLY.connectionRefused;
    case 'ENOTFOUND':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return SOCKS5_REPLY.hostUnreachable;
    case 'ENETUNREACH':
      return SOCKS5_REPLY.networkUnreachable;
    default:
      return SOCKS5_REPLY.generalFailure;
  }
}

/** REP with BND.ADDR/BND.PORT (§6): the address the proxy connected from, or 0.0.0.0:0. */
function replyMessage(rep: number, bound?: { address?: string; port?: number }): Buffer {
  const addr = (bound?.address && parseIp(bound.address)) || new Uint8Array(4);
  const port = bound?.port ?? 0;
  const atyp = addr.length === 16 ? ATYP_IPV6 : ATYP_IPV4;
  return Buffer.from([VERSION, rep, 0, atyp, ...addr, port >> 8, port & 0xff]);
}

/** The running proxy. Close it (or the node) and nothing of it is left. */
export class Socks5Server {
  readonly username: string;
  readonly password: string;
  readonly stats = { tailnet: 0, direct: 0, badAuth: 0, notAllowed: 0, unreachable: 0, failed: 0 };
  private readonly server: net.Server;
  private readonly sockets = new Set<Duplex>();
  private readonly expected: Buffer;

  private constructor(private readonly opts: Socks5ServerOptions) {
    this.username = opts.username ?? 'quackscale';
    this.password = opts.password ?? randomBytes(18).toString('base64url');
    if (Buffer.byteLength(this.username) > 255 || Buffer.byteLength(this.password) > 255)
      throw new RangeError('SOCKS5 username and password are at most 255 bytes (RFC 1929)');
    this.expected = Buffer.concat([Buffer.from(this.username), Buffer.from([0]), Buffer.from(this.password)]);
    // Half-open: a client that shuts down its sending side still gets the whole response.
    this.server = net.createServer({ allowHalfOpen: true }, (c) => this.accept(c));
  }

  /** Starts listening on `host:port` (default 127.0.0.1, any free port). */
  static async listen(opts: Socks5ServerOptions): Promise<Socks5Server> {
    const s = new Socks5Server(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        s.server.off('error', reject);
        s.bound = s.server.address() as net.AddressInfo;
        resolve();
      });
    });
    return s;
  }

  /** Where it listens (kept after close). */
  private bound: net.AddressInfo = { address: '', family: 'IPv4', port: 0 };

  get host(): string {
    return this.bound.address;
  }

  get port(): number {
    return this.bound.port;
  }

  /** `socks5h://user:pass@host:port` (names resolved by the proxy), for ALL_PROXY or curl -x. */
  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `socks5h://${encodeURIComponent(this.username)}:${encodeURIComponent(this.password)}@${h}:${this.port}`;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(s: Duplex): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private accept(client: net.Socket): void {
    this.track(client);
    client.on('error', () => client.destroy());
    client.setTimeout(this.opts.handshakeTimeoutMs ?? 10_000, () => client.destroy());
    this.negotiate(client).catch((err: unknown) => {
      if (!(err instanceof NegotiationEnded)) this.opts.logger?.debug(`socks5: ${(err as Error).message}`);
      client.destroy();
    });
  }

  /** Greeting, RFC 1929 authentication, request; then the tunnel or a failure reply. */
  private async negotiate(client: net.Socket): Promise<void> {
    const r = new Reader(client);
    const [ver, nMethods] = await r.read(2);
    if (ver !== VERSION) throw new NegotiationEnded('not SOCKS5');
    const methods = await r.read(nMethods!);
    if (!methods.includes(METHOD_USERPASS)) {
      this.stats.badAuth++;
      client.end(Buffer.from([VERSION, NO_ACCEPTABLE_METHOD]));
      return;
    }
    client.write(Buffer.from([VERSION, METHOD_USERPASS]));
    // RFC 1929 §2: VER=1, ULEN, UNAME, PLEN, PASSWD; any non-zero STATUS is failure and closes.
    const [authVer, uLen] = await r.read(2);
    const user = await r.read(uLen!);
    const pass = await r.read((await r.read(1))[0]!);
    const got = Buffer.concat([user, Buffer.from([0]), pass]);
    if (authVer !== 1 || got.length !== this.expected.length || !timingSafeEqual(got, this.expected)) {
      this.stats.badAuth++;
      client.end(Buffer.from([1, 1]));
      return;
    }
    client.write(Buffer.from([1, 0]));

    const [v, cmd, , atyp] = await r.read(4);
    let host: string;
    if (atyp === ATYP_IPV4) host = [...(await r.read(4))].join('.');
    else if (atyp === ATYP_IPV6) host = formatIp(await r.read(16));
    else if (atyp === ATYP_DOMAIN) host = (await r.read((await r.read(1))[0]!)).toString('latin1');
    else return this.fail(client, SOCKS5_REPLY.addressTypeNotSupported);
    const port = (await r.read(2)).readUInt16BE(0);
    if (v !== VERSION) throw new NegotiationEnded('not SOCKS5');
    // BIND and UDP ASSOCIATE would need a listener / relay on the tailnet side: not offered.
    if (cmd !== CMD_CONNECT) return this.fail(client, SOCKS5_REPLY.commandNotSupported);

    const rep = this.admit(host, atyp === ATYP_DOMAIN);
    if (rep !== undefined) return this.fail(client, rep);
    const early = r.detach();
    let up: Duplex;
    try {
      up = await this.connect(host, port);
    } catch (err) {
      const code = replyFor(err);
      if (code === SOCKS5_REPLY.hostUnreachable) this.stats.unreachable++;
      else this.stats.failed++;
      this.opts.logger?.debug(`socks5: CONNECT ${host}:${port}: ${(err as Error).message}`);
      return this.fail(client, code);
    }
    if (client.destroyed) {
      up.destroy();
      return;
    }
    client.setTimeout(0);
    this.track(up);
    const s = up as Duplex & { localAddress?: string; localPort?: number };
    client.write(replyMessage(SOCKS5_REPLY.succeeded, { address: s.localAddress, port: s.localPort }));
    if (early.length > 0) up.write(early);
    splice(client, up);
  }

  /** The refusal for a destination, or undefined to connect. */
  private admit(host: string, isName: boolean): number | undefined {
    const where = this.opts.classify(host);
    if (where === 'peer' || (where === 'other' && this.opts.direct)) return undefined;
    // A bare label could only have been a MagicDNS short name, and no node has it.
    if (where === 'tailnet-unknown' || (isName && !host.replace(/\.$/, '').includes('.'))) {
      this.stats.unreachable++;
      return SOCKS5_REPLY.hostUnreachable;
    }
    this.stats.notAllowed++;
    return SOCKS5_REPLY.notAllowed;
  }

  private connect(host: string, port: number): Promise<Duplex> {
    if (this.opts.classify(host) === 'peer') {
      this.stats.tailnet++;
      return this.opts.dial(host, port);
    }
    this.stats.direct++;
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, allowHalfOpen: true }, () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  }

  /** §6: a failure reply, then the server closes the connection. */
  private fail(client: net.Socket, rep: number): void {
    client.end(replyMessage(rep));
  }
}
