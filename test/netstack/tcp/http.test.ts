// Node's own HTTP stack, undici (Node's built-in copy, through fetch's dispatcher) and ws, all
// running unchanged over our sockets: the proof that TcpSocket is shaped like net.Socket.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { runtime } from '../../../src/platform/runtime.js';
import { B, type Pair, sha256, tcpPair } from './helpers.js';

let pair: Pair;
let httpServer: http.Server | undefined;
afterEach(() => {
  httpServer?.close();
  pair?.close();
});

const body = randomBytes(3 << 20);

/** A node:http server fed by our listener on b:80. */
function serve(p: Pair, handler: http.RequestListener): http.Server {
  const server = http.createServer(handler);
  new TcpServer(p.b, {}, (s) => server.emit('connection', s)).listen(80);
  return server;
}

function fileHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === 'POST') {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => res.end(sha256(Buffer.concat(chunks))));
    return;
  }
  res.setHeader('content-type', 'application/octet-stream');
  res.end(body);
}

describe('HTTP over our TCP', () => {
  it('node:http server and http.request with createConnection: GET and POST, keep-alive', async () => {
    pair = tcpPair({
      faults: { loss: 0.01, reorder: 0.02, seed: 11 },
      a: { minRtoMs: 20 },
      b: { minRtoMs: 20 },
    });
    httpServer = serve(pair, fileHandler);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // http.Agent calls createConnection for each new socket; ours returns a TcpSocket.
    (agent as unknown as { createConnection: () => Duplex }).createConnection = () =>
      tcpConnect(pair.a, { host: B, port: 80 });
    const get = () =>
      new Promise<Buffer>((resolve, reject) => {
        http
          .get({ host: B, port: 80, path: '/file', agent }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (d: Buffer) => chunks.push(d));
            res.on('end', () => resolve(Buffer.concat(chunks)));
          })
          .on('error', reject);
      });
    const first = await get();
    expect(first.length).toBe(body.length);
    expect(sha256(first)).toBe(sha256(body));
    const second = await get();
    expect(sha256(second)).toBe(sha256(body));
    // The second request reused the connection (Deno's node:http opens a new one per request).
    if (runtime.name !== 'deno') expect(pair.a.stats.activeOpens).toBe(1);
    const upload = randomBytes(1 << 20);
    const answer = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: B, port: 80, method: 'POST', path: '/up', agent }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(upload);
    });
    expect(answer).toBe(sha256(upload));
    agent.destroy();
  });

  // Node's own undici, reached through its global dispatcher: Bun and Deno have their own fetch.
  it.runIf(runtime.name === 'node')(
    'fetch through an undici Agent whose connect hook dials our stack',
    async () => {
      pair = tcpPair();
      httpServer = serve(pair, fileHandler);
      // Node's bundled undici: its Agent class is reachable from the global dispatcher that fetch made.
      await fetch('http://127.0.0.1:1/').catch(() => undefined);
      const global = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')];
      type Connect = (
        opts: { hostname: string; port: string },
        cb: (err: Error | null, s?: Duplex) => void,
      ) => void;
      type AgentLike = { close(): Promise<void> };
      const Agent = (global as { constructor: new (o: { connect: Connect }) => AgentLike }).constructor;
      const dialed: string[] = [];
      const agent = new Agent({
        connect: (opts, cb) => {
          dialed.push(`${opts.hostname}:${opts.port}`);
          const s = tcpConnect(pair.a, { host: opts.hostname, port: Number(opts.port) || 80 });
          s.once('connect', () => cb(null, s));
          s.once('error', (e) => cb(e));
        },
      });
      const res = await fetch(`http://${B}/file`, { dispatcher: agent } as unknown as RequestInit);
      expect(res.status).toBe(200);
      const got = Buffer.from(await res.arrayBuffer());
      expect(got.length).toBe(body.length);
      expect(sha256(got)).toBe(sha256(body));
      const up = randomBytes(500_000);
      const posted = await fetch(`http://${B}/up`, {
        method: 'POST',
        body: up,
        dispatcher: agent,
      } as unknown as RequestInit);
      expect(await posted.text()).toBe(sha256(up));
      // undici passes '' for the scheme's default port; every dial went through our hook.
      expect(dialed.length).toBeGreaterThanOrEqual(1);
      expect(new Set(dialed)).toEqual(new Set([`${B}:`]));
      await agent.close();
    },
  );

  it('a ws client and server exchange messages both ways', async () => {
    pair = tcpPair();
    const wss = new WebSocketServer({ noServer: true });
    httpServer = http.createServer();
    httpServer.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (m: Buffer) => ws.send(sha256(m)));
      });
    });
    new TcpServer(pair.b, {}, (s) => httpServer!.emit('connection', s)).listen(80);
    const ws = new WebSocket(`ws://${B}/chat`, {
      createConnection: () =>
        tcpConnect(pair.a, { host: B, port: 80 }) as unknown as import('node:net').Socket,
    });
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    const messages = [randomBytes(10), randomBytes(200_000), randomBytes(1)];
    for (const m of messages) {
      ws.send(m);
      const reply = await new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
      expect(reply).toBe(sha256(m));
    }
    const closed = new Promise<number>((r) => ws.once('close', r));
    ws.close(1000, 'done');
    expect(await closed).toBe(1000);
    wss.close();
  });
});
