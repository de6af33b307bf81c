import { internetChecksum } from './checksum.js';
import { NetstackError } from './errors.js';
import { DEFAULT_TTL, type IpPacket } from './packet.js';

/** Length of an IPv4 header without options (RFC 791 §3.1). */
export const IPV4_HEADER_LENGTH = 20;

/** Largest IPv4 packet: Total Length is 16 bits. */
export const IPV4_MAX_PACKET = 0xffff;

/** Fields of an IPv4 header built by {@link writeIPv4Header}. */
export interface IPv4HeaderFields {
  /** 4-byte source address. */
  src: Uint8Array;
  /** 4-byte destination address. */
  dst: Uint8Array;
  protocol: number;
  /** Bytes after the header; Total Length becomes 20 + this. */
  payloadLength: number;
  /** Default 64. */
  ttl?: number;
  /** Type Of Service byte (DSCP and ECN); default 0. */
  tos?: number;
  /** Default 0: RFC 6864 §4.1 lets atomic (DF, unfragmented) datagrams use any value. */
  identification?: number;
  /** Default true: this stack never fragments, so it leaves that to path MTU discovery. */
  dontFragment?: boolean;
}

function malformed(why: string): NetstackError {
  return new NetstackError('MALFORMED_PACKET', `IPv4: ${why}`);
}

/**
 * Parses and validates an IPv4 header (RFC 791 §3.1) at `offset`: version, IHL, Total Length
 * against the bytes available, and the header checksum. Bytes past Total Length (link padding)
 * are ignored. Options are skipped, not interpreted (RFC 1122 §3.2.1.8 lets a host ignore
 * those it does not implement).
 */
export function parseIPv4Packet(buf: Uint8Array, offset = 0, length = buf.length - offset): IpPacket {
  if (offset < 0 || length < 0 || offset + length > buf.length) throw malformed('range outside the buffer');
  if (length < IPV4_HEADER_LENGTH) throw malformed(`${length} bytes is shorter than a header`);
  const b0 = buf[offset]!;
  if (b0 >>> 4 !== 4) throw malformed(`version ${b0 >>> 4}`);
  const headerLength = (b0 & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LENGTH) throw malformed(`IHL ${headerLength / 4} below 5`);
  const total = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  if (total < headerLength) throw malformed(`total length ${total} below header length ${headerLength}`);
  if (total > length) throw malformed(`total length ${total} exceeds the ${length} bytes received`);
  if (internetChecksum(buf, offset, headerLength) !== 0) {
    throw new NetstackError('BAD_CHECKSUM', 'IPv4: header checksum does not verify');
  }
  const flags = buf[offset + 6]!;
  // RFC 791 §3.1: More Fragments is bit 2 of Flags; Fragment Offset is the low 13 bits.
  const fragment = (flags & 0x20) !== 0 || ((flags & 0x1f) | buf[offset + 7]!) !== 0;
  return {
    version: 4,
    buf,
    start: offset,
    end: offset + total,
    srcOffset: offset + 12,
    dstOffset: offset + 16,
    addressLength: 4,
    headerLength,
    protocol: buf[offset + 9]!,
    payloadOffset: offset + headerLength,
    payloadLength: total - headerLength,
    ttl: buf[offset + 8]!,
    trafficClass: buf[offset + 1]!,
    fragment,
    linkSum: -1,
  };
}

/**
 * Writes a 20-byte IPv4 header (no options) at `offset` and fills in its checksum; the payload
 * is the caller's to place after it. Returns the header length.
 */
export function writeIPv4Header(buf: Uint8Array, offset: number, fields: IPv4HeaderFields): number {
  const { src, dst, payloadLength } = fields;
  if (src.length !== 4 || dst.length !== 4) {
    throw new NetstackError('BAD_ADDRESS', 'IPv4 addresses must be 4 bytes');
  }
  const total = IPV4_HEADER_LENGTH + payloadLength;
  if (payloadLength < 0 || total > IPV4_MAX_PACKET) {
    throw new NetstackError('TOO_BIG', `IPv4 packet of ${total} bytes`);
  }
  if (offset < 0 || offset + IPV4_HEADER_LENGTH > buf.length) {
    throw new NetstackError('TOO_BIG', 'IPv4 header does not fit the buffer');
  }
  const id = fields.identification ?? 0;
  buf[offset] = 0x45;
  buf[offset + 1] = fields.tos ?? 0;
  buf[offset + 2] = total >>> 8;
  buf[offset + 3] = total & 0xff;
  buf[offset + 4] = (id >>> 8) & 0xff;
  buf[offset + 5] = id & 0xff;
  buf[offset + 6] = fields.dontFragment === false ? 0 : 0x40;
  buf[offset + 7] = 0;
  buf[offset + 8] = fields.ttl ?? DEFAULT_TTL;
  buf[offset + 9] = fields.protocol;
  buf[offset + 10] = 0;
  buf[offset + 11] = 0;
  buf.set(src, offset + 12);
  buf.set(dst, offset + 16);
  const sum = internetChecksum(buf, offset, IPV4_HEADER_LENGTH);
  buf[offset + 10] = sum >>> 8;
  buf[offset + 11] = sum & 0xff;
  return IPV4_HEADER_LENGTH;
}
