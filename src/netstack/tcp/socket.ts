/**
 * A TCP connection as a `stream.Duplex` with net.Socket's common surface, so that node:http,
 * ws, undici's `connect` hook and other code written for Node's sockets run over it unchanged.
 * Flow control is tied to the stream: unread bytes shrink the advertised window, and `write()`
 * returns false once the bounded send buffer is full.
 */
import { Duplex } from 'node:stream';
import { formatIp } from '../address.js';
import type { ConnectionEvents, TcpConnection } from './connection.js';
import type { TcpEndpoint } from './endpoint.js';
import { SocketError } from './errors.js';

/** Options for {@link TcpSocket.connect}-style active opens. */
export interface TcpConnectOptions {
  host: string;
  port: number;
  localPort?: number;
  /** Keep the writable side open after the peer's FIN (default false, as net.Socket). */
  allowHalfOpen?: boolean;
  /** Fail with ETIMEDOUT when the handshake takes longer, ms. */
  connectTimeout?: number;
  noDelay?: boolean;
}

/** Address information as net.Socket.address() returns it. */
export interface SocketAddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** A TCP connection over a userspace stack, shaped like net.Socket. */
export class TcpSocket extends Duplex {
  connecting: boolean;
  bytesRead = 0;
  /** The idle timeout set by {@link setTimeout}, ms (0 = none). */
  timeout = 0;
  private conn: TcpConnection | undefined;
  private pendingWrite: (() => void) | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private written = 0;

