/**
 * Cryptokey routing's table (WireGuard paper §2): allowed IPs map a destination address to
 * the peer that may send from it and receive for it, by longest-prefix match. One
 * path-compressed binary trie per address family, as in wireguard-go `device/allowedips.go`
 * and the kernel's `allowedips.c`; a node stores its prefix as 32-bit words so that a lookup
 * reads the address straight out of a packet and compares whole words, allocating nothing.
 */
import { WireGuardError } from './errors.js';

/** A prefix given as text (`10.0.0.0/8`, `fd00::/64`, a bare address) or as bytes and a length. */
export type CidrInput = string | { addr: Uint8Array; bits: number };

class TrieNode<T> {
  /** The prefix as big-endian 32-bit words with host bits zeroed; IPv4 uses `w0` only. */
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  /** Per-word masks of the prefix length, so a match is `((addr ^ w) & m) === 0`. */
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  /** Which word and shift hold the bit just past the prefix, the one that picks a child. */
  readonly bitWord: number;
  readonly bitShift: number;
  child0: TrieNode<T> | null = null;
  child1: TrieNode<T> | null = null;
  parent: TrieNode<T> | null = null;
  value: T | undefined = undefined;
  /** Intermediate nodes exist only to branch and carry no value. */
  hasValue = false;

  constructor(
    words: readonly number[],
    readonly bits: number,
    readonly width: 32 | 128,
  ) {
    this.m0 = wordMask(bits, 0);
    this.m1 = wordMask(bits, 1);
    this.m2 = wordMask(bits, 2);
    this.m3 = wordMask(bits, 3);
    this.w0 = words[0]! & this.m0;
    this.w1 = (words[1] ?? 0) & this.m1;
    this.w2 = (words[2] ?? 0) & this.m2;
    this.w3 = (words[3] ?? 0) & this.m3;
    this.bitWord = bits >>> 5;
    this.bitShift = 31 - (bits & 31);
  }

  word(i: number): number {
    return i === 0 ? this.w0 : i === 1 ? this.w1 : i === 2 ? this.w2 : this.w3;
  }
}

/**
 * Longest-prefix-match table for IPv4 and IPv6, generic over the value (a peer). Inserting a
 * prefix that is already present moves it to the new value, as `wg set … allowed-ips` does.
 */
