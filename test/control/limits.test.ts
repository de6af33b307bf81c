// The control server's deadlines and limits with short configured values: the request deadline on its
// listener, the first request inside Noise, idle Noise connections, the per-source ts2021 rate, request
// bodies (by declared length and as they arrive), concurrent HTTP/2 streams, map streams per node, and
// the counters on /metrics.
import * as http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { dialNoise } from '../../src/control/dial.js';
import { PrivateKey } from '../../src/control/keys.js';
import type { NoiseConn } from '../../src/control/noise/conn.js';
import type { ControlServer, ControlServerOptions } from '../../src/control/server/server.js';
import { CAPABILITY_VERSION } from '../../src/control/version.js';
import { open as openTcp } from '../guard/sockets.js';
import { Rig } from './helpers.js';

const rig = new Rig();
const sessions: http2.ClientHttp2Session[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  await rig.cleanup();
});

const server = (opts: Partial<ControlServerOptions> = {}): Promise<ControlServer> => rig.server(opts);

function noise(srv: ControlServer): Promise<NoiseConn> {
  return dialNoise({
    serverURL: srv.url,
    machineKey: PrivateKey.generate('machine'),
    controlKey: srv.registry.noiseKey.publicKey,
    protocolVersion: CAPABILITY_VERSION,
  });
}

/** HTTP/2 over a fresh Noise connection, once the server's SETTINGS are known. */
async function h2(srv: ControlServer): Promise<{ conn: NoiseConn; session: http2.ClientHttp2Session }> {
  const conn = await noise(srv);
  const session = http2.connect(srv.url, { createConnection: () => conn });
  sessions.push(session);
  session.on('error', () => {});
  await new Promise((r) => session.once('remoteSettings', r));
  return { conn, session };
}

function closedWithin(conn: NoiseConn, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (conn.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    conn.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Status and body of a request; `body` is sent (and the request ended) unless it is undefined. */
function request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): { stream: http2.ClientHttp2Stream; done: Promise<{ status: number; text: string }> } {
  const stream = session.request(headers);
  stream.on('error', () => {});
  if (body !== undefined) stream.end(body);
  const done = new Promise<{ status: number; text: string }>((resolve) => {
    let status = 0;
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('data', (c: Buffer) => {
      text += c.toString();
    });
    stream.on('close', () => resolve({ status, text }));
  });
  return { stream, done };
}

describe('deadlines', () => {
  it('a connection that sends no request is closed at the request deadline', async () => {
    const srv = await server({ limits: { requestTimeoutMs: 300 } });
    const p = await openTcp(Number(new URL(srv.url).port));
    expect(await p.closed(3000)).toBeGreaterThanOrEqual(250);
    expect(srv.guard.shed.get('timeout_request')).toBe(1);
  });

  it('a Noise connection with no HTTP/2 request is closed at the first-request deadline', async () => {
    const srv = await server({ noiseLimits: { noiseTimeoutMs: 300 } });
    const conn = await noise(srv);
    expect(await closedWithin(conn, 3000)).toBe(true);
    expect(srv.guard.shed.get('timeout_noise')).toBe(1);
  });

  it('an idle Noise connection is closed; one holding a map stream is not', async () => {
    const srv = await server({ noiseLimits: { noiseIdleTimeoutMs: 300 } });
    const node = await rig.client({ serverURL: srv.url, authKey: await srv.createAuthKey() });
    await node.login();
    node.start();
    await node.waitForNetmap();
    const { conn, session } = await h2(srv);
    const r = request(session, { ':method': 'POST', ':path': '/machine/map' }, '{}');
    expect((await r.done).status).toBe(400);
    expect(await closedWithin(conn, 3000)).toBe(true);
    await new Promise((res) => setTimeout(res, 600));
    expect(srv.guard.shed.get('timeout_noise_idle')).toBe(1);
    expect(srv.isOnline((await node.waitForNetmap()).self.id)).toBe(true);
  });
});

describe('limits', () => {
  it('ts2021 upgrades per source: over the burst they get 429, counted', async () => {
    const srv = await server({ limits: { handshakesPerSecond: 0.5, handshakeBurst: 2 } });
    const ok = [await noise(srv), await noise(srv)];
    await expect(noise(srv)).rejects.toThrow(/HTTP 429/);
    expect(srv.guard.shed.get('handshake_rate')).toBe(1);
    for (const c of ok) c.destroy();
  });

  it('a body declaring 2 GB is refused with 413 before it is read; an undeclared one at the limit', async () => {
    const srv = await server({ noiseLimits: { maxBodyBytes: 1000 } });
    const { session } = await h2(srv);
    const declared = request(session, {
      ':method': 'POST',
      ':path': '/machine/register',
      'content-length': String(2 ** 31),
    });
    declared.stream.write(Buffer.alloc(100));
    expect((await declared.done).status).toBe(413);
    const streamed = request(session, { ':method': 'POST', ':path': '/machine/register' });
    for (let i = 0; i < 5; i++) streamed.stream.write(Buffer.alloc(400));
    expect((await streamed.done).status).toBe(413);
    expect(srv.guard.shed.get('body_too_large')).toBe(2);
  });

  it('concurrent HTTP/2 streams per connection are bounded', async () => {
    const srv = await server({ noiseLimits: { maxStreams: 2 } });
    const { session } = await h2(srv);
    // Two requests whose bodies never end hold two streams open.
    const held = [0, 1].map(() => request(session, { ':method': 'POST', ':path': '/machine/register' }));
    const third = request(session, { ':method': 'GET', ':path': '/machine/whoami' }, '');
    const early = await Promise.race([third.done, new Promise((r) => setTimeout(() => r('waiting'), 500))]);
    expect(early).toBe('waiting');
    held[0]!.stream.close();
    expect((await third.done).status).toBe(501);
  });

  it('map streams per node: a new one closes the oldest beyond the bound', async () => {
    const srv = await server({ maxMapSessionsPerNode: 2 });
    const stateDir = await rig.dir();
    const authKey = await srv.createAuthKey({ reusable: true });
    const first = await rig.client({ serverURL: srv.url, authKey, stateDir });
    await first.login();
    const clients = [first, await rig.client({ serverURL: srv.url, authKey, stateDir })];
    clients.push(await rig.client({ serverURL: srv.url, authKey, stateDir }));
    for (const c of clients.slice(1)) await c.login();
    const streams = async () =>
      Number(/control_map_sessions (\d+)/.exec(await (await fetch(`${srv.url}/metrics`)).text())?.[1]);
    for (const c of clients) c.start();
    let most = 0;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, await streams());
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(most).toBe(2);
    expect(srv.guard.shed.get('map_sessions_per_node')).toBeGreaterThan(0);
  });
});

describe('counters', () => {
  it('/metrics answers this host with every shed reason', async () => {
    const srv = await server();
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    for (const r of [
      'timeout_request',
      'handshake_rate',
      'timeout_noise',
      'timeout_noise_idle',
      'body_too_large',
    ])
      expect(text).toContain(`control_connections_shed{reason="${r}"} 0`);
  });
});
