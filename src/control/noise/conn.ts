/**
 * The Noise transport as a stream.Duplex (control/controlbase/conn.go): plaintext written is
 * cut into records of at most 4077 bytes, sealed with ChaCha20-Poly1305 under a counter nonce,
 * and framed with a 3-byte header; received records are opened in order. Any bad record is
 * fatal, as in Go, because the nonces would desynchronise. node:http2 runs over this Duplex.
 */
import { Duplex } from 'node:stream';
import { ProtocolError } from '../errors.js';
import { nonceFor, open, seal } from './crypto.js';
import { type EarlyNoise, EarlyPayloadParser } from './early.js';
import { FrameReader, HEADER_LEN, MAX_PLAINTEXT_SIZE, MSG_RECORD } from './frames.js';
import type { TransportKeys } from './handshake.js';

const MAX_NONCE = (1n << 64n) - 1n;

export interface NoiseConnOptions {
  /** Bytes already read from the socket after the handshake (they start the record stream). */
  initial?: Buffer;
  /** Strip the server's early payload (client side) and emit it as 'early'. */
  parseEarlyPayload?: boolean;
  /** Written before any other plaintext (server side: an early payload). */
  earlyWrite?: Buffer;
}

/** The encrypted channel over a connected socket, after the handshake. */
export class NoiseConn extends Duplex {
  readonly #socket: Duplex;
  readonly #keys: TransportKeys;
  readonly #frames = new FrameReader();
  #txNonce = 0n;
  #rxNonce = 0n;
  #early: EarlyPayloadParser | undefined;
  /** True until the bytes read with the handshake are opened: the socket must not flow before. */
  #holding = false;
  /** The early payload the server sent, once seen ('early' is emitted then). */
  earlyPayload: EarlyNoise | undefined;

  constructor(socket: Duplex, keys: TransportKeys, opts: NoiseConnOptions = {}) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#keys = keys;
    if (opts.parseEarlyPayload) this.#early = new EarlyPayloadParser();
    // Records must be opened in order. The socket stays paused until the bytes read with the
    // handshake are in: resume() flows what the socket buffered meanwhile on a nextTick, which
    // runs before a microtask, so resuming first would open a later record before `initial`.
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
    if (opts.earlyWrite) socket.write(this.#sealRecords(opts.earlyWrite));
    const initial = opts.initial;
    if (initial && initial.length > 0) {
      this.#holding = true;
      queueMicrotask(() => {
        this.#holding = false;
        this.#onData(initial);
        if (this.readableLength < this.readableHighWaterMark) socket.resume();
      });
    } else {
      socket.resume();
    }
  }

  /** Local/remote addresses of the socket underneath, for logs and http2's bookkeeping. */
  get remoteAddress(): string | undefined {
    return (this.#socket as Duplex & { remoteAddress?: string }).remoteAddress;
  }

  #onData(chunk: Buffer): void {
    if (this.destroyed) return;
    try {
      for (const frame of this.#frames.push(chunk)) {
        if (frame.type !== MSG_RECORD) {
          throw new ProtocolError(`received Noise message of type ${frame.type}, want ${MSG_RECORD}`);
        }
        if (this.#rxNonce >= MAX_NONCE) throw new ProtocolError('Noise receive nonce exhausted');
        const plain = open(this.#keys.receive, nonceFor(this.#rxNonce++), frame.body);
        if (plain === undefined) throw new ProtocolError('Noise record failed to decrypt');
        this.#deliver(plain);
      }
    } catch (err) {
      this.destroy(err instanceof ProtocolError ? err : new ProtocolError(String(err), { cause: err }));
    }
  }

  #deliver(plain: Buffer): void {
    let out = plain;
    if (this.#early && !this.#early.done) {
      out = this.#early.push(plain);
      if (this.#early.done && this.#early.payload !== undefined && this.earlyPayload === undefined) {
        this.earlyPayload = this.#early.payload;
        this.emit('early', this.earlyPayload);
      }
    }
    if (out.length > 0 && !this.push(out)) this.#socket.pause();
  }

  #sealRecords(data: Buffer): Buffer {
    const parts: Buffer[] = [];
    for (let off = 0; off < data.length; off += MAX_PLAINTEXT_SIZE) {
      const piece = data.subarray(off, Math.min(data.length, off + MAX_PLAINTEXT_SIZE));
      if (this.#txNonce >= MAX_NONCE) throw new ProtocolError('Noise send nonce exhausted');
      const ct = seal(this.#keys.send, nonceFor(this.#txNonce++), piece);
      const header = Buffer.allocUnsafe(HEADER_LEN);
      header[0] = MSG_RECORD;
      header.writeUInt16BE(ct.length, 1);
      parts.push(header, ct);
    }
    return Buffer.concat(parts);
  }

  override _read(): void {
    if (!this.#holding) this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send(chunk, cb);
  }

  #send(chunk: Buffer, cb: (err?: Error | null) => void): void {
    let sealed: Buffer;
    try {
      sealed = this.#sealRecords(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.#socket.write(sealed, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#send(Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.#socket.destroy();
    cb(err);
  }

  // node:http2 calls these on its socket when present; a Duplex has no such knobs.
  setNoDelay(): this {
    const s = this.#socket as Duplex & { setNoDelay?: (v: boolean) => void };
    s.setNoDelay?.(true);
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
}
