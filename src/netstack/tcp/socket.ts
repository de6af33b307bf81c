/**
 * A TCP connection as a `stream.Duplex` with net.Socket's common surface, so that node:http,
 * ws, undici's `connect` hook and other code written for Node's sockets run over it unchanged.
 * Like net.Socket it may start unconnected (`new TcpSocket({ endpoint })`, then `connect()`),
 * which is how pg and mysql2 take a socket from a factory. Flow control is tied to the stream:
 * unread bytes shrink the advertised window, and `write()` returns false once the bounded send
 * buffer is full.
 */
import type { LookupFunction } from 'node:net';
import { Duplex } from 'node:stream';
import { formatIp } from '../address.js';
import { NetstackError } from '../errors.js';
import type { ConnectionEvents, TcpConnection } from './connection.js';
import type { TcpEndpoint } from './endpoint.js';
import { SocketError } from './errors.js';
import {
  type ConnectArgs,
  lookupOnce,
  normalizeConnectArgs,
  type TcpSocketConnectOptions,
} from './socket-connect.js';

export type { ConnectArgs, TcpSocketConnectOptions };

/** Options of {@link tcpConnect}: an active open to an address (or a name, with `lookup`). */
export interface TcpConnectOptions extends TcpSocketConnectOptions {
  host: string;
  /** Keep the writable side open after the peer's FIN (default false, as net.Socket). */
  allowHalfOpen?: boolean;
}

/** Options of an unconnected socket, as `new net.Socket(options)`. */
export interface TcpSocketOptions {
  /** The endpoint `connect()` opens through (subclasses may supply it later: {@link TcpSocket.endpoint}). */
  endpoint?: TcpEndpoint;
  /** Keep the writable side open after the peer's FIN (default false, as net.Socket). */
  allowHalfOpen?: boolean;
  /** Resolves host names for `connect()`, with dns.lookup's signature; IP literals need none. */
  lookup?: LookupFunction;
}

/** Address information as net.Socket.address() returns it. */
export interface SocketAddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** A TCP connection over a userspace stack, shaped like net.Socket. */
export class TcpSocket extends Duplex {
  /** True from `connect()` until 'connect' or an error, as net.Socket. */
  connecting = false;
  bytesRead = 0;
  /** The idle timeout set by {@link setTimeout}, ms (0 = none). */
  timeout = 0;
  private conn: TcpConnection | undefined;
  private pendingWrite: (() => void) | undefined;
  /** A write made while the connection is still being looked up: replayed when it exists. */
  private beforeOpen: (() => void) | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private written = 0;
  private noDelay = false;
  private keepAlive: { enable: boolean; initialDelay: number } | undefined;
  private readonly options: TcpSocketOptions;

