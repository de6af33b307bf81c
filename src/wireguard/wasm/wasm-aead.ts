/**
 * The 'wasm' transport AEAD engine: ChaCha20-Poly1305 (RFC 8439 §2.8) in WebAssembly SIMD,
 * one wasm call per packet. node:crypto spends most of its ~8 µs per 1420-byte packet in
 * per-call overhead (createCipheriv, update, final, getAuthTag); this engine copies the
 * packet into linear memory once, seals or opens it in place with one call, and copies the
 * result out once. Same bytes as the node and noble engines.
 */
import type { SessionKey, TransportAead } from '../aead.js';
import { MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, TAG_SIZE } from '../constants.js';
import { writeCounter, writeU32 } from '../messages.js';
import type { OpenVector, SealVector } from '../vector.js';
import {
  BUF_CAPACITY,
  BUF_OFFSET,
  type ChaCha20Poly1305Exports,
  instantiateChaCha20Poly1305,
  KEY_OFFSET,
} from './chacha20poly1305.js';
import { copyOut, WasmOpenVector, WasmSealVector } from './wasm-vector.js';

const HEADER = MESSAGE_TRANSPORT_HEADER_SIZE;
const BODY = BUF_OFFSET + HEADER;

/** ChaCha20-Poly1305 in WebAssembly; create with `WasmAead.create()`. */
export class WasmAead implements TransportAead {
  readonly name = 'wasm' as const;
  // A view of linear memory at BODY (plaintext), kept while the length repeats so that steady
  // traffic copies out without allocating a view per packet.
  private bodyView: Uint8Array;
  private readonly words: Int32Array;

  private constructor(
    private readonly wasm: ChaCha20Poly1305Exports,
    private readonly mem: Uint8Array,
  ) {
    this.bodyView = mem.subarray(BODY, BODY);
    this.words = new Int32Array(mem.buffer);
  }

  /** A vector sealed with one call, with transmit checksum offload. */
  sealVector(): SealVector {
    return new WasmSealVector(this.wasm, this.mem, this.words);
  }

  /** A vector opened with one call, plaintexts in place, with receive checksum offload. */
  openVector(): OpenVector {
    return new WasmOpenVector(this.wasm, this.mem, this.words);
  }

  /** A new engine with its own wasm instance, or undefined where WebAssembly SIMD is unavailable. */
  static create(): WasmAead | undefined {
    const instance = instantiateChaCha20Poly1305();
    return instance ? new WasmAead(instance.exports, instance.memory) : undefined;
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
    const total = HEADER + paddedLength + TAG_SIZE;
    if (plaintext.length > paddedLength || total > BUF_CAPACITY) {
      throw new RangeError(`cannot seal ${plaintext.length} bytes padded to ${paddedLength}`);
    }
    const mem = this.mem;
    mem.set(key.raw, KEY_OFFSET);
    mem.set(plaintext, BODY);
    if (paddedLength > plaintext.length) mem.fill(0, BODY + plaintext.length, BODY + paddedLength);
    mem.fill(0, BUF_OFFSET, BUF_OFFSET + 4);
    mem[BUF_OFFSET] = MESSAGE_TRANSPORT;
    writeU32(mem, BUF_OFFSET + 4, receiverIndex);
    writeCounter(mem, BUF_OFFSET + 8, counter);
    // Nonce (WireGuard §5.4.6 / RFC 8439 §2.8): 32 zero bits, then the counter little-endian.
    this.wasm.seal(0, 0, BODY, paddedLength, 0, counter >>> 0, Math.floor(counter / 0x1_0000_0000));
    return copyOut(mem, BUF_OFFSET, BUF_OFFSET + total);
  }

  open(key: SessionKey, counter: number, msg: Uint8Array): Uint8Array | null {
    const length = msg.length - HEADER - TAG_SIZE;
    if (length < 0 || msg.length > BUF_CAPACITY) return null;
    const mem = this.mem;
    mem.set(key.raw, KEY_OFFSET);
    mem.set(msg, BUF_OFFSET);
    const ok = this.wasm.open(0, 0, BODY, length, 0, counter >>> 0, Math.floor(counter / 0x1_0000_0000));
    if (ok !== 1) return null;
    if (this.bodyView.length !== length) this.bodyView = new Uint8Array(mem.buffer, BODY, length);
    const out = Buffer.allocUnsafe(length);
    out.set(this.bodyView);
    return out;
  }
}
