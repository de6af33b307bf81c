/**
 * A listener shaped like net.Server: `listen(port[, host][, backlog][, cb])`, 'listening',
 * 'connection', `address()`, `close()` (stop accepting; 'close' once every connection is gone).
 */
import { EventEmitter } from 'node:events';
import { formatIp, parseIp, unmapIPv4 } from '../address.js';
import { NetstackError } from '../errors.js';
import type { TcpConnection } from './connection.js';
import type { Listener, TcpEndpoint } from './endpoint.js';
import { TcpSocket } from './socket.js';

/** Options for {@link TcpServer}. */
export interface TcpServerOptions {
  /** Passed to each accepted socket (default false). */
  allowHalfOpen?: boolean;
  noDelay?: boolean;
}

/** A TCP listener over a userspace stack. */
export class TcpServer extends EventEmitter {
  listening = false;
  private listener: Listener | undefined;
  private listenedOn: TcpEndpoint | undefined;
  private readonly sockets = new Set<TcpSocket>();
  private closing = false;

  constructor(
    private readonly tcp: TcpEndpoint | undefined,
    private readonly options: TcpServerOptions = {},
    onConnection?: (socket: TcpSocket) => void,
  ) {
    super();
    if (onConnection) this.on('connection', onConnection);
  }

  /**
   * Starts listening on `port` (0 picks a free one) on `host` (default all local addresses),
   * as net.Server.listen: `(port[, host][, backlog][, cb])` or `({ port, host, backlog }[, cb])`.
   * EADDRINUSE is emitted as 'error', as net.Server does.
   */
  listen(
    port: number | { port?: number; host?: string; backlog?: number } = 0,
    host?: string | (() => void),
    backlog?: number | (() => void),
    cb?: () => void,
  ): this {
    if (typeof port === 'object')
      return this.listen(port.port ?? 0, port.host, port.backlog ?? 0, host as () => void);
    const done = [host, backlog, cb].find((x): x is () => void => typeof x === 'function');
    const address =
      typeof host === 'string' && host !== '0.0.0.0' && host !== '::' ? unmapIPv4(parseIp(host)) : undefined;
    let tcp: TcpEndpoint;
    try {
      tcp = this.endpoint();
    } catch (err) {
      queueMicrotask(() => this.emit('error', err));
      return this;
    }
    const l: Listener = {
      port: port === 0 ? tcp.ephemeralPort() : port,
      address,
      backlog: typeof backlog === 'number' && backlog > 0 ? backlog : 511,
      halfOpen: 0,
      onConnection: (c) => this.accept(c),
    };
    try {
      tcp.listen(l);
    } catch (err) {
      queueMicrotask(() => this.emit('error', err));
      return this;
    }
    this.listener = l;
    this.listenedOn = tcp;
    this.listening = true;
    this.closing = false;
    if (done) this.once('listening', done);
    queueMicrotask(() => this.emit('listening'));
    return this;
  }

  /** The bound address, as net.Server.address(); null when not listening. */
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | null {
    const l = this.listener;
    if (!l) return null;
    const address = l.address ? formatIp(l.address) : '0.0.0.0';
    return { address, family: l.address?.length === 16 ? 'IPv6' : 'IPv4', port: l.port };
  }

  /** Stops accepting; 'close' follows once every accepted socket has closed. */
  close(cb?: (err?: Error) => void): this {
    if (cb) this.once('close', cb);
    if (this.listener) this.listenedOn?.unlisten(this.listener);
    this.listener = undefined;
    this.listening = false;
    this.closing = true;
    this.maybeClosed();
    return this;
  }

  /** Destroys every accepted socket still open (as http.Server.closeAllConnections). */
  closeAllConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** How many accepted sockets are open (net.Server.getConnections). */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    queueMicrotask(() => cb(null, this.sockets.size));
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /**
   * The endpoint {@link listen} binds on: the one given to the constructor. A subclass whose
   * endpoint comes later (a node not yet up) overrides this; a throw becomes an 'error' event.
   */
  protected endpoint(): TcpEndpoint {
    if (!this.tcp) throw new NetstackError('INVALID_STATE', 'this server has no TCP endpoint to listen on');
    return this.tcp;
  }

  private accept(c: TcpConnection): void {
    const sock = TcpSocket.fromConnection(c, { allowHalfOpen: this.options.allowHalfOpen });
    if (this.options.noDelay) sock.setNoDelay(true);
    this.sockets.add(sock);
    sock.once('close', () => {
      this.sockets.delete(sock);
      this.maybeClosed();
    });
    this.emit('connection', sock);
  }

  private maybeClosed(): void {
    if (this.closing && this.sockets.size === 0) {
      this.closing = false;
      queueMicrotask(() => this.emit('close'));
    }
  }
}
