// Our client against our server, frame type by frame type, and the server's handling of duplicate keys, mesh
// peers, keepalives, PeerGone, the client limit and the HTTP endpoints.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { DerpClient } from '../../src/derp/client.js';
import * as C from '../../src/derp/constants.js';
import type { DerpHttpServer } from '../../src/derp/http-server.js';
import { encodeSendPacket, type ServerMessage } from '../../src/derp/messages.js';
import { collect, connect, numbered, relayChecked, sha256, startServer, until } from './helpers.js';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function server(opts: Parameters<typeof startServer>[0] = {}): Promise<DerpHttpServer> {
  const s = await startServer(opts);
  open.push(s);
  return s;
}

async function client(srv: DerpHttpServer, opts: Parameters<typeof connect>[1] = {}): Promise<DerpClient> {
  const c = await connect(srv.url, opts);
  open.push(c);
  return c;
}

function nextMessage(c: DerpClient, type: ServerMessage['type'], timeoutMs = 3000): Promise<ServerMessage> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${type} in ${timeoutMs} ms`)), timeoutMs);
    c.onMessage((m) => {
      if (m.type === type) {
        clearTimeout(t);
        resolve(m);
      }
    });
  });
}

/** A disco-looking packet: magic `TS💬`, then 32 + 24 bytes at least. */
const disco = () => Buffer.concat([Buffer.from(C.DiscoMagic), randomBytes(80)]);

describe('login and relay', () => {
  it('logs in with the server key and ServerInfo v2, and relays intact packets both ways', async () => {
    const srv = await server();
    const a = await client(srv);
    const b = await client(srv);
    expect(Buffer.compare(a.serverPublicKey, srv.derp.publicKey)).toBe(0);
    expect(a.serverInfo.version).toBe(C.ProtocolVersion);
    expect(srv.derp.isConnected(a.publicKey)).toBe(true);
    const packets = Array.from({ length: 200 }, (_, i) => numbered(i, [4, 64, 1420, 65536][i % 4]!));
    await relayChecked(a, b, packets, 16);
    await relayChecked(b, a, packets, 16);
    expect(srv.derp.metrics.packetsSent).toBe(400);
    expect(srv.derp.metrics.bytesReceived).toBe(2 * packets.reduce((n, p) => n + p.length, 0));
  });

  it('a packet over MaxPacketSize is refused by the client before it is sent', async () => {
    const srv = await server();
    const a = await client(srv);
    expect(() => a.send(a.publicKey, new Uint8Array(C.MaxPacketSize + 1))).toThrow(
      expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
    );
  });

  it('packets to an unknown key are dropped and counted; disco ones earn a rate-limited PeerGone(NotHere)', async () => {
    const srv = await server();
    const a = await client(srv);
    const nobody = new Uint8Array(randomBytes(32));
    const gone: ServerMessage[] = [];
    a.onMessage((m) => m.type === 'peerGone' && gone.push(m));
    a.send(nobody, new Uint8Array(100));
    for (let i = 0; i < 5; i++) a.send(nobody, disco());
    await until('drops', () =>
      srv.derp.metrics.packetsDropped.get('unknown_dest') === 6 ? true : undefined,
    );
    await until('peerGone', () => (gone.length === 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    expect(gone).toHaveLength(3);
    expect(gone[0]).toMatchObject({ reason: C.PeerGoneReasonNotHere });
    expect(Buffer.compare((gone[0] as { peer: Uint8Array }).peer, nobody)).toBe(0);
  });
});

describe('control frames', () => {
  it('Ping gets its Pong; the RTT is measured', async () => {
    const srv = await server();
    const a = await client(srv);
    const rtt = await a.ping();
    expect(rtt).toBeGreaterThan(0);
    expect(rtt).toBeLessThan(1000);
    expect(srv.derp.metrics.gotPing).toBe(1);
  });

  it('NotePreferred moves the home-connection gauge', async () => {
    const srv = await server();
    const a = await client(srv);
    a.notePreferred(true);
    await until('home', () => (srv.derp.metrics.currentHomeConnections === 1 ? true : undefined));
    a.notePreferred(false);
    await until('not home', () => (srv.derp.metrics.currentHomeConnections === 0 ? true : undefined));
  });

  it('the server sends KeepAlive frames on schedule', async () => {
    const srv = await server({ serverOptions: { keepAliveMs: 100 } });
    const a = await client(srv);
    await nextMessage(a, 'keepAlive', 8000);
  });

  it('PeerGone(disconnected) goes to clients that heard from the peer, not to others', async () => {
    const srv = await server();
    const [a, b, c] = [await client(srv), await client(srv), await client(srv)];
    const got = collect(b, 1);
    a.send(b.publicKey, new Uint8Array(10));
    await got;
    const cGone: ServerMessage[] = [];
    c.onMessage((m) => m.type === 'peerGone' && cGone.push(m));
    const gone = nextMessage(b, 'peerGone');
    a.close();
    const m = await gone;
    expect(m).toMatchObject({ type: 'peerGone', reason: C.PeerGoneReasonDisconnected });
    expect(Buffer.compare((m as { peer: Uint8Array }).peer, a.publicKey)).toBe(0);
    expect(cGone).toEqual([]);
    expect(srv.derp.metrics.peerGoneDisconnectedFrames).toBe(1);
  });
});

describe('mesh peers', () => {
  const meshKey = 'ab'.repeat(32);

  it('WatchConns floods PeerPresent, then follows arrivals and departures; ForwardPacket and ClosePeer work', async () => {
    const srv = await server({ serverOptions: { meshKey } });
    const a = await client(srv);
    const mesh = await client(srv, { meshKey });
    const seen: ServerMessage[] = [];
    mesh.onMessage((m) => (m.type === 'peerPresent' || m.type === 'peerGone') && seen.push(m));
    mesh.watchConnectionChanges();
    await until('flood', () =>
      seen.some((m) => m.type === 'peerPresent' && Buffer.compare(m.peer, a.publicKey) === 0)
        ? true
        : undefined,
    );
    expect(seen[0]).toMatchObject({ ip: '127.0.0.1', flags: C.PeerPresentIsRegular });
    const b = await client(srv);
    await until('b present', () =>
      seen.some((m) => m.type === 'peerPresent' && Buffer.compare(m.peer, b.publicKey) === 0)
        ? true
        : undefined,
    );
    const src = new Uint8Array(randomBytes(32));
    const got = collect(a, 1);
    mesh.forwardPacket(src, a.publicKey, Buffer.from('forwarded'));
    const [r] = await got;
    expect(Buffer.compare(r!.src, src)).toBe(0);
    expect(Buffer.from(r!.data).toString()).toBe('forwarded');
    const closed = new Promise<void>((resolve) => b.onClose(() => resolve()));
    mesh.closePeer(b.publicKey);
    await closed;
    await until('b gone', () =>
      seen.some((m) => m.type === 'peerGone' && Buffer.compare(m.peer, b.publicKey) === 0) ? true : undefined,
    );
  });

  it('WatchConns without the mesh key closes that connection only', async () => {
    const srv = await server({ serverOptions: { meshKey } });
    const a = await client(srv);
    const b = await client(srv, { meshKey: 'cd'.repeat(32) });
    const closed = new Promise<unknown>((resolve) => b.onClose((e) => resolve(e)));
    b.watchConnectionChanges();
    expect(await closed).toBeDefined();
    expect(await a.ping()).toBeGreaterThan(0);
  });
});

describe('duplicate keys (derper lastWriterIsActive)', () => {
  it('the newest connection gets traffic; an older one takes over by speaking; PeerGone only when all leave', async () => {
    const srv = await server();
    const sender = await client(srv);
    const { generateNodeKeyPair } = await import('../../src/derp/keys.js');
    const privateKey = generateNodeKeyPair().privateKey;
    const old = await client(srv, { privateKey });
    const fresh = await client(srv, { privateKey });
    expect(srv.derp.metrics.dupClientKeys).toBe(1);
    expect(srv.derp.metrics.dupClientConns).toBe(2);
    const toFresh = collect(fresh, 1);
    sender.send(fresh.publicKey, Buffer.from('one'));
    expect(Buffer.from((await toFresh)[0]!.data).toString()).toBe('one');
    await old.ping(); // any frame from the older connection makes it the active one
    const toOld = collect(old, 1);
    sender.send(fresh.publicKey, Buffer.from('two'));
    expect(Buffer.from((await toOld)[0]!.data).toString()).toBe('two');
    // The sender hears from the key, so it is owed a PeerGone when the key leaves for good.
    const heard = collect(sender, 1);
    fresh.send(sender.publicKey, Buffer.from('hi'));
    await heard;
    const gone: ServerMessage[] = [];
    sender.onMessage((m) => m.type === 'peerGone' && gone.push(m));
    old.close();
    await until('dup resolved', () => (srv.derp.metrics.dupClientKeys === 0 ? true : undefined));
    const again = collect(fresh, 1);
    sender.send(fresh.publicKey, Buffer.from('three'));
    expect(Buffer.from((await again)[0]!.data).toString()).toBe('three');
    expect(gone).toEqual([]);
    fresh.close();
    await until('peerGone', () => (gone.length === 1 ? true : undefined));
  });
});

describe('limits and HTTP endpoints', () => {
  it('refuses clients over the limit with 503 and counts them', async () => {
    const srv = await server({ serverOptions: { maxClients: 2 } });
    await client(srv);
    await client(srv);
    await expect(connect(srv.url)).rejects.toMatchObject({ code: 'HTTP_UPGRADE' });
    expect(srv.derp.metrics.rejectedOverLimit).toBe(1);
  });

  it('serves /derp/probe, /derp/latency-check, /generate_204, /metrics, and 426 for /derp without upgrade', async () => {
    const srv = await server();
    const a = await client(srv);
    const b = await client(srv);
    await relayChecked(a, b, [numbered(0, 500)]);
    const base = srv.url.replace(/\/derp$/, '');
    for (const p of ['/derp/probe', '/derp/latency-check']) {
      const r = await fetch(base + p);
      expect(r.status).toBe(200);
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      expect((await fetch(base + p, { method: 'POST' })).status).toBe(405);
    }
    const nc = await fetch(`${base}/generate_204`, { headers: { 'X-Tailscale-Challenge': 'abc.DEF-1' } });
    expect(nc.status).toBe(204);
    expect(nc.headers.get('x-tailscale-response')).toBe('response abc.DEF-1');
    const bad = await fetch(`${base}/generate_204`, { headers: { 'X-Tailscale-Challenge': 'no spaces!' } });
    expect(bad.headers.get('x-tailscale-response')).toBeNull();
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE derp_current_connections gauge$/m);
    expect(metrics).toMatch(/^derp_current_connections 2$/m);
    expect(metrics).toMatch(/^derp_packets_sent 1$/m);
    expect(metrics).toMatch(/^derp_bytes_sent 500$/m);
    expect(metrics).toMatch(/^derp_packets_dropped\{reason="queue_head"\} 0$/m);
    const plain = await fetch(srv.url);
    expect(plain.status).toBe(426);
    expect(await plain.text()).toContain('DERP requires connection upgrade');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('relays over WebSocket to our server, mixed with HTTP-upgrade clients', async () => {
    const srv = await server();
    const ws = await client(srv, { websocket: true });
    const tcp = await client(srv);
    const packets = Array.from({ length: 40 }, (_, i) => numbered(i, [100, 30_000, 65536][i % 3]!));
    await relayChecked(ws, tcp, packets);
    await relayChecked(tcp, ws, packets);
    expect(srv.derp.metrics.websocketAccepts).toBe(1);
    expect(sha256(packets[0]!)).toHaveLength(64);
  });
});

describe('admission control (derper -verify-client-url)', () => {
  it('refuses clients the hook rejects, synchronously or not, and holds early frames of admitted ones', async () => {
    const { RawConn } = await import('./raw.js');
    const { keyToHex } = await import('../../src/derp/keys.js');
    const denied = new Set<string>();
    const seen: string[] = [];
    const srv = await server({
      serverOptions: {
        verifyClient: async (key, info, remote) => {
          seen.push(`${info.version}@${remote}`);
          await new Promise((r) => setTimeout(r, 100));
          return !denied.has(keyToHex(key));
        },
      },
    });
    const b = await client(srv);
    const raw = await RawConn.open(srv.port);
    await raw.login();
    // Sent before ServerInfo, as Go clients do: held during the check, then delivered.
    raw.write(encodeSendPacket(b.publicKey, Buffer.from('early')));
    const got = collect(b, 1);
    await raw.next(C.FrameServerInfo);
    expect(Buffer.from((await got)[0]!.data).toString()).toBe('early');
    const { generateNodeKeyPair } = await import('../../src/derp/keys.js');
    const bad = generateNodeKeyPair();
    denied.add(keyToHex(bad.publicKey));
    await expect(connect(srv.url, { privateKey: bad.privateKey })).rejects.toMatchObject({ code: 'CLOSED' });
    expect(srv.derp.metrics.notAdmitted).toBe(1);
    expect(seen.every((s) => s === '2@127.0.0.1')).toBe(true);
    raw.destroy();
  });
});

describe('upgrade variants', () => {
  it('Derp-Fast-Start: 1 skips the 101 response; the ServerKey frame comes first', async () => {
    const { connect: tcp } = await import('node:net');
    const srv = await server();
    const sock = tcp({ host: '127.0.0.1', port: srv.port });
    const first = await new Promise<Buffer>((resolve, reject) => {
      sock.once('data', resolve);
      sock.once('error', reject);
      sock.write(
        'GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Fast-Start: 1\r\n\r\n',
      );
    });
    sock.destroy();
    expect(first[0]).toBe(C.FrameServerKey);
    expect(first.subarray(5, 13).equals(Buffer.from(C.Magic))).toBe(true);
  });

  it('old clients that say "Upgrade: WebSocket" without the derp subprotocol get plain DERP', async () => {
    const { RawConn } = await import('./raw.js');
    const srv = await server();
    const raw = await RawConn.open(srv.port, 'Upgrade: WebSocket\r\nConnection: Upgrade\r\n');
    await raw.login();
    await raw.next(C.FrameServerInfo);
    expect(srv.derp.isConnected(raw.keys.publicKey)).toBe(true);
    raw.destroy();
  });
});

describe('bounded queues', () => {
  it('a client that stops reading gets drops counted, then is disconnected by the write timeout', async () => {
    const { RawConn } = await import('./raw.js');
    const srv = await server({
      serverOptions: { writeTimeoutMs: 300, sendBufferBytes: 64 << 10, queueDepth: 8 },
    });
    const sender = await client(srv);
    const slow = await RawConn.open(srv.port);
    await slow.login();
    await slow.next(C.FrameServerInfo);
    slow.socket.pause();
    const big = new Uint8Array(60_000);
    const flood = setInterval(() => {
      for (let i = 0; i < 20; i++) sender.send(slow.keys.publicKey, big);
    }, 5);
    try {
      await until(
        'drops',
        () => ((srv.derp.metrics.packetsDropped.get('queue_head') ?? 0) > 0 ? true : undefined),
        10_000,
      );
      await until('write timeout', () => (srv.derp.metrics.writeTimeouts === 1 ? true : undefined), 10_000);
    } finally {
      clearInterval(flood);
      slow.destroy();
    }
    expect(srv.derp.isConnected(slow.keys.publicKey)).toBe(false);
    expect(await sender.ping()).toBeGreaterThan(0);
    expect(encodeSendPacket(sender.publicKey, big).length).toBe(60_037);
  });
});
