/**
 * The control server's plain-HTTP paths outside Noise, besides the login pages
 * (register-page.ts), after Headscale's hscontrol/app.go router: `GET /key?v=N` (the Noise
 * public key), `/health`, `/ts2021` without an upgrade, and `/metrics` for this host only
 * (Headscale serves its metrics on a separate, private listener).
 */
import type * as http from 'node:http';
import { isSameHost } from './admin.js';

/** What the paths answer with. */
export interface PlainContext {
  /** The server's Noise public key, `mkey:<hex>`. */
  noiseKey: string;
  /** The Prometheus text for `/metrics`. */
  metrics: () => string;
}

/**
 * Answers one request on the paths above, or 404.
 *
 * @example
 * servePlainHTTP(req, res, { noiseKey: key.publicKey.toString(), metrics: () => guard.toPrometheus('control') });
 */
export function servePlainHTTP(req: http.IncomingMessage, res: http.ServerResponse, ctx: PlainContext): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'GET' && url.pathname === '/key') {
    const v = url.searchParams.get('v');
    if (v === null || !/^\d+$/.test(v)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('capability version must be set\n');
      return;
    }
    // CORS: a web page from another origin reads the key before it opens its WebSocket.
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
    res.end(`${JSON.stringify({ legacyPublicKey: `mkey:${'0'.repeat(64)}`, publicKey: ctx.noiseKey })}\n`);
    return;
  }
  if (url.pathname === '/metrics' && isSameHost(req.socket)) {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(ctx.metrics());
    return;
  }
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'application/health+json' }).end('{"status":"pass"}\n');
    return;
  }
  if (url.pathname === '/ts2021') {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('missing next protocol\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}
