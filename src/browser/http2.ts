/**
 * An HTTP/2 client (RFC 9113) with the part of node:http2's API that the ts2021 transport uses
 * (control/transport.ts): `connect(authority, { createConnection })`, `session.request()`, and
 * streams that are stream.Duplex with a 'response' event. A web page has no node:http2, so the
 * browser bundle maps `node:http2` here; under Node it is tested against node:http2's server.
 * Client only: no server push (disabled in our SETTINGS), no priorities, and a receive window
 * large enough that control's bodies never wait on it.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { encodeHeaders, HpackDecoder } from './hpack.js';

const PREFACE = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
enum Type {
  Data = 0,
  Headers = 1,
  RstStream = 3,
  Settings = 4,
  PushPromise = 5,
  Ping = 6,
  GoAway = 7,
  WindowUpdate = 8,
  Continuation = 9,
}
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const DEFAULT_WINDOW = 65_535;
/** Our receive window per stream and for the connection: 16 MiB, credited back as data is read. */
const RECEIVE_WINDOW = 16 << 20;
const MAX_FRAME_IN = 1 << 20;

export type OutgoingHttpHeaders = Record<string, string | number | undefined>;
export type IncomingHttpHeaders = Record<string, string>;

/** A protocol failure on the connection or a stream (an HTTP/2 error code, RFC 9113 §7). */
export class Http2Error extends Error {
  constructor(
    message: string,
    readonly errorCode = 1,
  ) {
    super(message);
    this.name = 'Http2Error';
  }
}

/** One request: write the body, read the response body; 'response' carries the headers. */
export class ClientHttp2Stream extends Duplex {
  sendWindow: number;
  private queued: { data: Uint8Array; cb: (err?: Error | null) => void; end: boolean }[] = [];
  private responded = false;
  private remoteClosed = false;

  constructor(
    readonly id: number,
    private readonly session: ClientHttp2Session,
  ) {
    super({ allowHalfOpen: true });
    this.sendWindow = session.peerInitialWindow;
  }

  override _read(): void {}

  override _write(chunk: Uint8Array, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.queued.push({ data: chunk, cb, end: false });
    this.pump();
  }

  /** @internal Set when the HEADERS frame already ended our side (a request without a body). */
  endedByHeaders = false;

  override _final(cb: (err?: Error | null) => void): void {
    if (this.endedByHeaders) {
      cb();
      return;
    }
    this.queued.push({ data: new Uint8Array(0), cb, end: true });
    this.pump();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.remoteClosed || !this.writableFinished) this.session.reset(this.id, err ? 2 : 8); // INTERNAL or CANCEL
    this.session.forget(this.id);
    cb(err);
  }

  /** Sends queued body bytes as far as both flow-control windows allow (§5.2). */
  pump(): void {
    while (this.queued.length > 0) {
      const head = this.queued[0]!;
      const room = Math.min(this.sendWindow, this.session.sendWindow, this.session.peerMaxFrame);
      if (head.data.length > 0 && room <= 0) return;
      const n = Math.min(head.data.length, room);
      const last = n === head.data.length;
      this.session.frame(Type.Data, head.end && last ? END_STREAM : 0, this.id, head.data.subarray(0, n));
      this.sendWindow -= n;
      this.session.sendWindow -= n;
      if (!last) {
        head.data = head.data.subarray(n);
        continue;
      }
      this.queued.shift();
      head.cb();
    }
  }

  /** @internal A complete header block for this stream. */
  onHeaders(fields: [string, string][], endStream: boolean): void {
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of fields) headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    if (!this.responded) {
      const status = Number(headers[':status']);
      if (status >= 100 && status < 200) return; // informational: the real response follows
      this.responded = true;
      this.emit('response', headers, 0);
    } else {
      this.emit('trailers', headers, 0);
    }
    if (endStream) this.onEnd();
  }

  /** @internal */
  onData(data: Uint8Array, endStream: boolean): void {
    if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    if (endStream) this.onEnd();
  }

  /** @internal */
  onEnd(): void {
    this.remoteClosed = true;
    this.push(null);
    if (this.writableFinished) this.session.forget(this.id);
  }
}

interface Http2ConnectOptions {
  createConnection: () => Duplex;
}

