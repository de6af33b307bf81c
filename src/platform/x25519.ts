/**
 * Raw 32-byte X25519 keys as node:crypto KeyObjects, and back. PKCS#8 and SPKI of an X25519 key
 * (RFC 8410 §7 and §4) are a fixed prefix and then the raw bytes, so DER is the portable way in
 * for a private key: a JWK would need its public half too (Node 24 insists). A public key goes in
 * as a JWK, several times faster to import (Node, Bun, Deno and the page's shim all take it).
 *
 * @example
 * const shared = diffieHellman({ privateKey: x25519PrivateKey(priv), publicKey: x25519PublicKey(pub) });
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A private KeyObject from 32 raw bytes. */
export function x25519PrivateKey(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

/**
 * A public KeyObject from 32 raw bytes. As a JWK, which needs only these bytes for a public key:
 * OpenSSL 3 decodes one in ~15 µs, the same key in DER in ~200 µs (a server imports a peer's
 * keys at every handshake). Base64url by hand, as a page's Buffer lacks it.
 */
export function x25519PublicKey(raw: Uint8Array): KeyObject {
  const x = Buffer.from(raw).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

/** The 32 raw bytes of an X25519 KeyObject: the last 32 of its PKCS#8 or SPKI encoding. */
export function x25519Raw(key: KeyObject): Uint8Array {
  const der =
    key.type === 'private'
      ? key.export({ format: 'der', type: 'pkcs8' })
      : key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(-32));
}
