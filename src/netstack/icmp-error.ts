/**
 * ICMP errors for transport protocols: building Destination Unreachable / Port Unreachable
 * (RFC 792; RFC 4443 §3.1) for datagrams nobody listens for, and reading the invoking packet
 * quoted in one we receive so that the socket it concerns can be told (RFC 1122 §4.1.3.3,
 * §4.2.3.9).
 */
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import type { IcmpMessage } from './icmp.js';
import { IPV4_HEADER_LENGTH } from './ipv4.js';
import { IPV6_HEADER_LENGTH } from './ipv6.js';
import { type IpPacket, IpProtocol } from './packet.js';

/** ICMPv4 Destination Unreachable and ICMPv6's equivalent (RFC 792; RFC 4443 §3.1). */
export const ICMPV4_DEST_UNREACHABLE = 3;
export const ICMPV6_DEST_UNREACHABLE = 1;
const ICMPV4_PORT_UNREACHABLE = 3;
const ICMPV6_PORT_UNREACHABLE = 4;
/** RFC 1812 §4.3.2.3: an ICMPv4 error carries as much of the original as fits in 576 bytes. */
const V4_LIMIT = 576;
/** RFC 4443 §2.4(c): an ICMPv6 error must not exceed the minimum IPv6 MTU. */
const V6_LIMIT = 1280;

/** What an ICMP error says about a packet we sent. */
export interface IcmpErrorInfo {
  /** The quoted packet's transport protocol. */
  protocol: number;
  /** Our address and port in the quoted packet (its source). */
  local: Uint8Array;
  localPort: number;
  /** Where we sent it (its destination). */
  remote: Uint8Array;
  remotePort: number;
  /** 'port' for Port Unreachable; 'host' for every other unreachable code. */
  reason: 'port' | 'host';
  /** Why, in words, when the error came with more than a code (see {@link Stack.reportUnreachable}). */
  detail?: string;
}

/**
 * Builds a Port Unreachable answering `pkt`, with room for the IP header in front (for
 * Stack.sendPrepared). Only transport protocols call this, so the invoking packet is never
 * itself an ICMP error (RFC 1122 §3.2.2).
 */
export function buildPortUnreachable(pkt: IpPacket): Uint8Array {
  const v4 = pkt.version === 4;
  const ipLen = v4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  const limit = (v4 ? V4_LIMIT : V6_LIMIT) - ipLen - 8;
  const quoted = Math.min(pkt.end - pkt.start, limit);
  const out = new Uint8Array(ipLen + 8 + quoted);
  out[ipLen] = v4 ? ICMPV4_DEST_UNREACHABLE : ICMPV6_DEST_UNREACHABLE;
  out[ipLen + 1] = v4 ? ICMPV4_PORT_UNREACHABLE : ICMPV6_PORT_UNREACHABLE;
  out.set(pkt.buf.subarray(pkt.start, pkt.start + quoted), ipLen + 8);
  const length = 8 + quoted;
  // The reply goes from the packet's destination back to its source.
  const pseudo = v4
    ? 0
    : pseudoHeaderSum(pkt.buf, pkt.dstOffset, pkt.buf, pkt.srcOffset, 16, IpProtocol.ICMPV6, length);
  const sum = internetChecksum(out, ipLen, length, pseudo);
  out[ipLen + 2] = sum >>> 8;
  out[ipLen + 3] = sum & 0xff;
  return out;
}

/** Reads the invoking packet quoted in a Destination Unreachable, or undefined if too short to tell. */
export function parseUnreachable(pkt: IpPacket, msg: IcmpMessage): IcmpErrorInfo | undefined {
  const v4 = pkt.version === 4;
  if (msg.type !== (v4 ? ICMPV4_DEST_UNREACHABLE : ICMPV6_DEST_UNREACHABLE)) return undefined;
  const b = pkt.buf;
  const q = msg.dataOffset;
  const end = msg.dataOffset + msg.dataLength;
  let protocol: number;
  let hl: number;
  let alen: 4 | 16;
  if (v4) {
    if (end - q < IPV4_HEADER_LENGTH || b[q]! >>> 4 !== 4) return undefined;
    hl = (b[q]! & 0x0f) * 4;
    protocol = b[q + 9]!;
    alen = 4;
  } else {
    if (end - q < IPV6_HEADER_LENGTH || b[q]! >>> 4 !== 6) return undefined;
    hl = IPV6_HEADER_LENGTH; // extension headers in quoted packets are not walked: we send none
    protocol = b[q + 6]!;
    alen = 16;
  }
  // RFC 792 / RFC 4443: at least the first 8 bytes of the transport header, which hold the ports.
  if (end - q < hl + 4) return undefined;
  const srcOff = q + (v4 ? 12 : 8);
  const dstOff = srcOff + alen;
  const t = q + hl;
  const port = v4 ? ICMPV4_PORT_UNREACHABLE : ICMPV6_PORT_UNREACHABLE;
  return {
    protocol,
    local: b.slice(srcOff, srcOff + alen),
    localPort: (b[t]! << 8) | b[t + 1]!,
    remote: b.slice(dstOff, dstOff + alen),
    remotePort: (b[t + 2]! << 8) | b[t + 3]!,
    reason: msg.code === port ? 'port' : 'host',
  };
}
