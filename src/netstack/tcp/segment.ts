/**
 * The TCP header and its options (RFC 9293 §3.1; MSS §3.7.1, window scale and timestamps
 * RFC 7323 §2–3, SACK RFC 2018 §2–3): parsing in place into a reusable object, and writing.
 */
import { endianness } from 'node:os';
import { finishChecksum, foldSum, sumBytes } from '../checksum.js';
import { NetstackError } from '../errors.js';

/** Control bits (RFC 9293 §3.1). */
export const TcpFlag = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 } as const;

/** Header length without options. */
export const TCP_HEADER_LENGTH = 20;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;

/**
 * A parsed segment. One instance is reused for every received segment, so nothing here may be
 * kept past the handler: payload bytes are offsets into the packet's buffer.
 */
export class TcpSegment {
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  /** The raw 16-bit window field, not yet scaled. */
  window = 0;
  buf: Uint8Array = new Uint8Array(0);
  dataOffset = 0;
  dataLength = 0;
  /** MSS option value, or 0 when absent. */
  mss = 0;
  /** Window scale shift, or -1 when absent. */
  wscale = -1;
  sackPermitted = false;
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  /** SACK blocks as flat [left, right) pairs. */
  readonly sack: number[] = [];

  /** Sequence space the segment occupies: data, plus one each for SYN and FIN. */
  get seqLength(): number {
    return this.dataLength + (this.flags & TcpFlag.SYN ? 1 : 0) + (this.flags & TcpFlag.FIN ? 1 : 0);
  }
}

function malformed(why: string): NetstackError {
  return new NetstackError('MALFORMED_PACKET', `TCP: ${why}`);
}

/**
 * Parses the TCP segment at `buf[offset, offset+length)` into `seg`. The checksum is the
 * caller's (it needs the pseudo-header). Unknown options are skipped (RFC 9293 §3.1 MUST-6).
 */
export function parseTcpSegment(seg: TcpSegment, buf: Uint8Array, offset: number, length: number): void {
  if (length < TCP_HEADER_LENGTH) throw malformed(`${length} bytes is shorter than a header`);
  const hl = (buf[offset + 12]! >>> 4) * 4;
  if (hl < TCP_HEADER_LENGTH || hl > length) throw malformed(`data offset ${hl} out of range`);
  seg.srcPort = (buf[offset]! << 8) | buf[offset + 1]!;
  seg.dstPort = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  seg.seq = readU32(buf, offset + 4);
  seg.ack = readU32(buf, offset + 8);
  seg.flags = buf[offset + 13]!;
  seg.window = (buf[offset + 14]! << 8) | buf[offset + 15]!;
  seg.buf = buf;
  seg.dataOffset = offset + hl;
  seg.dataLength = length - hl;
  seg.mss = 0;
  seg.wscale = -1;
  seg.sackPermitted = false;
  seg.hasTimestamp = false;
  seg.sack.length = 0;
  let p = offset + TCP_HEADER_LENGTH;
  const end = offset + hl;
  while (p < end) {
    const kind = buf[p]!;
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      p++;
      continue;
    }
    if (p + 1 >= end) throw malformed('option runs past the header');
    const len = buf[p + 1]!;
    if (len < 2 || p + len > end) throw malformed(`option ${kind} has length ${len}`);
    if (kind === OPT_MSS && len === 4) seg.mss = (buf[p + 2]! << 8) | buf[p + 3]!;
    else if (kind === OPT_WSCALE && len === 3)
      seg.wscale = Math.min(buf[p + 2]!, 14); // RFC 7323 §2.3
    else if (kind === OPT_SACK_PERMITTED && len === 2) seg.sackPermitted = true;
    else if (kind === OPT_TIMESTAMP && len === 10) {
      seg.hasTimestamp = true;
      seg.tsVal = readU32(buf, p + 2);
      seg.tsEcr = readU32(buf, p + 6);
    } else if (kind === OPT_SACK && (len - 2) % 8 === 0) {
      for (let q = p + 2; q < p + len; q += 8) seg.sack.push(readU32(buf, q), readU32(buf, q + 4));
    }
    p += len;
  }
}

/** What {@link writeTcpHeader} puts in a segment's header. */
export interface TcpHeaderFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** SYN options: MSS, and window scale / SACK-permitted / timestamps when offered. */
  synMss?: number;
  synWscale?: number;
  synSack?: boolean;
  /** Timestamps option, when the connection uses them. */
  tsVal?: number;
  tsEcr?: number;
  /** SACK blocks as flat [left, right) pairs (at most 3 with timestamps, 4 without). */
  sack?: readonly number[];
  sackCount?: number;
}

/** Bytes of options {@link writeTcpHeader} writes for these fields (a multiple of 4). */
export function optionsLength(f: TcpHeaderFields): number {
  let n = 0;
  if (f.synMss !== undefined) {
    n += 4;
    if (f.synWscale !== undefined) n += 4;
    if (f.synSack) n += f.tsVal !== undefined ? 0 : 4; // packed with the timestamp when both
  }
  if (f.tsVal !== undefined) n += 12;
  const blocks = f.sackCount ?? 0;
  if (blocks > 0) n += 4 + 8 * blocks;
  return n;
}

