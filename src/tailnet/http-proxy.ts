/**
 * A loopback HTTP proxy that carries requests for tailnet hosts over the tailnet and sends
 * everything else directly, untouched: the way DuckDB's httpfs and quack extensions (which
 * honour `http_proxy`, with absolute-URI requests and CONNECT) reach tailnet peers.
 *
 * It listens on 127.0.0.1 only and requires Basic proxy credentials (random per node), so
 * that no other local user — and no web page through DNS rebinding — can ride the tailnet
 * through it. Wrong or missing credentials get 407. Bodies stream in both directions.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { noDelay, splice } from '../netstack/splice.js';
import { runtime } from '../platform/runtime.js';

export interface HttpProxyOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** True if `host` (a name or IP literal, no brackets) is reached over the tailnet. */
  isTailnetHost(host: string): boolean;
  /** Opens a TCP connection to a tailnet host. */
  dial(host: string, port: number): Promise<Duplex>;
  /** Credentials; random when absent. */
  username?: string;
  password?: string;
  logger?: { debug(m: string): void; warn(m: string): void };
}

/** A running proxy: where it listens and the credentials clients must send. */
export interface HttpProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** `http://user:pass@127.0.0.1:port`, for clients that take one URL. */
  readonly url: string;
  readonly stats: { tailnet: number; direct: number; refused: number; failed: number };
  close(): Promise<void>;
}

/** Headers that describe one hop, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Starts the proxy. */
export async function startHttpProxy(opts: HttpProxyOptions): Promise<HttpProxy> {
  const username = opts.username ?? 'quackscale';
  const password = opts.password ?? randomBytes(18).toString('base64url');
  const expected = Buffer.from(`Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
  const stats = { tailnet: 0, direct: 0, refused: 0, failed: 0 };
  const sockets = new Set<Duplex>();

  const authorized = (header: string | undefined): boolean => {
    const got = Buffer.from(header ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const connect = (host: string, port: number): Promise<Duplex> => {
    if (opts.isTailnetHost(host)) {
      stats.tailnet++;
      return opts.dial(host, port);
    }
    stats.direct++;
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  };
  const track = (s: Duplex): Duplex => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    return s;
  };
  // Upstream connections stay open and are reused per host:port: a new tailnet connection
  // costs a round trip through WireGuard, and httpfs and quack send many small requests.
  const upstreams = new UpstreamAgent((host, port) =>
    connect(host, port).then((sock) => {
      // Head and body are separate writes: with Nagle the body would wait for the peer's
      // delayed ACK of the head (RFC 9293 §3.7.4).
      noDelay(sock);
      return track(sock);
    }),
  );

  const server = http.createServer((req, res) => {
    if (!authorized(req.headers['proxy-authorization'])) {
      stats.refused++;
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="quackscale"', 'Content-Length': 0 }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400, { 'Content-Length': 0 }).end(); // origin-form: this is a proxy, not a server
      return;
    }
    if (target.protocol !== 'http:') {
      res.writeHead(400, { 'Content-Length': 0 }).end();
      return;
    }
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const port = Number(target.port || 80);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers))
      if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    // RFC 9112 §3.2.2: with an absolute-form target, Host is the target's authority.
    headers.host = target.host;
    const upstream = http.request({
      host,
      port,
      agent: upstreams,
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers,
    });
    upstream.on('response', (up) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.pipe(res);
    });
    upstream.on('error', (err) => fail(res, host, port, err));
    req.pipe(upstream);
  });
  // A client may half-close once its request is sent (RFC 9293 §3.6; `nc -N` does). Node's
  // server otherwise aborts the request at that FIN and ends the socket, so the answer, which
  // comes later from upstream, was lost: the response now goes out and then the socket ends.
  // Node's switch, which Bun honours; Deno's node:http, given it, waits forever on a request
  // whose body the FIN cut short (Node and Bun answer 400), so Deno keeps the abort.
  if (runtime.name !== 'deno')
    (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  const fail = (res: http.ServerResponse, host: string, port: number, err: unknown) => {
    stats.failed++;
    opts.logger?.debug(`proxy: ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`);
    if (!res.headersSent) res.writeHead(502, { 'Content-Length': 0 }).end();
    else res.destroy();
  };

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    track(client);
    client.on('error', () => client.destroy());
    if (!authorized(req.headers['proxy-authorization'])) {
      stats.refused++;
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="quackscale"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? '');
    if (!m) {
      client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, port] = [m[1]!, Number(m[2])];
    connect(host, port).then(
      (up) => {
        track(up);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) up.write(head);
        splice(client, up);
      },
      (err: unknown) => {
        stats.failed++;
        opts.logger?.debug(
          `proxy: CONNECT ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`,
        );
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    username,
    password,
    url: `http://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    stats,
    close: async () => {
      upstreams.destroy();
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * An http.Agent whose connections come from `open` (a tailnet dial, or the OS for other hosts),
 * kept alive between requests. Node's Agent accepts a connection handed over through the
 * callback of createConnection, which is how an asynchronous dial fits in.
 */
class UpstreamAgent extends http.Agent {
  constructor(private readonly open: (host: string, port: number) => Promise<Duplex>) {
    super({ keepAlive: true, maxFreeSockets: 16 });
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const host = String(options.host ?? 'localhost');
    this.open(host, Number(options.port ?? 80)).then(
      (sock) => callback?.(null, sock),
      (err: unknown) => callback?.(err instanceof Error ? err : new Error(String(err)), undefined as never),
    );
    return undefined;
  }
}
