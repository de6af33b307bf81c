/**
 * The tailnet's packet filter on inbound packets, with Tailscale's semantics
 * (`wgengine/filter/filter.go` runIn4/runIn6, `tailcfg.go` MatchesFromFilterRules):
 * - packets to an address that is not ours are dropped;
 * - TCP without SYN passes (replies to connections we opened; a new inbound connection
 *   cannot start without a SYN), a SYN needs a rule for its protocol, source and port;
 * - UDP passes when it answers a flow we sent (an LRU of outbound flows), or by rule;
 * - ICMP echo replies and errors pass; other ICMP passes if any rule opens any port of the
 *   destination to the source;
 * - TSMP (IP protocol 99, Tailscale's own signalling inside WireGuard) always passes, as
 *   filter.go's "tsmp ok": it is answered or acted on by the node, never by an application;
 * - other protocols pass only by a rule that opens all ports.
 * Denied packets are dropped and counted; the node may answer a denied TCP SYN with a TSMP
 * rejection (tsmp/), never with anything that reaches an application.
 */
import { type Cidr, cidrContains, parseCidr } from '../netstack/address.js';
import { NetstackError } from '../netstack/errors.js';
import type { IpPacket } from '../netstack/packet.js';
import { parseIpPacket } from '../netstack/stack.js';

/** `tailcfg.FilterRule`, the fields the filter uses. */
export interface FilterRule {
  SrcIPs: readonly string[];
  /** Absent in capability-only rules (CapGrant), which open no ports. */
  DstPorts?: ReadonlyArray<{ IP: string; Ports: { First: number; Last: number } }>;
  IPProto?: readonly number[];
}

const TCP = 6;
const UDP = 17;
const ICMP4 = 1;
const ICMP6 = 58;
/** The drop reason of a TCP SYN no rule admits: the one a TSMP rejection answers. */
export const NO_RULE_FOR_TCP = 'no rule for tcp';
/** ipproto.TSMP (types/ipproto): IANA's "any private encryption scheme". */
const TSMP = 99;
const DEFAULT_PROTOCOLS = [TCP, UDP, ICMP4, ICMP6];
/** wgengine/filter lruMax: outbound UDP flows remembered for their replies. */
const UDP_FLOWS_MAX = 512;

interface Match {
  protocols: Set<number>;
  srcs: Cidr[];
  dsts: Array<{ net: Cidr; first: number; last: number }>;
}

export type FilterVerdict = 'accept' | 'drop';

/** Why packets were dropped, for `status()` and tests. */
export interface FilterStats {
  accepted: number;
  dropped: number;
  dropReasons: Record<string, number>;
}

/** Thrown by {@link PacketFilter} for a rule control sent that cannot be compiled. */
export class FilterRuleError extends Error {
  override readonly name = 'FilterRuleError';
}

function parseSet(text: string): Cidr[] {
  if (text === '*') return [parseCidr('0.0.0.0/0'), parseCidr('::/0')];
  if (text.startsWith('cap:')) return []; // peer capabilities: not granted to any source here
  try {
    // Headscale (and tailcfg) also write address ranges, "FROM-TO" (netipx.IPRange).
    const dash = text.indexOf('-');
    if (dash > 0) return rangeToCidrs(parseCidr(text.slice(0, dash)), parseCidr(text.slice(dash + 1)), text);
    return [parseCidr(text)];
  } catch (err) {
    if (err instanceof NetstackError) throw new FilterRuleError(`filter rule: bad address set '${text}'`);
    throw err;
  }
}

/** The fewest prefixes covering the inclusive range [from, to] of one family. */
function rangeToCidrs(from: Cidr, to: Cidr, text: string): Cidr[] {
  const bytes = from.address.length;
  const bits = bytes * 8;
  const toBig = (a: Uint8Array) => a.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
  let lo = toBig(from.address);
  const hi = toBig(to.address);
  if (to.address.length !== bytes || from.prefix !== bits || to.prefix !== bits || lo > hi)
    throw new FilterRuleError(`filter rule: bad address range '${text}'`);
  const out: Cidr[] = [];
  while (lo <= hi) {
    // The largest aligned block starting at lo that stays within the range.
    let size = 0;
    while (
      size < bits &&
      (lo & ((1n << BigInt(size + 1)) - 1n)) === 0n &&
      lo + (1n << BigInt(size + 1)) - 1n <= hi
    )
      size++;
    const address = new Uint8Array(bytes);
    for (let i = 0, v = lo; i < bytes; i++, v >>= 8n) address[bytes - 1 - i] = Number(v & 0xffn);
    out.push({ family: from.family, address, prefix: bits - size });
    lo += 1n << BigInt(size);
  }
  return out;
}

