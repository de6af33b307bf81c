// The browser bundle's stand-ins checked against Node's real modules: X25519 through the crypto shim gives
// node:crypto's keys and shared secrets in the formats the layers use, hashes match, and the page's state
// store round-trips what the state file would hold.
import * as nodeCrypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as shim from '../../src/browser/shims/crypto.js';
import * as net from '../../src/browser/shims/net.js';
import { MemoryStateStore } from '../../src/browser/state.js';
import { encodeState } from '../../src/control/state.js';

describe('crypto shim', () => {
  it('X25519 in DER and JWK as node:crypto, and the same shared secret both ways', () => {
    for (let i = 0; i < 20; i++) {
      const a = nodeCrypto.generateKeyPairSync('x25519');
      const b = shim.generateKeyPairSync('x25519');
      const aPriv = a.privateKey.export({ format: 'der', type: 'pkcs8' });
      const bPub = b.publicKey.export({ format: 'der', type: 'spki' }) as Buffer;
      // The shim reads node's PKCS#8 and derives the same public key.
      const aInShim = shim.createPrivateKey({ key: aPriv, format: 'der', type: 'pkcs8' });
      expect(
        Buffer.from(shim.createPublicKey(aInShim).export({ format: 'der', type: 'spki' }) as Buffer),
      ).toEqual(a.publicKey.export({ format: 'der', type: 'spki' }));
      expect((aInShim.export({ format: 'jwk' }) as { x: string }).x).toBe(
        a.publicKey.export({ format: 'jwk' }).x,
      );
      // node:crypto accepts the shim's SPKI, and both sides agree on the secret.
      const viaNode = nodeCrypto.diffieHellman({
        privateKey: a.privateKey,
        publicKey: nodeCrypto.createPublicKey({ key: bPub, format: 'der', type: 'spki' }),
      });
      const viaShim = shim.diffieHellman({
        privateKey: b.privateKey,
        publicKey: shim.createPublicKey({
          key: a.publicKey.export({ format: 'der', type: 'spki' }),
          format: 'der',
          type: 'spki',
        }),
      });
      expect(viaShim.equals(viaNode)).toBe(true);
    }
  });

  it('sha256, random bytes, randomInt bounds; ChaCha20-Poly1305 is refused', () => {
    expect(shim.createHash('sha256').update('abc').digest('hex')).toBe(
      nodeCrypto.createHash('sha256').update('abc').digest('hex'),
    );
    expect(shim.randomBytes(100_000).length).toBe(100_000);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = shim.randomInt(3, 9);
      expect(v >= 3 && v < 9).toBe(true);
      seen.add(v);
    }
    expect(seen.size).toBe(6);
    expect(() => shim.createCipheriv()).toThrow(/not supported/);
    expect(shim.timingSafeEqual(Buffer.from('ab'), Buffer.from('ab'))).toBe(true);
    expect(shim.timingSafeEqual(Buffer.from('ab'), Buffer.from('ac'))).toBe(false);
  });
});

describe('net shim', () => {
  it('classifies addresses as node:net does', async () => {
    const real = await import('node:net');
    for (const a of [
      '1.2.3.4',
      '255.255.255.255',
      '256.1.1.1',
      '01.2.3.4',
      '::1',
      'fd7a:115c:a1e0::1',
      'fe80::1%eth0',
      'x',
      '',
      '1.2.3',
      '::ffff:1.2.3.4',
    ]) {
      expect([a, net.isIP(a)]).toEqual([a, real.isIP(a)]);
    }
  });
});

describe('MemoryStateStore', () => {
  it('starts fresh, then gives back what was saved', async () => {
    const store = new MemoryStateStore();
    const fresh = await store.loadOrCreate();
    expect(fresh.nodeKey).toBeUndefined();
    fresh.serverURL = 'http://x';
    await store.save(fresh);
    const again = await store.loadOrCreate();
    expect(encodeState(again)).toBe(encodeState(fresh));
  });
});
