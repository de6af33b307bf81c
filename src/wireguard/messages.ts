/**
 * Wire layouts of the four message types (WireGuard paper §5.4.2–§5.4.7). All integers are
 * little-endian. Parsers check only sizes and types; authentication happens in noise.ts and
 * cookie.ts. Views are returned, not copies: callers must not keep them past the datagram.
 */
import {
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_SIZE_MIN,
} from './constants.js';
import { WireGuardError } from './errors.js';

/** Byte offsets inside each message. */
export const Initiation = {
  sender: 4,
  ephemeral: 8,
  static: 40, // 32 + 16 tag
  timestamp: 88, // 12 + 16 tag
  mac1: 116,
  mac2: 132,
} as const;

export const Response = {
  sender: 4,
  receiver: 8,
  ephemeral: 12,
  empty: 44, // 0 + 16 tag
  mac1: 60,
  mac2: 76,
} as const;

export const CookieReply = {
  receiver: 4,
  nonce: 8,
  cookie: 32, // 16 + 16 tag
} as const;

export const Transport = {
  receiver: 4,
  counter: 8,
  content: 16,
} as const;

export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
  buf[off + 2] = (v >>> 16) & 0xff;
  buf[off + 3] = (v >>> 24) & 0xff;
}

/**
 * The 64-bit transport counter as a JS number. Counters at or above 2^53 cannot be
 * represented exactly and are reported as NaN: no sender reaches them (that is 28 years
 * at ten million packets a second), so such a packet is treated as forged.
 */
export function readCounter(buf: Uint8Array, off: number): number {
  const lo = readU32(buf, off);
  const hi = readU32(buf, off + 4);
  if (hi >= 0x200000) return Number.NaN;
  return hi * 0x1_0000_0000 + lo;
}

export function writeCounter(buf: Uint8Array, off: number, v: number): void {
  writeU32(buf, off, v >>> 0);
  writeU32(buf, off + 4, Math.floor(v / 0x1_0000_0000));
}

/**
 * The message type of a datagram, or 0 when it is not a well-formed WireGuard message:
 * the first byte is the type and the next three are reserved zeros (§5.4).
 */
export function messageType(d: Uint8Array): number {
  if (d.length < 4 || d[1] !== 0 || d[2] !== 0 || d[3] !== 0) return 0;
  const t = d[0]!;
  switch (t) {
    case MESSAGE_INITIATION:
      return d.length === MESSAGE_INITIATION_SIZE ? t : 0;
    case MESSAGE_RESPONSE:
      return d.length === MESSAGE_RESPONSE_SIZE ? t : 0;
    case MESSAGE_COOKIE_REPLY:
      return d.length === MESSAGE_COOKIE_REPLY_SIZE ? t : 0;
    case MESSAGE_TRANSPORT:
      return d.length >= MESSAGE_TRANSPORT_SIZE_MIN ? t : 0;
    default:
      return 0;
  }
}

/** Throws MALFORMED_MESSAGE unless `d` is a message of type `want`. */
export function expectType(d: Uint8Array, want: number): void {
  if (messageType(d) !== want) {
    throw new WireGuardError(
      'MALFORMED_MESSAGE',
      `not a well-formed message of type ${want} (${d.length} bytes)`,
    );
  }
}

/** Writes type + reserved zeros into a fresh message of `size` bytes. */
export function newMessage(type: number, size: number): Uint8Array {
  const m = new Uint8Array(size);
  m[0] = type;
  return m;
}
