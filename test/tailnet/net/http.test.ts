// node:http, https, http2 and ws, undici and axios over the tailnet through an option (an Agent, a
// dispatcher, createConnection), never a proxy; and servers of each kind attached to a tailnet
// port in one line, with whois of each connection. Between two of our nodes, in process.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import axios from 'axios';
import { fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { runtime } from '../../../src/platform/runtime.js';
import { type TwoNodes, twoNodes } from './helpers.js';
import { makeTestCA, type TestCA } from './tls-ca.js';

// What Bun and Deno lack (README "Runtimes"): Bun's TLS servers cannot be handed a connection and
// its undici is a stand-in; Deno's own fetch takes no dispatcher.
const bun = runtime.name === 'bun';
const deno = runtime.name === 'deno';
let t: TwoNodes;
let ca: TestCA;
/** Never listens itself: fed by the tailnet listener on port 80. */
const plain = http.createServer(handler);
const body = randomBytes(2 << 20);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Who each server saw, by request path. */
const whoSaw = new Map<string, string | undefined>();

/** Serves `body` at /body, the SHA-256 of a POST's body, and records whois by path. */
function handler(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) {
  whoSaw.set(String(req.url), t.b.whois(req)?.hostname);
  if (req.method === 'POST') {
    const h = createHash('sha256');
    req.on('data', (d: Buffer) => h.update(d));
    req.on('end', () => res.end(h.digest('hex')));
    return;
  }
  res.end(req.url === '/body' ? body : `hello ${String(req.url)}`);
}

beforeAll(async () => {
  t = await twoNodes();
  ca = makeTestCA(['bravo', 'bravo.tailnet.internal', t.bIPv4]);
  const tlsOpts = { cert: ca.cert, key: ca.key };
  await t.b.listen(80, plain);
  await t.b.listen(8080, http2.createServer(handler));
  if (!bun) {
    await t.b.listen(443, https.createServer(tlsOpts, handler));
    await t.b.listen(8443, http2.createSecureServer({ ...tlsOpts, allowHTTP1: true }, handler));
  }
  const wsHttp = http.createServer();
  new WebSocketServer({ server: wsHttp }).on('connection', (ws, req) => {
    whoSaw.set('ws', t.b.whois(req)?.hostname);
    ws.on('message', (m: Buffer) => ws.send(m));
  });
  await t.b.listen(9000, wsHttp);
});
afterAll(() => t?.close());

/** GET (or POST `send`) through node's client, resolving with status and body. */
function request(
  mod: typeof http | typeof https,
  url: string,
  opts: http.RequestOptions & https.RequestOptions,
  send?: Buffer,
): Promise<{ status: number; body: Buffer; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, method: send ? 'POST' : 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), socket: req.socket }),
      );
    });
    req.on('error', reject);
    req.end(send);
  });
}

