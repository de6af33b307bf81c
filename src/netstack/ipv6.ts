import { NetstackError } from './errors.js';
import { DEFAULT_TTL, type IpPacket } from './packet.js';

/** Length of the fixed IPv6 header (RFC 8200 §3). */
export const IPV6_HEADER_LENGTH = 40;

/** Largest IPv6 packet without a jumbogram: 40 + a 16-bit Payload Length. */
export const IPV6_MAX_PACKET = IPV6_HEADER_LENGTH + 0xffff;

/** Extension header Next Header values this parser walks past (RFC 8200 §4). */
const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const DESTINATION_OPTIONS = 60;

/** Fields of an IPv6 header built by {@link writeIPv6Header}. */
export interface IPv6HeaderFields {
  /** 16-byte source address. */
  src: Uint8Array;
  /** 16-byte destination address. */
  dst: Uint8Array;
  nextHeader: number;
  /** Bytes after the fixed header. */
  payloadLength: number;
  /** Default 64. */
  hopLimit?: number;
  /** DSCP and ECN; default 0. */
  trafficClass?: number;
  /** 20-bit flow label; default 0. */
  flowLabel?: number;
}

function malformed(why: string): NetstackError {
  return new NetstackError('MALFORMED_PACKET', `IPv6: ${why}`);
}

/**
 * Checks the TLV-encoded options of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2).
 * Unknown options whose two high type bits are 00 are skipped; any other unrecognised option
 * asks the receiver to discard the packet, and this stack recognises only padding.
 */
function checkOptions(buf: Uint8Array, from: number, to: number): void {
  let q = from;
  while (q < to) {
    const type = buf[q]!;
    if (type === 0) {
      q++; // Pad1 is the one option without a length byte.
      continue;
    }
    if (q + 2 > to) throw malformed('option runs past its header');
    const next = q + 2 + buf[q + 1]!;
    if (next > to) throw malformed('option runs past its header');
    if (type !== 1 && (type & 0xc0) !== 0) {
      throw new NetstackError('UNSUPPORTED', `IPv6: option type 0x${type.toString(16)} requires discard`);
    }
    q = next;
  }
}

/**
 * Parses and validates an IPv6 header at `offset` (RFC 8200 §3): version and Payload Length
 * against the bytes available; then walks Hop-by-Hop, Routing, Destination Options and
 * Fragment headers to the upper-layer protocol. Bytes past Payload Length are ignored.
 */
export function parseIPv6Packet(buf: Uint8Array, offset = 0, length = buf.length - offset): IpPacket {
  if (offset < 0 || length < 0 || offset + length > buf.length) throw malformed('range outside the buffer');
  if (length < IPV6_HEADER_LENGTH) throw malformed(`${length} bytes is shorter than a header`);
  const b0 = buf[offset]!;
  if (b0 >>> 4 !== 6) throw malformed(`version ${b0 >>> 4}`);
  const payload = (buf[offset + 4]! << 8) | buf[offset + 5]!;
  const end = offset + IPV6_HEADER_LENGTH + payload;
  if (end > offset + length) throw malformed(`payload length ${payload} exceeds the bytes received`);
  let next = buf[offset + 6]!;
  let p = offset + IPV6_HEADER_LENGTH;
  let fragment = false;
  walk: while (true) {
    switch (next) {
      case HOP_BY_HOP:
      case ROUTING:
      case DESTINATION_OPTIONS: {
        // RFC 8200 §4.1: Hop-by-Hop may only follow the fixed header directly.
        if (next === HOP_BY_HOP && p !== offset + IPV6_HEADER_LENGTH) throw malformed('misplaced hop-by-hop');
        if (p + 8 > end) throw malformed('truncated extension header');
        const extEnd = p + (buf[p + 1]! + 1) * 8; // Hdr Ext Len counts 8-octet units beyond the first.
        if (extEnd > end) throw malformed('extension header runs past the payload');
        if (next === ROUTING) {
          // RFC 8200 §4.4: a host that will not forward must not accept Segments Left > 0.
          if (buf[p + 3] !== 0)
            throw new NetstackError('UNSUPPORTED', 'IPv6: routing header with segments left');
        } else {
          checkOptions(buf, p + 2, extEnd);
        }
        next = buf[p]!;
        p = extEnd;
        break;
      }
      case FRAGMENT: {
        if (p + 8 > end) throw malformed('truncated fragment header');
        const offsetAndFlags = (buf[p + 2]! << 8) | buf[p + 3]!;
        next = buf[p]!;
        p += 8;
        // RFC 6946 §4: offset 0 with M clear is an atomic fragment, processed as a whole packet.
        if ((offsetAndFlags & 0xfff9) !== 0) {
          fragment = true;
          break walk;
        }
        break;
      }
      default:
        break walk;
    }
  }
  const b1 = buf[offset + 1]!;
  return {
    version: 6,
    buf,
    start: offset,
    end,
    srcOffset: offset + 8,
    dstOffset: offset + 24,
    addressLength: 16,
    headerLength: p - offset,
    protocol: next,
    payloadOffset: p,
    payloadLength: end - p,
    ttl: buf[offset + 7]!,
    trafficClass: ((b0 & 0x0f) << 4) | (b1 >>> 4),
    fragment,
    linkSum: -1,
  };
}

/**
 * Writes the 40-byte fixed IPv6 header at `offset` (IPv6 has no header checksum, RFC 8200 §3);
 * the payload is the caller's to place after it. Returns the header length.
 */
export function writeIPv6Header(buf: Uint8Array, offset: number, fields: IPv6HeaderFields): number {
  const { src, dst, payloadLength } = fields;
  if (src.length !== 16 || dst.length !== 16) {
    throw new NetstackError('BAD_ADDRESS', 'IPv6 addresses must be 16 bytes');
  }
  if (payloadLength < 0 || payloadLength > 0xffff) {
    throw new NetstackError('TOO_BIG', `IPv6 payload of ${payloadLength} bytes`);
  }
  if (offset < 0 || offset + IPV6_HEADER_LENGTH > buf.length) {
    throw new NetstackError('TOO_BIG', 'IPv6 header does not fit the buffer');
  }
  const tc = fields.trafficClass ?? 0;
  const flow = fields.flowLabel ?? 0;
  buf[offset] = 0x60 | ((tc >>> 4) & 0x0f);
  buf[offset + 1] = ((tc & 0x0f) << 4) | ((flow >>> 16) & 0x0f);
  buf[offset + 2] = (flow >>> 8) & 0xff;
  buf[offset + 3] = flow & 0xff;
  buf[offset + 4] = payloadLength >>> 8;
  buf[offset + 5] = payloadLength & 0xff;
  buf[offset + 6] = fields.nextHeader;
  buf[offset + 7] = fields.hopLimit ?? DEFAULT_TTL;
  buf.set(src, offset + 8);
  buf.set(dst, offset + 24);
  return IPV6_HEADER_LENGTH;
}
