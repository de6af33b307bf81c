/**
 * A {@link Bind} over node:dgram: one IPv4 and one IPv6 socket on the same port, as
 * wireguard-go's `conn.StdNetBind` listens on both families. The device sees only endpoints
 * and datagrams; roaming (WireGuard paper §2.1) works because every datagram carries the
 * endpoint it came from and the device updates its peer's endpoint from that.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { canonicalIPv6 } from '../platform/ipv6.js';
import type { Bind, Endpoint } from './bind.js';
import { WireGuardError } from './errors.js';

/** Socket buffer size to ask for: bursts of full-size datagrams must not overflow the kernel queue. */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Attempts to find a port free in both families when the OS picks the IPv4 one (wireguard-go tries 100). */
const PORT_ATTEMPTS = 10;
/**
 * Bound on interned endpoints. Source addresses are chosen by whoever sends to us, so the
 * table must not grow without limit; dropping it only costs re-creating endpoint objects.
 */
const MAX_INTERNED = 8192;
/**
 * One datagram in this many gets a completion callback, to observe send errors: a callback on
 * every send costs a nextTick each (~0.3 µs, a tenth of the send), and a failing path fails
 * every datagram, so a sample sees it. A power of two.
 */
const ERROR_SAMPLE = 64;

/** A UDP address and port. Instances are interned, so equal endpoints are usually the same object. */
export class UdpEndpoint implements Endpoint {
  /** `udp4:1.2.3.4:51820` or `udp6:[::1]:51820`. */
  readonly key: string;
  private readonly text: string;

  private constructor(
    readonly address: string,
    readonly port: number,
    readonly family: 4 | 6,
  ) {
    this.text = family === 4 ? `${address}:${port}` : `[${address}]:${port}`;
    this.key = `udp${family}:${this.text}`;
  }

  /** `1.2.3.4:51820` or `[::1]:51820`. */
  toString(): string {
    return this.text;
  }

  /** The endpoint for an address that is already canonical (as node:dgram reports senders). */
  static intern(address: string, port: number, family: 4 | 6): UdpEndpoint {
    // A burst comes from one sender: most calls ask for the endpoint the previous one got.
    if (last !== undefined && port === last.port && address === last.address) return last;
    last = UdpEndpoint.lookup(address, port, family);
    return last;
  }

  private static lookup(address: string, port: number, family: 4 | 6): UdpEndpoint {
    let byPort = interned.get(address);
    if (byPort === undefined) {
      if (internedCount >= MAX_INTERNED) {
        interned.clear();
        internedCount = 0;
      }
      byPort = new Map();
      interned.set(address, byPort);
    }
    let ep = byPort.get(port);
    if (ep === undefined) {
      ep = new UdpEndpoint(address, port, family);
      byPort.set(port, ep);
      internedCount++;
    }
    return ep;
  }

  /** The endpoint for an IP literal in any spelling, canonicalised as the OS prints it. */
  static from(address: string, port: number): UdpEndpoint {
    const family = net.isIP(address);
    if (family === 0) throw new WireGuardError('BAD_CONFIG', 'endpoint address is not an IP literal');
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new WireGuardError('BAD_CONFIG', 'endpoint port must be 1-65535');
    }
    if (family === 4) return UdpEndpoint.intern(address, port, 4);
    // Canonical as received datagrams' addresses are, so a configured endpoint and a reply
    // from it get the same key.
    const at = address.indexOf('%');
    const zone = at < 0 ? '' : address.slice(at);
    return UdpEndpoint.intern(canonicalIPv6(at < 0 ? address : address.slice(0, at)) + zone, port, 6);
  }
}

const interned = new Map<string, Map<number, UdpEndpoint>>();
let internedCount = 0;
let last: UdpEndpoint | undefined;

