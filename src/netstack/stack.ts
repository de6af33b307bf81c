import { addressAt, type Cidr, formatIp, type IpFamily, parseCidr, parseIp, unmapIPv4 } from './address.js';
import { completeChecksum } from './checksum.js';
import { buildEchoReply, Pinger, type PingOptions, type PingResult } from './echo.js';
import { NetstackError } from './errors.js';
import { type IcmpMessage, Icmpv4Type, Icmpv6Type, parseIcmpPacket } from './icmp.js';
import { buildPortUnreachable, type IcmpErrorInfo, parseUnreachable } from './icmp-error.js';
import { IPV4_HEADER_LENGTH, parseIPv4Packet, writeIPv4Header } from './ipv4.js';
import { IPV6_HEADER_LENGTH, parseIPv6Packet, writeIPv6Header } from './ipv6.js';
import type { PacketLink } from './link.js';
import { DEFAULT_TTL, type IpPacket, IpProtocol } from './packet.js';

/** Receives every packet for one IP protocol number that is addressed to the stack. */
export type ProtocolHandler = (pkt: IpPacket) => void;

/** Receives what an ICMP Destination Unreachable says about a packet of one protocol we sent. */
export type IcmpErrorHandler = (info: IcmpErrorInfo) => void;

/**
 * Prefixes a router takes packets for although they are not its own addresses (a subnet
 * router's advertised routes, as gVisor's promiscuous NIC does for tailscaled's netstack):
 * TCP and UDP to them reach the protocols' forwarders, and an echo request to one is handed to
 * `echo`, which answers it (by calling `reply`) only if the destination answers the host.
 */
export interface RoutedPrefixes {
  /** Whether the 4- or 16-byte address at `buf[offset]` is routed by this stack. */
  contains(buf: Uint8Array, offset: number, length: number): boolean;
  /** An echo request to routed `dst`; `reply()` sends our echo reply in its name. */
  echo(dst: string, reply: () => void): void;
}

/** ICMP errors a stack sends per second at most (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)). */
const ICMP_ERROR_RATE = 200;

/** Options for {@link Stack}. */
export interface StackOptions {
  /** Local addresses, IPv4 or IPv6, each optionally with a prefix (`100.64.0.1/32`, `fd7a::1/48`). */
  addresses: string[];
  /** TTL / Hop Limit for packets this stack originates; default 64. */
  ttl?: number;
}

/** Options for {@link Stack.sendIp} and {@link Stack.sendPrepared}. */
export interface SendOptions {
  /** Source address (4 or 16 bytes); default: the first local address of the destination's family. */
  src?: Uint8Array;
  /** TTL / Hop Limit; default the stack's. */
  ttl?: number;
  /**
   * Transmit checksum offload, only where {@link Stack.txChecksumOffload}: the upper-layer
   * checksum at packet offset `csumField` holds the pseudo-header sum, and the link (or the
   * stack, for a packet looped back) completes it over the bytes from `csumStart` to the end.
   */
  csumStart?: number;
  csumField?: number;
}

/**
 * Packet counters. Each received packet lands in exactly one of `delivered`, `malformed`,
 * `badChecksum`, `unsupported`, `badSource`, `notForUs`, `fragmentsDropped` and
 * `unknownProtocol`; the ICMP counters then break `delivered` ICMP down further.
 */
export interface StackStats {
  received: number;
  delivered: number;
  malformed: number;
  badChecksum: number;
  unsupported: number;
  badSource: number;
  notForUs: number;
  fragmentsDropped: number;
  unknownProtocol: number;
  echoRequestsAnswered: number;
  echoRepliesMatched: number;
  echoRepliesUnmatched: number;
  icmpOther: number;
  sent: number;
  /** Replies not sent because they would exceed the link MTU. */
  tooBig: number;
  /** TCP/UDP packets to one of our own addresses, delivered back to this stack instead of the link. */
  loopback: number;
}

/** Parses an IPv4 or IPv6 packet, chosen by the version nibble. */
export function parseIpPacket(buf: Uint8Array, offset = 0, length = buf.length - offset): IpPacket {
  if (offset < 0 || length <= 0 || offset + length > buf.length) {
    throw new NetstackError('MALFORMED_PACKET', 'IP: empty packet or range outside the buffer');
  }
  const version = buf[offset]! >>> 4;
  if (version === 4) return parseIPv4Packet(buf, offset, length);
  if (version === 6) return parseIPv6Packet(buf, offset, length);
  throw new NetstackError('MALFORMED_PACKET', `IP: version ${version}`);
}

