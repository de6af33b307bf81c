import { formatIPv4, formatIPv6 } from './address.js';
import { foldSum, pseudoHeaderSum, sumBytes } from './checksum.js';

/** IP protocol numbers (IANA "Assigned Internet Protocol Numbers") this stack knows by name. */
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
} as const;

/** Default IPv4 TTL and IPv6 Hop Limit: IANA's recommended 64 (RFC 1700), as Linux uses. */
export const DEFAULT_TTL = 64;

/**
 * A parsed IPv4 or IPv6 packet: a view over the received bytes, not a copy. Offsets are
 * absolute indexes into `buf`, so upper layers read addresses and their payload in place
 * without parsing the IP header again.
 */
export interface IpPacket {
  readonly version: 4 | 6;
  /** The bytes the packet was parsed from; the packet occupies `start` to `end`. */
  readonly buf: Uint8Array;
  /** Offset of the IP header's first byte. */
  readonly start: number;
  /** Offset just past the packet: IPv4 Total Length or IPv6 Payload Length, not the buffer's end. */
  readonly end: number;
  /** Offset of the 4- or 16-byte source address. */
  readonly srcOffset: number;
  /** Offset of the 4- or 16-byte destination address. */
  readonly dstOffset: number;
  /** 4 or 16. */
  readonly addressLength: 4 | 16;
  /** Bytes from `start` to the upper-layer header: IPv4 header with options, or IPv6 header and extensions. */
  readonly headerLength: number;
  /** Upper-layer protocol: IPv4 Protocol, or the Next Header that ends the IPv6 extension chain. */
  readonly protocol: number;
  /** Offset of the upper-layer header (`start + headerLength`). */
  readonly payloadOffset: number;
  /** Upper-layer length, as used in the pseudo-header (RFC 8200 §8.1: extension headers excluded). */
  readonly payloadLength: number;
  /** IPv4 Time To Live or IPv6 Hop Limit. */
  readonly ttl: number;
  /** IPv4 Type Of Service or IPv6 Traffic Class (DSCP and ECN bits). */
  readonly trafficClass: number;
  /**
   * Whether this is a fragment (IPv4 MF or a non-zero offset; any IPv6 Fragment header). This
   * stack does not reassemble: the payload is only part of the upper-layer message.
   */
  readonly fragment: boolean;
  /**
   * The link's one's complement sum of the whole packet, `start` to `end` (receive checksum
   * offload), or -1. Parsers set -1; the stack fills in what the link reported.
   */
  linkSum: number;
}

/** The packet's source address as text. */
export function packetSource(pkt: IpPacket): string {
  return pkt.version === 4 ? formatIPv4(pkt.buf, pkt.srcOffset) : formatIPv6(pkt.buf, pkt.srcOffset);
}

/** The packet's destination address as text. */
export function packetDestination(pkt: IpPacket): string {
  return pkt.version === 4 ? formatIPv4(pkt.buf, pkt.dstOffset) : formatIPv6(pkt.buf, pkt.dstOffset);
}

/** A copy of the source address bytes (4 or 16), for keeping beyond the packet's lifetime. */
export function packetSourceBytes(pkt: IpPacket): Uint8Array {
  return pkt.buf.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
}

/** A copy of the destination address bytes (4 or 16). */
export function packetDestinationBytes(pkt: IpPacket): Uint8Array {
  return pkt.buf.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
}

/** The pseudo-header sum for this packet's addresses, protocol and payload length (RFC 768/793, RFC 8200 §8.1). */
export function packetPseudoHeaderSum(pkt: IpPacket): number {
  return pseudoHeaderSum(
    pkt.buf,
    pkt.srcOffset,
    pkt.buf,
    pkt.dstOffset,
    pkt.addressLength,
    pkt.protocol,
    pkt.payloadLength,
  );
}

/**
 * The one's complement sum of the upper-layer bytes plus `initial` (the pseudo-header's), from
 * the link's sum of the whole packet: that sum less the IP header's (RFC 1624 §3), so only the
 * header is read. Only for a packet with a {@link IpPacket.linkSum}.
 */
export function payloadSumFromLink(pkt: IpPacket, initial: number): number {
  const header = sumBytes(pkt.buf, pkt.start, pkt.headerLength);
  return foldSum(pkt.linkSum + (~header & 0xffff) + initial);
}

/**
 * Whether the upper-layer checksum over pseudo-header and payload verifies (sums to all ones),
 * for TCP, UDP and ICMPv6. UDP over IPv4's "no checksum" zero is the caller's to special-case.
 */
export function upperLayerChecksumOk(pkt: IpPacket): boolean {
  return sumBytes(pkt.buf, pkt.payloadOffset, pkt.payloadLength, packetPseudoHeaderSum(pkt)) === 0xffff;
}