export class AllowedIPs<T> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  private readonly byValue = new Map<T, Set<TrieNode<T>>>();
  private count = 0;

  /** Number of prefixes in the table. */
  get size(): number {
    return this.count;
  }

  /** Map `cidr` to `value`, replacing whichever value held exactly that prefix. */
  insert(cidr: CidrInput, value: T): void {
    const { addr, bits } = toPrefix(cidr);
    const width = addr.length === 4 ? 32 : 128;
    const words = toWords(addr);
    let parent: TrieNode<T> | null = null;
    let node = width === 32 ? this.root4 : this.root6;
    let common = 0;
    // Descend while the node's prefix contains the new one.
    while (node !== null) {
      common = commonBits(node, words, Math.min(node.bits, bits));
      if (common < node.bits) break;
      if (node.bits === bits) {
        this.assign(node, value);
        return;
      }
      parent = node;
      node = bitAt(words, node.bits) === 0 ? node.child0 : node.child1;
    }
    const leaf = new TrieNode<T>(words, bits, width);
    this.assign(leaf, value);
    if (node === null) {
      if (parent === null) this.setRoot(width, leaf);
      else setChild(parent, leaf);
    } else if (common === bits) {
      // The new prefix contains this subtree: it becomes the subtree's new top.
      this.replace(parent, node, leaf);
      setChild(leaf, node);
    } else {
      // The prefixes diverge at bit `common`: branch there with a valueless node.
      const branch = new TrieNode<T>(words, common, width);
      this.replace(parent, node, branch);
      setChild(branch, node);
      setChild(branch, leaf);
    }
  }

  /** Remove exactly this prefix (host bits are ignored). Returns whether it was present. */
  remove(cidr: CidrInput): boolean {
    const { addr, bits } = toPrefix(cidr);
    const words = toWords(addr);
    let node = addr.length === 4 ? this.root4 : this.root6;
    while (node !== null && node.bits <= bits && commonBits(node, words, node.bits) === node.bits) {
      if (node.bits === bits) {
        if (!node.hasValue) return false;
        this.unassign(node);
        return true;
      }
      node = bitAt(words, node.bits) === 0 ? node.child0 : node.child1;
    }
    return false;
  }

  /** Remove every prefix that maps to `value` (a peer leaving). Returns how many. */
  removeByValue(value: T): number {
    const nodes = this.byValue.get(value);
    if (nodes === undefined) return 0;
    const n = nodes.size;
    for (const node of [...nodes]) this.unassign(node);
    return n;
  }

  /** Remove everything. */
  clear(): void {
    this.root4 = null;
    this.root6 = null;
    this.byValue.clear();
    this.count = 0;
  }

  /** Longest-prefix match for a 4- or 16-byte address. */
  lookup(ip: Uint8Array): T | undefined {
    if (ip.length === 4) return this.lookupV4(ip, 0);
    if (ip.length === 16) return this.lookupV6(ip, 0);
    return undefined;
  }

  /**
   * Longest-prefix match for the IPv4 address at `buf[offset..offset+4)`, e.g. offset 16 for
   * an IPv4 header's destination (RFC 791 §3.1) or 12 for its source. Allocates nothing.
   */
  lookupV4(buf: Uint8Array, offset: number): T | undefined {
    if (offset < 0 || offset + 4 > buf.length) return undefined;
    const a = (buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!;
    let found: T | undefined;
    let node = this.root4;
    // A node that does not match rules out its whole subtree, which only extends its prefix.
    while (node !== null && ((a ^ node.w0) & node.m0) === 0) {
      if (node.hasValue) found = node.value;
      if (node.bits === 32) break;
      node = ((a >>> node.bitShift) & 1) === 0 ? node.child0 : node.child1;
    }
    return found;
  }

  /**
   * Longest-prefix match for the IPv6 address at `buf[offset..offset+16)`, e.g. offset 24 for
   * an IPv6 header's destination (RFC 8200 §3) or 8 for its source. Allocates nothing.
   */
  lookupV6(buf: Uint8Array, offset: number): T | undefined {
    if (offset < 0 || offset + 16 > buf.length) return undefined;
    const a0 = readWord(buf, offset);
    const a1 = readWord(buf, offset + 4);
    const a2 = readWord(buf, offset + 8);
    const a3 = readWord(buf, offset + 12);
    let found: T | undefined;
    let node = this.root6;
    while (node !== null) {
      const diff =
        ((a0 ^ node.w0) & node.m0) |
        ((a1 ^ node.w1) & node.m1) |
        ((a2 ^ node.w2) & node.m2) |
        ((a3 ^ node.w3) & node.m3);
      if (diff !== 0) break;
      if (node.hasValue) found = node.value;
      if (node.bits === 128) break;
      const w = node.bitWord;
      const word = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      node = ((word >>> node.bitShift) & 1) === 0 ? node.child0 : node.child1;
    }
    return found;
  }

  /**
   * Prefixes in canonical text (host bits zeroed, RFC 5952 for IPv6), IPv4 first, in address
   * order; only those of `value` unless it is undefined. For status output, not the hot path.
   */
  entries(value?: T): string[] {
    const out: TrieNode<T>[] = [];
    const stack: TrieNode<T>[] = [];
    for (const root of [this.root6, this.root4]) if (root !== null) stack.push(root);
    const wanted = value === undefined ? undefined : this.byValue.get(value);
    if (value !== undefined && wanted === undefined) return [];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.hasValue && (wanted === undefined || wanted.has(node))) out.push(node);
      if (node.child1 !== null) stack.push(node.child1);
      if (node.child0 !== null) stack.push(node.child0);
    }
    return out.map(nodeToCidr);
  }

  private assign(node: TrieNode<T>, value: T): void {
    if (node.hasValue) this.forget(node);
    else this.count++;
    node.value = value;
    node.hasValue = true;
    const set = this.byValue.get(value);
    if (set === undefined) this.byValue.set(value, new Set([node]));
    else set.add(node);
  }

  private forget(node: TrieNode<T>): void {
    const set = this.byValue.get(node.value as T);
    set?.delete(node);
    if (set?.size === 0) this.byValue.delete(node.value as T);
  }

  /** Clear a node's value, then splice out valueless nodes that no longer branch. */
  private unassign(node: TrieNode<T>): void {
    this.forget(node);
    this.count--;
    node.value = undefined;
    node.hasValue = false;
    let cur: TrieNode<T> | null = node;
    while (cur !== null && !cur.hasValue && (cur.child0 === null || cur.child1 === null)) {
      const only = cur.child0 ?? cur.child1;
      const parent: TrieNode<T> | null = cur.parent;
      this.replace(parent, cur, only);
      // Splicing in the only child leaves the parent's fan-out unchanged; removing a leaf
      // may leave a valueless parent with one child, which must go too.
      if (only !== null) break;
      cur = parent;
    }
  }

  /** Put `neu` where `old` hangs (below `parent`, or at the root). */
  private replace(parent: TrieNode<T> | null, old: TrieNode<T>, neu: TrieNode<T> | null): void {
    if (neu !== null) neu.parent = parent;
    if (parent === null) this.setRoot(old.width, neu);
    else if (parent.child0 === old) parent.child0 = neu;
    else parent.child1 = neu;
  }

  private setRoot(width: 32 | 128, node: TrieNode<T> | null): void {
    if (width === 32) this.root4 = node;
    else this.root6 = node;
  }
}