/**
 * Writes the header and options at `offset` (the layout Linux uses, so middleboxes see nothing
 * unusual) and returns the header length. The checksum field is left zero; see {@link setTcpChecksum}.
 */
export function writeTcpHeader(buf: Uint8Array, offset: number, f: TcpHeaderFields): number {
  const hl = TCP_HEADER_LENGTH + optionsLength(f);
  buf[offset] = f.srcPort >>> 8;
  buf[offset + 1] = f.srcPort & 0xff;
  buf[offset + 2] = f.dstPort >>> 8;
  buf[offset + 3] = f.dstPort & 0xff;
  writeU32(buf, offset + 4, f.seq);
  writeU32(buf, offset + 8, f.ack);
  buf[offset + 12] = (hl / 4) << 4;
  buf[offset + 13] = f.flags;
  buf[offset + 14] = (f.window >>> 8) & 0xff;
  buf[offset + 15] = f.window & 0xff;
  buf[offset + 16] = 0;
  buf[offset + 17] = 0;
  buf[offset + 18] = 0;
  buf[offset + 19] = 0;
  let p = offset + TCP_HEADER_LENGTH;
  if (f.synMss !== undefined) {
    buf[p++] = OPT_MSS;
    buf[p++] = 4;
    buf[p++] = f.synMss >>> 8;
    buf[p++] = f.synMss & 0xff;
    if (f.synSack && f.tsVal === undefined) {
      buf.set([OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2], p);
      p += 4;
    }
  }
  if (f.tsVal !== undefined) {
    const packSack = f.synMss !== undefined && f.synSack;
    buf[p++] = packSack ? OPT_SACK_PERMITTED : OPT_NOP;
    buf[p++] = packSack ? 2 : OPT_NOP;
    buf[p++] = OPT_TIMESTAMP;
    buf[p++] = 10;
    writeU32(buf, p, f.tsVal);
    writeU32(buf, p + 4, f.tsEcr ?? 0);
    p += 8;
  }
  if (f.synMss !== undefined && f.synWscale !== undefined) {
    buf.set([OPT_NOP, OPT_WSCALE, 3, f.synWscale], p);
    p += 4;
  }
  const blocks = f.sackCount ?? 0;
  if (blocks > 0 && f.sack) {
    buf.set([OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * blocks], p);
    p += 4;
    for (let i = 0; i < blocks * 2; i++, p += 4) writeU32(buf, p, f.sack[i]!);
  }
  return hl;
}

/**
 * Fills in the checksum of the `length`-byte segment at `offset`, given the pseudo-header's
 * address sum (source and destination words only; protocol and length are added here).
 */
export function setTcpChecksum(buf: Uint8Array, offset: number, length: number, addressSum: number): void {
  buf[offset + 16] = 0;
  buf[offset + 17] = 0;
  const c = finishChecksum(fastSum(buf, offset, length, addressSum + 6 + length));
  buf[offset + 16] = c >>> 8;
  buf[offset + 17] = c & 0xff;
}

/**
 * For transmit checksum offload: puts the pseudo-header sum of the `length`-byte segment at
 * `offset` in its checksum field, for the link to complete (PacketLink.txChecksumOffload).
 */
export function setPseudoHeaderSum(
  buf: Uint8Array,
  offset: number,
  length: number,
  addressSum: number,
): void {
  const sum = foldSum(addressSum + 6 + length);
  buf[offset + 16] = sum >>> 8;
  buf[offset + 17] = sum & 0xff;
}

function readU32(buf: Uint8Array, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

function writeU32(buf: Uint8Array, p: number, v: number): void {
  buf[p] = v >>> 24;
  buf[p + 1] = (v >>> 16) & 0xff;
  buf[p + 2] = (v >>> 8) & 0xff;
  buf[p + 3] = v & 0xff;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * {@link sumBytes} for the hot path: 32 bits per load where the data is 4-byte aligned. The
 * one's complement sum is byte-order independent (RFC 1071 §2(B)), so little-endian words are
 * summed as they are and the folded result swapped once; 2^16 ≡ 1 (mod 2^16 − 1), so 32-bit
 * words fold like pairs of 16-bit ones (§2(C)).
 */
export function fastSum(buf: Uint8Array, offset: number, length: number, initial: number): number {
  const start = buf.byteOffset + offset;
  if (!LITTLE_ENDIAN || (start & 3) !== 0 || length < 64) return sumBytes(buf, offset, length, initial);
  const words = length >>> 2;
  const view = new Uint32Array(buf.buffer, start, words);
  let sum = 0;
  for (let i = 0; i < words; i++) sum += view[i]!;
  const folded = foldSum(sum);
  const swapped = ((folded & 0xff) << 8) | (folded >>> 8);
  return sumBytes(buf, offset + words * 4, length & 3, swapped + initial);
}
