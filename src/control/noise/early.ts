/**
 * The optional "early payload" a ts2021 server sends after the handshake and before HTTP/2
 * (control/ts2021/conn.go): 5 magic bytes "\xff\xff\xffTS", a 4-byte big-endian length, then
 * that much JSON (tailcfg.EarlyNoise). The first 9 plaintext bytes are either this header or
 * the start of an HTTP/2 SETTINGS frame, which can never begin with the magic.
 */
import { ProtocolError } from '../errors.js';

export const EARLY_PAYLOAD_MAGIC = Buffer.from([0xff, 0xff, 0xff, 0x54, 0x53]);
const HEADER_LEN = 9;
/** Go refuses early payloads over 10 MiB. */
const MAX_EARLY_PAYLOAD = 10 << 20;

/** tailcfg.EarlyNoise, keeping unknown fields. */
export interface EarlyNoise {
  nodeKeyChallenge?: string;
  [field: string]: unknown;
}

/**
 * Feeds server plaintext; returns the bytes that belong to HTTP/2. Until the first 9 bytes
 * are in, nothing passes; after the payload (or when there is none) everything passes.
 */
export class EarlyPayloadParser {
  #buf: Buffer = Buffer.alloc(0);
  #state: 'header' | 'payload' | 'done' = 'header';
  #payloadLen = 0;
  payload: EarlyNoise | undefined;

  get done(): boolean {
    return this.#state === 'done';
  }

  push(chunk: Buffer): Buffer {
    if (this.#state === 'done') return chunk;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#state === 'header') {
      if (this.#buf.length < HEADER_LEN) return Buffer.alloc(0);
      if (!this.#buf.subarray(0, 5).equals(EARLY_PAYLOAD_MAGIC)) {
        this.#state = 'done';
        const rest = this.#buf;
        this.#buf = Buffer.alloc(0);
        return rest;
      }
      this.#payloadLen = this.#buf.readUInt32BE(5);
      if (this.#payloadLen > MAX_EARLY_PAYLOAD) {
        throw new ProtocolError(`invalid early payload length ${this.#payloadLen}`);
      }
      this.#buf = this.#buf.subarray(HEADER_LEN);
      this.#state = 'payload';
    }
    if (this.#buf.length < this.#payloadLen) return Buffer.alloc(0);
    const json = this.#buf.subarray(0, this.#payloadLen).toString('utf8');
    const rest = this.#buf.subarray(this.#payloadLen);
    this.#buf = Buffer.alloc(0);
    this.#state = 'done';
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      throw new ProtocolError('early payload is not valid JSON', { cause: err });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ProtocolError('early payload is not a JSON object');
    }
    this.payload = parsed as EarlyNoise;
    return rest;
  }
}

/** Encodes an early payload (for our server, which may send one like Headscale does). */
export function encodeEarlyPayload(payload: EarlyNoise): Buffer {
  const json = Buffer.from(JSON.stringify(payload));
  const header = Buffer.alloc(HEADER_LEN);
  EARLY_PAYLOAD_MAGIC.copy(header, 0);
  header.writeUInt32BE(json.length, 5);
  return Buffer.concat([header, json]);
}
