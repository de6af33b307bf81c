/**
 * The tailnet's socket and server classes: the netstack's TcpSocket and TcpServer bound to a
 * node, so that they can be made before the node is up (as a library makes its socket before
 * it connects) and refuse, at connect time, destinations no tailnet node routes.
 */
import type { TcpConnection } from '../../netstack/tcp/connection.js';
import type { TcpEndpoint } from '../../netstack/tcp/endpoint.js';
import { SocketError } from '../../netstack/tcp/errors.js';
import { TcpServer, type TcpServerOptions } from '../../netstack/tcp/server.js';
import { TcpSocket, type TcpSocketOptions } from '../../netstack/tcp/socket.js';
import { runtime } from '../../platform/runtime.js';
import type { TailnetNames } from './lookup.js';

/** What a tailnet socket needs of its node. */
export interface TailnetSocketHost {
  /** The node's TCP endpoint; throws if the node is not up. */
  tcp(): TcpEndpoint;
  /** Why packets to `address` have nowhere to go (EHOSTUNREACH's reason), or undefined when they do. */
  unroutable(address: string): string | undefined;
  /** Whether a `direct` net sends `host` (a name or IP literal) to the OS instead of the tailnet. */
  toOS(host: string): boolean;
  /** Whether names outside the tailnet resolve through the OS resolver (an exit node is chosen). */
  resolvesOthers(): boolean;
  names(): TailnetNames;
  /** A server began listening: the node closes it when it closes. */
  track(server: TcpServer): void;
}

/** A TCP socket of the tailnet, shaped like net.Socket; `connect()` dials over the tailnet. */
export class TailnetSocket extends TcpSocket {
  constructor(
    private readonly host: TailnetSocketHost,
    options: TcpSocketOptions = {},
  ) {
    super(options);
  }

  protected override endpoint(): TcpEndpoint {
    return this.host.tcp();
  }

  /** EHOSTUNREACH at once, with the reason, for an address no node or route takes, instead of SYNs into the void. */
  protected override open(address: string, port: number, localPort: number): TcpConnection {
    const why = this.host.unroutable(address);
    if (why !== undefined) throw new SocketError('EHOSTUNREACH', 'connect', address, port, why);
    return super.open(address, port, localPort);
  }
}

/** A TCP server of the tailnet, shaped like net.Server: `listen(port)` binds our tailnet addresses. */
export class TailnetServer extends TcpServer {
  constructor(
    private readonly host: TailnetSocketHost,
    options: TcpServerOptions = {},
    onConnection?: (socket: TcpSocket) => void,
  ) {
    super(undefined, options, onConnection);
    this.on('listening', () => host.track(this));
  }

  protected override endpoint(): TcpEndpoint {
    return this.host.tcp();
  }
}

/**
 * Throws when `server` cannot take a connection it did not accept itself: Bun's TLS servers
 * (https, http2 secure) cannot be handed one, so `tn.listen(port, server)` says so at once.
 */
export function assertCanHandOff(server: object): void {
  if (
    runtime.name === 'bun' &&
    typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function'
  ) {
    throw new Error(
      "Bun's TLS servers cannot be handed a connection: terminate TLS in front, or run under Node or Deno",
    );
  }
}

/**
 * Makes a handed-off `server` report `listening` as `listener` does. Deno's node:http closes a
 * keep-alive connection after each response when its server is not listening (its
 * `resOnFinish`), though the response said keep-alive: a client still reading the body then
 * sees "other side closed". The server does listen, on the tailnet, so it says so.
 */
export function reportListening(server: object, listener: TcpServer): void {
  if ((server as { listening?: unknown }).listening !== false || Object.hasOwn(server, 'listening')) return;
  Object.defineProperty(server, 'listening', { configurable: true, get: () => listener.listening });
}
