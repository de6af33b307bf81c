/**
 * The ts2021 Noise frame layout (control/controlbase/messages.go, conn.go). The initiation
 * has a 5-byte header (protocol version BE16, type, length BE16); every other frame a 3-byte
 * header (type, length BE16). Records are capped at 4096 bytes on the wire.
 */

export const MSG_INITIATION = 1;
export const MSG_RESPONSE = 2;
export const MSG_ERROR = 3;
export const MSG_RECORD = 4;

export const HEADER_LEN = 3;
export const INITIATION_HEADER_LEN = 5;
export const INITIATION_LEN = 101;
export const RESPONSE_LEN = 51;
export const MAX_MESSAGE_SIZE = 4096;
export const MAX_CIPHERTEXT_SIZE = MAX_MESSAGE_SIZE - HEADER_LEN;
export const MAX_PLAINTEXT_SIZE = MAX_CIPHERTEXT_SIZE - 16;

/** A 3-byte-header frame cut from a byte stream. */
export interface Frame {
  type: number;
  body: Buffer;
}

/**
 * Splits a byte stream into 3-byte-header frames. `push` returns the complete frames so far;
 * a frame longer than MAX_MESSAGE_SIZE is refused (a peer may not make us buffer more).
 */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Frame[] = [];
    let off = 0;
    while (this.#pending.length - off >= HEADER_LEN) {
      const len = this.#pending.readUInt16BE(off + 1);
      if (HEADER_LEN + len > MAX_MESSAGE_SIZE) {
        throw new RangeError(
          `Noise frame of ${HEADER_LEN + len} bytes exceeds the ${MAX_MESSAGE_SIZE}-byte limit`,
        );
      }
      if (this.#pending.length - off < HEADER_LEN + len) break;
      frames.push({
        type: this.#pending[off]!,
        body: this.#pending.subarray(off + HEADER_LEN, off + HEADER_LEN + len),
      });
      off += HEADER_LEN + len;
    }
    this.#pending = this.#pending.subarray(off);
    return frames;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.#pending.length;
  }
}

/** A 3-byte header + body frame. */
export function encodeFrame(type: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LEN + body.length);
  out[0] = type;
  out.writeUInt16BE(body.length, 1);
  out.set(body, HEADER_LEN);
  return out;
}
