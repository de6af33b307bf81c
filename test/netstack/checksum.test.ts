import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  finishChecksum,
  foldSum,
  internetChecksum,
  pseudoHeaderSum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  sumBytes,
  updateChecksum,
} from '../../src/netstack/checksum.js';
import { hex, KERNEL_V4_REQUEST, KERNEL_V6_REQUEST } from './vectors.js';

/** A deliberately naive RFC 1071 reference: sum words with BigInt, fold at the end. */
function referenceSum(bytes: Uint8Array): number {
  let sum = 0n;
  for (let i = 0; i < bytes.length; i += 2) sum += BigInt((bytes[i]! << 8) | (bytes[i + 1] ?? 0));
  while (sum > 0xffffn) sum = (sum & 0xffffn) + (sum >> 16n);
  return Number(sum);
}

describe('Internet checksum (RFC 1071)', () => {
  it('matches the worked example of RFC 1071 §3', () => {
    // 00 01 f2 03 f4 f5 f6 f7 sums to ddf2; the checksum is its complement.
    const data = hex('0001f203f4f5f6f7');
    expect(sumBytes(data, 0, data.length)).toBe(0xddf2);
    expect(internetChecksum(data, 0, data.length)).toBe(0x220d);
  });

  it('reproduces the header checksum of a well-known IPv4 header', () => {
    const header = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
    expect(internetChecksum(header, 0, 20)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(internetChecksum(header, 0, 20)).toBe(0);
  });

  it('verifies headers the Linux kernel sent', () => {
    expect(internetChecksum(KERNEL_V4_REQUEST, 0, 20)).toBe(0);
    expect(internetChecksum(KERNEL_V4_REQUEST, 20, 16)).toBe(0);
    const pseudo = pseudoHeaderSum(KERNEL_V6_REQUEST, 8, KERNEL_V6_REQUEST, 24, 16, 58, 16);
    expect(internetChecksum(KERNEL_V6_REQUEST, 40, 16, pseudo)).toBe(0);
  });

  it('pads an odd final byte with zero', () => {
    expect(sumBytes(hex('ab'), 0, 1)).toBe(0xab00);
    expect(sumBytes(hex('0102ab'), 0, 3)).toBe(0xac02);
  });

  it('gives 0xffff (never 0) for the complement of nonzero data', () => {
    expect(finishChecksum(0)).toBe(0xffff);
    expect(foldSum(0x1ffff)).toBe(1);
    expect(foldSum(0xffffffff)).toBe(0xffff);
  });

  it('agrees with a naive reference at any offset and length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const len = (bytes.length - start === 0 ? 0 : b % (bytes.length - start + 1)) | 0;
        expect(sumBytes(bytes, start, len)).toBe(referenceSum(bytes.subarray(start, start + len)));
      }),
      { numRuns: 500 },
    );
  });

  it('handles packets far beyond one fold block (64 KiB of 0xff)', () => {
    const big = new Uint8Array(200_000).fill(0xff);
    expect(sumBytes(big, 0, big.length)).toBe(referenceSum(big));
    expect(sumBytes(big, 1, big.length - 1)).toBe(referenceSum(big.subarray(1)));
  });

  it('chains even-length segments like one pass', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), (bytes, cut) => {
        const split = (cut % (bytes.length + 1)) & ~1;
        const first = sumBytes(bytes, 0, split);
        expect(sumBytes(bytes, split, bytes.length - split, first)).toBe(sumBytes(bytes, 0, bytes.length));
      }),
      { numRuns: 300 },
    );
  });

  it('updates incrementally like a full recompute (RFC 1624)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 2, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (raw, at, word) => {
          const bytes = raw.slice(0, raw.length & ~1);
          const i = (at % (bytes.length / 2)) * 2;
          const before = internetChecksum(bytes, 0, bytes.length);
          const old = (bytes[i]! << 8) | bytes[i + 1]!;
          bytes[i] = word >>> 8;
          bytes[i + 1] = word & 0xff;
          // All-zero data is the one case where no checksum value sums to ±0 both ways; no IP
          // header is all zeros (the version nibble), so it is excluded.
          fc.pre(bytes.some((x) => x !== 0));
          const after = internetChecksum(bytes, 0, bytes.length);
          // RFC 1624 §3: the incremental result may differ from recompute only in the ±0 form.
          const inc = updateChecksum(before, old, word);
          expect(inc === after || (inc ^ after) === 0xffff).toBe(true);
          expect(foldSum(sumBytes(bytes, 0, bytes.length) + inc)).toBe(0xffff);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('sums pseudo-headers like their explicit byte layouts', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0xffff }),
        (s, d, proto, len) => {
          // RFC 793 §3.1: src, dst, zero, PTCL, TCP length.
          const v4 = new Uint8Array([
            ...s.subarray(0, 4),
            ...d.subarray(0, 4),
            0,
            proto,
            len >>> 8,
            len & 0xff,
          ]);
          expect(pseudoHeaderSumV4(s.subarray(0, 4), d.subarray(0, 4), proto, len)).toBe(referenceSum(v4));
          // RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header.
          const v6 = new Uint8Array(40);
          v6.set(s, 0);
          v6.set(d, 16);
          new DataView(v6.buffer).setUint32(32, len);
          v6[39] = proto;
          expect(pseudoHeaderSumV6(s, d, proto, len)).toBe(referenceSum(v6));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sums 64 KiB fast enough for the data path', () => {
    const buf = new Uint8Array(65536).map((_, i) => i * 7);
    const t0 = performance.now();
    let x = 0;
    for (let i = 0; i < 500; i++) x ^= sumBytes(buf, 0, buf.length);
    const mbPerS = (500 * 65536) / 1e6 / ((performance.now() - t0) / 1000);
    expect(x).toBeTypeOf('number');
    // A generous floor: ~1 GB/s is typical here; this only catches an accidental slow path.
    expect(mbPerS).toBeGreaterThan(100);
  });
});