/** Attach `child` below `parent` on the side given by the child's bit at the parent's length. */
function setChild<T>(parent: TrieNode<T>, child: TrieNode<T>): void {
  child.parent = parent;
  if (((child.word(parent.bitWord) >>> parent.bitShift) & 1) === 0) parent.child0 = child;
  else parent.child1 = child;
}

function wordMask(bits: number, i: number): number {
  const r = bits - 32 * i;
  if (r <= 0) return 0;
  if (r >= 32) return -1;
  return (-1 << (32 - r)) | 0;
}

function readWord(buf: Uint8Array, o: number): number {
  return (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
}

function toWords(addr: Uint8Array): number[] {
  const words: number[] = [];
  for (let o = 0; o < addr.length; o += 4) words.push(readWord(addr, o));
  return words;
}

function bitAt(words: readonly number[], pos: number): number {
  return (words[pos >>> 5]! >>> (31 - (pos & 31))) & 1;
}

/** Leading bits that `node`'s prefix and `words` share, at most `max`. */
function commonBits<T>(node: TrieNode<T>, words: readonly number[], max: number): number {
  for (let i = 0; i * 32 < max; i++) {
    const x = node.word(i) ^ words[i]!;
    if (x !== 0) return Math.min(max, i * 32 + Math.clz32(x));
  }
  return max;
}

function nodeToCidr<T>(node: TrieNode<T>): string {
  const n = node.width / 32;
  const addr = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const w = node.word(i);
    addr.set([w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff], i * 4);
  }
  return `${formatIp(addr)}/${node.bits}`;
}

function toPrefix(cidr: CidrInput): { addr: Uint8Array; bits: number } {
  if (typeof cidr === 'string') return parseCidr(cidr);
  const width = cidr.addr.length * 8;
  if (width !== 32 && width !== 128) {
    throw new WireGuardError('BAD_CONFIG', 'an address must be 4 or 16 bytes');
  }
  if (!Number.isInteger(cidr.bits) || cidr.bits < 0 || cidr.bits > width) {
    throw new WireGuardError('BAD_CONFIG', `prefix length must be 0-${width}`);
  }
  return cidr;
}

/**
 * Parse `a.b.c.d[/n]` or an RFC 4291 §2.2 IPv6 address `[/n]`. A bare address is a host
 * prefix (/32, /128). Host bits may be set; the table masks them. Throws BAD_CONFIG.
 */
export function parseCidr(text: string): { addr: Uint8Array; bits: number } {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIp(addrText);
  if (addr === undefined) throw new WireGuardError('BAD_CONFIG', 'not an IPv4 or IPv6 address');
  const width = addr.length * 8;
  if (slash < 0) return { addr, bits: width };
  const bitsText = text.slice(slash + 1);
  const bits = /^(0|[1-9][0-9]{0,2})$/.test(bitsText) ? Number(bitsText) : -1;
  if (bits < 0 || bits > width) throw new WireGuardError('BAD_CONFIG', `prefix length must be 0-${width}`);
  return { addr, bits };
}

/**
 * Parse an IPv4 dotted quad (decimal, no leading zeros, which some parsers read as octal)
 * or an IPv6 address (`::` compression, an embedded IPv4 tail, no zone). Undefined if invalid.
 */
export function parseIp(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseIPv6(input: string): Uint8Array | undefined {
  let text = input;
  let v4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 1 || halves[1] === '' ? [] : halves[1]!.split(':');
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return undefined;
  const groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = Number.parseInt(g, 16);
    out[2 * i] = n >>> 8;
    out[2 * i + 1] = n & 0xff;
  }
  if (v4 !== undefined) out.set(v4, 12);
  return out;
}

/**
 * Format a 4- or 16-byte address. IPv6 follows RFC 5952 §4: lowercase, no leading zeros,
 * `::` for the longest run (the first on a tie) of two or more zero groups, and §5's dotted
 * tail for IPv4-mapped addresses.
 */
export function formatIp(addr: Uint8Array): string {
  if (addr.length === 4) return addr.join('.');
  if (addr.length !== 16) throw new WireGuardError('BAD_CONFIG', 'an address must be 4 or 16 bytes');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${addr.subarray(12).join('.')}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical text of a prefix, host bits zeroed: `10.1.0.0/16`, `fd00::/8`. Throws BAD_CONFIG. */
export function canonicalCidr(cidr: CidrInput): string {
  const { addr, bits } = toPrefix(cidr);
  const masked = addr.slice();
  for (let i = 0; i < masked.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    masked[i]! &= (0xff00 >>> keep) & 0xff;
  }
  return `${formatIp(masked)}/${bits}`;
}
