/**
 * The Noise primitives of ts2021 (control/controlbase/handshake.go): HASH = BLAKE2s-256,
 * HKDF with HMAC-BLAKE2s, ChaCha20-Poly1305, X25519. Records use node:crypto's AEAD, which is
 * several times faster than a pure-JS one, and noble's where the runtime has none (Bun);
 * BLAKE2s comes from OpenSSL when it has it.
 */
import * as nodeCrypto from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { nativeChaCha20Poly1305 } from '../../platform/native-chacha.js';

const nativeBlake2s = nodeCrypto.getHashes().includes('blake2s256');
const EMPTY = new Uint8Array(0);

/** BLAKE2s-256 over the concatenation of parts. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  if (nativeBlake2s) {
    const h = nodeCrypto.createHash('blake2s256');
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  }
  const h = blake2s.create({ dkLen: 32 });
  for (const p of parts) h.update(p);
  return h.digest();
}

function hmacBlake2s(key: Uint8Array, input: Uint8Array): Uint8Array {
  if (nativeBlake2s) return new Uint8Array(nodeCrypto.createHmac('blake2s256', key).update(input).digest());
  return hmac(blake2s, key, input);
}

/** HKDF (RFC 5869) with HMAC-BLAKE2s and an empty info, as Go's hkdf.New(blake2s, ikm, salt, nil). */
export function hkdf2(salt: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const prk = hmacBlake2s(salt, ikm);
  const t1 = hmacBlake2s(prk, Uint8Array.of(1));
  const block = new Uint8Array(33);
  block.set(t1);
  block[32] = 2;
  const t2 = hmacBlake2s(prk, block);
  return [t1, t2];
}

/** The 12-byte nonce: 4 zero bytes then a 64-bit BIG-endian counter (controlbase/conn.go `nonce`). */
export function nonceFor(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(counter, 4);
  return n;
}

/** ChaCha20-Poly1305 seal: ciphertext followed by the 16-byte tag. */
export function seal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Buffer {
  if (!nativeChaCha20Poly1305) {
    const sealed = chacha20poly1305(key, nonce, aad).encrypt(plaintext);
    return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  }
  const c = nodeCrypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  if (aad.length > 0) c.setAAD(aad, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

/** ChaCha20-Poly1305 open; returns undefined when the tag does not verify. */
export function open(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Buffer | undefined {
  if (ciphertext.length < 16) return undefined;
  if (!nativeChaCha20Poly1305) {
    try {
      const body = chacha20poly1305(key, nonce, aad).decrypt(ciphertext);
      return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    } catch {
      return undefined; // noble throws only for a tag that does not verify (lengths are checked above)
    }
  }
  const d = nodeCrypto.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const bodyLen = ciphertext.length - 16;
  d.setAuthTag(ciphertext.subarray(bodyLen));
  if (aad.length > 0) d.setAAD(aad, { plaintextLength: bodyLen });
  const body = d.update(ciphertext.subarray(0, bodyLen));
  try {
    d.final();
  } catch (err) {
    // OpenSSL reports a bad tag as an exception; to callers it is just "did not verify".
    if (err instanceof Error && /auth/i.test(err.message)) return undefined;
    throw err;
  }
  return body;
}
