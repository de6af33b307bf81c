/**
 * The handshake's primitives (WireGuard paper §5.4, "Notation"): HASH = BLAKE2s-256,
 * MAC = keyed BLAKE2s-128, HMAC-BLAKE2s, the HKDF-like KDF_n, AEAD = ChaCha20-Poly1305 with a
 * 64-bit counter nonce, XAEAD = XChaCha20-Poly1305, DH = X25519. Handshakes are rare, so
 * these favour clarity over speed, except DH, which dominates a handshake's cost and uses
 * node:crypto's native X25519 when present.
 */
import * as nodeCrypto from 'node:crypto';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import nacl from 'tweetnacl';
import { x25519PrivateKey, x25519PublicKey, x25519Raw } from '../platform/x25519.js';
import { WireGuardError } from './errors.js';

const EMPTY = new Uint8Array(0);
/** OpenSSL's BLAKE2s is about 2.5× noble's; both give the same bytes (tested). */
const nativeBlake2s = nodeCrypto.getHashes().includes('blake2s256');

/** HASH(parts...) = BLAKE2s-256 over the concatenation. */
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

/** MAC(key, input) = keyed BLAKE2s with a 16-byte output (§5.4.4). */
export function mac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return blake2s(input, { key, dkLen: 16 });
}

function hmacBlake2s(key: Uint8Array, input: Uint8Array): Uint8Array {
  if (nativeBlake2s) return new Uint8Array(nodeCrypto.createHmac('blake2s256', key).update(input).digest());
  return hmac(blake2s, key, input);
}

/** KDF_n(key, input): HKDF (RFC 5869) with HMAC-BLAKE2s, returning n 32-byte outputs. */
export function kdf(n: 1, key: Uint8Array, input: Uint8Array): [Uint8Array];
export function kdf(n: 2, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array];
export function kdf(n: 3, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array];
export function kdf(n: number, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmacBlake2s(key, input);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = EMPTY;
  for (let i = 1; i <= n; i++) {
    const block = new Uint8Array(prev.length + 1);
    block.set(prev);
    block[prev.length] = i;
    prev = hmacBlake2s(prk, block);
    out.push(prev);
  }
  prk.fill(0);
  return out;
}

/** The 12-byte ChaCha20-Poly1305 nonce: 32 zero bits then the counter, little-endian (§5.4.6). */
function counterNonce(counter: number): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(counter), true);
  return nonce;
}

/** AEAD(key, counter, plaintext, aad) for handshake fields. */
export function aeadSeal(
  key: Uint8Array,
  counter: number,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return chacha20poly1305(key, counterNonce(counter), aad).encrypt(plaintext);
}

/** Opens a handshake AEAD field; throws DECRYPT_FAILED when the tag does not verify. */
export function aeadOpen(
  key: Uint8Array,
  counter: number,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  try {
    return chacha20poly1305(key, counterNonce(counter), aad).decrypt(ciphertext);
  } catch {
    throw new WireGuardError('DECRYPT_FAILED', 'handshake field failed authentication');
  }
}

/** XAEAD(key, nonce24, plaintext, aad) for cookie replies (§5.4.7). */
export function xaeadSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

/** Opens a cookie reply's XAEAD field; throws DECRYPT_FAILED when the tag does not verify. */
export function xaeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ciphertext);
  } catch {
    throw new WireGuardError('DECRYPT_FAILED', 'cookie reply failed authentication');
  }
}

const nativeX25519 = typeof nodeCrypto.diffieHellman === 'function';

/*
 * Importing a raw X25519 private key makes OpenSSL derive its public key, which costs more
 * than the DH itself; so KeyObjects are cached per key buffer (static keys are reused for
 * every handshake, and generateKeyPair registers its ephemerals as it makes them).
 */
const privateKeyObjects = new WeakMap<Uint8Array, nodeCrypto.KeyObject>();
const publicKeyObjects = new WeakMap<Uint8Array, nodeCrypto.KeyObject>();

function privateKeyObject(raw: Uint8Array): nodeCrypto.KeyObject {
  let k = privateKeyObjects.get(raw);
  if (!k) {
    k = x25519PrivateKey(raw);
    privateKeyObjects.set(raw, k);
  }
  return k;
}

function publicKeyObject(raw: Uint8Array): nodeCrypto.KeyObject {
  let k = publicKeyObjects.get(raw);
  if (!k) {
    k = x25519PublicKey(raw);
    publicKeyObjects.set(raw, k);
  }
  return k;
}

function nativeDh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(
    nodeCrypto.diffieHellman({
      privateKey: privateKeyObject(privateKey),
      publicKey: publicKeyObject(publicKey),
    }),
  );
}

/**
 * DH(private, public) = X25519. A low-order public key gives the all-zero shared secret;
 * that is rejected, as wireguard-go does (`device/noise-protocol.go`, errInvalidPublicKey).
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = nativeX25519 ? nativeDh(privateKey, publicKey) : nacl.scalarMult(privateKey, publicKey);
  } catch {
    throw new WireGuardError('BAD_KEY', 'X25519 rejected a public key');
  }
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i]!;
  if (acc === 0) throw new WireGuardError('BAD_KEY', 'X25519 produced a zero shared secret (low-order key)');
  return shared;
}

/** A fresh X25519 key pair (the handshake's ephemerals). */
export function generateKeyPair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  if (nativeX25519) {
    const pair = nodeCrypto.generateKeyPairSync('x25519');
    const privateKey = x25519Raw(pair.privateKey);
    const publicKey = x25519Raw(pair.publicKey);
    privateKeyObjects.set(privateKey, pair.privateKey);
    return { privateKey, publicKey };
  }
  const privateKey = randomBytes(32);
  return { privateKey, publicKey: nacl.scalarMult.base(privateKey) };
}

/** Random bytes from the OS CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeCrypto.randomBytes(n));
}

/** Constant-time equality for equal-length secrets and MACs (no early exit). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}

/** TAI64N label of the TAI epoch offset (2^62 + 10 leap seconds), as wireguard-go's tai64n.go. */
const TAI64_BASE = 0x400000000000000an;
/**
 * Nanoseconds are rounded down to 2^24 ns (~16.7 ms) so that an initiation's timestamp does
 * not leak a fine-grained clock (wireguard-go `tai64n/tai64n.go`, whitenerMask).
 */
const WHITENER_MASK = 0x1000000 - 1;

/** The 12-byte TAI64N timestamp of `wallMs` (milliseconds since the Unix epoch). */
export function tai64n(wallMs: number): Uint8Array {
  const out = new Uint8Array(12);
  const dv = new DataView(out.buffer);
  const seconds = Math.floor(wallMs / 1000);
  const nanos = Math.floor((wallMs - seconds * 1000) * 1e6);
  dv.setBigUint64(0, TAI64_BASE + BigInt(seconds), false);
  dv.setUint32(8, nanos - (nanos % (WHITENER_MASK + 1)), false);
  return out;
}

/** Byte-wise big-endian comparison of two timestamps: true when `a` is strictly after `b`. */
export function timestampAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) {
    if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  }
  return false;
}