/**
 * A host's IP layer over one {@link PacketLink}: it accepts packets addressed to its own
 * addresses, answers ICMP and ICMPv6 echo, and hands other protocols to registered handlers.
 */
export class Stack {
  /** The configured local addresses, in the order given. */
  readonly addresses: readonly Cidr[];
  private readonly v4: Uint8Array[] = [];
  private readonly v6: Uint8Array[] = [];
  private readonly ttl: number;
  /** Indexed by protocol number; ICMP and ICMPv6 are handled by the stack itself. */
  private readonly handlers: (ProtocolHandler | undefined)[] = [];
  private readonly errorHandlers: (IcmpErrorHandler | undefined)[] = [];
  private readonly burstHooks: Array<() => void> = [];
  private routed: RoutedPrefixes | undefined;
  private errorWindow = 0;
  private errorsInWindow = 0;
  private readonly pinger = new Pinger((packet, dst, protocol, src) =>
    this.sendPrepared(packet, dst, protocol, { src }),
  );
  private closed = false;
  private readonly counters: StackStats = {
    received: 0,
    delivered: 0,
    malformed: 0,
    badChecksum: 0,
    unsupported: 0,
    badSource: 0,
    notForUs: 0,
    fragmentsDropped: 0,
    unknownProtocol: 0,
    echoRequestsAnswered: 0,
    echoRepliesMatched: 0,
    echoRepliesUnmatched: 0,
    icmpOther: 0,
    sent: 0,
    tooBig: 0,
    loopback: 0,
  };

