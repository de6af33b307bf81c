/**
 * Curve25519 keys as WireGuard uses them (paper §5.4: static and ephemeral keys are X25519
 * key pairs), and their text forms: base64 as in wg(8) and wg-quick(8) configs, hex as in
 * the cross-platform UAPI.
 */
import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { KEY_SIZE } from './constants.js';
import { WireGuardError } from './errors.js';

/** Length of a 32-byte key in padded base64: 43 data characters and one `=`. */
const BASE64_KEY_LENGTH = 44;

/**
 * A fresh random private key, clamped as RFC 7748 §5 decodes scalars. Clamping here, like
 * `wg genkey` and wireguard-go `NewPrivateKey`, makes the stored key equal to the scalar used.
 */
export function generatePrivateKey(): Uint8Array {
  const key = new Uint8Array(randomBytes(32));
  key[0]! &= 248;
  key[31]! = (key[31]! & 127) | 64;
  return key;
}

/** The X25519 public key for `priv` (RFC 7748 §6.1: scalar multiplication by the base point 9). */
export function publicKeyFromPrivate(priv: Uint8Array): Uint8Array {
  checkLength(priv);
  return nacl.scalarMult.base(priv);
}

/** A 32-byte key as padded standard base64, the form wg(8) prints and configs hold. */
export function keyToBase64(key: Uint8Array): string {
  checkLength(key);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/**
 * Strictly decode a base64 key: exactly 44 characters, the standard alphabet, one trailing
 * `=`, and zero padding bits, as wireguard-tools `key_from_base64` demands. The decode has no
 * data-dependent branches or table lookups (the text may be a private key), and a failure
 * never echoes the input.
 */
export function keyFromBase64(text: string): Uint8Array {
  if (text.length !== BASE64_KEY_LENGTH || text.charCodeAt(43) !== 0x3d) {
    throw new WireGuardError('BAD_KEY', 'not a valid base64 32-byte key');
  }
  const key = new Uint8Array(KEY_SIZE);
  let bad = 0;
  let acc = 0;
  let out = 0;
  // 43 sextets = 258 bits: 32 whole bytes and two padding bits that must be zero.
  for (let i = 0; i < 43; i++) {
    const c = text.charCodeAt(i);
    const v = decodeSextet(c);
    // The mask arithmetic assumes 8-bit input, as C's `char`; wider code units are invalid.
    bad |= (v >>> 31) | (c >>> 8);
    acc = ((acc << 6) | (v & 63)) & 0xffffff;
    if (i % 4 === 3) {
      key[out++] = acc >>> 16;
      key[out++] = (acc >>> 8) & 0xff;
      key[out++] = acc & 0xff;
    }
  }
  // 40 sextets made 30 bytes; the last three hold 18 bits: two bytes and two padding bits.
  key[30] = (acc >>> 10) & 0xff;
  key[31] = (acc >>> 2) & 0xff;
  bad |= acc & 3;
  if (bad !== 0) {
    key.fill(0);
    throw new WireGuardError('BAD_KEY', 'not a valid base64 32-byte key');
  }
  return key;
}

/** A 32-byte key as lowercase hex, the form of the UAPI (`private_key=`, `public_key=`). */
export function keyToHex(key: Uint8Array): string {
  checkLength(key);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/**
 * Constant-time equality of two keys: every byte is compared, whatever differs first, so the
 * time taken says nothing about where two keys diverge. Keys of the wrong length are unequal.
 */
export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== KEY_SIZE || b.length !== KEY_SIZE) return false;
  let diff = 0;
  for (let i = 0; i < KEY_SIZE; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function checkLength(key: Uint8Array): void {
  if (key.length !== KEY_SIZE) throw new WireGuardError('BAD_KEY', `a key must be ${KEY_SIZE} bytes`);
}

/**
 * One base64 character to its 6-bit value, or -1, using only arithmetic on masks (the
 * technique of wireguard-tools encoding.c): each range test yields all-ones or zero.
 */
function decodeSextet(c: number): number {
  let v = -1;
  v += (((0x40 - c) & (c - 0x5b)) >> 8) & (c - 64); // 'A'..'Z' -> 0..25
  v += (((0x60 - c) & (c - 0x7b)) >> 8) & (c - 70); // 'a'..'z' -> 26..51
  v += (((0x2f - c) & (c - 0x3a)) >> 8) & (c + 5); // '0'..'9' -> 52..61
  v += (((0x2a - c) & (c - 0x2c)) >> 8) & 63; // '+' -> 62
  v += (((0x2e - c) & (c - 0x30)) >> 8) & 64; // '/' -> 63
  return v;
}
