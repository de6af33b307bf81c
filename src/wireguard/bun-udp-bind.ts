/**
 * A {@link Bind} over Bun's own UDP socket (`Bun.udpSocket`), used instead of node:dgram when the
 * library runs under Bun (issue 21, item 2). Its gain is `sendMany`: a device's burst of sealed
 * messages (wireguard/transport.ts, between {@link Bind.beginBatch} and {@link Bind.endBatch})
 * leaves in one sendmmsg(2) call instead of one system call per datagram, as wireguard-go's
 * `conn.StdNetBind` batches with sendmmsg; Bun also reads with recvmmsg. Behaviour is the
 * node:dgram bind's ({@link UdpBind}): endpoints are the same interned {@link UdpEndpoint}s,
 * transient errors are counted, never thrown, and close releases the socket.
 *
 * One socket serves both families: Bun binds `::` dual-stack (it has no IPV6_V6ONLY option), so
 * IPv4 peers arrive as IPv4-mapped addresses (RFC 4291 §2.5.5.2), which are mapped back here.
 * Bun is not a dependency: the little of its API used here is declared below and found on
 * `globalThis.Bun` at run time.
 */
import net from 'node:net';
import type { Bind, Endpoint } from './bind.js';
import { setBunSocketBuffers } from './bun-socket-buffers.js';
import { WireGuardError } from './errors.js';
import {
  parseEndpoint,
  resolveEndpoint,
  UdpBind,
  type UdpBindOptions,
  type UdpBindStats,
  UdpEndpoint,
} from './udp-bind.js';

/** The part of Bun's `udp.Socket` this bind uses (bun-types' `Bun.udp.Socket<'uint8array'>`). */
interface BunUdpSocket {
  readonly port: number;
  /** The file descriptor (for setsockopt through bun:ffi). */
  readonly fd: number;
  /** False when the kernel queue is full (the datagram was not sent); throws on other errors. */
  send(data: Uint8Array, port: number, address: string): boolean;
  /** `[data, port, address, …]`; returns how many datagrams went out (sendmmsg's answer). */
  sendMany(packets: ReadonlyArray<Uint8Array | number | string>): number;
  close(): void;
}

interface BunUdpSocketOptions {
  hostname: string;
  port: number;
  binaryType: 'uint8array';
  socket: {
    data(socket: BunUdpSocket, data: Uint8Array, port: number, address: string): void;
    drain(socket: BunUdpSocket): void;
    /** Called with the socket as `this` and the error alone (Bun 1.4). */
    error(this: BunUdpSocket, error: Error): void;
  };
}

interface BunGlobal {
  udpSocket(options: BunUdpSocketOptions): Promise<BunUdpSocket>;
}

/** `globalThis.Bun` when it has a UDP socket, else undefined. */
function bunGlobal(): BunGlobal | undefined {
  const bun = (globalThis as { Bun?: Partial<BunGlobal> }).Bun;
  return typeof bun?.udpSocket === 'function' ? (bun as BunGlobal) : undefined;
}

/** Whether this runtime offers Bun's UDP socket (and so {@link BunUdpBind} can open). */
export function hasBunUdp(): boolean {
  return bunGlobal() !== undefined;
}

/** Socket buffer size to ask for, as node:dgram's bind does (wireguard/udp-bind.ts). */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** The IPv4-mapped IPv6 prefix (RFC 4291 §2.5.5.2) a dual-stack socket reports IPv4 peers with. */
const MAPPED_PREFIX = '::ffff:';
/** Datagrams queued in a batch before it is sent anyway (wireguard/vector.ts' VECTOR_CAPACITY). */
const BATCH_MAX = 128;
/**
 * Datagrams kept (copied) while the kernel queue is full, to send on `drain`: libuv queues for
 * node:dgram the same way, and dropping a burst costs the tunnel's TCP a loss episode. Bounded,
 * so a stalled socket cannot hold memory without limit; beyond it datagrams are dropped.
 */
const BACKLOG_MAX = 4096;
/**
 * How long kept datagrams wait for `drain` before being tried again anyway: sendmmsg answering
 * "none sent" is a full queue or an error surfaced there, and only the first brings a `drain`.
 */
const BACKLOG_RETRY_MS = 5;

type Handler = (from: Endpoint, datagram: Uint8Array) => void;
type Packets = Array<Uint8Array | number | string>;

/**
 * A {@link Bind} on one Bun UDP socket. Create with {@link BunUdpBind.open}; {@link openUdpBind}
 * picks it under Bun and {@link UdpBind} elsewhere.
 *
 * @example
 * const bind = await BunUdpBind.open({ port: 0 });
 * bind.onDatagram((from, d) => bind.send(from, d)); // an echo server
 */
