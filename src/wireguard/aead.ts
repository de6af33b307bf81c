/**
 * Transport-data AEAD (WireGuard paper §5.4.6): ChaCha20-Poly1305 with the 64-bit counter
 * as nonce and no associated data. Three interchangeable engines that give the same bytes:
 * node:crypto (native, one createCipheriv per packet), 'wasm' (WebAssembly SIMD, one call
 * per packet: several times less per-packet overhead, see wasm/wasm-aead.ts) and
 * @noble/ciphers (portable fallback). The device picks node:crypto unless told otherwise;
 * benchmarks select any.
 */
import * as nodeCrypto from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { nativeChaCha20Poly1305 } from '../platform/native-chacha.js';
import { MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, TAG_SIZE } from './constants.js';
import { writeCounter, writeU32 } from './messages.js';
import { LoopOpenVector, LoopSealVector, type OpenVector, type SealVector } from './vector.js';
import { WasmAead } from './wasm/wasm-aead.js';

export type AeadEngineName = 'node' | 'noble' | 'wasm';

/** A transport key prepared for its engine (node:crypto wants a KeyObject, made once). */
export interface SessionKey {
  readonly raw: Uint8Array;
  readonly keyObject: nodeCrypto.KeyObject | undefined;
}

export interface TransportAead {
  readonly name: AeadEngineName;
  prepareKey(raw: Uint8Array): SessionKey;
  /**
   * A complete transport message: header (type 4, receiver index, counter) then the
   * encryption of `plaintext` zero-padded to `paddedLength` bytes, then the tag.
   */
  seal(
    key: SessionKey,
    receiverIndex: number,
    counter: number,
    plaintext: Uint8Array,
    paddedLength: number,
  ): Uint8Array;
  /** The plaintext of transport message `msg` (padding included), or null if it fails authentication. */
  open(key: SessionKey, counter: number, msg: Uint8Array): Uint8Array | null;
  /** A new vector for sealing bursts (vector.ts); the device keeps one. */
  sealVector(): SealVector;
  /** A new vector for opening bursts. */
  openVector(): OpenVector;
}

const ZEROS = new Uint8Array(16);

function writeHeader(msg: Uint8Array, receiverIndex: number, counter: number): void {
  msg[0] = MESSAGE_TRANSPORT;
  writeU32(msg, 4, receiverIndex);
  writeCounter(msg, 8, counter);
}

/** The nonce is 4 zero bytes then the counter LE: exactly bytes 4..16 of the header with zeroed index. */
function fillNonce(nonce: Uint8Array, counter: number): void {
  nonce.fill(0, 0, 4);
  writeCounter(nonce, 4, counter);
}

class NodeAead implements TransportAead {
  readonly name = 'node' as const;
  // createCipheriv copies the IV, so one scratch nonce serves every call.
  private readonly nonce = Buffer.alloc(12);

  sealVector(): SealVector {
    return new LoopSealVector(this);
  }

  openVector(): OpenVector {
    return new LoopOpenVector(this);
  }

  prepareKey(raw: Uint8Array): SessionKey {
    return { raw, keyObject: nodeCrypto.createSecretKey(raw) };
  }

  seal(
    key: SessionKey,
    receiverIndex: number,
    counter: number,
    plaintext: Uint8Array,
    paddedLength: number,
  ): Uint8Array {
    fillNonce(this.nonce, counter);
    const c = nodeCrypto.createCipheriv('chacha20-poly1305', key.keyObject!, this.nonce, {
      authTagLength: TAG_SIZE,
    });
    const body = c.update(plaintext);
    const pad =
      paddedLength > plaintext.length
        ? c.update(ZEROS.subarray(0, paddedLength - plaintext.length))
        : undefined;
    c.final();
    const tag = c.getAuthTag();
    const msg = Buffer.allocUnsafe(MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength + TAG_SIZE);
    msg.fill(0, 0, 4);
    writeHeader(msg, receiverIndex, counter);
    msg.set(body, MESSAGE_TRANSPORT_HEADER_SIZE);
    if (pad) msg.set(pad, MESSAGE_TRANSPORT_HEADER_SIZE + body.length);
    msg.set(tag, MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength);
    return msg;
  }

  open(key: SessionKey, counter: number, msg: Uint8Array): Uint8Array | null {
    fillNonce(this.nonce, counter);
    const end = msg.length - TAG_SIZE;
    const d = nodeCrypto.createDecipheriv('chacha20-poly1305', key.keyObject!, this.nonce, {
      authTagLength: TAG_SIZE,
    });
    d.setAuthTag(msg.subarray(end));
    const out = d.update(msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE, end));
    try {
      d.final();
    } catch {
      return null; // authentication failure is an expected outcome for forged or corrupt packets
    }
    return out;
  }
}

class NobleAead implements TransportAead {
  readonly name = 'noble' as const;
  private readonly nonce = new Uint8Array(12);

  sealVector(): SealVector {
    return new LoopSealVector(this);
  }

  openVector(): OpenVector {
    return new LoopOpenVector(this);
  }

  prepareKey(raw: Uint8Array): SessionKey {
    return { raw, keyObject: undefined };
  }

  seal(
    key: SessionKey,
    receiverIndex: number,
    counter: number,
    plaintext: Uint8Array,
    paddedLength: number,
  ): Uint8Array {
    fillNonce(this.nonce, counter);
    const msg = new Uint8Array(MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength + TAG_SIZE);
    const body = msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_HEADER_SIZE + paddedLength);
    body.set(plaintext);
    chacha20poly1305(key.raw, this.nonce).encrypt(body, msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE));
    writeHeader(msg, receiverIndex, counter);
    return msg;
  }

  open(key: SessionKey, counter: number, msg: Uint8Array): Uint8Array | null {
    fillNonce(this.nonce, counter);
    try {
      return chacha20poly1305(key.raw, this.nonce).decrypt(msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE));
    } catch {
      return null;
    }
  }
}

/**
 * The engine by name; `'node'` falls back to WASM, then noble, where node:crypto cannot run
 * ChaCha20-Poly1305 (Bun; tried, see platform/native-chacha.ts), `'wasm'` to the `'node'`
 * choice where WebAssembly SIMD is unavailable.
 */
export function transportAead(name: AeadEngineName = 'node'): TransportAead {
  if (name === 'noble') return new NobleAead();
  if (name === 'node' && nativeChaCha20Poly1305) return new NodeAead();
  return WasmAead.create() ?? (nativeChaCha20Poly1305 ? new NodeAead() : new NobleAead());
}
