/**
 * UDP (RFC 768) over the userspace stack, with a node:dgram-like socket: bind, send, 'message',
 * connect, close; Port Unreachable for datagrams to unbound ports and ECONNREFUSED on a
 * connected socket when the peer answers with one (as Linux reports it, RFC 1122 §4.1.3.3).
 */
import { EventEmitter } from 'node:events';
import { addressAt, formatIp, parseIp, unmapIPv4 } from './address.js';
import { finishChecksum, pseudoHeaderSum, sumBytes } from './checksum.js';
import { NetstackError } from './errors.js';
import type { IcmpErrorInfo } from './icmp-error.js';
import { type IpPacket, IpProtocol } from './packet.js';
import type { Stack } from './stack.js';
import { SocketError } from './tcp/errors.js';

const UDP_HEADER = 8;

/** Sender information for a received datagram, as node:dgram's `rinfo`. */
export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

/** Counters of a {@link UdpEndpoint}. */
export interface UdpStats {
  received: number;
  delivered: number;
  badChecksum: number;
  malformed: number;
  noPort: number;
  sent: number;
}

/**
 * A datagram to a routed address (Stack.setRouted), for a router to carry on: the client, the
 * destination it addressed, and the payload (a copy). Answers go back with
 * {@link UdpEndpoint.sendDatagram} from `dst`:`dstPort` to `src`:`srcPort`.
 */
export interface ForwardedDatagram {
  src: Uint8Array;
  srcPort: number;
  dst: Uint8Array;
  dstPort: number;
  data: Uint8Array;
}

/** UDP for one stack: demultiplexes datagrams to bound sockets by local port. */
export class UdpEndpoint {
  readonly stats: UdpStats = { received: 0, delivered: 0, badChecksum: 0, malformed: 0, noPort: 0, sent: 0 };
  private readonly sockets = new Map<number, UdpSocket>();
  private forwarder: ((d: ForwardedDatagram) => void) | undefined;

  constructor(readonly stack: Stack) {
    stack.registerProtocol(IpProtocol.UDP, (pkt) => this.input(pkt));
    stack.onIcmpError(IpProtocol.UDP, (info) => this.icmpError(info));
  }

  /** A new unbound socket, like dgram.createSocket. */
  createSocket(type: 'udp4' | 'udp6' = 'udp4'): UdpSocket {
    return new UdpSocket(this, type);
  }

  /**
   * A router's forwarder: datagrams to routed addresses (not our own) go to it instead of our
   * sockets; undefined stops it (they are then answered Port Unreachable).
   */
  setForwarder(forwarder: ((d: ForwardedDatagram) => void) | undefined): void {
    this.forwarder = forwarder;
  }

  /** Closes every socket and detaches from the stack. */
  close(): void {
    for (const s of [...this.sockets.values()]) s.close();
    this.stack.unregisterProtocol(IpProtocol.UDP);
  }

  /** @internal */
  bindPort(sock: UdpSocket, port: number, address: string): number {
    let p = port;
    if (p === 0) {
      const start = Math.floor(Math.random() * 16384);
      for (let i = 0; i < 16384 && p === 0; i++) {
        const candidate = 49152 + ((start + i) % 16384);
        if (!this.sockets.has(candidate)) p = candidate;
      }
      if (p === 0) throw new SocketError('EADDRINUSE', 'bind', address, port, 'no free port');
    } else if (this.sockets.has(p)) {
      throw new SocketError('EADDRINUSE', 'bind', address, p);
    }
    this.sockets.set(p, sock);
    return p;
  }

  /** @internal */
  unbindPort(port: number, sock: UdpSocket): void {
    if (this.sockets.get(port) === sock) this.sockets.delete(port);
  }