export class BunUdpBind implements Bind {
  readonly stats: UdpBindStats = { sendErrors: 0, socketErrors: 0, bufferSizeErrors: 0 };
  /** Why there is no IPv6, when the system refused a dual-stack socket (e.g. `EAFNOSUPPORT`). */
  ipv6Unavailable: string | undefined;
  /** The most recent send or socket error, for diagnostics. */
  lastError: Error | undefined;
  private sock: BunUdpSocket | undefined;
  private family: 0 | 4 | 6 = 0;
  private closed = false;
  private handler: Handler = () => {};
  private batchDepth = 0;
  /** The batch being gathered: `[data, port, address, …]`, reused from batch to batch. */
  private readonly batch: Packets = [];
  /** Copies of datagrams the full kernel queue refused, sent on `drain`. */
  private backlog: Packets = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly retry = (): void => {
    this.retryTimer = undefined;
    this.drain();
  };

  private constructor(
    private readonly bun: BunGlobal,
    private readonly host: string | undefined,
  ) {}

  /** Open the socket. Rejects if not under Bun, if the port is taken or `host` is not an IP literal. */
  static async open(options: UdpBindOptions = {}): Promise<BunUdpBind> {
    const bun = bunGlobal();
    if (bun === undefined) throw new WireGuardError('BAD_CONFIG', 'BunUdpBind needs the Bun runtime');
    if (options.host !== undefined && net.isIP(options.host) === 0) {
      throw new WireGuardError('BAD_CONFIG', 'BunUdpBind host must be an IP literal');
    }
    const bind = new BunUdpBind(bun, options.host);
    await bind.listen(options.port ?? 0);
    return bind;
  }

  /** The local port. */
  get port(): number {
    return this.sock?.port ?? 0;
  }

  /** Which families this bind can send to and receive from. */
  get families(): Array<4 | 6> {
    if (this.sock === undefined) return [];
    return this.family === 0 ? [4, 6] : [this.family];
  }

  /**
   * Send one datagram, or queue it until {@link endBatch} inside a batch. Never throws:
   * failures are counted in `stats.sendErrors`. Inside a batch the buffer must stay unchanged
   * until `endBatch`.
   */
  send(to: Endpoint, datagram: Uint8Array): void {
    if (this.closed) return;
    const sock = this.sock;
    if (sock === undefined || !(to instanceof UdpEndpoint) || !this.reaches(to.family)) {
      this.stats.sendErrors++;
      return;
    }
    if (this.batchDepth > 0) {
      const batch = this.batch;
      batch.push(datagram, to.port, to.address);
      if (batch.length >= BATCH_MAX * 3) this.flush();
      return;
    }
    if (this.backlog.length > 0) {
      // Behind datagrams still waiting for `drain`: keep the order.
      this.keep([datagram, to.port, to.address], 0);
      return;
    }
    let ok: boolean;
    try {
      ok = sock.send(datagram, to.port, to.address);
    } catch {
      // Most likely an earlier datagram's ICMP error, pending on the socket (Bun sets
      // IP_RECVERR), which failed this one unsent: once more, and a second error is its own.
      try {
        ok = sock.send(datagram, to.port, to.address);
      } catch (err) {
        this.noteSendError(err);
        return;
      }
    }
    if (!ok) this.keep([datagram, to.port, to.address], 0);
  }

  /** From now until the matching {@link endBatch}, sends are gathered and leave together. */
  beginBatch(): void {
    this.batchDepth++;
  }

