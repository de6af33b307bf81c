/**
 * Vectors of transport messages (WireGuard paper §5.4.6) sealed or opened as one burst, so that
 * an engine pays its fixed costs once per burst rather than once per packet, as wireguard-go
 * moves packet vectors through `device/send.go` and `receive.go`. The wasm engine seals and opens
 * a whole vector in one WebAssembly call (wasm/wasm-vector.ts); the others loop here.
 *
 * Both vectors may also offload the Internet checksum (RFC 1071) of the IP packets they carry,
 * as a NIC does: on sealing, complete a transport checksum whose field holds the pseudo-header
 * sum (Linux's CHECKSUM_PARTIAL); on opening, report the sum of each plaintext (CHECKSUM_COMPLETE).
 * The device reads no IP header for that: the stack says where the checksum goes.
 */
import type { SessionKey, TransportAead } from './aead.js';
import { MESSAGE_TRANSPORT_HEADER_SIZE, TAG_SIZE } from './constants.js';

/** Messages this many at most in one vector (a burst: one event-loop turn of one flow, roughly). */
export const VECTOR_CAPACITY = 128;

/**
 * Transport messages to seal in one burst: {@link add} each, {@link seal} once, then read
 * {@link message}. Messages stay valid until {@link clear}; they are the engine's copies, so
 * plaintexts may be reused as soon as `add` returns.
 */
export interface SealVector {
  readonly count: number;
  /** Whether {@link add} may be given `csumStart`/`csumField` (checksum offload). */
  readonly checksumOffload: boolean;
  /**
   * Queues `plaintext`, zero-padded to `paddedLength`, as the next message under `key`. With
   * `csumStart` ≥ 0 the 16-bit field at plaintext offset `csumField` holds a pseudo-header sum, and
   * sealing replaces it with the checksum of the bytes from `csumStart` on. Returns false when the
   * vector is full: seal and clear it, then add again.
   */
  add(
    key: SessionKey,
    receiverIndex: number,
    counter: number,
    plaintext: Uint8Array,
    paddedLength: number,
    csumStart?: number,
    csumField?: number,
  ): boolean;
  /** Seals every queued message. */
  seal(): void;
  /** Sealed message `i`: header, ciphertext and tag. */
  message(i: number): Uint8Array;
  clear(): void;
}

/**
 * Transport messages to open in one burst: {@link add} each, {@link open} once, then read
 * {@link plaintext}. Plaintexts are views of the engine's memory, valid until {@link clear}.
 */
export interface OpenVector {
  readonly count: number;
  /** Whether {@link checksum} reports sums (receive checksum offload). */
  readonly checksumOffload: boolean;
  /** Queues transport message `msg` (header through tag) for `key`; false when the vector is full. */
  add(key: SessionKey, counter: number, msg: Uint8Array): boolean;
  /** Opens every queued message. */
  open(): void;
  /** The plaintext of message `i` (padding included), or undefined if it failed authentication. */
  plaintext(i: number): Uint8Array | undefined;
  /** The one's complement sum (RFC 1071, folded) of plaintext `i`, or -1 when not computed. */
  checksum(i: number): number;
  clear(): void;
}

/** A {@link SealVector} for engines without a vector path: one `seal` call per message, no offload. */
export class LoopSealVector implements SealVector {
  readonly checksumOffload = false;
  private readonly messages: Uint8Array[] = [];
  private readonly jobs: Array<{ key: SessionKey; index: number; counter: number; padded: number }> = [];
  private readonly plaintexts: Uint8Array[] = [];

  constructor(private readonly aead: TransportAead) {}

  get count(): number {
    return this.jobs.length;
  }

  add(
    key: SessionKey,
    receiverIndex: number,
    counter: number,
    plaintext: Uint8Array,
    paddedLength: number,
  ): boolean {
    if (this.jobs.length >= VECTOR_CAPACITY) return false;
    this.jobs.push({ key, index: receiverIndex, counter, padded: paddedLength });
    this.plaintexts.push(plaintext.slice());
    return true;
  }

  seal(): void {
    for (let i = this.messages.length; i < this.jobs.length; i++) {
      const j = this.jobs[i]!;
      this.messages.push(this.aead.seal(j.key, j.index, j.counter, this.plaintexts[i]!, j.padded));
    }
  }

  message(i: number): Uint8Array {
    return this.messages[i]!;
  }

  clear(): void {
    this.jobs.length = 0;
    this.plaintexts.length = 0;
    this.messages.length = 0;
  }
}

/** An {@link OpenVector} for engines without a vector path: one `open` call per message. */
export class LoopOpenVector implements OpenVector {
  readonly checksumOffload = false;
  private readonly jobs: Array<{ key: SessionKey; counter: number; msg: Uint8Array }> = [];
  private readonly plaintexts: Array<Uint8Array | undefined> = [];

  constructor(private readonly aead: TransportAead) {}

  get count(): number {
    return this.jobs.length;
  }

  add(key: SessionKey, counter: number, msg: Uint8Array): boolean {
    if (this.jobs.length >= VECTOR_CAPACITY) return false;
    // A copy: the datagram's buffer may be its transport's, reused before the vector is opened.
    this.jobs.push({ key, counter, msg: msg.slice() });
    return true;
  }

  open(): void {
    for (let i = this.plaintexts.length; i < this.jobs.length; i++) {
      const j = this.jobs[i]!;
      const ok = j.msg.length >= MESSAGE_TRANSPORT_HEADER_SIZE + TAG_SIZE;
      this.plaintexts.push(ok ? (this.aead.open(j.key, j.counter, j.msg) ?? undefined) : undefined);
    }
  }

  plaintext(i: number): Uint8Array | undefined {
    return this.plaintexts[i];
  }

  checksum(): number {
    return -1;
  }

  clear(): void {
    this.jobs.length = 0;
    this.plaintexts.length = 0;
  }
}