  /** @internal Sends one datagram from `src`:`srcPort`. */
  sendDatagram(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, data: Uint8Array): void {
    const ipLen = dst.length === 4 ? 20 : 40;
    const length = UDP_HEADER + data.length;
    // Every link carries 1,280 bytes (RFC 8200 §5); only larger datagrams ask the per-destination MTU.
    if (ipLen + length > 1280 && ipLen + length > this.stack.mtuTo(dst)) {
      throw new SocketError(
        'EMSGSIZE',
        'send',
        formatIp(dst),
        dstPort,
        `${data.length} bytes exceed the MTU`,
      );
    }
    const packet = new Uint8Array(ipLen + length);
    const o = ipLen;
    packet[o] = srcPort >>> 8;
    packet[o + 1] = srcPort & 0xff;
    packet[o + 2] = dstPort >>> 8;
    packet[o + 3] = dstPort & 0xff;
    packet[o + 4] = length >>> 8;
    packet[o + 5] = length & 0xff;
    packet.set(data, o + UDP_HEADER);
    let sum = IpProtocol.UDP + length;
    for (let i = 0; i < src.length; i += 2)
      sum += ((src[i]! << 8) | src[i + 1]!) + ((dst[i]! << 8) | dst[i + 1]!);
    // RFC 768: a computed zero is sent as all ones, since zero means "no checksum" over IPv4.
    const c = finishChecksum(sumBytes(packet, o, length, sum)) || 0xffff;
    packet[o + 6] = c >>> 8;
    packet[o + 7] = c & 0xff;
    this.stack.sendPrepared(packet, dst, IpProtocol.UDP, { src });
    this.stats.sent++;
  }

  private input(pkt: IpPacket): void {
    const s = this.stats;
    s.received++;
    const b = pkt.buf;
    const o = pkt.payloadOffset;
    if (pkt.payloadLength < UDP_HEADER) {
      s.malformed++;
      return;
    }
    const length = (b[o + 4]! << 8) | b[o + 5]!;
    if (length < UDP_HEADER || length > pkt.payloadLength) {
      s.malformed++;
      return;
    }
    const checksum = (b[o + 6]! << 8) | b[o + 7]!;
    // RFC 768: zero means none over IPv4; RFC 8200 §8.1 makes it mandatory over IPv6.
    if (checksum !== 0 || pkt.version === 6) {
      const pseudo = pseudoHeaderSum(
        b,
        pkt.srcOffset,
        b,
        pkt.dstOffset,
        pkt.addressLength,
        IpProtocol.UDP,
        length,
      );
      if (sumBytes(b, o, length, pseudo) !== 0xffff) {
        s.badChecksum++;
        return;
      }
    }
    const dstPort = (b[o + 2]! << 8) | b[o + 3]!;
    if (this.forwarder && !this.stack.isOwnDestination(pkt)) {
      s.delivered++;
      const at = (off: number) => b.slice(off, off + pkt.addressLength);
      const srcPort = (b[o]! << 8) | b[o + 1]!;
      const data = b.slice(o + UDP_HEADER, o + length);
      this.forwarder({ src: at(pkt.srcOffset), srcPort, dst: at(pkt.dstOffset), dstPort, data });
      return;
    }
    const sock = this.sockets.get(dstPort);
    // A socket bound to "any" address takes our own addresses only, never routed ones.
    if (!sock?.accepts(pkt) || !this.stack.isOwnDestination(pkt)) {
      s.noPort++;
      this.stack.sendPortUnreachable(pkt);
      return;
    }
    s.delivered++;
    sock.deliver(pkt, o, length);
  }

  private icmpError(info: IcmpErrorInfo): void {
    this.sockets.get(info.localPort)?.icmpError(info);
  }
}

/** A UDP socket shaped like node:dgram's Socket. */
export class UdpSocket extends EventEmitter {
  private port = 0;
  private local: Uint8Array | undefined;
  private bound = false;
  private closed = false;
  private peer: { address: Uint8Array; port: number } | undefined;

  /** @internal Use {@link UdpEndpoint.createSocket}. */
  constructor(
    private readonly udp: UdpEndpoint,
    readonly type: 'udp4' | 'udp6',
  ) {
    super();
  }

  /** Binds to `port` (0 = any free) on `address` (default: every local address of the type). */
  bind(port = 0, address?: string | (() => void), cb?: () => void): this {
    const done = typeof address === 'function' ? address : cb;
    const host = typeof address === 'string' ? address : undefined;
    this.bindNow(port, host);
    if (done) this.once('listening', done);
    queueMicrotask(() => this.emit('listening'));
    return this;
  }

  /** Sets a default peer: `send` without an address goes there, and only its datagrams are received. */
  connect(port: number, address: string, cb?: () => void): void {
    if (!this.bound) this.bindNow(0, undefined);
    this.peer = { address: unmapIPv4(parseIp(address)), port };
    if (cb) this.once('connect', cb);
    queueMicrotask(() => this.emit('connect'));
  }

  /** Forgets the default peer. */
  disconnect(): void {
    this.peer = undefined;
  }

  /** The connected peer, as dgram's remoteAddress(). */
  remoteAddress(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    if (!this.peer)
      throw new SocketError('ENETUNREACH', 'getpeername', undefined, undefined, 'not connected');
    return {
      address: formatIp(this.peer.address),
      family: familyOf(this.peer.address),
      port: this.peer.port,
    };
  }

