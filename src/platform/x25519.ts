/**
 * Raw 32-byte X25519 keys as node:crypto KeyObjects, and back. PKCS#8 and SPKI of an X25519 key
 * (RFC 8410 §7 and §4) are a fixed prefix and then the raw bytes, so DER is the portable way in:
 * a JWK would need the public half of a private key (Node 24 insists), and Buffer in a page (the
 * `buffer` package) has no base64url.
 *
 * @example
 * const shared = diffieHellman({ privateKey: x25519PrivateKey(priv), publicKey: x25519PublicKey(pub) });
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** A private KeyObject from 32 raw bytes. */
export function x25519PrivateKey(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

/** A public KeyObject from 32 raw bytes. */
export function x25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The 32 raw bytes of an X25519 KeyObject: the last 32 of its PKCS#8 or SPKI encoding. */
export function x25519Raw(key: KeyObject): Uint8Array {
  const der =
    key.type === 'private'
      ? key.export({ format: 'der', type: 'pkcs8' })
      : key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(-32));
}
