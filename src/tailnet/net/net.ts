/**
 * `tn.net`: node:net's shape over the tailnet, so that a library's socket hook takes it
 * unchanged — `createConnection`/`connect` (http Agents, ws, mysql2), an unconnected `Socket`
 * whose `.connect()` dials (pg), `createServer`, a `lookup` with dns.lookup's signature, and
 * `isIP` & co. passed through. Tailnet hosts (MagicDNS names, 100.x / fd7a: addresses, routed
 * addresses) go over the tailnet; with `direct`, `connect` and `lookup` send other hosts to
 * the OS, as tailscaled's SOCKS5 server does; without it they fail with ENOTFOUND or
 * EHOSTUNREACH. With an exit node, other hosts go through it (names resolved by the OS), and
 * `direct` keeps only loopback (and with exitNodeAllowLANAccess the LANs) on the OS
 * (routes/node-routing.ts).
 */
import net from 'node:net';
import type { TcpServer, TcpServerOptions } from '../../netstack/tcp/server.js';
import type { ConnectArgs, TcpSocket, TcpSocketOptions } from '../../netstack/tcp/socket.js';
import { tailnetLookup } from './lookup.js';
import { TailnetServer, TailnetSocket, type TailnetSocketHost } from './socket.js';

/** Options of {@link createTailnetNet}. */
export interface TailnetNetOptions {
  /** Hosts that are not on the tailnet go through the OS (default false: they fail). */
  direct?: boolean;
}

/** node:net's client and server surface, bound to one tailnet node. */
export interface TailnetNet {
  /** `new Socket()`, then `.connect(port, host)`: dials over the tailnet. */
  Socket: new (
    options?: TcpSocketOptions,
  ) => TcpSocket;
  /** `new Server(listener)`, then `.listen(port)`: accepts on the node's tailnet addresses. */
  Server: new (
    options?: TcpServerOptions,
    listener?: (socket: TcpSocket) => void,
  ) => TcpServer;
  /** As net.connect: returns the socket at once; 'connect' or 'error' follows. */
  connect(...args: ConnectArgs): TcpSocket | net.Socket;
  createConnection(...args: ConnectArgs): TcpSocket | net.Socket;
  /** As net.createServer: `([options][, listener])`. */
  createServer(
    options?: TcpServerOptions | ((socket: TcpSocket) => void),
    listener?: (socket: TcpSocket) => void,
  ): TcpServer;
  /** dns.lookup over MagicDNS (see lookup.ts). */
  lookup: net.LookupFunction;
  isIP: typeof net.isIP;
  isIPv4: typeof net.isIPv4;
  isIPv6: typeof net.isIPv6;
}

/**
 * node:net for one node.
 *
 * @example
 * const client = new pg.Client({ host: 'db', stream: () => new tn.net.Socket() });
 * const ws = new WebSocket('ws://chat:8080/', { createConnection: tn.net.createConnection });
 */
export function createTailnetNet(host: TailnetSocketHost, opts: TailnetNetOptions = {}): TailnetNet {
  const lookup = tailnetLookup(() => host.names(), {
    direct: () => opts.direct === true || host.resolvesOthers(),
  });
  const Socket = class extends TailnetSocket {
    constructor(options: TcpSocketOptions = {}) {
      super(host, { lookup, ...options });
    }
  };
  const Server = class extends TailnetServer {
    constructor(options?: TcpServerOptions, listener?: (socket: TcpSocket) => void) {
      super(host, options, listener);
    }
  };
  /** Whether a destination goes to the OS: only with `direct`, and only for non-tailnet hosts. */
  const toOS = (target: string): boolean => opts.direct === true && host.toOS(target);
  function connect(...args: ConnectArgs): TcpSocket | net.Socket {
    const [first, second] = args;
    // As net.connect: the options object is the socket's options too.
    const options = typeof first === 'object' ? (first as TcpSocketOptions & { host?: string }) : {};
    const target = typeof first === 'object' ? options.host : typeof second === 'string' ? second : undefined;
    if (toOS(target ?? 'localhost')) return net.connect(...(args as Parameters<typeof net.connect>));
    return new Socket({ allowHalfOpen: options.allowHalfOpen }).connect(...args);
  }
  return {
    Socket,
    Server,
    connect,
    createConnection: connect,
    createServer(options, listener) {
      return typeof options === 'function' ? new Server({}, options) : new Server(options, listener);
    },
    lookup,
    isIP: net.isIP,
    isIPv4: net.isIPv4,
    isIPv6: net.isIPv6,
  };
}