  /**
   * Sends one datagram, like dgram's `send(msg, port, address, cb)`; on a connected socket
   * `send(msg, cb)`. The callback gets an error (EMSGSIZE, …) instead of a throw.
   */
  send(
    msg: Uint8Array | string,
    port?: number | ((err: Error | null) => void),
    address?: string,
    cb?: (err: Error | null) => void,
  ): void {
    const callback = typeof port === 'function' ? port : cb;
    const data = typeof msg === 'string' ? Buffer.from(msg) : msg;
    try {
      if (this.closed) throw new NetstackError('CLOSED', 'socket is closed');
      if (!this.bound) this.bindNow(0, undefined);
      let dst: Uint8Array;
      let dstPort: number;
      if (typeof port === 'number') {
        dst = unmapIPv4(parseIp(address ?? (this.type === 'udp4' ? '127.0.0.1' : '::1')));
        dstPort = port;
      } else if (this.peer) {
        dst = this.peer.address;
        dstPort = this.peer.port;
      } else {
        throw new SocketError('EADDRNOTAVAIL', 'send', undefined, undefined, 'no destination');
      }
      const src = this.local ?? this.udp.stack.localAddress(dst.length === 4 ? 4 : 6);
      if (!src) throw new SocketError('EADDRNOTAVAIL', 'send', formatIp(dst), dstPort, 'no local address');
      this.udp.sendDatagram(src, this.port, dst, dstPort, data);
    } catch (err) {
      if (!callback) throw err;
      queueMicrotask(() => callback(err as Error));
      return;
    }
    if (callback) queueMicrotask(() => callback(null));
  }

  /** The bound address, as dgram's address(). */
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } {
    const a = this.local ? formatIp(this.local) : this.type === 'udp4' ? '0.0.0.0' : '::';
    return { address: a, family: this.type === 'udp4' ? 'IPv4' : 'IPv6', port: this.port };
  }

  /** Unbinds; 'close' follows. */
  close(cb?: () => void): this {
    if (this.closed) return this;
    this.closed = true;
    if (this.bound) this.udp.unbindPort(this.port, this);
    if (cb) this.once('close', cb);
    queueMicrotask(() => this.emit('close'));
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** @internal Whether a datagram passes this socket's address and connected-peer filters. */
  accepts(pkt: IpPacket): boolean {
    if (this.local && !addressAt(pkt.buf, pkt.dstOffset, this.local)) return false;
    const p = this.peer;
    if (!p) return true;
    const srcPort = (pkt.buf[pkt.payloadOffset]! << 8) | pkt.buf[pkt.payloadOffset + 1]!;
    return (
      srcPort === p.port &&
      p.address.length === pkt.addressLength &&
      addressAt(pkt.buf, pkt.srcOffset, p.address)
    );
  }

  /** @internal */
  deliver(pkt: IpPacket, offset: number, length: number): void {
    const msg = Buffer.from(pkt.buf.subarray(offset + UDP_HEADER, offset + length));
    const rinfo: RemoteInfo = {
      address: formatIp(pkt.buf.subarray(pkt.srcOffset, pkt.srcOffset + pkt.addressLength)),
      family: pkt.version === 4 ? 'IPv4' : 'IPv6',
      port: (pkt.buf[offset]! << 8) | pkt.buf[offset + 1]!,
      size: msg.length,
    };
    this.emit('message', msg, rinfo);
  }

  /** @internal Linux reports ICMP errors only on connected sockets (RFC 1122 §4.1.3.3 leaves it open). */
  icmpError(info: IcmpErrorInfo): void {
    const p = this.peer;
    if (!p || info.remotePort !== p.port || !addressAt(info.remote, 0, p.address)) return;
    const code = info.reason === 'port' ? 'ECONNREFUSED' : 'EHOSTUNREACH';
    this.emit('error', new SocketError(code, 'recv', formatIp(p.address), p.port));
  }

  private bindNow(port: number, host: string | undefined): void {
    if (this.bound) throw new SocketError('EADDRINUSE', 'bind', host, port, 'socket is already bound');
    const any = host === undefined || host === '0.0.0.0' || host === '::';
    this.local = any ? undefined : unmapIPv4(parseIp(host));
    this.port = this.udp.bindPort(this, port, host ?? '0.0.0.0');
    this.bound = true;
  }
}

function familyOf(a: Uint8Array): 'IPv4' | 'IPv6' {
  return a.length === 4 ? 'IPv4' : 'IPv6';
}