function compile(rules: readonly FilterRule[]): Match[] {
  return rules.map((r) => ({
    protocols: new Set(
      r.IPProto && r.IPProto.length > 0 ? r.IPProto.filter((p) => p >= 0 && p <= 255) : DEFAULT_PROTOCOLS,
    ),
    srcs: r.SrcIPs.flatMap(parseSet),
    dsts: (r.DstPorts ?? []).flatMap((d) =>
      parseSet(d.IP).map((net) => ({ net, first: d.Ports.First, last: d.Ports.Last })),
    ),
  }));
}

function inAny(nets: readonly Cidr[], buf: Uint8Array, off: number, len: number): boolean {
  for (const n of nets) if (n.address.length === len && cidrContains(n, buf, off)) return true;
  return false;
}

/** Compiled rules plus outbound UDP flow state, for one node. */
export class PacketFilter {
  private readonly matches: Match[];
  private readonly locals: Cidr[];
  private readonly udpFlows: Map<string, true>;
  readonly stats: FilterStats;
  /** Why the last dropped packet was dropped: read right after {@link acceptIn} returns undefined. */
  lastDropReason = '';

  /**
   * `localAddresses`: the node's own addresses (100.x, fd7a:…); packets to others are dropped,
   * except to what a router forwards (`routed`: its advertised routes, as ipnlocal adds
   * AdvertiseRoutes to the filter's localNets) — the rules then judge them as ours.
   * `previous`: the filter this one replaces on a new netmap; its counters and UDP flows carry
   * over, so drops stay counted and replies to our open flows keep passing across netmap updates.
   */
  constructor(
    rules: readonly FilterRule[],
    localAddresses: readonly string[],
    previous?: PacketFilter,
    private readonly routed?: { contains(buf: Uint8Array, offset: number, length: number): boolean },
  ) {
    this.matches = compile(rules);
    this.locals = localAddresses.map((a) => parseCidr(a.includes('/') ? a.slice(0, a.indexOf('/')) : a));
    this.udpFlows = previous?.udpFlows ?? new Map();
    this.stats = previous?.stats ?? { accepted: 0, dropped: 0, dropReasons: {} };
  }

  /** A filter that lets everything addressed to us in. */
  static allowAll(localAddresses: readonly string[]): PacketFilter {
    return new PacketFilter(
      [{ SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }],
      localAddresses,
    );
  }

  /** The verdict on one inbound IP packet. */
  checkIn(ip: Uint8Array): FilterVerdict {
    return this.acceptIn(ip) === undefined ? 'drop' : 'accept';
  }

  /**
   * {@link checkIn} that returns the accepted packet as parsed (`parseIpPacket(ip)`), or
   * undefined when it is dropped: the stack takes the parse as it is instead of repeating it.
   */
  acceptIn(ip: Uint8Array): IpPacket | undefined {
    let pkt: IpPacket;
    try {
      pkt = parseIpPacket(ip);
    } catch (err) {
      if (!(err instanceof NetstackError)) throw err;
      this.drop('malformed');
      return undefined;
    }
    const reason = this.judge(pkt);
    if (reason === undefined) {
      this.stats.accepted++;
      return pkt;
    }
    this.drop(reason);
    return undefined;
  }

  /** Records an outbound packet so that replies to our UDP flows are let in. */
  noteOut(ip: Uint8Array): void {
    // Only UDP is tracked: skip the parse for everything else (bulk TCP) by the protocol byte.
    // IPv6 packets with extension headers before UDP still take the full parse.
    const version = ip.length > 0 ? ip[0]! >> 4 : 0;
    if (version === 4 && ip[9] !== UDP) return;
    if (version === 6 && ip[6] === TCP) return;
    let pkt: IpPacket;
    try {
      pkt = parseIpPacket(ip);
    } catch (err) {
      if (!(err instanceof NetstackError)) throw err;
      return;
    }
    if (pkt.protocol !== UDP || pkt.payloadLength < 4) return;
    // Store the reply's tuple: its source is our destination.
    const key = flowKey(pkt, pkt.dstOffset, pkt.srcOffset, readPort(pkt, 2), readPort(pkt, 0));
    this.udpFlows.delete(key);
    this.udpFlows.set(key, true);
    if (this.udpFlows.size > UDP_FLOWS_MAX) this.udpFlows.delete(this.udpFlows.keys().next().value!);
  }