/** A client connection; requests share it. */
export class ClientHttp2Session extends EventEmitter {
  closed = false;
  destroyed = false;
  sendWindow = DEFAULT_WINDOW;
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrame = 16_384;
  /** The `:authority` of requests (host[:port] of the URL given to {@link connect}). */
  authority = '';
  private readonly socket: Duplex;
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, ClientHttp2Stream>();
  private nextId = 1;
  private buf: Uint8Array = new Uint8Array(0);
  private headerBlock: { id: number; parts: Uint8Array[]; endStream: boolean } | undefined;

  constructor(opts: Http2ConnectOptions) {
    super();
    this.socket = opts.createConnection();
    this.socket.on('data', (chunk: Uint8Array) => this.onBytes(chunk));
    this.socket.on('error', (err) => this.destroy(err));
    this.socket.on('close', () => this.destroy());
    this.socket.write(PREFACE);
    // SETTINGS_ENABLE_PUSH = 0, SETTINGS_INITIAL_WINDOW_SIZE = RECEIVE_WINDOW (§6.5.2)
    const settings = new Uint8Array(12);
    const dv = new DataView(settings.buffer);
    dv.setUint16(0, 2);
    dv.setUint32(2, 0);
    dv.setUint16(6, 4);
    dv.setUint32(8, RECEIVE_WINDOW);
    this.frame(Type.Settings, 0, 0, settings);
    this.windowUpdate(0, RECEIVE_WINDOW - DEFAULT_WINDOW);
  }

  /** Opens a stream with these request headers (pseudo-headers first, as §8.3 requires). */
  request(
    headers: OutgoingHttpHeaders,
    opts: { endStream?: boolean; signal?: AbortSignal } = {},
  ): ClientHttp2Stream {
    if (this.closed || this.destroyed) throw new Http2Error('session is closed');
    const id = this.nextId;
    this.nextId += 2;
    const stream = new ClientHttp2Stream(id, this);
    this.streams.set(id, stream);
    const h: OutgoingHttpHeaders = { ':scheme': 'http', ':authority': this.authority, ...headers };
    const fields = Object.entries(h)
      .filter((e): e is [string, string | number] => e[1] !== undefined)
      .map(([k, v]) => [k.toLowerCase(), String(v)] as const)
      .sort((a, b) => Number(b[0].startsWith(':')) - Number(a[0].startsWith(':')));
    const block = encodeHeaders(fields);
    // One HEADERS frame: our request headers are far below the peer's minimum frame size.
    this.frame(Type.Headers, END_HEADERS | (opts.endStream ? END_STREAM : 0), id, block);
    if (opts.endStream) {
      stream.endedByHeaders = true;
      stream.end();
    }
    opts.signal?.addEventListener('abort', () => stream.destroy(abortError()), { once: true });
    return stream;
  }

  /** Closes every stream and the connection. */
  destroy(err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    for (const s of this.streams.values()) s.destroy(err ?? new Http2Error('session closed'));
    this.streams.clear();
    this.socket.destroy();
    if (err) this.emit('error', err);
    this.emit('close');
  }

  /** Stops new requests; the connection ends once open streams are done. */
  close(): void {
    this.closed = true;
    if (this.streams.size === 0) this.destroy();
  }

