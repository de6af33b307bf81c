import { describe, expect, it } from 'vitest';
import { nativeChaCha20Poly1305 } from '../../src/platform/native-chacha.js';
import { transportAead } from '../../src/wireguard/aead.js';
import { randomBytes } from '../../src/wireguard/crypto.js';

describe('transport AEAD engines', () => {
  const node = transportAead('node');
  const noble = transportAead('noble');

  it('node:crypto is used when it runs ChaCha20-Poly1305, else WASM (Bun)', () => {
    expect(node.name).toBe(nativeChaCha20Poly1305 ? 'node' : 'wasm');
    expect(noble.name).toBe('noble');
  });

  for (const len of [0, 1, 15, 16, 17, 1420]) {
    it(`give identical bytes and open each other's output (${len} bytes)`, () => {
      const raw = randomBytes(32);
      const kn = node.prepareKey(raw);
      const kb = noble.prepareKey(raw);
      const plain = randomBytes(len);
      const padded = len % 16 === 0 ? len : len + 16 - (len % 16);
      const a = node.seal(kn, 0x01020304, 77, plain, padded);
      const b = noble.seal(kb, 0x01020304, 77, plain, padded);
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
      expect(a.length).toBe(16 + padded + 16);
      const want = new Uint8Array(padded);
      want.set(plain);
      expect(new Uint8Array(node.open(kn, 77, b)!)).toEqual(want);
      expect(new Uint8Array(noble.open(kb, 77, a)!)).toEqual(want);
    });
  }

  it('reject a flipped bit, a wrong counter and a wrong key', () => {
    for (const e of [node, noble]) {
      const k = e.prepareKey(randomBytes(32));
      const m = e.seal(k, 1, 5, randomBytes(64), 64);
      const bad = m.slice();
      bad[20]! ^= 1;
      expect(e.open(k, 5, bad)).toBeNull();
      expect(e.open(k, 6, m)).toBeNull();
      expect(e.open(e.prepareKey(randomBytes(32)), 5, m)).toBeNull();
    }
  });
});
