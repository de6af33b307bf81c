/**
 * node:http and node:https Agents whose sockets come from the tailnet's `net` (tn.net), for
 * `http.get`, `https.request`, ws, axios and every client that takes an `agent`. They keep
 * node's pooling (keep-alive on by default, as node's global agent since v19) and, for https,
 * node's TLS: SNI from the request's host, the certificate checked against `ca` (default:
 * node's roots) and the host name, sessions resumed — the Agent only supplies the socket
 * underneath.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { TailnetNet } from './net.js';

function connectionOptions(options: http.ClientRequestArgs): { host: string; port: number } {
  const host = options.host ?? options.hostname ?? 'localhost';
  return { host, port: Number(options.port) || Number(options.defaultPort) || 80 };
}

/**
 * An http.Agent over the tailnet.
 *
 * @example
 * http.get('http://web-1:8080/health', { agent: tn.httpAgent() }, (res) => res.pipe(process.stdout));
 */
export class TailnetHttpAgent extends http.Agent {
  constructor(
    private readonly tailnet: TailnetNet,
    options: http.AgentOptions = {},
  ) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(options: http.ClientRequestArgs): Duplex {
    return this.tailnet.createConnection(connectionOptions(options));
  }
}

/**
 * An https.Agent over the tailnet: node's TLS client on a tailnet socket.
 *
 * @example
 * https.get('https://api.corp.ts.net/', { agent: tn.httpsAgent({ ca }) }, (res) => …);
 */
export class TailnetHttpsAgent extends https.Agent {
  constructor(
    private readonly tailnet: TailnetNet,
    options: https.AgentOptions = {},
  ) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(options: https.RequestOptions): Duplex {
    const { host, port } = connectionOptions({ ...options, defaultPort: options.defaultPort ?? 443 });
    // https.Agent's own createConnection does tls.connect(options) with its session cache;
    // given `socket`, TLS runs over it instead of a kernel connection.
    const socket = this.tailnet.createConnection({ host, port });
    return super.createConnection({ ...options, host, port, socket } as https.RequestOptions)!;
  }
}
