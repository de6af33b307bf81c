/**
 * Puts a node:http(s) server (or the TCP server in front of one) under a {@link ConnectionGuard}:
 * each accepted connection is admitted or shed, and must deliver its first request's headers
 * within the request deadline, timed from accept. Node's own request timers do not do that: with
 * their defaults Node 20 kept a silent connection and a half-sent request for the 100 s we
 * watched, they start only once a TLS handshake is over, and the sniffer in front of a TLS-or-HTTP
 * relay has none. Later requests on a kept-alive connection are bounded by Node's
 * keepAliveTimeout and headersTimeout, set to the same deadline.
 * Malformed requests and failed accepts (EMFILE when descriptors run out) are counted instead of
 * reaching Node's defaults, which for a failed accept is an unhandled 'error' that ends the process.
 */
import type { Server as HttpServer, IncomingMessage, ServerOptions } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionGuard, ConnectionLimits } from './guard.js';

/** What Node answers to each parser error (lib/_http_server.js socketOnError), which we keep. */
const STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * Admits (or sheds) each connection `listener` accepts and arms its request deadline. Call it
 * on the server that listens: the HTTP server itself, or the TCP server that hands its
 * connections to HTTP and HTTPS servers.
 *
 * @example
 * guardAccepts(httpServer, guard, (err) => log.warn(`accept: ${err.message}`));
 */
export function guardAccepts(
  listener: NetServer,
  guard: ConnectionGuard,
  onAcceptError: (err: Error) => void,
): void {
  // First in line, so a connection over a limit is closed before HTTP or TLS set anything up.
  listener.prependListener('connection', (socket: Socket) => {
    if (guard.admit(socket)) guard.arm(socket, 'request', guard.limits.requestTimeoutMs);
  });
  listener.on('error', (err: NodeJS.ErrnoException) => {
    // After listen() only accept errors reach here (libuv closes the connection it could not take).
    if (err.syscall === 'accept') {
      guard.count('accept_error');
      onAcceptError(err);
    }
  });
}

/**
 * node:http server options for the request deadline: Node's timers for the requests after the
 * first (headers, and the whole request body included), checked every second rather than
 * Node's 30 s so that they hold to within a second.
 *
 * @example
 * const server = http.createServer(httpOptions(limits), handler);
 */
export function httpOptions(limits: ConnectionLimits): ServerOptions {
  const ms = limits.requestTimeoutMs;
  return { headersTimeout: ms, requestTimeout: ms, connectionsCheckingInterval: Math.min(1000, ms) };
}

/**
 * Ends the request deadline when a request's headers are in, and answers malformed requests
 * as Node would, counted as `bad_request` (or `timeout_request` for Node's own timers).
 *
 * @example
 * guardRequests(http.createServer(httpOptions(limits), handler), guard);
 */
export function guardRequests(server: HttpServer, guard: ConnectionGuard): void {
  server.on('request', (req: IncomingMessage) => guard.disarm(req.socket));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    guard.disarm(socket as Socket); // one count per connection, whichever timer fired first
    const code = err.code ?? '';
    if (code !== 'ECONNRESET')
      guard.count(code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout_request' : 'bad_request');
    if (socket.writable && code !== 'ECONNRESET') {
      socket.write(`HTTP/1.1 ${STATUS[code] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy();
  });
}
