/**
 * DERP framing (derp/derp.go): a 1-byte type, a 4-byte big-endian payload length, then the
 * payload. {@link FrameReader} turns a byte stream into frames, refusing oversized ones before
 * reading their payload; whole frames inside one chunk are handed out without copying.
 */
import { FrameHeaderLen, FrameNames } from './constants.js';
import { DerpError } from './errors.js';

/** Receives one frame; `payload` is owned by the receiver (never reused by the reader). */
export type FrameHandler = (type: number, payload: Buffer) => void;

/**
 * `0x04 (SendPacket)`: a frame type as errors and logs print it.
 *
 * @example
 * frameName(FramePing);   // '0x12 (Ping)'
 */
export function frameName(type: number): string {
  const name = FrameNames[type];
  return `0x${type.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}`;
}

/**
 * Writes a frame header into `buf` at `offset`.
 *
 * @example
 * const b = Buffer.allocUnsafe(5 + 8); writeFrameHeader(b, 0, FramePing, 8);
 */
export function writeFrameHeader(buf: Uint8Array, offset: number, type: number, length: number): void {
  buf[offset] = type;
  buf[offset + 1] = length >>> 24;
  buf[offset + 2] = (length >>> 16) & 0xff;
  buf[offset + 3] = (length >>> 8) & 0xff;
  buf[offset + 4] = length & 0xff;
}

/**
 * A whole frame: header and payload parts concatenated.
 *
 * @example
 * const ka = encodeFrame(FrameKeepAlive);
 */
export function encodeFrame(type: number, ...parts: Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(FrameHeaderLen + len);
  writeFrameHeader(out, 0, type, len);
  let off = FrameHeaderLen;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Frames above this many bytes get memory as their bytes arrive, not when their header does:
 * a header may declare up to the limit (256 KiB before login) and then send nothing.
 */
const PREALLOCATE_MAX = 16 << 10;

/**
 * Incremental frame parser for one connection. Frames larger than `maxFrameLen` throw
 * FRAME_TOO_LARGE as soon as their header is seen (derp.go readFrame checks the limit before
 * reading), so a peer cannot make us buffer more than the limit; and a large frame holds only
 * the bytes received so far (derper allocates the declared ClientInfo length at once).
 *
 * @example
 * const r = new FrameReader((type, payload) => handle(type, payload), 65_600);
 * socket.on('data', (chunk) => r.push(chunk));
 */
export class FrameReader {
  private readonly header = Buffer.alloc(FrameHeaderLen);
  private headerFill = 0;
  /** The frame being read: preallocated (small) or its parts so far (large). */
  private body: Buffer | undefined;
  private parts: Buffer[] | undefined;
  private bodyLen = 0;
  private bodyType = 0;
  private bodyFill = 0;
  private stopped = false;
  /** Bytes consumed so far, for error context. */
  offset = 0;

  constructor(
    private readonly onFrame: FrameHandler,
    /** The largest payload accepted; may be changed between pushes (e.g. after login). */
    public maxFrameLen: number,
  ) {}

  /** Stops delivering frames: later pushes are ignored (the connection is going away). */
  stop(): void {
    this.stopped = true;
  }

  /** Bytes held for the frame being read: its preallocated buffer, or what has arrived of a large one. */
  get heldBytes(): number {
    return this.body?.length ?? this.bodyFill;
  }

  /** True while a frame is partly read: a stream ending now is truncated. */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.bodyLen > 0;
  }

  /** Feeds bytes; calls the handler for each complete frame. Throws DerpError on a bad header. */
  push(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    while (off < n && !this.stopped) {
      if (this.bodyLen > 0) {
        const take = Math.min(this.bodyLen - this.bodyFill, n - off);
        if (this.body !== undefined) chunk.copy(this.body, this.bodyFill, off, off + take);
        else this.parts!.push(Buffer.from(chunk.subarray(off, off + take)));
        this.bodyFill += take;
        off += take;
        if (this.bodyFill === this.bodyLen) {
          const body = this.body ?? Buffer.concat(this.parts!, this.bodyLen);
          this.body = undefined;
          this.parts = undefined;
          this.bodyLen = 0;
          this.offset += FrameHeaderLen + body.length;
          this.onFrame(this.bodyType, body);
        }
        continue;
      }
      if (this.headerFill > 0 || n - off < FrameHeaderLen) {
        const take = Math.min(FrameHeaderLen - this.headerFill, n - off);
        chunk.copy(this.header, this.headerFill, off, off + take);
        this.headerFill += take;
        off += take;
        if (this.headerFill < FrameHeaderLen) return;
        this.headerFill = 0;
        this.begin(this.header[0]!, this.header.readUInt32BE(1), chunk, off);
        off = this.afterBegin;
        continue;
      }
      const type = chunk[off]!;
      const len = chunk.readUInt32BE(off + 1);
      this.begin(type, len, chunk, off + FrameHeaderLen);
      off = this.afterBegin;
    }
  }

  private afterBegin = 0;

  /** Starts a frame whose payload begins at chunk[off]; sets afterBegin to where parsing resumes. */
  private begin(type: number, len: number, chunk: Buffer, off: number): void {
    if (len > this.maxFrameLen) {
      this.stopped = true;
      throw new DerpError(
        'FRAME_TOO_LARGE',
        `frame ${frameName(type)} of ${len} bytes exceeds the limit of ${this.maxFrameLen} (stream offset ${this.offset})`,
      );
    }
    if (chunk.length - off >= len) {
      this.afterBegin = off + len;
      this.offset += FrameHeaderLen + len;
      this.onFrame(type, chunk.subarray(off, off + len));
      return;
    }
    this.bodyType = type;
    this.bodyLen = len;
    if (len <= PREALLOCATE_MAX) this.body = Buffer.allocUnsafe(len);
    else this.parts = [];
    this.bodyFill = 0;
    this.afterBegin = off;
  }
}