  constructor(
    private readonly link: PacketLink,
    options: StackOptions,
  ) {
    this.addresses = options.addresses.map((a): Cidr => {
      const c = parseCidr(a);
      // A mapped address never appears in an IPv6 header (RFC 4291 §2.5.5.2): it means IPv4.
      const address = unmapIPv4(c.address);
      return address.length === 4 && c.family === 6
        ? { family: 4, address, prefix: Math.max(0, c.prefix - 96) }
        : c;
    });
    for (const c of this.addresses) (c.family === 4 ? this.v4 : this.v6).push(c.address);
    this.ttl = options.ttl ?? DEFAULT_TTL;
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > 255) {
      throw new NetstackError('INVALID_ARGUMENT', `ttl ${this.ttl}`);
    }
    link.onPacket((ip, parsed, linkSum) => this.receive(ip, parsed, linkSum));
    link.onBurstEnd?.(() => this.burstEnded());
  }

  /** Whether the link completes transport checksums (see {@link SendOptions.csumStart}). */
  get txChecksumOffload(): boolean {
    return this.link.txChecksumOffload === true;
  }

  /**
   * Runs `fn` as one burst: what it sends reaches the link as one vector (the WireGuard device
   * seals it with one call), as a NIC's driver is handed a batch of packets. Bursts nest.
   */
  burst<T>(fn: () => T): T {
    this.link.beginBurst?.();
    try {
      return fn();
    } finally {
      this.link.endBurst?.();
    }
  }

  /**
   * Calls `hook` after each burst of packets the link delivers, inside a burst of sends: a
   * protocol answers everything that arrived at once (TCP: one ACK decision per burst).
   */
  onBurstEnd(hook: () => void): void {
    this.burstHooks.push(hook);
  }

  /**
   * Takes packets for routed prefixes too (see {@link RoutedPrefixes}), or stops with
   * undefined. Our own addresses always win over a routed prefix that contains them.
   */
  setRouted(routed: RoutedPrefixes | undefined): void {
    this.routed = routed;
  }

  /** Whether the packet's destination is one of this stack's own addresses (not a routed one). */
  isOwnDestination(pkt: IpPacket): boolean {
    const list = pkt.version === 4 ? this.v4 : this.v6;
    for (const a of list) if (addressAt(pkt.buf, pkt.dstOffset, a)) return true;
    return false;
  }

  /** Live counters (see {@link StackStats}). */
  get stats(): Readonly<StackStats> {
    return this.counters;
  }

  /** The link's MTU: the largest IP packet this stack can send. */
  get mtu(): number {
    return this.link.mtu;
  }

  /** The largest IP packet this stack can send to `dst` (4 or 16 bytes): the link's per-destination MTU. */
  mtuTo(dst: Uint8Array): number {
    return this.link.mtuTo ? Math.min(this.link.mtu, this.link.mtuTo(dst)) : this.link.mtu;
  }

  /** Changes whenever {@link mtuTo} may answer differently (the link's path MTUs changed). */
  get mtuEpoch(): number {
    return this.link.mtuEpoch ?? 0;
  }

  /** A copy of the first local address of a family, or undefined. */
  localAddress(family: IpFamily): Uint8Array | undefined {
    return (family === 4 ? this.v4 : this.v6)[0]?.slice();
  }

  /**
   * Routes every packet for `protocol` (e.g. 6 for TCP, 17 for UDP) to `handler`, IPv4 and IPv6
   * alike. The packet's bytes belong to the handler only until it returns; copy what it keeps.
   */
  registerProtocol(protocol: number, handler: ProtocolHandler): void {
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) {
      throw new NetstackError('INVALID_ARGUMENT', `protocol number ${protocol}`);
    }
    if (protocol === IpProtocol.ICMP || protocol === IpProtocol.ICMPV6 || this.handlers[protocol]) {
      throw new NetstackError('IN_USE', `protocol ${protocol} already has a handler`);
    }
    this.handlers[protocol] = handler;
  }

  /** Removes a handler added by {@link registerProtocol}; ICMP and ICMPv6 stay with the stack. */
  unregisterProtocol(protocol: number): void {
    if (protocol !== IpProtocol.ICMP && protocol !== IpProtocol.ICMPV6) this.handlers[protocol] = undefined;
    this.errorHandlers[protocol] = undefined;
  }

  /** Routes ICMP Destination Unreachable errors quoting a packet of `protocol` to `handler`. */
  onIcmpError(protocol: number, handler: IcmpErrorHandler): void {
    this.errorHandlers[protocol] = handler;
  }

  /**
   * Tells the transport protocol of a packet we sent that its destination is unreachable, as an
   * ICMP Destination Unreachable quoting that packet would (a TCP connection still opening then
   * fails at once). For links that learn of it by other means, such as a tunnel's own signalling.
   */
  reportUnreachable(info: IcmpErrorInfo): void {
    if (!this.closed) this.errorHandlers[info.protocol]?.(info);
  }

  /**
   * Answers `pkt` (received for us) with an ICMP Port Unreachable (RFC 1122 §4.1.3.1), rate
   * limited. Returns whether one was sent.
   */
  sendPortUnreachable(pkt: IpPacket): boolean {
    if (this.closed) return false;
    const now = performance.now();
    if (now - this.errorWindow >= 1000) {
      this.errorWindow = now;
      this.errorsInWindow = 0;
    }
    if (this.errorsInWindow >= ICMP_ERROR_RATE) return false;
    this.errorsInWindow++;
    const reply = buildPortUnreachable(pkt);
    const to = pkt.buf.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
    const from = pkt.buf.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
    this.sendPrepared(reply, to, pkt.version === 4 ? IpProtocol.ICMP : IpProtocol.ICMPV6, { src: from });
    return true;
  }

  /** Sends `payload` to `dst` (4 or 16 bytes) in a new IP packet of `protocol`. */
  sendIp(dst: Uint8Array, protocol: number, payload: Uint8Array, options?: SendOptions): void {
    const packet = new Uint8Array(headerLengthFor(dst) + payload.length);
    packet.set(payload, packet.length - payload.length);
    this.sendPrepared(packet, dst, protocol, options);
  }

  /**
   * Sends a packet whose payload the caller already wrote after room for the IP header (20 bytes
   * for an IPv4 `dst`, 40 for IPv6): the stack fills in the header in place, with no copy.
   * For a TCP/UDP checksum, pass `options.src` so the pseudo-header matches.
   */
  sendPrepared(packet: Uint8Array, dst: Uint8Array, protocol: number, options?: SendOptions): void {
    if (this.closed) throw new NetstackError('CLOSED', 'stack is closed');
    const headerLength = headerLengthFor(dst);
    const src = options?.src ?? (dst.length === 4 ? this.v4[0] : this.v6[0]);
    if (!src) throw new NetstackError('NO_ROUTE', `no local IPv${dst.length === 4 ? 4 : 6} address`);
    if (src.length !== dst.length) {
      throw new NetstackError('BAD_ADDRESS', 'source and destination families differ');
    }
    if (packet.length < headerLength) {
      throw new NetstackError('INVALID_ARGUMENT', 'no room for the IP header');
    }
    if (packet.length > this.link.mtu) {
      throw new NetstackError('TOO_BIG', `${packet.length}-byte packet exceeds MTU ${this.link.mtu}`);
    }
    const payloadLength = packet.length - headerLength;
    const ttl = options?.ttl ?? this.ttl;
    const csumStart = options?.csumStart ?? -1;
    if (headerLength === IPV4_HEADER_LENGTH) {
      writeIPv4Header(packet, 0, { src, dst, protocol, payloadLength, ttl });
    } else {
      writeIPv6Header(packet, 0, { src, dst, nextHeader: protocol, payloadLength, hopLimit: ttl });
    }
    this.counters.sent++;
    if ((protocol === IpProtocol.TCP || protocol === IpProtocol.UDP) && this.isLocal(dst)) {
      // TCP or UDP to our own address: loop back, as a host's lo does, on a later turn so no
      // handler re-enters. (ICMP keeps going to the link: echo replies answer what came from it.)
      this.counters.loopback++;
      // A link copies what it keeps; so does this loopback, which delivers on a later turn.
      const copy = packet.slice();
      if (csumStart >= 0) completeChecksum(copy, csumStart, options!.csumField!);
      queueMicrotask(() => {
        if (!this.closed) this.receive(copy);
      });
      return;
    }
    if (csumStart >= 0) this.link.writePacket(packet, csumStart, options!.csumField);
    else this.link.writePacket(packet);
  }

  /** Whether `address` (4 or 16 bytes) is one of this stack's own addresses. */
  private isLocal(address: Uint8Array): boolean {
    for (const a of address.length === 4 ? this.v4 : this.v6) if (addressAt(address, 0, a)) return true;
    return false;
  }

  /**
   * Sends one ICMP or ICMPv6 echo request to `dst` and resolves with the matching reply
   * (same identifier, sequence, source and data). Rejects with a NetstackError: NO_ROUTE,
   * TOO_BIG, IN_USE (sequence already in flight), TIMEOUT or CLOSED.
   */
  async ping(dst: string, options: PingOptions = {}): Promise<PingResult> {
    if (this.closed) throw new NetstackError('CLOSED', 'stack is closed');
    const to = unmapIPv4(parseIp(dst));
    const family = to.length === 4 ? 4 : 6;
    const src = family === 4 ? this.v4[0] : this.v6[0];
    if (!src) throw new NetstackError('NO_ROUTE', `no local IPv${family} address to ping ${dst} from`);
    return this.pinger.ping(src, to, dst, options, this.link.mtu);
  }

  /** Detaches from the link, rejects pending pings with CLOSED and clears their timers. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.link.onPacket(() => {});
    this.handlers.length = 0;
    this.burstHooks.length = 0;
    this.pinger.close();
  }

  /** The link finished delivering a burst: let each protocol answer it. */
  private burstEnded(): void {
    if (this.closed) return;
    for (const hook of this.burstHooks) hook();
  }

  /**
   * Link → stack: one whole IP packet. Never throws for bad input; it is counted instead.
   * `parsed`, when the link gives it, is `parseIpPacket(buf)` done already (by the filter);
   * `linkSum` the link's sum of all of `buf`.
   */
  private receive(buf: Uint8Array, parsed?: IpPacket, linkSum?: number): void {
    const c = this.counters;
    c.received++;
    let pkt: IpPacket;
    if (parsed !== undefined && parsed.buf === buf && parsed.start === 0) {
      pkt = parsed;
    } else {
      try {
        pkt = parseIpPacket(buf);
      } catch (err) {
        this.countDrop(err);
        return;
      }
    }
    // The link summed all of buf: that is the packet's sum when the packet is all of buf.
    if (linkSum !== undefined && linkSum >= 0 && pkt.start === 0 && pkt.end === buf.length)
      pkt.linkSum = linkSum;
    const local = this.localMatch(pkt) ?? this.routedMatch(pkt);
    if (!local) {
      c.notForUs++;
    } else if (!validSource(pkt)) {
      c.badSource++;
    } else if (pkt.fragment) {
      c.fragmentsDropped++;
    } else if (pkt.protocol === (pkt.version === 4 ? IpProtocol.ICMP : IpProtocol.ICMPV6)) {
      this.receiveIcmp(pkt, local);
    } else {
      const handler = this.handlers[pkt.protocol];
      if (!handler) {
        c.unknownProtocol++;
        return;
      }
      c.delivered++;
      handler(pkt);
    }
  }

  private receiveIcmp(pkt: IpPacket, local: Uint8Array): void {
    let msg: IcmpMessage;
    try {
      msg = parseIcmpPacket(pkt);
    } catch (err) {
      this.countDrop(err);
      return;
    }
    const c = this.counters;
    c.delivered++;
    const v4 = pkt.version === 4;
    if (msg.type === (v4 ? Icmpv4Type.ECHO_REQUEST : Icmpv6Type.ECHO_REQUEST)) {
      const reply = buildEchoReply(pkt, msg, local);
      if (reply.length > this.link.mtu) {
        c.tooBig++;
        return;
      }
      const remote = pkt.buf.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
      const send = () => {
        if (this.closed) return;
        this.sendPrepared(reply, remote, pkt.protocol, { src: local });
        c.echoRequestsAnswered++;
      };
      // A routed destination answers for itself: the router replies only once it has
      // (netstack.go injectInbound → userPing).
      if (this.routed && !this.isOwnDestination(pkt)) this.routed.echo(formatIp(local), send);
      else send();
    } else if (msg.type === (v4 ? Icmpv4Type.ECHO_REPLY : Icmpv6Type.ECHO_REPLY)) {
      if (this.pinger.onReply(pkt, msg)) c.echoRepliesMatched++;
      else c.echoRepliesUnmatched++;
    } else {
      c.icmpOther++;
      const info = parseUnreachable(pkt, msg);
      if (info) this.errorHandlers[info.protocol]?.(info);
    }
  }

  /** The local address a packet is sent to, or undefined when it is not for this stack. */
  private localMatch(pkt: IpPacket): Uint8Array | undefined {
    const list = pkt.version === 4 ? this.v4 : this.v6;
    for (const a of list) if (addressAt(pkt.buf, pkt.dstOffset, a)) return a;
    return undefined;
  }

  /** A copy of the destination when a routed prefix holds it (only for a router), else undefined. */
  private routedMatch(pkt: IpPacket): Uint8Array | undefined {
    const r = this.routed;
    if (!r?.contains(pkt.buf, pkt.dstOffset, pkt.addressLength)) return undefined;
    return pkt.buf.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
  }

  /** Counts a parse failure by its code; anything that is not a NetstackError is a bug and propagates. */
  private countDrop(err: unknown): void {
    if (!(err instanceof NetstackError)) throw err;
    const c = this.counters;
    switch (err.code) {
      case 'BAD_CHECKSUM':
        c.badChecksum++;
        return;
      case 'UNSUPPORTED':
        c.unsupported++;
        return;
      case 'MALFORMED_PACKET':
        c.malformed++;
        return;
      default:
        throw err;
    }
  }
}

function headerLengthFor(dst: Uint8Array): number {
  if (dst.length === 4) return IPV4_HEADER_LENGTH;
  if (dst.length === 16) return IPV6_HEADER_LENGTH;
  throw new NetstackError('BAD_ADDRESS', `destination of ${dst.length} bytes`);
}

/**
 * Whether the source can be a single host: not unspecified, multicast, or IPv4 limited
 * broadcast/reserved (RFC 1122 §3.2.1.3, RFC 4291 §2.7). Such packets cannot be answered.
 */
function validSource(pkt: IpPacket): boolean {
  const { buf, srcOffset, addressLength } = pkt;
  if (addressLength === 4 && buf[srcOffset]! >= 224) return false;
  if (addressLength === 16 && buf[srcOffset] === 0xff) return false;
  for (let i = 0; i < addressLength; i++) if (buf[srcOffset + i] !== 0) return true;
  return false;
}
