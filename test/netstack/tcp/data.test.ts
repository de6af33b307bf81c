// Data transfer: integrity under seeded loss, reordering and duplication, in both directions at
// once; flow control tied to the stream (a slow reader bounds memory; write() and 'drain');
// zero-window probes; Nagle; half-close.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { TcpOptions } from '../../../src/netstack/tcp/options.js';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { type TcpSocket, tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { B, collect, type Pair, settle, sha256, tcpPair, until } from './helpers.js';

let pair: Pair;
afterEach(() => pair?.close());

/** Client sends `up`, the server sends `down`, at the same time; both are checked by length and sha256. */
async function exchange(p: Pair, up: Buffer, down: Buffer, host = B): Promise<void> {
  const serverGot = new Promise<Buffer>((resolve, reject) => {
    new TcpServer(p.b, { allowHalfOpen: true }, (s) => {
      collect(s).then(resolve, reject);
      s.end(down);
    }).listen(80);
  });
  const client = tcpConnect(p.a, { host, port: 80, allowHalfOpen: true });
  const clientGot = collect(client);
  client.end(up);
  const [atServer, atClient] = await Promise.all([serverGot, clientGot]);
  expect(atServer.length).toBe(up.length);
  expect(sha256(atServer)).toBe(sha256(up));
  expect(atClient.length).toBe(down.length);
  expect(sha256(atClient)).toBe(sha256(down));
}

// The memory link delivers in microseconds, so Linux's 200 ms RTO floor would only add idle time.
const lossy: TcpOptions = { minRtoMs: 20 };

describe('integrity', () => {
  it('10 MB each way at once, 5% loss, 10% reordering, 1% duplication (CUBIC, SACK, timestamps)', async () => {
    pair = tcpPair({ faults: { loss: 0.05, reorder: 0.1, duplicate: 0.01, seed: 42 }, a: lossy, b: lossy });
    await exchange(pair, randomBytes(10 << 20), randomBytes(10 << 20));
    expect(pair.a.stats.recoveries + pair.b.stats.recoveries).toBeGreaterThan(10);
  }, 60_000);

  it('NewReno without SACK or timestamps, under loss and reordering', async () => {
    const o: TcpOptions = { ...lossy, congestion: 'newreno', sack: false, timestamps: false };
    pair = tcpPair({ faults: { loss: 0.03, reorder: 0.05, seed: 9 }, a: o, b: o });
    await exchange(pair, randomBytes(1 << 20), randomBytes(1 << 20));
    // 1420 − 40: without timestamps no room goes to options.
    expect(Math.max(...pair.wire.map((s) => s.len))).toBe(1380);
  });

  it('without window scaling the window stays within 64 KiB and data still flows', async () => {
    const o: TcpOptions = { ...lossy, windowScaling: false };
    pair = tcpPair({ faults: { loss: 0.02, seed: 3 }, a: o, b: { ...o } });
    await exchange(pair, randomBytes(1 << 20), Buffer.alloc(0));
    expect(Math.max(...pair.wire.map((s) => s.window))).toBeLessThanOrEqual(0xffff);
  });

  it('over IPv6', async () => {
    pair = tcpPair({ faults: { loss: 0.02, reorder: 0.05, seed: 5 }, a: lossy, b: lossy });
    await exchange(pair, randomBytes(2 << 20), randomBytes(1 << 20), 'fd00::2');
  });

  it('a 9000-byte MTU link carries 8940-byte segments', async () => {
    pair = tcpPair({ mtu: 9000 });
    await exchange(pair, randomBytes(1 << 20), randomBytes(1000));
    expect(Math.max(...pair.wire.map((s) => s.len))).toBe(9000 - 40 - 12);
  });
});