  /** @internal Use `tcpConnect()` or a TcpServer; this wraps an existing connection. */
  constructor(
    conn: TcpConnection | undefined,
    opts: { allowHalfOpen?: boolean; connectTimeout?: number } = {},
  ) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      // The stream buffers little of its own: TCP's buffers are the bound that matters.
      readableHighWaterMark: 64 * 1024,
      writableHighWaterMark: 64 * 1024,
    });
    this.conn = conn;
    // Without a connection the open failed at once: the caller destroys the socket with the error.
    this.connecting = conn === undefined || conn.state === 'SYN_SENT';
    if (conn) conn.events = this.makeEvents();
    if (this.connecting && opts.connectTimeout) {
      this.connectTimer = setTimeout(() => {
        this.destroy(new SocketError('ETIMEDOUT', 'connect', this.remoteAddress, this.remotePort));
      }, opts.connectTimeout);
    }
  }

  readonly remoteAddress: string | undefined = undefined;
  readonly remotePort: number | undefined = undefined;

  /** The peer's address family, as net.Socket. */
  get remoteFamily(): 'IPv4' | 'IPv6' {
    return this.family;
  }

  get localAddress(): string {
    return formatIp(this.local);
  }

  get localPort(): number {
    return this.lport;
  }

  /** Bytes handed to `write()` so far. */
  get bytesWritten(): number {
    return this.written;
  }

  /** Like net.Socket: 'opening', 'open', 'readOnly', 'writeOnly' or 'closed'. */
  get readyState(): string {
    if (this.connecting) return 'opening';
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    return this.writable ? 'writeOnly' : 'closed';
  }

  /** Whether the socket has not connected yet (net.Socket.pending). */
  get pending(): boolean {
    return this.connecting;
  }

  /** The TCP state (RFC 9293 §3.3.2), for diagnostics and tests. */
  get tcpState(): string {
    return this.conn?.state ?? 'CLOSED';
  }

  private get family(): 'IPv4' | 'IPv6' {
    return this.local.length === 4 ? 'IPv4' : 'IPv6';
  }

  private local: Uint8Array = new Uint8Array(4);
  private lport = 0;

  /** @internal Fills the address fields from the connection. */
  init(): this {
    const c = this.conn;
    if (!c) return this;
    this.local = c.local;
    this.lport = c.localPort;
    (this as { remoteAddress: string | undefined }).remoteAddress = formatIp(c.remote);
    (this as { remotePort: number | undefined }).remotePort = c.remotePort;
    return this;
  }

  /** The local end, as net.Socket.address(). */
  address(): SocketAddressInfo {
    return { address: this.localAddress, family: this.family, port: this.lport };
  }

  /** Disables (true) or enables Nagle's algorithm (RFC 9293 §3.7.4). */
  setNoDelay(noDelay = true): this {
    if (this.conn) {
      this.conn.nodelay = noDelay;
      if (noDelay) this.conn.host.markDirty(this.conn);
    }
    return this;
  }

  /** Keepalive probes after `initialDelay` ms idle (RFC 1122 §4.2.3.6); 0 keeps the current delay. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const c = this.conn;
    if (!c) return this;
    c.keepaliveMs = enable ? (initialDelay > 0 ? initialDelay : c.keepaliveMs || 7_200_000) : 0;
    c.armKeepalive(performance.now());
    return this;
  }

  /** Emits 'timeout' after `ms` of inactivity (0 disables), as net.Socket; it does not close the socket. */
  setTimeout(ms: number, callback?: () => void): this {
    this.timeout = ms;
    if (callback) this.once('timeout', callback);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (ms > 0) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  /** Sends a RST and destroys the socket (net.Socket.resetAndDestroy). */
  resetAndDestroy(): this {
    this.conn?.abort(true);
    return this.destroy();
  }

  /** No-ops for net.Socket compatibility: the link, not the socket, holds the event loop. */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  private activity(): void {
    this.idleTimer?.refresh();
  }

  private makeEvents(): ConnectionEvents {
    return {
      onEstablished: () => {
        clearTimeout(this.connectTimer);
        this.connecting = false;
        this.emit('connect');
        this.emit('ready');
      },
      onData: (chunk) => {
        this.bytesRead += chunk.length;
        this.activity();
        this.push(chunk);
      },
      onEof: () => {
        this.push(null);
      },
      onSendSpace: () => {
        this.activity();
        const c = this.conn;
        if (this.pendingWrite && c?.sendSpace) {
          const cb = this.pendingWrite;
          this.pendingWrite = undefined;
          cb();
        }
      },
      onClose: (err) => {
        this.conn = undefined;
        clearTimeout(this.connectTimer);
        const cb = this.pendingWrite;
        this.pendingWrite = undefined;
        if (err) {
          this.destroy(err);
          return;
        }
        cb?.();
        // A clean close: both FINs exchanged. Anything the user never read ends the stream now.
        if (!this.readableEnded) this.push(null);
        // Aborted locally (the endpoint closed) before our side finished: nothing more can be
        // written, so the socket is done; destroying it emits 'close' as net.Socket would.
        if (!this.writableFinished) this.destroy();
      },
      unread: () => this.readableLength,
    };
  }

  override _read(): void {
    this.conn?.onRead();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const c = this.conn;
    if (!c?.writable) {
      cb(new SocketError('EPIPE', 'write', this.remoteAddress, this.remotePort));
      return;
    }
    this.written += chunk.length;
    this.activity();
    if (c.write(chunk)) cb();
    else this.pendingWrite = () => cb();
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const c = this.conn;
    if (!c?.writable) {
      cb(new SocketError('EPIPE', 'write', this.remoteAddress, this.remotePort));
      return;
    }
    let room = true;
    for (const { chunk } of chunks) {
      this.written += chunk.length;
      room = c.write(chunk);
    }
    this.activity();
    if (room) cb();
    else this.pendingWrite = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const c = this.conn;
    if (!c) {
      cb();
      return;
    }
    if (this.connecting) {
      this.once('connect', () => {
        this.conn?.shutdown();
        cb();
      });
      return;
    }
    c.shutdown();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    const c = this.conn;
    this.conn = undefined;
    if (c && c.state !== 'CLOSED') {
      c.events = { ...c.events, onData() {}, onEof() {}, onClose() {}, unread: () => 0 };
      c.orphan = true;
      // As close(2): unread data or an error means RST (RFC 2525 §2.17); otherwise FIN after what is queued.
      if (err || this.readableLength > 0 || c.state === 'SYN_SENT' || c.state === 'SYN_RECEIVED')
        c.abort(true);
      else c.shutdown();
    }
    cb(err);
  }
}

/** Opens a connection through `tcp`, like net.connect: returns at once, emits 'connect' or 'error'. */
export function tcpConnect(tcp: TcpEndpoint, opts: TcpConnectOptions, onConnect?: () => void): TcpSocket {
  let conn: TcpConnection | undefined;
  let failure: SocketError | undefined;
  try {
    conn = tcp.connect(opts.host, opts.port, opts.localPort ?? 0);
  } catch (err) {
    // As net.connect: socket-level failures (EADDRINUSE, EADDRNOTAVAIL) arrive as 'error', not a throw.
    if (!(err instanceof SocketError)) throw err;
    failure = err;
  }
  const sock = new TcpSocket(conn, {
    allowHalfOpen: opts.allowHalfOpen,
    connectTimeout: opts.connectTimeout,
  }).init();
  if (failure) {
    const err = failure;
    process.nextTick(() => sock.destroy(err));
    return sock;
  }
  if (opts.noDelay) sock.setNoDelay(true);
  if (onConnect) sock.once('connect', onConnect);
  return sock;
}
