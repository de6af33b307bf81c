/**
 * Node keys as DERP uses them (Curve25519, as types/key/node.go) and the NaCl box that seals
 * ClientInfo and ServerInfo (key.NodePrivate.SealTo/OpenFrom: a random 24-byte nonce, then
 * crypto_box). X25519 runs in node:crypto (native); HSalsa20 and XSalsa20-Poly1305 come from
 * tweetnacl, so the box is byte-for-byte NaCl's.
 */

import type { KeyObject } from 'node:crypto';
import {
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import nacl from 'tweetnacl';
import { x25519PrivateKey, x25519PublicKey, x25519Raw } from '../platform/x25519.js';
import { KeyLen, NonceLen } from './constants.js';
import { DerpError } from './errors.js';

interface NaclLowLevel {
  crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { lowlevel: NaclLowLevel }).lowlevel;
/** "expand 32-byte k", the Salsa20 constant crypto_box_beforenm uses. */
const SIGMA = new Uint8Array([101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107]);
const ZERO16 = new Uint8Array(16);

/** A node key pair: 32 raw bytes each, as on the wire. */
export interface NodeKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * A fresh random node key pair.
 *
 * @example
 * const { privateKey, publicKey } = generateNodeKeyPair();
 */
export function generateNodeKeyPair(): NodeKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey: x25519Raw(privateKey), publicKey: x25519Raw(publicKey) };
}

/**
 * KeyObjects of the private keys used so far, by array: OpenSSL's DER import takes about 0.9 ms,
 * and a relay would pay it for its own key at every client login. The bytes are compared on
 * each use, so an array changed in place is imported again.
 */
const privateObjects = new WeakMap<Uint8Array, { bytes: Uint8Array; object: KeyObject }>();

function privateKeyObject(priv: Uint8Array): KeyObject {
  checkKey(priv, 'private key');
  const known = privateObjects.get(priv);
  if (known !== undefined && timingSafeEqual(known.bytes, priv)) return known.object;
  const object = x25519PrivateKey(priv);
  privateObjects.set(priv, { bytes: new Uint8Array(priv), object });
  return object;
}

function publicKeyObject(pub: Uint8Array): KeyObject {
  checkKey(pub, 'public key');
  return x25519PublicKey(pub);
}

/**
 * The public key of a raw X25519 private key.
 *
 * @example
 * const pub = nodePublicKey(priv);
 */
export function nodePublicKey(priv: Uint8Array): Uint8Array {
  return x25519Raw(createPublicKey(privateKeyObject(priv)));
}

function checkKey(k: Uint8Array, what: string): void {
  if (k.length !== KeyLen) throw new DerpError('BAD_KEY', `${what} must be ${KeyLen} bytes, got ${k.length}`);
}

/**
 * Lower-case hex of a key: the form derper prints and our endpoint keys use.
 *
 * @example
 * keyToHex(publicKey);   // '3f…'
 */
export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/**
 * Parses 64 hex digits, optionally prefixed `nodekey:` or `privkey:` (types/key text forms).
 *
 * @example
 * keyFromHex('nodekey:' + '00'.repeat(32));
 */
export function keyFromHex(text: string): Uint8Array {
  const hex = text.replace(/^(nodekey|privkey|mkey):/, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new DerpError('BAD_KEY', 'not a 64-digit hex key');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * A short, non-secret fingerprint of a public key for logs (like key.NodePublic.ShortString).
 *
 * @example
 * log.info(`client ${fingerprint(publicKey)} connected`);
 */
export function fingerprint(pub: Uint8Array): string {
  return `[${Buffer.from(pub.subarray(0, 4)).toString('base64').slice(0, 5)}]`;
}

/**
 * A precomputed NaCl box between one private and one public key (crypto_box_beforenm):
 * seal and open reuse it, so a connection pays for one X25519.
 *
 * @example
 * const box = NaclBox.between(myPrivate, theirPublic);
 * const sealed = box.seal(new TextEncoder().encode('{}'));   // nonce || box
 * box.open(sealed);
 */
export class NaclBox {
  private constructor(private readonly shared: Uint8Array) {}

  static between(priv: Uint8Array, pub: Uint8Array): NaclBox {
    checkKey(priv, 'private key');
    checkKey(pub, 'public key');
    let raw: Buffer;
    try {
      raw = diffieHellman({ privateKey: privateKeyObject(priv), publicKey: publicKeyObject(pub) });
    } catch (err) {
      // OpenSSL refuses low-order points (an all-zero shared secret): no box can be made.
      throw new DerpError('BAD_BOX', 'X25519 with this public key failed (low-order point?)', { cause: err });
    }
    const k = new Uint8Array(32);
    lowlevel.crypto_core_hsalsa20(k, ZERO16, new Uint8Array(raw), SIGMA);
    return new NaclBox(k);
  }

  /** nonce (24 random bytes) followed by the sealed message, as key.NodePrivate.SealTo. */
  seal(msg: Uint8Array): Uint8Array {
    const nonce = new Uint8Array(randomBytes(NonceLen));
    const boxed = nacl.secretbox(msg, nonce, this.shared);
    const out = new Uint8Array(NonceLen + boxed.length);
    out.set(nonce, 0);
    out.set(boxed, NonceLen);
    return out;
  }

  /** Opens `nonce || box`; throws BAD_BOX when it does not authenticate. */
  open(sealed: Uint8Array): Uint8Array {
    if (sealed.length < NonceLen + nacl.secretbox.overheadLength) {
      throw new DerpError('BAD_BOX', `sealed message too short (${sealed.length} bytes)`);
    }
    const msg = nacl.secretbox.open(sealed.subarray(NonceLen), sealed.subarray(0, NonceLen), this.shared);
    if (!msg) throw new DerpError('BAD_BOX', 'box does not open with this key pair');
    return msg;
  }
}
