/**
 * Seal and open vectors for the wasm engine: messages are laid out in the module's memory as
 * they are added (a region per vector, BATCH_REGIONS), and one call to `seal_batch` or
 * `open_batch` processes them all, checksums included. Opened plaintexts are handed out as
 * views of that memory, with no copy; sealed messages are copied out once per burst, since a
 * socket may keep them after the call that sent them.
 */
import type { SessionKey } from '../aead.js';
import { MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, TAG_SIZE } from '../constants.js';
import { writeCounter, writeU32 } from '../messages.js';
import { type OpenVector, type SealVector, VECTOR_CAPACITY } from '../vector.js';
import { BATCH_REGIONS, type ChaCha20Poly1305Exports, DESCRIPTOR_SIZE } from './chacha20poly1305.js';

const HEADER = MESSAGE_TRANSPORT_HEADER_SIZE;
type Region = (typeof BATCH_REGIONS)[keyof typeof BATCH_REGIONS];

/** Descriptor fields as 32-bit word indexes (chacha20poly1305.wat, "Batch descriptors"). */
const D_KEY = 0;
const D_P = 1;
const D_LEN = 2;
const D_CTR_LO = 3;
const D_CTR_HI = 4;
const D_CSUM_START = 5; // seal; for open: wantSum
const D_CSUM_FIELD = 6; // seal; for open: the plaintext's sum
const D_RESULT = 7;

/** What both vectors share: the region's cursor, its key slots and the descriptor words. */
abstract class WasmVector {
  readonly checksumOffload = true;
  count = 0;
  protected cursor: number;
  /** Offset of message `i`'s payload, and its length. */
  protected readonly payloads = new Int32Array(VECTOR_CAPACITY);
  protected readonly lengths = new Int32Array(VECTOR_CAPACITY);
  private keySlots = 0;
  private lastKey: SessionKey | undefined;
  private lastKeyAt = 0;

  constructor(
    protected readonly wasm: ChaCha20Poly1305Exports,
    protected readonly mem: Uint8Array,
    protected readonly words: Int32Array,
    protected readonly region: Region,
  ) {
    this.cursor = region.data;
  }

  /** Word index of descriptor `i`. */
  protected descriptor(i: number): number {
    return (this.region.descriptors + i * DESCRIPTOR_SIZE) >> 2;
  }

  /** The key's slot in the region, written once per run of messages under the same key. */
  protected keySlot(key: SessionKey): number {
    if (key !== this.lastKey) {
      this.lastKeyAt = this.region.keys + this.keySlots * 32;
      this.keySlots++;
      this.mem.set(key.raw, this.lastKeyAt);
      this.lastKey = key;
    }
    return this.lastKeyAt;
  }

  /** Whether `total` more bytes and one more descriptor fit. */
  protected fits(total: number): boolean {
    return this.count < VECTOR_CAPACITY && this.cursor + total <= this.region.dataEnd;
  }

  /** Forgets every message and erases the keys written for them (§6.3: no key lingers). */
  clear(): void {
    this.mem.fill(0, this.region.keys, this.region.keys + this.keySlots * 32);
    this.keySlots = 0;
    this.lastKey = undefined;
    this.count = 0;
    this.cursor = this.region.data;
  }
}

/** The wasm {@link SealVector}: plaintexts are copied into module memory behind their headers. */
export class WasmSealVector extends WasmVector implements SealVector {
  private sealed: Uint8Array | undefined;

  constructor(wasm: ChaCha20Poly1305Exports, mem: Uint8Array, words: Int32Array) {
    super(wasm, mem, words, BATCH_REGIONS.seal);
  }

