import { x25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WireGuardError } from '../../src/wireguard/errors.js';
import {
  generatePrivateKey,
  keyFromBase64,
  keysEqual,
  keyToBase64,
  keyToHex,
  publicKeyFromPrivate,
} from '../../src/wireguard/keys.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

describe('keys', () => {
  it('derives the RFC 7748 §6.1 public keys and shared secret', () => {
    const alicePriv = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPriv = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const alicePub = publicKeyFromPrivate(alicePriv);
    const bobPub = publicKeyFromPrivate(bobPriv);
    expect(keyToHex(alicePub)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(keyToHex(bobPub)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(Buffer.from(x25519.getSharedSecret(alicePriv, bobPub)).toString('hex')).toBe(shared);
    expect(Buffer.from(x25519.getSharedSecret(bobPriv, alicePub)).toString('hex')).toBe(shared);
  });

  it('generates clamped, distinct private keys', () => {
    const a = generatePrivateKey();
    const b = generatePrivateKey();
    expect(a).toHaveLength(32);
    expect(a[0]! & 7).toBe(0);
    expect(a[31]! & 0xc0).toBe(0x40);
    expect(keysEqual(a, b)).toBe(false);
    expect(publicKeyFromPrivate(a)).toHaveLength(32);
  });

  it('round-trips keys through base64 and decodes a wg(8) key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (k) => {
        const text = keyToBase64(k);
        expect(text).toHaveLength(44);
        expect(keyFromBase64(text)).toEqual(k);
        expect(text).toBe(Buffer.from(k).toString('base64'));
      }),
    );
    // A key printed by `wg genkey` (wireguard-tools) and its `wg pubkey`.
    const priv = keyFromBase64('KJ7JP7lGmAsjued6TYQ+PaY4a9inluCViBfwZcXaXnk=');
    expect(keyToBase64(publicKeyFromPrivate(priv))).toBe('unz5CLNC2c9GhfeoFoPBf6y8RXgdUtnb48j/z41TAk0=');
  });

  it('rejects anything but 44 canonical base64 characters, without echoing them', () => {
    const good = keyToBase64(generatePrivateKey());
    const bad = [
      '',
      good.slice(0, 43),
      `${good}=`,
      `${good.slice(0, 42)}==`,
      `${good.slice(0, 42)}!=`,
      `${good.slice(0, 10)}-${good.slice(11)}`,
      `${good.slice(0, 10)}\u0141${good.slice(11)}`,
      // Last data character with non-zero padding bits: 'B' = 000001.
      `${good.slice(0, 42)}B=`,
      `${good.slice(0, 43)}A`,
    ];
    for (const text of bad) {
      let err: unknown;
      try {
        keyFromBase64(text);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(WireGuardError);
      expect((err as WireGuardError).code).toBe('BAD_KEY');
      if (text.length > 8) expect((err as Error).message).not.toContain(text.slice(0, 8));
    }
  });

  it('compares keys for equality over every byte', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat(31),
        fc.integer({ min: 1, max: 255 }),
        (k, i, x) => {
          expect(keysEqual(k, k.slice())).toBe(true);
          const other = k.slice();
          other[i]! ^= x;
          expect(keysEqual(k, other)).toBe(false);
          expect(keysEqual(other, k)).toBe(false);
        },
      ),
    );
    expect(keysEqual(new Uint8Array(32), new Uint8Array(31))).toBe(false);
    expect(keysEqual(new Uint8Array(33), new Uint8Array(33))).toBe(false);
  });

  it('refuses keys of the wrong length', () => {
    expect(() => publicKeyFromPrivate(new Uint8Array(31))).toThrow(WireGuardError);
    expect(() => keyToBase64(new Uint8Array(33))).toThrow(WireGuardError);
    expect(() => keyToHex(new Uint8Array(0))).toThrow(WireGuardError);
  });
});
