import { spawnSync } from 'node:child_process';
import * as nodeCrypto from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeChaCha20Poly1305 } from '../../src/platform/native-chacha.js';
import { transportAead } from '../../src/wireguard/aead.js';
import { randomBytes } from '../../src/wireguard/crypto.js';
import {
  BUF_CAPACITY,
  BUF_OFFSET,
  instantiateChaCha20Poly1305,
  KEY_OFFSET,
  TAG_OFFSET,
} from '../../src/wireguard/wasm/chacha20poly1305.js';
import { devicePair, ipv4, settle } from './helpers.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
/** Key 00 01 .. 1f (RFC 8439 §2.4.2) or 80 81 .. 9f (§2.8.2). */
const keyFrom = (first: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => first + i);
/** The three little-endian nonce words of a 12-byte nonce. */
const words = (nonce: Uint8Array): [number, number, number] => {
  const b = Buffer.from(nonce);
  return [b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8)];
};

function instance() {
  const inst = instantiateChaCha20Poly1305();
  if (!inst) throw new Error('WebAssembly SIMD is unavailable');
  return inst;
}

/**
 * node:crypto's ChaCha20-Poly1305 of a transport message body: ciphertext || tag; noble's where the
 * runtime has no native cipher (Bun).
 */
function nodeSeal(key: Uint8Array, counter: number, plain: Uint8Array): Uint8Array {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(counter >>> 0, 4);
  nonce.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 8);
  if (!nativeChaCha20Poly1305) return chacha20poly1305(key, nonce).encrypt(plain);
  const c = nodeCrypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

const padTo = (len: number): number => (len % 16 === 0 ? len : len + 16 - (len % 16));

describe('wasm ChaCha20-Poly1305: RFC 8439 test vectors', () => {
  it('§2.4.2 ChaCha20 encryption (counter 1)', () => {
    const { exports, memory } = instance();
    memory.set(keyFrom(0), KEY_OFFSET);
    memory.set(SUNSCREEN, BUF_OFFSET);
    exports.chacha20(BUF_OFFSET, SUNSCREEN.length, 1, ...words(hex('000000000000004a00000000')));
    expect(toHex(memory.subarray(BUF_OFFSET, BUF_OFFSET + SUNSCREEN.length))).toBe(
      toHex(
        hex(`6e 2e 35 9a 25 68 f9 80 41 ba 07 28 dd 0d 69 81 e9 7e 7a ec 1d 43 60 c2 0a 27 af cc fd 9f ae 0b
             f9 1b 65 c5 52 47 33 ab 8f 59 3d ab cd 62 b3 57 16 39 d6 24 e6 51 52 ab 8f 53 0c 35 9f 08 61 d8
             07 ca 0d bf 50 0d 6a 61 56 a3 8e 08 8a 22 b6 5e 52 bc 51 4d 16 cc f8 06 81 8c e9 1a b7 79 37 36
             5a f9 0b bf 74 a3 5b e6 b4 0b 8e ed f2 78 5e 42 87 4d`),
      ),
    );
  });

  it('§2.5.2 Poly1305 message authentication', () => {
    const { exports, memory } = instance();
    memory.set(
      hex('85:d6:be:78:57:55:6d:33:7f:44:52:fe:42:d5:06:a8:01:03:80:8a:fb:0d:b2:fd:4a:bf:f6:af:41:49:f5:1b'),
    );
    const msg = new TextEncoder().encode('Cryptographic Forum Research Group');
    memory.set(msg, BUF_OFFSET);
    exports.poly1305(BUF_OFFSET, msg.length);
    expect(toHex(memory.subarray(TAG_OFFSET, TAG_OFFSET + 16))).toBe('a8061dc1305136c6c22b8baf0c0127a9');
  });

  it('§2.8.2 AEAD seal and open, with associated data', () => {
    const { exports, memory } = instance();
    const aad = hex('50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7');
    const nonce = words(hex('07 00 00 00 40 41 42 43 44 45 46 47'));
    const aadAt = BUF_OFFSET + 512;
    const n = SUNSCREEN.length;
    memory.set(keyFrom(0x80), KEY_OFFSET);
    memory.set(aad, aadAt);
    memory.set(SUNSCREEN, BUF_OFFSET);
    exports.seal(aadAt, aad.length, BUF_OFFSET, n, ...nonce);
    expect(toHex(memory.subarray(BUF_OFFSET, BUF_OFFSET + n))).toBe(
      toHex(
        hex(`d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2 a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
             3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b 1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
             92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58 fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
             3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b 61 16`),
      ),
    );
    expect(toHex(memory.subarray(BUF_OFFSET + n, BUF_OFFSET + n + 16))).toBe(
      '1ae10b594f09e26a7e902ecbd0600691',
    );
    expect(exports.open(aadAt, aad.length, BUF_OFFSET, n, ...nonce)).toBe(1);
    expect(toHex(memory.subarray(BUF_OFFSET, BUF_OFFSET + n))).toBe(toHex(SUNSCREEN));
    // a changed byte of associated data fails authentication
    memory.set(SUNSCREEN, BUF_OFFSET);
    exports.seal(aadAt, aad.length, BUF_OFFSET, n, ...nonce);
    memory[aadAt + 3]! ^= 0x80;
    expect(exports.open(aadAt, aad.length, BUF_OFFSET, n, ...nonce)).toBe(0);
  });
});

