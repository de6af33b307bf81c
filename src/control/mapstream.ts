/**
 * The map stream's framing (controlclient/direct.go sendMapRequest; headscale poll.go
 * writeMap): each message is a 4-byte little-endian length and then that many bytes of JSON,
 * or of zstd when the request asked for it.
 */
import { ProtocolError } from './errors.js';
import { isZstdFrame, zstdStore, zstdUnstore } from './zstd.js';

/** Bigger than any real netmap; a peer may not make us buffer more. */
export const MAX_MAP_MESSAGE = 64 << 20;

/** Cuts a byte stream into map messages (bodies, still possibly compressed). */
export class MapMessageReader {
  #pending: Buffer = Buffer.alloc(0);

  constructor(readonly maxMessage = MAX_MAP_MESSAGE) {}

  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    let off = 0;
    while (this.#pending.length - off >= 4) {
      const len = this.#pending.readUInt32LE(off);
      if (len > this.maxMessage) {
        throw new ProtocolError(`map message of ${len} bytes exceeds the ${this.maxMessage}-byte limit`);
      }
      if (this.#pending.length - off - 4 < len) break;
      out.push(this.#pending.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    this.#pending = this.#pending.subarray(off);
    return out;
  }

  get buffered(): number {
    return this.#pending.length;
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