  /** An unconnected socket: {@link connect} opens it through `options.endpoint`. */
  constructor(options: TcpSocketOptions = {}) {
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      // The stream buffers little of its own: TCP's buffers are the bound that matters.
      readableHighWaterMark: 64 * 1024,
      writableHighWaterMark: 64 * 1024,
    });
    this.options = options;
  }

  /** @internal A socket for a connection the endpoint already has (an accepted one). */
  static fromConnection(conn: TcpConnection, opts: { allowHalfOpen?: boolean } = {}): TcpSocket {
    const sock = new TcpSocket(opts);
    sock.attach(conn);
    return sock;
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
    return this.connecting || (this.conn === undefined && this.remotePort === undefined);
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

  /**
   * Opens the connection, as net.Socket.connect: `(options[, listener])` or `(port[, host][,
   * listener])`. Returns at once; 'connect' follows, or 'error' (ENOTFOUND from the lookup,
   * ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH…). A host name goes through `lookup` (the option, or
   * the socket's); an IP literal opens at once. A bad port throws, as Node does.
   */
  connect(...args: ConnectArgs): this {
    const [opts, listener] = normalizeConnectArgs(args);
    if (this.connecting || this.conn)
      throw new NetstackError('INVALID_STATE', 'socket is already connecting or connected');
    if (listener) this.once('connect', listener);
    this.connecting = true;
    if (opts.noDelay) this.setNoDelay(true);
    if (opts.keepAlive) this.setKeepAlive(true, opts.keepAliveInitialDelay ?? 0);
    if (opts.timeout !== undefined) this.setTimeout(opts.timeout);
    if (opts.connectTimeout) {
      this.connectTimer = setTimeout(() => {
        this.destroy(new SocketError('ETIMEDOUT', 'connect', this.remoteAddress ?? opts.host, opts.port));
      }, opts.connectTimeout);
    }
    const lookup = opts.lookup ?? this.options.lookup;
    lookupOnce(opts.host, opts.family, lookup, (err, address, family) => {
      if (address === undefined || err) {
        this.destroy(err ?? undefined);
        return;
      }
      if (family !== undefined) this.emit('lookup', null, address, family, opts.host);
      this.openTo(address, opts.port, opts.localPort ?? 0);
    });
    return this;
  }

  /**
   * The endpoint {@link connect} opens through: the one given to the constructor. A subclass
   * whose endpoint comes later (a node not yet up) overrides this; a throw becomes the error.
   */
  protected endpoint(): TcpEndpoint {
    const e = this.options.endpoint;
    if (!e) throw new NetstackError('INVALID_STATE', 'this socket has no TCP endpoint to connect through');
    return e;
  }

  /**
   * Opens the connection to a resolved address. A subclass may refuse a destination first (a
   * tailnet node with no route to it) by throwing a SocketError.
   */
  protected open(address: string, port: number, localPort: number): TcpConnection {
    return this.endpoint().connect(address, port, localPort);
  }

  private openTo(address: string, port: number, localPort: number): void {
    if (this.destroyed) return;
    (this as { remoteAddress: string | undefined }).remoteAddress = address;
    (this as { remotePort: number | undefined }).remotePort = port;
    let conn: TcpConnection;
    try {
      conn = this.open(address, port, localPort);
    } catch (err) {
      // As net.connect: socket-level failures arrive as 'error', never as a throw from connect().
      if (!(err instanceof SocketError || err instanceof NetstackError)) throw err;
      process.nextTick(() => this.destroy(err));
      return;
    }
    this.attach(conn);
  }

  /** Takes over `conn`: its events come here, and what waited for it goes ahead. */
  private attach(conn: TcpConnection): void {
    this.conn = conn;
    this.connecting = conn.state === 'SYN_SENT';
    conn.events = this.makeEvents();
    this.local = conn.local;
    this.lport = conn.localPort;
    (this as { remoteAddress: string | undefined }).remoteAddress = formatIp(conn.remote);
    (this as { remotePort: number | undefined }).remotePort = conn.remotePort;
    if (this.noDelay) this.setNoDelay(true);
    if (this.keepAlive) this.setKeepAlive(this.keepAlive.enable, this.keepAlive.initialDelay);
    const waiting = this.beforeOpen;
    this.beforeOpen = undefined;
    waiting?.();
  }

  /** The local end, as net.Socket.address(). */
  address(): SocketAddressInfo {
    return { address: this.localAddress, family: this.family, port: this.lport };
  }

  /** Disables (true) or enables Nagle's algorithm (RFC 9293 §3.7.4). */
  setNoDelay(noDelay = true): this {
    this.noDelay = noDelay;
    if (this.conn) {
      this.conn.nodelay = noDelay;
      if (noDelay) this.conn.host.markDirty(this.conn);
    }
    return this;
  }

  /** Keepalive probes after `initialDelay` ms idle (RFC 1122 §4.2.3.6); 0 keeps the current delay. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const c = this.conn;
    if (!c) {
      this.keepAlive = { enable, initialDelay };
      return this;
    }
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

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const c = this.conn;
    if (!c && this.connecting) {
      this.beforeOpen = () => this._write(chunk, enc, cb);
      return;
    }
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
    if (!c && this.connecting) {
      this.beforeOpen = () => this._writev(chunks, cb);
      return;
    }
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
    if (this.connecting) {
      this.once('connect', () => {
        this.conn?.shutdown();
        cb();
      });
      return;
    }
    this.conn?.shutdown();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.connectTimer);
    this.beforeOpen = undefined;
    this.connecting = false;
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
  const { allowHalfOpen, ...connect } = opts;
  return new TcpSocket({ endpoint: tcp, allowHalfOpen }).connect(connect, onConnect);
}