  private judge(pkt: IpPacket): string | undefined {
    const { buf, addressLength: len } = pkt;
    if (!inAny(this.locals, buf, pkt.dstOffset, len) && !this.routed?.contains(buf, pkt.dstOffset, len))
      return 'destination not ours';
    if (pkt.fragment) return 'fragment';
    switch (pkt.protocol) {
      case ICMP4:
      case ICMP6: {
        if (pkt.payloadLength < 1) return 'malformed';
        const type = buf[pkt.payloadOffset]!;
        const isReplyOrError =
          pkt.protocol === ICMP4
            ? type === 0 || type === 3 || type === 11 || type === 12
            : type === 129 || type < 128;
        if (isReplyOrError) return undefined;
        return this.matchIpsOnly(pkt) ? undefined : 'no rule for icmp';
      }
      case TCP: {
        if (pkt.payloadLength < 14) return 'malformed';
        const flags = buf[pkt.payloadOffset + 13]!;
        const isSyn = (flags & 0x02) !== 0 && (flags & 0x10) === 0;
        if (!isSyn) return undefined;
        return this.matchPort(pkt, readPort(pkt, 2)) ? undefined : NO_RULE_FOR_TCP;
      }
      case UDP: {
        if (pkt.payloadLength < 8) return 'malformed';
        const key = flowKey(pkt, pkt.srcOffset, pkt.dstOffset, readPort(pkt, 0), readPort(pkt, 2));
        if (this.udpFlows.has(key)) return undefined;
        return this.matchPort(pkt, readPort(pkt, 2)) ? undefined : 'no rule for udp';
      }
      case TSMP:
        return undefined;
      default:
        return this.matchAllPorts(pkt) ? undefined : `no rule for protocol ${pkt.protocol}`;
    }
  }

  private matchPort(pkt: IpPacket, port: number): boolean {
    const { buf, addressLength: len } = pkt;
    for (const m of this.matches) {
      if (!m.protocols.has(pkt.protocol) || !inAny(m.srcs, buf, pkt.srcOffset, len)) continue;
      for (const d of m.dsts) {
        if (
          port >= d.first &&
          port <= d.last &&
          d.net.address.length === len &&
          cidrContains(d.net, buf, pkt.dstOffset)
        ) {
          return true;
        }
      }
    }
    return false;
  }

  private matchIpsOnly(pkt: IpPacket): boolean {
    const { buf, addressLength: len } = pkt;
    return this.matches.some(
      (m) =>
        inAny(m.srcs, buf, pkt.srcOffset, len) &&
        m.dsts.some((d) => d.net.address.length === len && cidrContains(d.net, buf, pkt.dstOffset)),
    );
  }

  private matchAllPorts(pkt: IpPacket): boolean {
    const { buf, addressLength: len } = pkt;
    return this.matches.some(
      (m) =>
        m.protocols.has(pkt.protocol) &&
        inAny(m.srcs, buf, pkt.srcOffset, len) &&
        m.dsts.some(
          (d) =>
            d.first === 0 &&
            d.last === 65535 &&
            d.net.address.length === len &&
            cidrContains(d.net, buf, pkt.dstOffset),
        ),
    );
  }

  private drop(reason: string): FilterVerdict {
    this.lastDropReason = reason;
    this.stats.dropped++;
    this.stats.dropReasons[reason] = (this.stats.dropReasons[reason] ?? 0) + 1;
    return 'drop';
  }
}

function readPort(pkt: IpPacket, at: 0 | 2): number {
  return (pkt.buf[pkt.payloadOffset + at]! << 8) | pkt.buf[pkt.payloadOffset + at + 1]!;
}

function flowKey(pkt: IpPacket, srcOff: number, dstOff: number, sport: number, dport: number): string {
  const len = pkt.addressLength;
  const hex = (off: number) => Buffer.from(pkt.buf.buffer, pkt.buf.byteOffset + off, len).toString('hex');
  return `${hex(srcOff)}:${sport}>${hex(dstOff)}:${dport}`;
}
