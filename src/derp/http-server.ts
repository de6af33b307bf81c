/**
 * The HTTP face of a DERP server, as cmd/derper wires derpserver.Handler: `/derp` with
 * `Upgrade: DERP` (101, or nothing with `Derp-Fast-Start: 1`) or a WebSocket with subprotocol
 * `derp`; `/derp/probe` and `/derp/latency-check`; `/generate_204` (captive-portal check);
 * `/metrics` in Prometheus text; plain HTTP or TLS; optionally a STUN responder beside it.
 * Every connection is under a ConnectionGuard (src/guard): limits on accept, the request
 * deadline, and a per-source rate on DERP logins (docs/server-limits.md).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  type AddressInfo,
  createServer as createNetServer,
  isIPv6,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { WebSocketServer } from 'ws';
import { ConnectionGuard, type ConnectionLimits, DEFAULT_LIMITS, resolveLimits } from '../guard/guard.js';
import { guardAccepts, guardRequests, httpOptions } from '../guard/http.js';
import { runtime } from '../platform/runtime.js';
import { FastStartHeader, ProtocolVersion } from './constants.js';
import { DerpError } from './errors.js';
import { keyToHex } from './keys.js';
import { bindBothFamilies, formatAddress } from './listen.js';
import { DerpServer, type DerpServerOptions } from './server.js';
import { StunServer } from './stun.js';
import { SocketConn, WebSocketConn } from './transport.js';

export interface DerpHttpServerOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * With `tls`, also answer plain HTTP on the same port (told apart by the first byte: a TLS
   * ClientHello starts with 0x16), for clients still set to reach relays over HTTP
   * (TS_DEBUG_USE_DERP_HTTP). DERP frames are end-to-end encrypted either way. Node only: under
   * Bun and Deno the relay then speaks TLS alone.
   */
  acceptPlainHttp?: boolean;
  /** UDP port for the STUN responder on the same host; omitted means no STUN. */
  stunPort?: number;
  /** An existing relay core, or options for a new one. */
  server?: DerpServer;
  serverOptions?: DerpServerOptions;
  /**
   * Connection limits and the request deadline (src/guard/guard.ts DEFAULT_LIMITS; the total is
   * raised to `serverOptions.maxClients` when that is higher).
   */
  limits?: Partial<ConnectionLimits>;
}

/** X-Tailscale-Challenge / X-Tailscale-Response (derpserver/handler.go ServeNoContent). */
const CHALLENGE = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * A listening DERP server.
 *
 * @example
 * const srv = await DerpHttpServer.listen({ port: 0, stunPort: 0 });
 * console.log(srv.url);      // http://127.0.0.1:41234/derp
 * await srv.close();
 */