  /** Sends what the batch gathered, in one sendmmsg(2) where the kernel takes it all. */
  endBatch(): void {
    if (this.batchDepth > 0 && --this.batchDepth === 0) this.flush();
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

  /** Close and reopen on `port` (0: any), as {@link UdpBind.rebind}. */
  async rebind(port: number): Promise<void> {
    if (this.closed) throw new WireGuardError('CLOSED', 'BunUdpBind is closed');
    this.closeSocket();
    await this.listen(port);
  }

  /** Close the socket; nothing is delivered afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeSocket();
  }

  private reaches(family: 4 | 6): boolean {
    return this.family === 0 || this.family === family;
  }

  /** Sends the gathered batch; what the kernel refuses for a full queue waits for `drain`. */
  private flush(): void {
    const batch = this.batch;
    if (batch.length === 0) return;
    try {
      if (this.backlog.length > 0) this.keep(batch, 0);
      else this.sendFrom(batch, 0);
    } finally {
      batch.length = 0;
    }
  }

  /**
   * sendMany from `packets[at…]`. sendmmsg stops at the first datagram that fails: a full queue
   * (the rest is kept for `drain`), an earlier datagram's ICMP error pending on the socket
   * (Bun sets IP_RECVERR; the datagram it failed is tried once more) or an error of its own
   * such as EMSGSIZE (that datagram is counted and dropped, the rest tried again).
   */
  private sendFrom(packets: Packets, at: number): void {
    const sock = this.sock;
    let retried = -1;
    while (at < packets.length) {
      if (sock === undefined) {
        this.stats.sendErrors += (packets.length - at) / 3;
        return;
      }
      let sent: number;
      try {
        sent = sock.sendMany(at === 0 ? packets : packets.slice(at));
      } catch (err) {
        if (retried !== at) {
          retried = at;
          continue;
        }
        this.noteSendError(err);
        at += 3;
        continue;
      }
      at += sent * 3;
      if (at < packets.length && sent === 0) {
        // Nothing taken and no error raised: the kernel queue is full.
        this.keep(packets, at);
        return;
      }
    }
  }

  /** Copies `packets[at…]` into the backlog (up to {@link BACKLOG_MAX}), to send on `drain`. */
  private keep(packets: Packets, at: number): void {
    const backlog = this.backlog;
    this.retryTimer ??= setTimeout(this.retry, BACKLOG_RETRY_MS);
    for (let i = at; i < packets.length; i += 3) {
      if (backlog.length >= BACKLOG_MAX * 3) {
        this.stats.sendErrors++;
        continue;
      }
      backlog.push((packets[i] as Uint8Array).slice(), packets[i + 1]!, packets[i + 2]!);
    }
  }

  private drain(): void {
    const backlog = this.backlog;
    if (backlog.length === 0) return;
    this.backlog = [];
    this.sendFrom(backlog, 0);
  }

  private async listen(port: number): Promise<void> {
    this.ipv6Unavailable = undefined;
    if (this.host !== undefined) {
      this.sock = await this.openSocket(this.host, port);
      this.family = net.isIP(this.host) as 4 | 6;
      return;
    }
    try {
      this.sock = await this.openSocket('::', port);
      this.family = 0;
    } catch (err) {
      const code = errorCode(err);
      // An IPv4-only host is fine (wireguard-go carries on too); anything else is fatal.
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EPROTONOSUPPORT') throw err;
      this.sock = await this.openSocket('0.0.0.0', port);
      this.family = 4;
      this.ipv6Unavailable = code;
    }
  }

  private async openSocket(hostname: string, port: number): Promise<BunUdpSocket> {
    const sock = await this.bun.udpSocket({
      hostname,
      port,
      binaryType: 'uint8array',
      socket: {
        data: (sock, datagram, fromPort, address) => {
          if (this.closed || sock !== this.sock) return;
          let ep: UdpEndpoint;
          if (address.startsWith(MAPPED_PREFIX) && address.includes('.', MAPPED_PREFIX.length)) {
            ep = UdpEndpoint.intern(address.slice(MAPPED_PREFIX.length), fromPort, 4);
          } else {
            ep = UdpEndpoint.intern(address, fromPort, address.includes(':') ? 6 : 4);
          }
          this.handler(ep, datagram);
        },
        drain: (sock) => {
          if (sock === this.sock) this.drain();
        },
        error: (err) => {
          // Asynchronous errors, such as an ICMP "port unreachable" read from the error queue.
          this.stats.socketErrors++;
          this.lastError = err;
        },
      },
    });
    for (const err of await setBunSocketBuffers(sock.fd, SOCKET_BUFFER_BYTES)) {
      this.stats.bufferSizeErrors++;
      this.lastError = err;
    }
    return sock;
  }

  private closeSocket(): void {
    const sock = this.sock;
    this.sock = undefined;
    this.batch.length = 0;
    this.backlog = [];
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    sock?.close();
  }

  private noteSendError(err: unknown): void {
    this.stats.sendErrors++;
    this.lastError = err instanceof Error ? err : new Error(String(err));
  }
}

/** The environment variable that picks node:dgram under Bun too (`QS_UDP=dgram`), for comparisons. */
export const UDP_ENV = 'QS_UDP';

/**
 * Opens the UDP bind this runtime does best: {@link BunUdpBind} under Bun (unless `QS_UDP=dgram`),
 * {@link UdpBind} (node:dgram) elsewhere.
 *
 * @example
 * const bind = await openUdpBind({ port: 41641 });
 */
export function openUdpBind(options: UdpBindOptions = {}): Promise<UdpBind | BunUdpBind> {
  if (hasBunUdp() && process.env[UDP_ENV] !== 'dgram') return BunUdpBind.open(options);
  return UdpBind.open(options);
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}