describe('flow control', () => {
  it('repeated timeouts of the same data hold ssthresh (RFC 5681 §3.1) and the transfer completes', async () => {
    pair = tcpPair({ a: { minRtoMs: 20 } });
    let received = 0;
    const got = new Promise<Buffer>((resolve, reject) => {
      new TcpServer(pair.b, {}, (s) => {
        s.on('data', (d: Buffer) => {
          received += d.length;
        });
        collect(s).then(resolve, reject);
      }).listen(80);
    });
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    await new Promise((r) => client.once('connect', r));
    const data = randomBytes(1 << 20);
    client.write(data.subarray(0, 256 * 1024));
    await until(() => received >= 256 * 1024, 5000, 'the first 256 KiB');
    await settle(20);
    // An outage: every data segment from the sender is lost, so the same segment times out again and again.
    pair.drop = (seg) => seg.from === 'a' && seg.len > 0;
    client.end(data.subarray(256 * 1024));
    await until(() => pair.a.stats.timeouts >= 3, 10_000, 'three timeouts');
    const conn = (client as unknown as { conn: { cc: { ssthresh: number }; sndMss: number } }).conn;
    // Set once, from the window at the first timeout (at least the initial 10 segments): not driven to 2 segments.
    expect(conn.cc.ssthresh).toBeGreaterThanOrEqual(5 * conn.sndMss);
    pair.drop = undefined;
    const atServer = await got;
    expect(atServer.length).toBe(data.length);
    expect(sha256(atServer)).toBe(sha256(data));
  });

  it('a flow held by the receive window does not grow its congestion window without bound', async () => {
    // RFC 7661 §4.3 / Linux tcp_is_cwnd_limited: only a window that limited the flight may grow
    // (slow start up to twice the flight). Before, cwnd grew with every ACK to megabytes here.
    const window = 64 * 1024;
    pair = tcpPair({ b: { receiveBuffer: window } });
    const got = new Promise<Buffer>((resolve, reject) => {
      new TcpServer(pair.b, {}, (s) => collect(s).then(resolve, reject)).listen(80);
    });
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    await new Promise((r) => client.once('connect', r));
    const data = randomBytes(4 << 20);
    client.end(data);
    const atServer = await got;
    expect(sha256(atServer)).toBe(sha256(data));
    const conn = (client as unknown as { conn: { cc: { cwnd: number } } | undefined }).conn;
    expect(conn).toBeDefined();
    expect(conn!.cc.cwnd).toBeLessThanOrEqual(3 * window); // twice the flight, plus one ACK's growth
  });

  it('a slow reader shrinks the window to zero; memory stays bounded; write() returns false and drain follows', async () => {
    const buf = 256 * 1024;
    pair = tcpPair({ a: { sendBuffer: buf }, b: { receiveBuffer: buf } });
    let peer: TcpSocket | undefined;
    new TcpServer(pair.b, {}, (s) => {
      peer = s;
      s.pause();
    }).listen(80);
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await new Promise((r) => client.once('connect', r));
    const total = 4 << 20;
    const data = randomBytes(total);
    let offset = 0;
    let falses = 0;
    let drains = 0;
    client.on('drain', () => drains++);
    const pump = () => {
      while (offset < total) {
        const ok = client.write(data.subarray(offset, offset + 65536));
        offset += 65536;
        if (!ok) {
          falses++;
          client.once('drain', pump);
          return;
        }
      }
      client.end();
    };
    pump();
    await until(() => peer !== undefined);
    await settle(100);
    // The reader reads nothing: the window closed (to less than a segment: the scale is 2^3 here),
    // the sender stopped, nothing grew past the bounds.
    expect(pair.wire.filter((s) => s.from === 'b').at(-1)!.window * 8).toBeLessThan(1380);
    expect(peer!.readableLength).toBeLessThanOrEqual(buf + 65536);
    expect(client.writableLength).toBeLessThanOrEqual(2 * 65536);
    expect(offset).toBeLessThan(total / 4);
    // The persist timer keeps asking (a runt into the last sliver of window, then zero-window probes).
    const probesBefore = pair.wire.filter((s) => s.from === 'a').length;
    await settle(300);
    expect(pair.wire.filter((s) => s.from === 'a').length).toBeGreaterThan(probesBefore);
    // Now read slowly: everything arrives, intact, and memory never exceeded the bounds.
    const chunks: Buffer[] = [];
    let maxHeld = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        maxHeld = Math.max(maxHeld, peer!.readableLength);
        let n = 0;
        while (n < 512 * 1024) {
          const d = peer!.read() as Buffer | null;
          if (d === null) break;
          chunks.push(d);
          n += d.length;
        }
        if (peer!.readableEnded || chunks.reduce((a, c) => a + c.length, 0) === total) {
          clearInterval(tick);
          resolve();
        }
      }, 2);
    });
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(total);
    expect(sha256(got)).toBe(sha256(data));
    expect(maxHeld).toBeLessThanOrEqual(buf + 65536);
    expect(falses).toBeGreaterThan(0);
    expect(drains).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  it('Nagle coalesces small writes while data is in flight; setNoDelay sends each at once', async () => {
    pair = tcpPair({ faults: { delayMs: 2 } });
    const got: number[] = [];
    new TcpServer(pair.b, {}, (s) => s.on('data', (d: Buffer) => got.push(d.length))).listen(80);
    const count = async (noDelay: boolean) => {
      const c = tcpConnect(pair.a, { host: B, port: 80, noDelay });
      await new Promise((r) => c.once('connect', r));
      const n = pair.wire.length;
      for (let i = 0; i < 50; i++) {
        c.write('x');
        await new Promise((r) => setImmediate(r));
      }
      await settle(30);
      // Distinct sequence numbers: a tail loss probe may repeat the last segment.
      const mine = pair.wire.slice(n).filter((s) => s.srcPort === c.localPort && s.len > 0);
      return new Set(mine.map((s) => s.seq)).size;
    };
    const nagle = await count(false);
    const nodelay = await count(true);
    expect(nagle).toBeLessThan(25);
    expect(nodelay).toBe(50);
  });

  it('half-close: after our end(), the peer can still send (allowHalfOpen)', async () => {
    pair = tcpPair();
    new TcpServer(pair.b, { allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => s.end(Buffer.concat(chunks).toString().toUpperCase()));
    }).listen(80);
    const client = tcpConnect(pair.a, { host: B, port: 80, allowHalfOpen: true });
    client.end('hello, half-closed world');
    const reply = await collect(client);
    expect(reply.toString()).toBe('HELLO, HALF-CLOSED WORLD');
    expect(client.bytesRead).toBe(24);
    expect(client.bytesWritten).toBe(24);
  });

  it("setTimeout emits 'timeout' after idleness without closing", async () => {
    pair = tcpPair();
    new TcpServer(pair.b).listen(80);
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    await new Promise((r) => client.once('connect', r));
    const t0 = performance.now();
    await new Promise<void>((r) => client.setTimeout(40, r));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    expect(client.tcpState).toBe('ESTABLISHED');
    client.destroy();
  });
});
