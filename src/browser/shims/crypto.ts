/**
 * node:crypto in the browser bundle: the functions the layers call, on the Web Crypto CSPRNG and
 * the noble libraries. X25519 keys are "KeyObjects" holding raw bytes; ChaCha20-Poly1305 is
 * refused, so platform/native-chacha.ts finds it missing and the engines use WASM or noble.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';

export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let o = 0; o < n; o += 65_536) crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65_536)));
  return out;
}

/** A uniform integer in [min, max) (or [0, min) with one argument), by rejection sampling. */
export function randomInt(min: number, max?: number): number {
  const [lo, hi] = max === undefined ? [0, min] : [min, max];
  const range = hi - lo;
  const limit = Math.floor(0x1_0000_0000 / range) * range;
  const buf = new Uint32Array(1);
  do crypto.getRandomValues(buf);
  while (buf[0]! >= limit);
  return lo + (buf[0]! % range);
}

export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) throw new RangeError('Input buffers must have the same byte length');
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}

export const getHashes = (): string[] => ['sha256'];
export const getCiphers = (): string[] => [];

export function createHash(algorithm: string) {
  if (algorithm !== 'sha256') throw new Error(`hash ${algorithm} is not supported in a web page`);
  const h = sha256.create();
  const api = {
    update(data: Uint8Array | string) {
      h.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
      return api;
    },
    digest(encoding?: 'hex') {
      const d = Buffer.from(h.digest());
      return encoding === 'hex' ? d.toString('hex') : d;
    },
  };
  return api;
}

function noCipher(): never {
  throw new Error('cipher chacha20-poly1305 is not supported here (a web page: WASM or noble instead)');
}
export const createCipheriv = noCipher;
export const createDecipheriv = noCipher;
export const createSecretKey = noCipher;
export const createHmac = (): never => {
  throw new Error('createHmac is not supported in a web page');
};

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** An X25519 key: what the layers do with KeyObjects, on raw bytes. */
class KeyObject {
  constructor(
    readonly type: 'private' | 'public',
    readonly raw: Uint8Array,
  ) {}
  export(opts: { format: 'der' | 'jwk'; type?: string }) {
    const pub = this.type === 'private' ? x25519.getPublicKey(this.raw) : this.raw;
    if (opts.format === 'jwk') {
      const b64 = (b: Uint8Array) =>
        Buffer.from(b).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      return this.type === 'private'
        ? { kty: 'OKP', crv: 'X25519', x: b64(pub), d: b64(this.raw) }
        : { kty: 'OKP', crv: 'X25519', x: b64(pub) };
    }
    return Buffer.concat([
      this.type === 'private' ? PKCS8_PREFIX : SPKI_PREFIX,
      this.type === 'private' ? this.raw : pub,
    ]);
  }
}

type KeyInput =
  | KeyObject
  | { key: Uint8Array; format: 'der'; type: string }
  | { key: { kty: string; crv: string; x?: string; d?: string }; format: 'jwk' };

function rawOf(input: KeyInput, want: 'd' | 'x'): Uint8Array {
  if (input instanceof KeyObject) return input.raw;
  if (input.format === 'der') return new Uint8Array(input.key.subarray(-32));
  const text = input.key[want];
  if (input.key.crv !== 'X25519' || !text) throw new Error('only X25519 keys are supported in a web page');
  return new Uint8Array(Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}

export function createPrivateKey(input: KeyInput): KeyObject {
  return new KeyObject('private', rawOf(input, 'd'));
}

export function createPublicKey(input: KeyInput): KeyObject {
  if (input instanceof KeyObject && input.type === 'private')
    return new KeyObject('public', x25519.getPublicKey(input.raw));
  return new KeyObject('public', rawOf(input, 'x'));
}

export function generateKeyPairSync(type: string): { privateKey: KeyObject; publicKey: KeyObject } {
  if (type !== 'x25519') throw new Error(`key type ${type} is not supported in a web page`);
  const priv = x25519.utils.randomSecretKey();
  return {
    privateKey: new KeyObject('private', priv),
    publicKey: new KeyObject('public', x25519.getPublicKey(priv)),
  };
}

export function diffieHellman(opts: { privateKey: KeyObject; publicKey: KeyObject }): Buffer {
  return Buffer.from(x25519.getSharedSecret(opts.privateKey.raw, opts.publicKey.raw));
}

export type { KeyObject };
