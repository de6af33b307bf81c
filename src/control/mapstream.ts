/**
 * The map stream's framing (controlclient/direct.go sendMapRequest; headscale poll.go
 * writeMap): each message is a 4-byte little-endian length and then that many bytes of JSON,
 * or of zstd when the request asked for it.
 */
import { ProtocolError } from './errors.js';
import { isZstdFrame, zstdStore, zstdUnstore } from './zstd.js';

/** Bigger than any real netmap; a peer may not make us buffer more. */
export const MAX_MAP_MESSAGE = 64 << 20;

/**
 * Cuts a byte stream into map messages (bodies, still possibly compressed). Chunks are kept
 * in a list and joined once per message: a 1,000-peer netmap arrives in hundreds of small
 * Noise frames, and joining on every chunk would copy it hundreds of times (tens of MB of
 * short-lived allocations that the process's resident set keeps).
 */
export class MapMessageReader {
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(readonly maxMessage = MAX_MAP_MESSAGE) {}

  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
    }
    const out: Buffer[] = [];
    while (this.#size >= 4) {
      // The 4-byte length may straddle chunks: join just those first (rare, and small).
      if (this.#chunks[0]!.length < 4) this.#chunks = [Buffer.concat(this.#chunks, this.#size)];
      const len = this.#chunks[0]!.readUInt32LE(0);
      if (len > this.maxMessage) {
        throw new ProtocolError(`map message of ${len} bytes exceeds the ${this.maxMessage}-byte limit`);
      }
      if (this.#size - 4 < len) break;
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
      out.push(all.subarray(4, 4 + len));
      const rest = all.subarray(4 + len);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#size = rest.length;
    }
    return out;
  }

  get buffered(): number {
    return this.#size;
  }
}

/** The JSON text of one message body, decompressing our stored-zstd frames. */
export function messageText(body: Buffer): string {
  return (isZstdFrame(body) ? zstdUnstore(body, MAX_MAP_MESSAGE) : body).toString('utf8');
}

/** Frames one message for the wire; `zstd` wraps the JSON in a zstd frame first. */
export function encodeMapMessage(json: string, zstd: boolean): Buffer {
  const raw = Buffer.from(json, 'utf8');
  const body = zstd ? zstdStore(raw) : raw;
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32LE(body.length, 0);
  return Buffer.concat([header, body]);
}