  add(
    key: SessionKey,
    receiverIndex: number,
    counter: number,
    plaintext: Uint8Array,
    paddedLength: number,
    csumStart = -1,
    csumField = -1,
  ): boolean {
    if (this.sealed) throw new RangeError('SealVector: clear() before adding to a sealed vector');
    if (plaintext.length > paddedLength) {
      throw new RangeError(`cannot seal ${plaintext.length} bytes padded to ${paddedLength}`);
    }
    const total = HEADER + paddedLength + TAG_SIZE;
    if (!this.fits(total)) return false;
    const mem = this.mem;
    const at = this.cursor;
    const p = at + HEADER;
    mem[at] = MESSAGE_TRANSPORT;
    mem[at + 1] = 0;
    mem[at + 2] = 0;
    mem[at + 3] = 0;
    writeU32(mem, at + 4, receiverIndex);
    writeCounter(mem, at + 8, counter);
    mem.set(plaintext, p);
    if (paddedLength > plaintext.length) mem.fill(0, p + plaintext.length, p + paddedLength);
    const w = this.words;
    const d = this.descriptor(this.count);
    w[d + D_KEY] = this.keySlot(key);
    w[d + D_P] = p;
    w[d + D_LEN] = paddedLength;
    w[d + D_CTR_LO] = counter >>> 0;
    w[d + D_CTR_HI] = Math.floor(counter / 0x1_0000_0000);
    w[d + D_CSUM_START] = csumStart >= 0 ? p + csumStart : 0;
    w[d + D_CSUM_FIELD] = csumStart >= 0 ? p + csumField : 0;
    this.payloads[this.count] = p;
    this.lengths[this.count] = total;
    this.count++;
    this.cursor = (at + total + 7) & ~7;
    return true;
  }

  seal(): void {
    if (this.count === 0 || this.sealed) return;
    this.wasm.seal_batch(this.region.descriptors, this.count);
    this.sealedElsewhere();
  }

  /** Takes the messages as sealed by another instance on the same memory (a crypto worker, pool/). */
  sealedElsewhere(): void {
    this.sealed = copyOut(this.mem, this.region.data, this.cursor);
  }

  message(i: number): Uint8Array {
    const start = this.payloads[i]! - HEADER - this.region.data;
    return this.sealed!.subarray(start, start + this.lengths[i]!);
  }

  override clear(): void {
    super.clear();
    this.sealed = undefined;
  }
}

/** The wasm {@link OpenVector}: messages are copied into module memory and decrypted there. */
export class WasmOpenVector extends WasmVector implements OpenVector {
  private opened = 0;

  constructor(wasm: ChaCha20Poly1305Exports, mem: Uint8Array, words: Int32Array) {
    super(wasm, mem, words, BATCH_REGIONS.open);
  }

  add(key: SessionKey, counter: number, msg: Uint8Array): boolean {
    const length = msg.length - HEADER - TAG_SIZE;
    if (length < 0) throw new RangeError(`a transport message of ${msg.length} bytes is too short`);
    if (!this.fits(msg.length)) return false;
    const at = this.cursor;
    this.mem.set(msg, at);
    const w = this.words;
    const d = this.descriptor(this.count);
    w[d + D_KEY] = this.keySlot(key);
    w[d + D_P] = at + HEADER;
    w[d + D_LEN] = length;
    w[d + D_CTR_LO] = counter >>> 0;
    w[d + D_CTR_HI] = Math.floor(counter / 0x1_0000_0000);
    w[d + D_CSUM_START] = 1;
    w[d + D_RESULT] = 0;
    this.payloads[this.count] = at + HEADER;
    this.lengths[this.count] = length;
    this.count++;
    this.cursor = (at + msg.length + 7) & ~7;
    return true;
  }

  open(): void {
    if (this.opened === this.count) return;
    this.wasm.open_batch(this.region.descriptors + this.opened * DESCRIPTOR_SIZE, this.count - this.opened);
    this.opened = this.count;
  }

  /** Takes every message as opened by another instance on the same memory (a crypto worker, pool/). */
  openedElsewhere(): void {
    this.opened = this.count;
  }

  plaintext(i: number): Uint8Array | undefined {
    if (i >= this.opened || this.words[this.descriptor(i) + D_RESULT] !== 1) return undefined;
    return new Uint8Array(this.mem.buffer, this.payloads[i], this.lengths[i]);
  }

  checksum(i: number): number {
    return i < this.opened ? this.words[this.descriptor(i) + D_CSUM_FIELD]! : -1;
  }

  override clear(): void {
    super.clear();
    this.opened = 0;
  }
}

const SLAB_SIZE = 256 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabUsed = 0;

/**
 * A copy of mem[start, end) in memory of its own, carved from a shared slab: sealed messages go
 * to sockets, which may hold them past the call, and a slab lives only as long as its packets.
 */
export function copyOut(mem: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (slabUsed + n > SLAB_SIZE) {
    slab = new ArrayBuffer(Math.max(SLAB_SIZE, n));
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  out.set(mem.subarray(start, end));
  slabUsed += (n + 7) & ~7;
  return out;
}
