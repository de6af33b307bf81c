import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AeadEngineName, transportAead } from '../../src/wireguard/aead.js';
import { randomBytes } from '../../src/wireguard/crypto.js';
import { readCounter } from '../../src/wireguard/messages.js';
import { VECTOR_CAPACITY } from '../../src/wireguard/vector.js';
import { BUF_OFFSET, instantiateChaCha20Poly1305 } from '../../src/wireguard/wasm/chacha20poly1305.js';

/** RFC 1071 by the book: big-endian 16-bit words, an odd last byte padded with zero, folded. */
function referenceSum(b: Uint8Array, from = 0, to = b.length): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

const padTo = (len: number): number => (len % 16 === 0 ? len : len + 16 - (len % 16));
const ENGINES: AeadEngineName[] = ['wasm', 'node', 'noble'];

describe('wasm checksum', () => {
  it('is the RFC 1071 sum for any length and even offset', () => {
    const inst = instantiateChaCha20Poly1305()!;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(64), (data, shift) => {
        const at = BUF_OFFSET + shift * 2;
        inst.memory.set(data, at);
        expect(inst.exports.checksum(at, data.length)).toBe(referenceSum(data));
      }),
      { numRuns: 300 },
    );
  });
});

describe.each(ENGINES)('%s seal and open vectors', (engine) => {
  const aead = transportAead(engine);

  it('seal the same bytes as one seal per message, and open them back', () => {
    const key = aead.prepareKey(randomBytes(32));
    const other = aead.prepareKey(randomBytes(32));
    const tx = aead.sealVector();
    const rx = aead.openVector();
    const plains = Array.from({ length: 40 }, (_, i) => randomBytes((i * 37) % 1400));
    plains.forEach((p, i) => {
      expect(tx.add(i % 3 ? key : other, 7 + i, 1000 + i, p, padTo(p.length))).toBe(true);
    });
    tx.seal();
    for (let i = 0; i < plains.length; i++) {
      const single = aead.seal(i % 3 ? key : other, 7 + i, 1000 + i, plains[i]!, padTo(plains[i]!.length));
      expect(Buffer.from(tx.message(i)).equals(Buffer.from(single))).toBe(true);
      expect(rx.add(i % 3 ? key : other, readCounter(single, 8), tx.message(i))).toBe(true);
    }
    rx.open();
    for (let i = 0; i < plains.length; i++) {
      const got = rx.plaintext(i)!;
      expect(Buffer.from(got.subarray(0, plains[i]!.length)).equals(Buffer.from(plains[i]!))).toBe(true);
      expect(got.subarray(plains[i]!.length).every((b) => b === 0)).toBe(true);
      if (rx.checksumOffload) expect(rx.checksum(i)).toBe(referenceSum(got));
      else expect(rx.checksum(i)).toBe(-1);
    }
    tx.clear();
    rx.clear();
    expect(tx.count).toBe(0);
    expect(rx.count).toBe(0);
  });

  it('reject a forged message without disturbing its neighbours', () => {
    const key = aead.prepareKey(randomBytes(32));
    const rx = aead.openVector();
    const msgs = [0, 1, 2].map((i) => aead.seal(key, 1, i, randomBytes(100), 112));
    msgs[1]![40] = msgs[1]![40]! ^ 1;
    for (const [i, m] of msgs.entries()) rx.add(key, i, m);
    rx.open();
    expect(rx.plaintext(0)).toBeDefined();
    expect(rx.plaintext(1)).toBeUndefined();
    expect(rx.plaintext(2)).toBeDefined();
    // A valid message under the wrong counter (nonce) fails as well.
    rx.clear();
    rx.add(key, 5, msgs[0]!);
    rx.open();
    expect(rx.plaintext(0)).toBeUndefined();
  });

  it(`hold at most ${VECTOR_CAPACITY} messages`, () => {
    const key = aead.prepareKey(randomBytes(32));
    const tx = aead.sealVector();
    const rx = aead.openVector();
    const msg = aead.seal(key, 1, 1, new Uint8Array(16), 16);
    for (let i = 0; i < VECTOR_CAPACITY; i++) {
      expect(tx.add(key, 1, i, new Uint8Array(16), 16)).toBe(true);
      expect(rx.add(key, 1, msg)).toBe(true);
    }
    expect(tx.add(key, 1, 0, new Uint8Array(16), 16)).toBe(false);
    expect(rx.add(key, 1, msg)).toBe(false);
  });
});

describe('wasm seal vector: transmit checksum offload', () => {
  it('completes a checksum field that holds the pseudo-header sum', () => {
    const aead = transportAead('wasm');
    const key = aead.prepareKey(randomBytes(32));
    const tx = aead.sealVector();
    const rx = aead.openVector();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 1400 }),
        fc.integer({ min: 0, max: 0xffff }),
        (data, pseudo) => {
          // A "packet": 20 bytes of header, then a segment whose checksum field is at segment offset 16.
          const packet = new Uint8Array(20 + Math.max(data.length, 18));
          packet.set(data, 20);
          packet[36] = pseudo >>> 8;
          packet[37] = pseudo & 0xff;
          tx.clear();
          rx.clear();
          tx.add(key, 1, 9, packet, padTo(packet.length), 20, 36);
          tx.seal();
          rx.add(key, 9, tx.message(0));
          rx.open();
          const out = rx.plaintext(0)!.subarray(0, packet.length);
          // What a receiver checks: pseudo-header plus segment (checksum field included) sums to all ones.
          const check = referenceSum(out, 20) + pseudo;
          expect(check % 0xffff === 0 && check !== 0).toBe(true);
          expect(out[36]! | out[37]!).not.toBe(0);
          expect(Buffer.from(out.subarray(0, 36)).equals(Buffer.from(packet.subarray(0, 36)))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
