import { internetChecksum, sumBytes } from './checksum.js';
import { NetstackError } from './errors.js';
import { type IpPacket, IpProtocol, packetPseudoHeaderSum } from './packet.js';

/** ICMPv4 message types this stack handles (RFC 792). */
export const Icmpv4Type = { ECHO_REPLY: 0, ECHO_REQUEST: 8 } as const;

/** ICMPv6 message types this stack handles (RFC 4443 §4.1, §4.2). */
export const Icmpv6Type = { ECHO_REQUEST: 128, ECHO_REPLY: 129 } as const;

/** Type, code, checksum and the 4 bytes that echo uses for identifier and sequence. */
export const ICMP_HEADER_LENGTH = 8;

/** A parsed ICMPv4 or ICMPv6 message, as offsets into the buffer it came from. */
export interface IcmpMessage {
  readonly type: number;
  readonly code: number;
  /** Bytes 4–5. Meaningful for echo (RFC 792 "Identifier", RFC 4443 §4.1). */
  readonly identifier: number;
  /** Bytes 6–7. Meaningful for echo ("Sequence Number"). */
  readonly sequence: number;
  /** Offset of the data after the 8-byte header. */
  readonly dataOffset: number;
  readonly dataLength: number;
}

/** Fields of an echo request or reply built by {@link writeIcmpEcho}. */
export interface IcmpEchoFields {
  /** One of {@link Icmpv4Type} or {@link Icmpv6Type}'s echo types. */
  type: number;
  identifier: number;
  sequence: number;
  /** Echo data copied after the header (RFC 792: a reply returns the request's data unchanged). */
  data?: Uint8Array;
  /** Without `data`: how many data bytes the caller already placed after the header. */
  dataLength?: number;
}

/**
 * Parses an ICMP message of `length` bytes at `offset` and verifies its checksum. For ICMPv4
 * `pseudoSum` is 0 (RFC 792: the checksum covers the message only); for ICMPv6 it is the
 * pseudo-header sum with Next Header 58 (RFC 4443 §2.3).
 */
export function parseIcmp(buf: Uint8Array, offset: number, length: number, pseudoSum: number): IcmpMessage {
  if (offset < 0 || length < 0 || offset + length > buf.length) {
    throw new NetstackError('MALFORMED_PACKET', 'ICMP: range outside the buffer');
  }
  // Every ICMP message RFC 792 and RFC 4443 define has at least the 8-byte header.
  if (length < ICMP_HEADER_LENGTH) {
    throw new NetstackError('MALFORMED_PACKET', `ICMP: ${length} bytes is shorter than a header`);
  }
  if (sumBytes(buf, offset, length, pseudoSum) !== 0xffff) {
    throw new NetstackError('BAD_CHECKSUM', 'ICMP: checksum does not verify');
  }
  return {
    type: buf[offset]!,
    code: buf[offset + 1]!,
    identifier: (buf[offset + 4]! << 8) | buf[offset + 5]!,
    sequence: (buf[offset + 6]! << 8) | buf[offset + 7]!,
    dataOffset: offset + ICMP_HEADER_LENGTH,
    dataLength: length - ICMP_HEADER_LENGTH,
  };
}

/**
 * Parses the ICMP message an IP packet carries: ICMPv4 over IPv4, ICMPv6 (checksum with the
 * pseudo-header) over IPv6.
 */
export function parseIcmpPacket(pkt: IpPacket): IcmpMessage {
  const expected = pkt.version === 4 ? IpProtocol.ICMP : IpProtocol.ICMPV6;
  if (pkt.protocol !== expected) {
    throw new NetstackError('MALFORMED_PACKET', `ICMP: protocol ${pkt.protocol} over IPv${pkt.version}`);
  }
  const pseudo = pkt.version === 6 ? packetPseudoHeaderSum(pkt) : 0;
  return parseIcmp(pkt.buf, pkt.payloadOffset, pkt.payloadLength, pseudo);
}

/**
 * Writes an echo request or reply at `offset` with its checksum, continuing `pseudoSum` (0 for
 * ICMPv4, the ICMPv6 pseudo-header sum otherwise). Returns the message length.
 */
export function writeIcmpEcho(
  buf: Uint8Array,
  offset: number,
  fields: IcmpEchoFields,
  pseudoSum: number,
): number {
  const dataLength = fields.data ? fields.data.length : (fields.dataLength ?? 0);
  const length = ICMP_HEADER_LENGTH + dataLength;
  if (offset < 0 || offset + length > buf.length) {
    throw new NetstackError('TOO_BIG', 'ICMP echo does not fit the buffer');
  }
  buf[offset] = fields.type;
  buf[offset + 1] = 0;
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  buf[offset + 4] = (fields.identifier >>> 8) & 0xff;
  buf[offset + 5] = fields.identifier & 0xff;
  buf[offset + 6] = (fields.sequence >>> 8) & 0xff;
  buf[offset + 7] = fields.sequence & 0xff;
  if (fields.data) buf.set(fields.data, offset + ICMP_HEADER_LENGTH);
  const sum = internetChecksum(buf, offset, length, pseudoSum);
  buf[offset + 2] = sum >>> 8;
  buf[offset + 3] = sum & 0xff;
  return length;
}

/** Encodes an echo request or reply into a new buffer (see {@link writeIcmpEcho}). */
export function encodeIcmpEcho(fields: IcmpEchoFields, pseudoSum: number): Uint8Array {
  const out = new Uint8Array(ICMP_HEADER_LENGTH + (fields.data?.length ?? 0));
  writeIcmpEcho(out, 0, fields, pseudoSum);
  return out;
}