describe("transport engine 'wasm'", () => {
  const wasm = transportAead('wasm');
  const node = transportAead('node');

  it('is selectable by name', () => {
    expect(wasm.name).toBe('wasm');
  });

  // Chunk edges: block 0 is the Poly1305 key, so the first 4-block chunk carries 192 bytes.
  for (const len of [0, 1, 15, 16, 17, 63, 64, 191, 192, 193, 255, 256, 447, 448, 449, 1420, 1500, 65000]) {
    it(`seals like node:crypto and opens its messages (${len} bytes)`, () => {
      const raw = randomBytes(32);
      const plain = randomBytes(len);
      const padded = padTo(len);
      const counter = 2 ** 40 + len;
      const a = wasm.seal(wasm.prepareKey(raw), 0x01020304, counter, plain, padded);
      const b = node.seal(node.prepareKey(raw), 0x01020304, counter, plain, padded);
      expect(toHex(a)).toBe(toHex(b));
      const want = new Uint8Array(padded);
      want.set(plain);
      expect(toHex(wasm.open(wasm.prepareKey(raw), counter, b)!)).toBe(toHex(want));
    });
  }

  it('equals node:crypto over random keys, counters and lengths 0..1500 (seal and open)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 1500 }),
        fc.boolean(),
        (raw, counter, plain, pad) => {
          const padded = pad ? padTo(plain.length) : plain.length;
          const paddedPlain = new Uint8Array(padded);
          paddedPlain.set(plain);
          const ref = node.seal(node.prepareKey(raw), 7, counter, plain, padded);
          const msg = wasm.seal(wasm.prepareKey(raw), 7, counter, plain, padded);
          expect(toHex(msg)).toBe(toHex(ref));
          // and the body against node:crypto's cipher directly (nonce layout, §2.8)
          expect(toHex(msg.subarray(16))).toBe(toHex(nodeSeal(raw, counter, paddedPlain)));
          expect(toHex(wasm.open(wasm.prepareKey(raw), counter, ref) ?? new Uint8Array(1))).toBe(
            toHex(paddedPlain),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects any flipped bit of ciphertext or tag, a wrong counter, a wrong key, a short message', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (len, at, bit) => {
          const key = wasm.prepareKey(randomBytes(32));
          const msg = wasm.seal(key, 1, 5, randomBytes(len), len);
          const bad = msg.slice();
          bad[16 + (at % (len + 16))]! ^= 1 << bit;
          expect(wasm.open(key, 5, bad)).toBeNull();
          expect(wasm.open(key, 6, msg)).toBeNull();
          expect(wasm.open(wasm.prepareKey(randomBytes(32)), 5, msg)).toBeNull();
          expect(wasm.open(key, 5, msg)).not.toBeNull();
        },
      ),
      { numRuns: 200 },
    );
    const key = wasm.prepareKey(randomBytes(32));
    expect(wasm.open(key, 0, new Uint8Array(31))).toBeNull();
    expect(wasm.open(key, 0, new Uint8Array(BUF_CAPACITY + 1))).toBeNull();
  });

  it('returns messages that later calls do not overwrite', () => {
    const key = wasm.prepareKey(randomBytes(32));
    const plain = randomBytes(1420);
    const first = wasm.seal(key, 1, 1, plain, 1420);
    const copy = first.slice();
    const opened = wasm.open(key, 1, first)!;
    for (let i = 0; i < 200; i++) wasm.open(key, 2, wasm.seal(key, 1, 2, randomBytes(1420), 1420));
    expect(toHex(first)).toBe(toHex(copy));
    expect(toHex(opened)).toBe(toHex(plain));
  });

  it('refuses a message larger than its memory', () => {
    const key = wasm.prepareKey(randomBytes(32));
    expect(() => wasm.seal(key, 1, 1, new Uint8Array(0), BUF_CAPACITY)).toThrow(RangeError);
  });
});

describe("a device with aead: 'wasm'", () => {
  it('carries packets both ways', async () => {
    const p = devicePair({ device: { aead: 'wasm' } });
    const out = ipv4('10.0.0.1', '10.0.0.2', randomBytes(1300));
    p.a.writePacket(out);
    await settle();
    expect(p.received.b).toEqual([out]);
    const back = ipv4('10.0.0.2', '10.0.0.1', new Uint8Array(100).fill(7));
    p.b.writePacket(back);
    await settle();
    expect(p.received.a).toEqual([back]);
    await p.close();
  });
});

describe('generated chacha20poly1305.wasm.ts', () => {
  it('is up to date with chacha20poly1305.wat (scripts/build-wasm.mjs --check)', (ctx) => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const res = spawnSync(process.execPath, [join(root, 'scripts', 'build-wasm.mjs'), '--check'], {
      encoding: 'utf8',
    });
    const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
    if (res.status === 2 && !ci) ctx.skip('wabt is not installed');
    expect(`${res.stdout}${res.stderr}`).toContain('up to date');
    expect(res.status).toBe(0);
  });
});
