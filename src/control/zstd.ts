/**
 * Just enough Zstandard (RFC 8878) for the map stream. tailscaled always asks for
 * `Compress: "zstd"` and decodes every message with zstd (controlclient/direct.go
 * decodeMsg), so our server must send zstd frames; a frame of Raw blocks (stored, no
 * entropy coding) is valid zstd and needs no compressor. The decoder reads Raw and RLE
 * blocks only, which is what our own server produces; our client asks for no compression.
 */
import { ProtocolError } from './errors.js';

const MAGIC = 0xfd2fb528;
const MAX_BLOCK = 128 * 1024;

/** Whether bytes start with the zstd frame magic. */
export function isZstdFrame(b: Uint8Array): boolean {
  return b.length >= 4 && (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0 === MAGIC;
}

/** A single-segment zstd frame holding `data` in Raw blocks, with the content size declared. */
export function zstdStore(data: Uint8Array): Buffer {
  const nBlocks = Math.max(1, Math.ceil(data.length / MAX_BLOCK));
  // Frame header: descriptor with Single_Segment set and a 4-byte Frame_Content_Size (FCS flag 2).
  const out = Buffer.allocUnsafe(4 + 1 + 4 + nBlocks * 3 + data.length);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = (2 << 6) | (1 << 5);
  out.writeUInt32LE(data.length, 5);
  let o = 9;
  for (let i = 0; i < nBlocks; i++) {
    const chunk = data.subarray(i * MAX_BLOCK, Math.min(data.length, (i + 1) * MAX_BLOCK));
    const last = i === nBlocks - 1 ? 1 : 0;
    const header = last | (0 << 1) | (chunk.length << 3);
    out[o] = header & 0xff;
    out[o + 1] = (header >>> 8) & 0xff;
    out[o + 2] = (header >>> 16) & 0xff;
    out.set(chunk, o + 3);
    o += 3 + chunk.length;
  }
  return out;
}

/** Decodes a zstd frame made only of Raw and RLE blocks; ProtocolError for anything else. */
export function zstdUnstore(frame: Uint8Array, maxSize = 64 << 20): Buffer {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (!isZstdFrame(b)) throw new ProtocolError('zstd: bad magic');
  if (b.length < 5) throw new ProtocolError('zstd: truncated frame header');
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  if ((fhd >> 3) & 1) throw new ProtocolError('zstd: reserved bit set');
  let o = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
  o += [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (o > b.length) throw new ProtocolError('zstd: truncated frame header');
  const parts: Buffer[] = [];
  let size = 0;
  for (;;) {
    if (o + 3 > b.length) throw new ProtocolError('zstd: truncated block header');
    const h = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
    o += 3;
    const last = h & 1;
    const type = (h >> 1) & 3;
    const bsize = h >>> 3;
    if (bsize > MAX_BLOCK) throw new ProtocolError('zstd: block too large');
    if (type === 0) {
      if (o + bsize > b.length) throw new ProtocolError('zstd: truncated raw block');
      parts.push(b.subarray(o, o + bsize));
      o += bsize;
    } else if (type === 1) {
      if (o + 1 > b.length) throw new ProtocolError('zstd: truncated RLE block');
      parts.push(Buffer.alloc(bsize, b[o]!));
      o += 1;
    } else {
      throw new ProtocolError(
        'zstd: compressed blocks are not supported (ask the server for no compression)',
      );
    }
    size += bsize;
    if (size > maxSize) throw new ProtocolError(`zstd: content larger than ${maxSize} bytes`);
    if (last) break;
  }
  if (checksum) o += 4;
  if (o > b.length) throw new ProtocolError('zstd: truncated checksum');
  return Buffer.concat(parts);
}
