/**
 * `up --metrics-listen ADDR`: an HTTP listener answering `GET /metrics` with the node's metrics in
 * Prometheus text. ADDR is `PORT`, `HOST:PORT` or `[IPv6]:PORT`; a bare port binds 127.0.0.1 only,
 * since the counters name the node's peers. Each scrape renders counters the node keeps anyway:
 * nothing waits on the data path.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Thrown when the metrics listener cannot start; the message names the address. */
export class MetricsListenError extends Error {
  override readonly name = 'MetricsListenError';
}

/** `9100` → 127.0.0.1:9100; `0.0.0.0:9100`; `[::1]:9100`. Throws MetricsListenError on anything else. */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:[\]]+):)?(\d+)$/.exec(addr.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new MetricsListenError(`metrics listen address '${addr}': want PORT, HOST:PORT or [IPv6]:PORT`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

/** A running metrics listener. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `render()` at `/metrics` on `addr` (see {@link parseListenAddress}). Rejects with a
 * MetricsListenError naming the address when it is taken or cannot be bound.
 *
 * @example
 * const srv = await serveMetrics('9100', () => tn.metrics().text);   // http://127.0.0.1:9100/metrics
 */
export async function serveMetrics(addr: string, render: () => string): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(addr);
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(render());
  });
  const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${err.code ?? err.message})`;
      reject(new MetricsListenError(`metrics listener: ${shown} ${why}`, { cause: err }));
    });
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