describe('clients through an option', () => {
  it('http.Agent: keep-alive reuses one tailnet socket over 20 requests; bodies intact both ways', async () => {
    const agent = t.a.httpAgent({ maxSockets: 1 });
    const sockets = new Set<unknown>();
    for (let i = 0; i < 20; i++) {
      const r = await request(http, 'http://bravo/body', { agent });
      expect(sha(r.body)).toBe(sha(body));
      sockets.add(r.socket);
    }
    // Deno's server closes each keep-alive connection after its response unless it is listening.
    expect(plain.listening).toBe(true);
    expect(sockets.size).toBe(1);
    const post = await request(http, 'http://bravo.tailnet.internal/up', { agent }, body);
    expect(post.body.toString()).toBe(sha(body));
    expect(whoSaw.get('/up')).toBe('alpha');
  });

  it.skipIf(bun)(
    "https.Agent: SNI and the server's certificate checked against the test's CA, as node:https does",
    async () => {
      const agent = t.a.httpsAgent({ ca: ca.ca });
      const r = await request(https, 'https://bravo.tailnet.internal/body', { agent });
      expect(sha(r.body)).toBe(sha(body));
      const tlsSocket = r.socket as tls.TLSSocket;
      expect(tlsSocket.authorized).toBe(true);
      expect(tlsSocket.servername).toBe('bravo.tailnet.internal');
      expect(whoSaw.get('/body')).toBe('alpha');
      // Node's roots do not know the test CA; a name the certificate lacks fails its check.
      await expect(request(https, 'https://bravo/x', { agent: t.a.httpsAgent() })).rejects.toMatchObject({
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
      const other = makeTestCA(['someone-else']);
      await expect(
        request(https, 'https://bravo/x', { agent: t.a.httpsAgent({ ca: other.ca }) }),
      ).rejects.toMatchObject({
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
      const byIp = await request(https, `https://${t.bIPv4}/ip`, { agent });
      expect(byIp.body.toString()).toBe('hello /ip');
      const renamed = makeTestCA(['not-bravo']);
      const b2 = https.createServer({ cert: renamed.cert, key: renamed.key }, handler);
      await t.b.listen(4443, b2);
      await expect(
        request(https, 'https://bravo:4443/x', { agent: t.a.httpsAgent({ ca: renamed.ca }) }),
      ).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    },
  );

  it.skipIf(bun)("undici dispatcher: undici's fetch and Node's own fetch, http and https", async () => {
    const dispatcher = t.a.dispatcher({ connect: { ca: ca.ca } });
    const a = await undiciFetch('http://bravo/body', { dispatcher });
    expect(sha(Buffer.from(await a.arrayBuffer()))).toBe(sha(body));
    const b = await undiciFetch('https://bravo/secure', { dispatcher });
    expect(await b.text()).toBe('hello /secure');
    // Node's global fetch is its own copy of undici: it takes the dispatcher as an option too (Deno's does not).
    const globalFetch = deno ? undiciFetch : (fetch as unknown as typeof undiciFetch);
    const c = await globalFetch('https://bravo.tailnet.internal/global', { dispatcher });
    expect(await c.text()).toBe('hello /global');
    const up = await globalFetch('http://bravo/post', { dispatcher, method: 'POST', body });
    expect(await up.text()).toBe(sha(body));
    await expect(undiciFetch('http://nosuch/', { dispatcher })).rejects.toMatchObject({
      cause: { code: 'ENOTFOUND' },
    });
  });

  it.skipIf(bun)('axios with httpAgent and httpsAgent', async () => {
    const client = axios.create({
      httpAgent: t.a.httpAgent(),
      httpsAgent: t.a.httpsAgent({ ca: ca.ca }),
      proxy: false,
    });
    const r = await client.get('http://bravo/body', { responseType: 'arraybuffer' });
    expect(sha(Buffer.from(r.data as ArrayBuffer))).toBe(sha(body));
    const s = await client.get('https://bravo/axios');
    expect(s.data).toBe('hello /axios');
  });

  it('ws through createConnection and through an Agent: 1 MB echoed intact; whois of the upgrade', async () => {
    const payload = randomBytes(1 << 20);
    for (const opts of [{ createConnection: t.a.net.createConnection }, { agent: t.a.httpAgent() }]) {
      const ws = new WebSocket('ws://bravo:9000/', opts as WebSocket.ClientOptions);
      await once(ws, 'open');
      ws.send(payload);
      const [msg] = (await once(ws, 'message')) as [Buffer];
      expect(sha(msg)).toBe(sha(payload));
      ws.close();
    }
    expect(whoSaw.get('ws')).toBe('alpha');
  });

  it('http2: h2c and h2 (ALPN, the CA) clients over tailnet sockets, with whois on the server', async () => {
    const get = async (session: http2.ClientHttp2Session, path: string) => {
      const req = session.request({ ':path': path });
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      await once(req, 'end');
      return Buffer.concat(chunks);
    };
    const h2c = http2.connect('http://bravo:8080', {
      createConnection: () => t.a.net.connect(8080, 'bravo'),
    });
    expect(sha(await get(h2c, '/body'))).toBe(sha(body));
    h2c.close();
    if (bun) return; // Bun's http2 server hides the socket it was handed (no whois), and no TLS server (above)
    expect(whoSaw.get('/body')).toBe('alpha');
    const h2 = http2.connect('https://bravo:8443', {
      createConnection: () =>
        tls.connect({
          socket: t.a.net.connect(8443, 'bravo'),
          servername: 'bravo',
          ca: ca.ca,
          ALPNProtocols: ['h2'],
        }),
    });
    expect((await get(h2, '/h2')).toString()).toBe('hello /h2');
    expect(whoSaw.get('/h2')).toBe('alpha');
    h2.close();
  });
});
