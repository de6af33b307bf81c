/**
 * Curve25519 keys and their text forms (types/key/: machine.go, node.go, disco.go, chal.go):
 * a type prefix and lowercase hex of the 32 raw bytes — `nodekey:`, `mkey:`, `discokey:`,
 * `chalpub:`, and `privkey:` for every private key. Private keys print as `privkey:[redacted]`
 * everywhere except `toStateText()`, so they cannot leak into logs or error messages.
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
// X25519 through node:crypto (OpenSSL), as the WireGuard and DERP layers do: tweetnacl's JavaScript
// ladder took about 2 ms an operation, four of them per ts2021 handshake on the server. Importing
// a key costs too (about 0.9 ms a private key from DER), so each key keeps its KeyObject.
import { x25519PrivateKey, x25519PublicKey, x25519Raw } from '../platform/x25519.js';

/** The KeyObject of each public key that took part in an X25519 operation. */
const publicObjects = new WeakMap<PublicKey, KeyObject>();

/** Which public key this is; the prefix of its text form. */
export type KeyKind = 'node' | 'machine' | 'disco' | 'chal' | 'nl';

const PUBLIC_PREFIX: Record<KeyKind, string> = {
  node: 'nodekey:',
  machine: 'mkey:',
  disco: 'discokey:',
  chal: 'chalpub:',
  nl: 'nlpub:',
};
const PRIVATE_PREFIX = 'privkey:';
const HEX64 = /^[0-9a-f]{64}$/;

/** Thrown for text that is not a key of the expected kind. */
export class KeyParseError extends Error {
  override readonly name = 'KeyParseError';
}

function toHex(raw: Uint8Array): string {
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex');
}

function parseHex(text: string, prefix: string, what: string): Uint8Array {
  if (typeof text !== 'string' || !text.startsWith(prefix)) {
    throw new KeyParseError(`${what}: expected a key starting with '${prefix}'`);
  }
  const hex = text.slice(prefix.length);
  if (!HEX64.test(hex))
    throw new KeyParseError(`${what}: expected 64 lowercase hex digits after '${prefix}'`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** A public key of kind K. Immutable; compare with `equals`. */
export class PublicKey<K extends KeyKind = KeyKind> {
  readonly raw: Uint8Array;
  private constructor(
    readonly kind: K,
    raw: Uint8Array,
  ) {
    if (raw.length !== 32) throw new KeyParseError(`${kind} public key must be 32 bytes, got ${raw.length}`);
    this.raw = new Uint8Array(raw);
  }

  /** From 32 raw bytes (copied). */
  static fromRaw<K extends KeyKind>(kind: K, raw: Uint8Array): PublicKey<K> {
    return new PublicKey(kind, raw);
  }

  /** From its text form, e.g. `nodekey:<hex>`; throws KeyParseError. */
  static parse<K extends KeyKind>(kind: K, text: string): PublicKey<K> {
    return new PublicKey(kind, parseHex(text, PUBLIC_PREFIX[kind], `${kind} key`));
  }

  /** The all-zero key, which Go serialises for unset non-omitted key fields. */
  static zero<K extends KeyKind>(kind: K): PublicKey<K> {
    return new PublicKey(kind, new Uint8Array(32));
  }

  isZero(): boolean {
    return this.raw.every((b) => b === 0);
  }

  equals(other: PublicKey<K> | undefined): boolean {
    return other !== undefined && other.kind === this.kind && Buffer.compare(this.raw, other.raw) === 0;
  }

  toString(): string {
    return PUBLIC_PREFIX[this.kind] + toHex(this.raw);
  }

  toJSON(): string {
    return this.toString();
  }

  /** The 32 bytes in base64, as WireGuard configs write them. */
  toBase64(): string {
    return Buffer.from(this.raw).toString('base64');
  }

  /** A short form for logs, like Go's ShortString: `[abcde]` from the base64. */
  short(): string {
    return `[${this.toBase64().slice(0, 5)}]`;
  }
}

/** A private key. Its public half is derived once; its bytes never appear in text output. */
export class PrivateKey<K extends KeyKind = KeyKind> {
  readonly #raw: Uint8Array;
  readonly #object: KeyObject;
  readonly publicKey: PublicKey<K>;

  private constructor(
    readonly kind: K,
    raw: Uint8Array,
    object?: KeyObject,
  ) {
    if (raw.length !== 32) throw new KeyParseError(`${kind} private key must be 32 bytes`);
    this.#raw = new Uint8Array(raw);
    this.#object = object ?? x25519PrivateKey(this.#raw);
    this.publicKey = PublicKey.fromRaw(kind, x25519Raw(createPublicKey(this.#object)));
  }

  /** A fresh random key (OpenSSL's generator: no DER import needed). */
  static generate<K extends KeyKind>(kind: K): PrivateKey<K> {
    const { privateKey } = generateKeyPairSync('x25519');
    return new PrivateKey(kind, x25519Raw(privateKey), privateKey);
  }

  static fromRaw<K extends KeyKind>(kind: K, raw: Uint8Array): PrivateKey<K> {
    return new PrivateKey(kind, raw);
  }

  /** From `privkey:<hex>` (the state file form); throws KeyParseError without echoing the text. */
  static parse<K extends KeyKind>(kind: K, text: string): PrivateKey<K> {
    return new PrivateKey(kind, parseHex(text, PRIVATE_PREFIX, `${kind} private key`));
  }

  /** X25519(this, peer): the shared secret; a low-order peer key (all-zero result) is refused. */
  sharedSecret(peer: PublicKey): Uint8Array {
    let shared: Uint8Array;
    try {
      let pub = publicObjects.get(peer);
      if (pub === undefined) {
        pub = x25519PublicKey(peer.raw);
        publicObjects.set(peer, pub);
      }
      shared = diffieHellman({ privateKey: this.#object, publicKey: pub });
    } catch (err) {
      // OpenSSL refuses a low-order point itself (RFC 7748 §6.1: an all-zero result).
      throw new KeyParseError(`X25519 with this ${peer.kind} key failed: a low-order key`, { cause: err });
    }
    // Every byte is read whatever it holds: the time taken says nothing about the secret.
    let acc = 0;
    for (const b of shared) acc |= b;
    if (acc === 0) throw new KeyParseError(`X25519 with this ${peer.kind} key gives zero: a low-order key`);
    return shared;
  }

  /** The raw bytes, for the WireGuard layer; handle with care. */
  exportRaw(): Uint8Array {
    return new Uint8Array(this.#raw);
  }

  /** `privkey:<hex>`, only for writing the state file. */
  toStateText(): string {
    return PRIVATE_PREFIX + toHex(this.#raw);
  }

  toString(): string {
    return `${PRIVATE_PREFIX}[redacted]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return `PrivateKey<${this.kind}>(${this.publicKey.short()})`;
  }
}

export type NodePublic = PublicKey<'node'>;
export type MachinePublic = PublicKey<'machine'>;
export type DiscoPublic = PublicKey<'disco'>;
export type NodePrivate = PrivateKey<'node'>;
export type MachinePrivate = PrivateKey<'machine'>;
export type DiscoPrivate = PrivateKey<'disco'>;