export class DerpHttpServer {
  readonly derp: DerpServer;
  /** Admission, deadlines and shed counters of every TCP connection. */
  readonly guard: ConnectionGuard;
  stun: StunServer | undefined;
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 1 << 20,
    handleProtocols: (protocols) => (protocols.has('derp') ? 'derp' : false),
  });
  private listeners: NetServer[] = [];

  private constructor(private readonly opts: DerpHttpServerOptions) {
    this.derp = opts.server ?? new DerpServer(opts.serverOptions);
    this.guard = new ConnectionGuard(
      resolveLimits({
        ...opts.limits,
        // A relay told to take more DERP clients than the default connection limit gets room for them.
        maxConnections:
          opts.limits?.maxConnections ??
          Math.max(DEFAULT_LIMITS.maxConnections, opts.serverOptions?.maxClients ?? 0),
      }),
      { name: 'derp', log: this.derp.log },
    );
  }

  /** Routes an HTTP(S) server's requests and upgrades here. */
  private wire<S extends Server>(http: S): S {
    guardRequests(http, this.guard);
    http.on('request', (req, res) => this.onRequest(req, res));
    http.on('upgrade', (req, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    // A failed TLS handshake (or one cut short by the request deadline) concerns that connection only.
    http.on('tlsClientError', (err: Error) => this.derp.log.debug(`derp: TLS handshake: ${err.message}`));
    return http;
  }

  /** A server for one address: HTTP, HTTPS, or (acceptPlainHttp) a TCP server that hands each connection to either. */
  private serverFor(): NetServer {
    const tls = this.opts.tls;
    const options = httpOptions(this.guard.limits);
    const listener = ((): NetServer => {
      if (!tls) return this.wire(createHttpServer(options));
      // Node's own TLS handshake timer restarts with every byte; the request deadline bounds it as a whole.
      const https = this.wire(
        createHttpsServer({
          ...options,
          cert: tls.cert,
          key: tls.key,
          handshakeTimeout: options.requestTimeout,
        }),
      );
      if (!this.opts.acceptPlainHttp || !HANDS_OVER_SOCKETS) return https;
      return createNetServer(sniffer(this.wire(createHttpServer(options)), https));
    })();
    guardAccepts(listener, this.guard, (err) => this.derp.log.warn(`derp: accept: ${err.message}`));
    return listener;
  }

  /**
   * Starts listening on `host` (and, for loopback or the wildcard, the same address in the other
   * IP family where the machine has it, listen.ts) and the STUN responder likewise; resolves
   * when all are bound.
   */
  static async listen(opts: DerpHttpServerOptions): Promise<DerpHttpServer> {
    const srv = new DerpHttpServer(opts);
    const host = opts.host ?? '127.0.0.1';
    srv.listeners = await bindBothFamilies(host, opts.port, {
      bind: (h, p) => listenOn(srv.serverFor(), h, p),
      port: (l) => (l.address() as AddressInfo).port,
      close: (l) => new Promise<void>((r) => l.close(() => r())),
    });
    if (opts.stunPort !== undefined) {
      try {
        srv.stun = await StunServer.listen({ host, port: opts.stunPort });
      } catch (err) {
        await srv.close();
        throw err;
      }
    }
    return srv;
  }

  /** Where it listens for TCP, as `host:port` / `[v6]:port`. */
  get addresses(): string[] {
    return this.listeners.map((l) => formatAddress(l.address() as AddressInfo));
  }

  /** The bound TCP port. */
  get port(): number {
    return (this.listeners[0]!.address() as AddressInfo).port;
  }

  /** The `/derp` URL clients dial. */
  get url(): string {
    const host = this.opts.host ?? '127.0.0.1';
    const h = host.includes(':') ? `[${host}]` : host;
    return `${this.opts.tls ? 'https' : 'http'}://${h}:${this.port}/derp`;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/derp/probe':
      case '/derp/latency-check':
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { 'Content-Type': 'text/plain' }).end('bogus probe method\n');
          return;
        }
        res.writeHead(200, { 'Access-Control-Allow-Origin': '*' }).end();
        return;
      case '/derp':
        res
          .writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8' })
          .end('DERP requires connection upgrade\n');
        return;
      case '/generate_204': {
        const challenge = req.headers['x-tailscale-challenge'];
        const headers: Record<string, string> = {
          'Cache-Control': 'no-cache, no-store, must-revalidate, no-transform, max-age=0',
        };
        if (typeof challenge === 'string' && CHALLENGE.test(challenge))
          headers['X-Tailscale-Response'] = `response ${challenge}`;
        res.writeHead(204, headers).end();
        return;
      }
      case '/metrics': {
        const extra = {
          clients_local: this.derp.clientKeyCount,
          open_connections: this.derp.connectionCount,
        };
        res
          .writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
          .end(
            this.derp.metrics.toPrometheus(extra) + this.guard.toPrometheus('derp', this.derp.metrics.shed()),
          );
        return;
      }
      case '/robots.txt':
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('User-agent: *\nDisallow: /\n');
        return;
      case '/':
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('quackscale DERP relay\n');
        return;
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  }

  private refuse(socket: Socket, status: string, body: string): void {
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // The request is in: from here the DERP login deadline (DerpServer loginTimeoutMs) applies.
    this.guard.disarm(socket);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/derp') {
      this.refuse(socket, '404 Not Found', 'not found\n');
      return;
    }
    const up = (req.headers.upgrade ?? '').toLowerCase();
    if (up !== 'websocket' && up !== 'derp') {
      this.refuse(socket, '426 Upgrade Required', 'DERP requires connection upgrade\n');
      return;
    }
    if (!this.derp.canAccept()) {
      this.derp.metrics.rejectedOverLimit++;
      this.refuse(socket, '503 Service Unavailable', 'DERP server is full\n');
      return;
    }
    // A login costs an X25519 operation (the ClientInfo box): one source may not start too many.
    if (!this.guard.allowHandshake(socket.remoteAddress)) {
      this.refuse(socket, '429 Too Many Requests', 'too many DERP logins from your address\n');
      return;
    }
    socket.setKeepAlive(true, 60_000);
    const wantsWs = up === 'websocket' && (req.headers['sec-websocket-protocol'] ?? '').includes('derp');
    if (wantsWs) {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.derp.metrics.websocketAccepts++;
        this.derp.accept(new WebSocketConn(ws, socket.remoteAddress ?? '', socket.remotePort ?? 0));
      });
      return;
    }
    // Very old clients sent "Upgrade: WebSocket" and then spoke plain DERP; derper's
    // Handler accepts them like "Upgrade: DERP" (derpserver/websocket.go comment).
    if (req.headers[FastStartHeader.toLowerCase()] !== '1') {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n' +
          `Derp-Version: ${ProtocolVersion}\r\nDerp-Public-Key: ${keyToHex(this.derp.publicKey)}\r\n\r\n`,
      );
    }
    if (head.length > 0) socket.unshift(head);
    this.derp.accept(new SocketConn(socket));
  }

  /** Stops listening, closes every connection and the STUN socket. */
  async close(): Promise<void> {
    this.derp.close();
    this.stun?.close();
    this.wss.close();
    this.guard.closeAll();
    await Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
  }
}

/** Starts `server` on `host:port`; IPv6 listeners are IPv6 only, so the IPv4 wildcard can sit beside them. */
function listenOn(server: NetServer, host: string, port: number): Promise<NetServer> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(new DerpError('BAD_CONFIG', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err })),
    );
    server.listen({ host, port, ipv6Only: isIPv6(host) }, () => resolve(server));
  });
}

/**
 * Whether a connection accepted elsewhere can be handed to a node:http(s) server with
 * `emit('connection')`, as Node allows; Bun's and Deno's servers take only their own.
 */
const HANDS_OVER_SOCKETS = runtime.name === 'node';

/**
 * Hands each connection to `https` if its first byte opens a TLS record (ContentType
 * handshake, 0x16: RFC 8446 §5.1), else to `http`; the byte is put back first. A connection
 * that sends nothing is closed by the guard's request deadline.
 */
function sniffer(http: Server, https: Server): (socket: Socket) => void {
  return (socket) => {
    if (socket.destroyed) return; // shed by the guard
    // A reset before the first byte concerns no one but this connection; after the hand-over the
    // HTTP(S) server handles errors.
    const drop = (): void => {
      socket.destroy();
    };
    socket.on('error', drop);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.off('error', drop);
      socket.unshift(first);
      (first[0] === 0x16 ? https : http).emit('connection', socket);
      // The TLS socket drains what was put back itself; node:http reads from the handle and sees
      // the put-back bytes only as a 'data' event, which needs the stream flowing.
      if (first[0] !== 0x16) socket.resume();
    });
  };
}
