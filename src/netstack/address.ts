import { isIPv4, isIPv6 } from 'node:net';
import { NetstackError } from './errors.js';

/** An IP version: 4 or 6. */
export type IpFamily = 4 | 6;

/** An address with a prefix length, e.g. `10.0.0.1/24`; `address` keeps its host bits. */
export interface Cidr {
  readonly family: IpFamily;
  /** 4 bytes for IPv4, 16 for IPv6. */
  readonly address: Uint8Array;
  /** Prefix length in bits: 0–32 or 0–128. */
  readonly prefix: number;
}

function bad(what: string, text: string): NetstackError {
  return new NetstackError('BAD_ADDRESS', `invalid ${what}: ${JSON.stringify(text.slice(0, 64))}`);
}

/** The family of a textual address, or undefined when it is neither (zone ids count as invalid). */
export function ipFamily(text: string): IpFamily | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text) && !text.includes('%')) return 6;
  return undefined;
}

/** Parses dotted-quad IPv4 text into 4 bytes. Leading zeros are refused, as node:net does. */
export function parseIPv4(text: string): Uint8Array {
  if (!isIPv4(text)) throw bad('IPv4 address', text);
  const out = new Uint8Array(4);
  writeDottedQuad(text, out, 0);
  return out;
}

/** Writes already-validated dotted-quad text into `out` at `offset`. */
function writeDottedQuad(text: string, out: Uint8Array, offset: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
}

/**
 * Parses IPv6 text (RFC 4291 §2.2: `::` compression, a trailing dotted quad) into 16 bytes.
 * Zone ids (`fe80::1%eth0`) are refused: nothing in a tailnet is link-scoped by interface.
 */
export function parseIPv6(text: string): Uint8Array {
  if (!isIPv6(text) || text.includes('%')) throw bad('IPv6 address', text);
  const out = new Uint8Array(16);
  const gap = text.indexOf('::');
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? '' : text.slice(gap + 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  // A dotted quad can only end the address, and stands for the last two groups.
  const all = gap < 0 ? headGroups : tailGroups;
  let v4: string | undefined;
  if (all.length > 0 && all[all.length - 1]!.includes('.')) v4 = all.pop();
  const limit = v4 === undefined ? 8 : 6;
  const groups = headGroups.length + tailGroups.length;
  if (gap < 0 ? groups !== limit : groups >= limit) throw bad('IPv6 address', text);
  for (let i = 0; i < headGroups.length; i++) writeGroup(out, i, headGroups[i]!, text);
  const tailStart = limit - tailGroups.length;
  for (let i = 0; i < tailGroups.length; i++) writeGroup(out, tailStart + i, tailGroups[i]!, text);
  if (v4 !== undefined) {
    if (!isIPv4(v4)) throw bad('IPv6 address', text);
    writeDottedQuad(v4, out, 12);
  }
  return out;
}

function writeGroup(out: Uint8Array, index: number, group: string, text: string): void {
  if (!/^[0-9a-fA-F]{1,4}$/.test(group)) throw bad('IPv6 address', text);
  const v = Number.parseInt(group, 16);
  out[index * 2] = v >>> 8;
  out[index * 2 + 1] = v & 0xff;
}

/** Parses IPv4 or IPv6 text into 4 or 16 bytes. */
export function parseIp(text: string): Uint8Array {
  return ipFamily(text) === 4 ? parseIPv4(text) : parseIPv6(text);
}

/** Formats the 4 bytes at `offset` as dotted-quad text. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 4 > bytes.length)
    throw new NetstackError('BAD_ADDRESS', 'IPv4 address out of range');
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * Formats the 16 bytes at `offset` in RFC 5952 canonical form: lower case, no leading zeros,
 * the first longest run of two or more zero groups as `::` (§4.2), and IPv4-mapped addresses
 * with a dotted quad (§5).
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 16 > bytes.length)
    throw new NetstackError('BAD_ADDRESS', 'IPv6 address out of range');
  if (isIPv4Mapped(bytes, offset)) return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let i = 0; i <= 8; i++) {
    const zero = i < 8 && bytes[offset + i * 2] === 0 && bytes[offset + i * 2 + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = i;
    } else if (runStart >= 0) {
      if (i - runStart > bestLen) {
        bestStart = runStart;
        bestLen = i - runStart;
      }
      runStart = -1;
    }
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s !== '' && !s.endsWith(':')) s += ':';
    s += ((bytes[offset + i * 2]! << 8) | bytes[offset + i * 2 + 1]!).toString(16);
  }
  return s;
}

/** Formats a 4- or 16-byte address. */
export function formatIp(address: Uint8Array): string {
  if (address.length === 4) return formatIPv4(address);
  if (address.length === 16) return formatIPv6(address);
  throw new NetstackError('BAD_ADDRESS', `an IP address has 4 or 16 bytes, not ${address.length}`);
}

/** Whether the 16 bytes at `offset` are an IPv4-mapped IPv6 address, `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2). */
export function isIPv4Mapped(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/** Maps a 4-byte IPv4 address into `::ffff:a.b.c.d`. */
export function ipv4ToMapped(address: Uint8Array): Uint8Array {
  if (address.length !== 4) throw new NetstackError('BAD_ADDRESS', 'not a 4-byte IPv4 address');
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(address, 12);
  return out;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address, or the address unchanged otherwise. */
export function unmapIPv4(address: Uint8Array): Uint8Array {
  return address.length === 16 && isIPv4Mapped(address) ? address.slice(12) : address;
}

/** Whether two addresses are the same family and bytes. */
export function ipEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && addressAt(a, 0, b);
}

/** Whether `buf` holds `address` at `offset` — compares in place, for matching packet headers. */
export function addressAt(buf: Uint8Array, offset: number, address: Uint8Array): boolean {
  const n = address.length;
  if (offset < 0 || offset + n > buf.length) return false;
  for (let i = 0; i < n; i++) if (buf[offset + i] !== address[i]) return false;
  return true;
}

/** Parses `addr` or `addr/prefix`; without a prefix the whole address is the prefix (/32 or /128). */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const family = ipFamily(addrText);
  if (family === undefined) throw bad('address', text);
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > bits) throw bad('prefix', text);
    prefix = Number(p);
  }
  return { family, address: family === 4 ? parseIPv4(addrText) : parseIPv6(addrText), prefix };
}

/** Formats a {@link Cidr} as `address/prefix`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}

/** Whether the address at `offset` in `buf` (of the CIDR's family) lies inside the prefix. */
export function cidrContains(cidr: Cidr, buf: Uint8Array, offset = 0): boolean {
  const n = cidr.address.length;
  if (offset < 0 || offset + n > buf.length) return false;
  const whole = cidr.prefix >>> 3;
  for (let i = 0; i < whole; i++) if (buf[offset + i] !== cidr.address[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((buf[offset + whole]! ^ cidr.address[whole]!) & mask) === 0;
}

/** The prefix with its host bits cleared (`10.1.2.3/16` → `10.1.0.0/16`). */
export function maskCidr(c: Cidr): Cidr {
  const address = c.address.slice();
  for (let i = 0; i < address.length; i++) {
    const keep = Math.max(0, Math.min(8, c.prefix - 8 * i));
    address[i]! &= (0xff00 >>> keep) & 0xff;
  }
  return { ...c, address };
}

/** Whether two prefixes share an address (prefixes of different families never do). */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.address.length !== b.address.length) return false;
  return a.prefix <= b.prefix ? cidrContains(a, b.address) : cidrContains(b, a.address);
}