  /** @internal */
  frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.destroyed) return;
    const f = new Uint8Array(FRAME_HEADER + payload.length);
    f[0] = payload.length >>> 16;
    f[1] = payload.length >>> 8;
    f[2] = payload.length;
    f[3] = type;
    f[4] = flags;
    new DataView(f.buffer).setUint32(5, id & 0x7fffffff);
    f.set(payload, FRAME_HEADER);
    this.socket.write(f);
  }

  /** @internal */
  reset(id: number, code: number): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, code);
    this.frame(Type.RstStream, 0, id, p);
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
    if (this.closed && this.streams.size === 0) this.destroy();
  }

  private windowUpdate(id: number, increment: number): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, increment);
    this.frame(Type.WindowUpdate, 0, id, p);
  }

  private onBytes(chunk: Uint8Array): void {
    this.buf = this.buf.length === 0 ? chunk : concat(this.buf, chunk);
    try {
      while (this.buf.length >= FRAME_HEADER && !this.destroyed) {
        const len = (this.buf[0]! << 16) | (this.buf[1]! << 8) | this.buf[2]!;
        if (len > MAX_FRAME_IN) throw new Http2Error(`frame of ${len} bytes`, 6); // FRAME_SIZE_ERROR
        if (this.buf.length < FRAME_HEADER + len) return;
        const type = this.buf[3]!;
        const flags = this.buf[4]!;
        const id = new DataView(this.buf.buffer, this.buf.byteOffset + 5, 4).getUint32(0) & 0x7fffffff;
        const payload = this.buf.subarray(FRAME_HEADER, FRAME_HEADER + len);
        this.buf = this.buf.subarray(FRAME_HEADER + len);
        this.onFrame(type, flags, id, payload);
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.headerBlock && type !== Type.Continuation) throw new Http2Error('expected CONTINUATION');
    const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    switch (type) {
      case Type.Data: {
        const body = unpad(payload, flags);
        // Credit the windows at once: control's bodies are small and read as they come.
        if (payload.length > 0) {
          this.windowUpdate(0, payload.length);
          if (!(flags & END_STREAM)) this.windowUpdate(id, payload.length);
        }
        this.streams.get(id)?.onData(body, (flags & END_STREAM) !== 0);
        return;
      }
      case Type.Headers: {
        let block = unpad(payload, flags);
        if (flags & PRIORITY) block = block.subarray(5);
        this.headerBlock = { id, parts: [block], endStream: (flags & END_STREAM) !== 0 };
        if (flags & END_HEADERS) this.endHeaders();
        return;
      }
      case Type.Continuation:
        if (!this.headerBlock || this.headerBlock.id !== id) throw new Http2Error('unexpected CONTINUATION');
        this.headerBlock.parts.push(payload);
        if (flags & END_HEADERS) this.endHeaders();
        return;
      case Type.RstStream: {
        const code = dv.getUint32(0);
        const s = this.streams.get(id);
        // NO_ERROR after a complete response only says "stop sending" (RFC 9113 §8.1).
        if (s?.readableEnded && code === 0) s.destroy();
        else s?.destroy(new Http2Error(`stream reset by the server (code ${code})`, code));
        return;
      }
      case Type.Settings:
        if (flags & ACK) return;
        for (let o = 0; o + 6 <= payload.length; o += 6) this.setting(dv.getUint16(o), dv.getUint32(o + 2));
        this.frame(Type.Settings, ACK, 0, new Uint8Array(0));
        return;
      case Type.Ping:
        if (!(flags & ACK)) this.frame(Type.Ping, ACK, 0, payload);
        return;
      case Type.GoAway: {
        const last = dv.getUint32(0) & 0x7fffffff;
        this.closed = true;
        for (const [sid, s] of this.streams) if (sid > last) s.destroy(new Http2Error('server went away'));
        if (this.streams.size === 0) this.destroy();
        return;
      }
      case Type.WindowUpdate: {
        const inc = dv.getUint32(0) & 0x7fffffff;
        if (id === 0) {
          this.sendWindow += inc;
          for (const s of this.streams.values()) s.pump();
        } else {
          const s = this.streams.get(id);
          if (s) {
            s.sendWindow += inc;
            s.pump();
          }
        }
        return;
      }
      case Type.PushPromise:
        throw new Http2Error('PUSH_PROMISE with push disabled');
      default:
        return; // unknown frame types are ignored (§4.1)
    }
  }

  private setting(id: number, value: number): void {
    if (id === 4) {
      const delta = value - this.peerInitialWindow;
      this.peerInitialWindow = value;
      for (const s of this.streams.values()) s.sendWindow += delta;
    } else if (id === 5) {
      this.peerMaxFrame = value;
    }
  }

  private endHeaders(): void {
    const hb = this.headerBlock!;
    this.headerBlock = undefined;
    const fields = this.decoder.decode(hb.parts.length === 1 ? hb.parts[0]! : hb.parts.reduce(concat));
    this.streams.get(hb.id)?.onHeaders(fields, hb.endStream);
  }
}

/** node:http2's `connect`, for an `http://host` authority over the connection given. */
export function connect(authority: string, opts: Http2ConnectOptions): ClientHttp2Session {
  const session = new ClientHttp2Session(opts);
  session.authority = new URL(authority).host;
  return session;
}

function unpad(payload: Uint8Array, flags: number): Uint8Array {
  if (!(flags & PADDED)) return payload;
  const pad = payload[0]!;
  if (pad >= payload.length) throw new Http2Error('padding longer than the frame');
  return payload.subarray(1, payload.length - pad);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function abortError(): Error {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}