/** Parse `1.2.3.4:51820` or `[fd00::1]:51820` (IP literals only; see {@link resolveEndpoint}). */
export function parseEndpoint(text: string): UdpEndpoint {
  const m = /^(?:\[([^\]]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
  if (m === null) throw new WireGuardError('BAD_CONFIG', 'endpoint must be ipv4:port or [ipv6]:port');
  const address = m[1] ?? m[2]!;
  if (m[1] !== undefined && !net.isIPv6(address)) {
    throw new WireGuardError('BAD_CONFIG', 'bracketed endpoint address is not IPv6');
  }
  return UdpEndpoint.from(address, Number(m[3]));
}

/**
 * Resolve a config file's `host:port` endpoint with the system resolver (node:dns lookup,
 * getaddrinfo, as wg(8) does), taking the first address of `family` (0: either).
 */
export async function resolveEndpoint(
  host: string,
  port: number,
  family: 0 | 4 | 6 = 0,
): Promise<UdpEndpoint> {
  if (net.isIP(host) !== 0) return UdpEndpoint.from(host, port);
  const found = await lookup(host, { family });
  return UdpEndpoint.from(found.address, port);
}

/** Where to listen. Without `host`, both `0.0.0.0` and `::` (IPv6-only) on one port. */
export interface UdpBindOptions {
  /** 0 or absent: the OS picks a port (the IPv4 one, reused for IPv6). */
  port?: number;
  /** One local address; listens in that address's family only. */
  host?: string;
}

/** Counters for problems that are dropped rather than thrown. */
export interface UdpBindStats {
  /**
   * Datagrams not sent: no socket for the family or a foreign endpoint, and OS errors seen on
   * the sample of sends that are watched (one in 64, the first included).
   */
  sendErrors: number;
  /** `'error'` events from a socket after it was bound. */
  socketErrors: number;
  /** Socket buffer sizes the OS refused. */
  bufferSizeErrors: number;
}

type Handler = (from: Endpoint, datagram: Uint8Array) => void;

/**
 * node:dgram resolves every destination before sending, through dns.lookup by default: for an
 * IP literal that is a regular-expression test and a nextTick per datagram. Endpoints here are
 * always canonical literals ({@link UdpEndpoint}), so the "lookup" answers at once.
 */
function literalLookup(
  address: string,
  _family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** A {@link Bind} on real UDP sockets. Create with {@link UdpBind.open}. */
export class UdpBind implements Bind {
  readonly stats: UdpBindStats = { sendErrors: 0, socketErrors: 0, bufferSizeErrors: 0 };
  /** Why there is no IPv6 socket, when the system refused one (an error code such as `EAFNOSUPPORT`). */
  ipv6Unavailable: string | undefined;
  /** The most recent send or socket error, for diagnostics. */
  lastError: Error | undefined;
  private sock4: dgram.Socket | undefined;
  private sock6: dgram.Socket | undefined;
  private boundPort = 0;
  private closed = false;
  private handler: Handler = () => {};
  private sends = 0;
  /** One callback for the watched sends: a closure per datagram would be garbage on the hot path. */
  private readonly afterSend = (err: Error | null): void => {
    if (err !== null) this.noteSendError(err);
  };

  private constructor(private readonly host: string | undefined) {}

  /** Open the sockets. Rejects if the port is taken or `host` is not a local IP literal. */
  static async open(options: UdpBindOptions = {}): Promise<UdpBind> {
    if (options.host !== undefined && net.isIP(options.host) === 0) {
      throw new WireGuardError('BAD_CONFIG', 'UdpBind host must be an IP literal');
    }
    const bind = new UdpBind(options.host);
    await bind.listen(options.port ?? 0);
    return bind;
  }

  /** The local port both sockets share. */
  get port(): number {
    return this.boundPort;
  }

  /** Which families have a socket. */
  get families(): Array<4 | 6> {
    const out: Array<4 | 6> = [];
    if (this.sock4 !== undefined) out.push(4);
    if (this.sock6 !== undefined) out.push(6);
    return out;
  }

  /**
   * Send one datagram. Never throws: failures are counted in `stats.sendErrors` (OS errors on a
   * sample of sends). The buffer must stay unchanged until the OS has taken it (after the
   * current event-loop turn).
   */
  send(to: Endpoint, datagram: Uint8Array): void {
    if (this.closed) return;
    const sock = to instanceof UdpEndpoint ? (to.family === 4 ? this.sock4 : this.sock6) : undefined;
    if (sock === undefined) {
      this.stats.sendErrors++;
      return;
    }
    const ep = to as UdpEndpoint;
    try {
      const watched = (this.sends++ & (ERROR_SAMPLE - 1)) === 0;
      sock.send(datagram, ep.port, ep.address, watched ? this.afterSend : undefined);
    } catch (err) {
      // node:dgram throws synchronously when a socket is closing (e.g. during rebind).
      this.noteSendError(err);
    }
  }

  /** Register the receive handler; a later call replaces it. */
  onDatagram(handler: Handler): void {
    this.handler = handler;
  }

  /** Parse an IP-literal endpoint (`Bind.parseEndpoint`). */
  parseEndpoint(text: string): UdpEndpoint {
    return parseEndpoint(text);
  }

  /** Resolve a hostname endpoint, preferring a family this bind can send to. */
  resolveEndpoint(host: string, port: number): Promise<UdpEndpoint> {
    const families = this.families;
    return resolveEndpoint(host, port, families.length === 1 ? families[0] : 0);
  }

  /**
   * Close and reopen on `port` (0: any). Peers see us roam; their devices learn the new
   * endpoint from our next authenticated packet (paper §2.1). If the new port cannot be
   * had, this rejects and the bind is left without sockets until a later rebind or close.
   */
  async rebind(port: number): Promise<void> {
    if (this.closed) throw new WireGuardError('CLOSED', 'UdpBind is closed');
    await this.closeSockets();
    await this.listen(port);
  }

  /** Close both sockets; resolves once they are closed and nothing holds the process open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeSockets();
  }

  private async listen(port: number): Promise<void> {
    const family = this.host === undefined ? 0 : net.isIP(this.host);
    this.ipv6Unavailable = undefined;
    for (let attempt = 1; ; attempt++) {
      const v4 = family === 6 ? undefined : await this.openSocket('udp4', this.host ?? '0.0.0.0', port);
      const chosen = v4?.address().port ?? port;
      let v6: dgram.Socket | undefined;
      if (family !== 4) {
        try {
          v6 = await this.openSocket('udp6', this.host ?? '::', chosen);
        } catch (err) {
          const code = errorCode(err);
          const retry = code === 'EADDRINUSE' && port === 0 && v4 !== undefined && attempt < PORT_ATTEMPTS;
          // An IPv4-only host is fine (wireguard-go carries on too); anything else is fatal.
          const noV6 =
            v4 !== undefined &&
            (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL' || code === 'EPROTONOSUPPORT');
          if (retry) {
            await closeSocket(v4);
            continue;
          }
          if (!noV6) {
            if (v4 !== undefined) await closeSocket(v4);
            throw err;
          }
          this.ipv6Unavailable = code;
        }
      }
      this.sock4 = v4;
      this.sock6 = v6;
      this.boundPort = (v4 ?? v6)!.address().port;
      return;
    }
  }

  private async openSocket(type: 'udp4' | 'udp6', address: string, port: number): Promise<dgram.Socket> {
    const sock = dgram.createSocket({ type, ipv6Only: type === 'udp6', lookup: literalLookup });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        sock.close();
        reject(err);
      };
      sock.once('error', onError);
      sock.bind({ port, address, exclusive: true }, () => {
        sock.off('error', onError);
        resolve();
      });
    });
    for (const set of [
      () => sock.setRecvBufferSize(SOCKET_BUFFER_BYTES),
      () => sock.setSendBufferSize(SOCKET_BUFFER_BYTES),
    ]) {
      try {
        set();
      } catch (err) {
        // Linux caps silently at net.core.[rw]mem_max; other systems may refuse outright.
        this.stats.bufferSizeErrors++;
        this.lastError = err instanceof Error ? err : new Error(String(err));
      }
    }
    const family = type === 'udp4' ? 4 : 6;
    sock.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (this.closed) return;
      // A plain Uint8Array view, not the Buffer: Buffer#slice shares memory where
      // Uint8Array#slice copies, and device code is written and tested against the latter.
      const datagram = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      this.handler(UdpEndpoint.intern(rinfo.address, rinfo.port, family), datagram);
    });
    sock.on('error', (err: Error) => {
      this.stats.socketErrors++;
      this.lastError = err;
    });
    return sock;
  }

  private async closeSockets(): Promise<void> {
    const socks = [this.sock4, this.sock6];
    this.sock4 = undefined;
    this.sock6 = undefined;
    await Promise.all(socks.map((s) => (s === undefined ? undefined : closeSocket(s))));
  }

  private noteSendError(err: unknown): void {
    this.stats.sendErrors++;
    this.lastError = err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Close a socket and wait until libuv has released its handle too. `'close'` fires on the
 * next tick, but the handle goes only in a loop iteration's close phase, which comes after
 * its check phase: the second setImmediate is sure to run after one.
 */
async function closeSocket(sock: dgram.Socket): Promise<void> {
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}
