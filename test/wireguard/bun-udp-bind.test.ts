// BunUdpBind runs only under Bun: scripts/test-runtimes.sh bun runs these (CI does too); under Node and
// Deno the Bun-only block is skipped with a message and the choice of bind is checked instead.
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { runtime } from '../../src/platform/runtime.js';
import type { Endpoint } from '../../src/wireguard/bind.js';
import { BunUdpBind, hasBunUdp, openUdpBind } from '../../src/wireguard/bun-udp-bind.js';
import { WireGuardError } from '../../src/wireguard/errors.js';
import { parseEndpoint, UdpBind } from '../../src/wireguard/udp-bind.js';

const bun = hasBunUdp();
const hasIPv6Loopback = Object.values(networkInterfaces()).some((list) =>
  list?.some((i) => i.family === 'IPv6' && i.address === '::1'),
);
if (!bun)
  console.warn(`bun-udp-bind.test: BunUdpBind needs Bun, this is ${runtime.name}; its block is skipped`);

const open: Array<{ close(): Promise<void> }> = [];
async function openBind(options: Parameters<typeof BunUdpBind.open>[0]): Promise<BunUdpBind> {
  const b = await BunUdpBind.open(options);
  open.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

const wrap = (h: string, port: number): string => (h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`);

function nextDatagram(bind: BunUdpBind, timeoutMs = 2000): Promise<{ from: Endpoint; data: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram')), timeoutMs);
    bind.onDatagram((from, data) => {
      clearTimeout(timer);
      resolve({ from, data: data.slice() });
    });
  });
}

/** One datagram each way between `a` and `b`, addressed through `host`; the sources are checked. */
async function exchange(a: BunUdpBind, b: BunUdpBind, host: string): Promise<void> {
  const toB = parseEndpoint(wrap(host, b.port));
  const got = nextDatagram(b);
  a.send(toB, Uint8Array.of(1, 2, 3));
  const { from, data } = await got;
  expect(data).toEqual(Uint8Array.of(1, 2, 3));
  // The same interned endpoint node:dgram's bind gives: IPv4 senders are not left IPv4-mapped.
  expect(from).toBe(parseEndpoint(wrap(host, a.port)));
  const back = nextDatagram(a);
  b.send(from, Uint8Array.of(9));
  expect((await back).from.key).toBe(toB.key);
}

/** Sizes from a keepalive to a 9,000-MTU datagram, in a pattern that does not divide the batch size. */
const SIZES = [32, 148, 1452, 92, 1280, 8972, 600, 1420, 4000, 64, 1500];

function datagram(seq: number): Uint8Array {
  const d = new Uint8Array(SIZES[seq % SIZES.length]!);
  for (let i = 0; i < d.length; i++) d[i] = (seq * 31 + i * 7) & 0xff;
  new DataView(d.buffer).setUint32(0, seq);
  return d;
}

/**
 * Sends `count` datagrams from `a` to `b` in windows of 64, as one batch each or one send each,
 * waiting for each window to arrive (UDP on loopback loses nothing unless a queue overflows). Resolves with the sender's and the receiver's SHA-256 of
 * every datagram, in order; the received ones are hashed only at the end, so a runtime that
 * reused its receive buffer under us would be caught.
 */
async function stream(a: BunUdpBind, b: BunUdpBind, count: number, batched: boolean) {
  const to = parseEndpoint(wrap('127.0.0.1', b.port));
  const got: Uint8Array[] = [];
  b.onDatagram((_from, d) => got.push(d));
  const sent = createHash('sha256');
  for (let seq = 0; seq < count; ) {
    if (batched) a.beginBatch();
    for (let i = 0; i < 64 && seq < count; i++, seq++) {
      const d = datagram(seq);
      sent.update(d);
      a.send(to, d);
    }
    if (batched) a.endBatch();
    const deadline = Date.now() + 2000;
    while (got.length < seq && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    if (got.length < seq) throw new Error(`only ${got.length} of ${seq} datagrams arrived`);
  }
  const received = createHash('sha256');
  got.forEach((d, i) => {
    expect(new DataView(d.buffer, d.byteOffset).getUint32(0)).toBe(i);
    received.update(d);
  });
  return { sent: sent.digest('hex'), received: received.digest('hex'), count: got.length };
}

describe('openUdpBind', () => {
  it("opens node:dgram outside Bun and Bun's socket under it (QS_UDP=dgram keeps node:dgram)", async () => {
    const b = await openUdpBind({ host: '127.0.0.1' });
    open.push(b);
    expect(b instanceof BunUdpBind).toBe(bun && process.env.QS_UDP !== 'dgram');
    expect(b instanceof UdpBind).toBe(!(b instanceof BunUdpBind));
  });

  it.skipIf(bun)('BunUdpBind.open outside Bun rejects with a typed error', async () => {
    await expect(BunUdpBind.open({})).rejects.toThrow(WireGuardError);
  });
});

describe.skipIf(!bun)('BunUdpBind (Bun only)', () => {
  it('exchanges datagrams over 127.0.0.1 with the right from-endpoint', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    const b = await openBind({ host: '127.0.0.1' });
    expect(a.families).toEqual([4]);
    await exchange(a, b, '127.0.0.1');
  });

  it.skipIf(!hasIPv6Loopback)('exchanges datagrams over ::1', async () => {
    const a = await openBind({ host: '::1' });
    const b = await openBind({ host: '::1' });
    expect(a.families).toEqual([6]);
    await exchange(a, b, '::1');
  });

  it('listens on both families on one port by default; IPv4 peers get IPv4 endpoints', async () => {
    const a = await openBind({});
    expect(a.port).toBeGreaterThan(0);
    const b = await openBind({ host: '127.0.0.1' });
    await exchange(b, a, '127.0.0.1');
    if (hasIPv6Loopback && a.families.includes(6)) {
      const c = await openBind({ host: '::1' });
      await exchange(c, a, '::1');
    } else {
      expect(a.ipv6Unavailable).toBeDefined();
    }
  });

  it('carries 10,000 datagrams of mixed sizes each way, batched and one by one, bytes checked', async () => {
    const a = await openBind({});
    const b = await openBind({ host: '127.0.0.1' });
    const ab = await stream(a, b, 10_000, true);
    expect(ab.count).toBe(10_000);
    expect(ab.received).toBe(ab.sent);
    const ba = await stream(b, a, 10_000, false);
    expect(ba.count).toBe(10_000);
    expect(ba.received).toBe(ba.sent);
    expect(a.stats.sendErrors + b.stats.sendErrors).toBe(0);
    // Without the 4 MiB queues (asked through bun:ffi) a window of 64 overflows the default one.
    if (process.platform === 'linux') expect(a.stats.bufferSizeErrors + b.stats.bufferSizeErrors).toBe(0);
  }, 60_000);

  it('counts, never throws, what cannot be sent, and the rest of the batch still goes', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    const b = await openBind({ host: '127.0.0.1' });
    const got: number[] = [];
    b.onDatagram((_f, d) => got.push(d[0]!));
    const toB = parseEndpoint(`127.0.0.1:${b.port}`);
    const closedPort = await openBind({ host: '127.0.0.1' });
    const nowhere = parseEndpoint(`127.0.0.1:${closedPort.port}`);
    await closedPort.close();
    a.beginBatch();
    a.send(toB, Uint8Array.of(1));
    a.send(
      new (class {
        key = 'derp:x';
      })(),
      Uint8Array.of(2),
    ); // not a UDP endpoint
    a.send(parseEndpoint(`[::1]:${b.port}`), Uint8Array.of(3)); // a family this bind lacks
    a.send(toB, new Uint8Array(70_000)); // EMSGSIZE
    a.send(nowhere, Uint8Array.of(4)); // ICMP port unreachable, reported later
    a.send(toB, Uint8Array.of(5));
    a.endBatch();
    a.send(nowhere, Uint8Array.of(6));
    a.send(toB, Uint8Array.of(7));
    const deadline = Date.now() + 2000;
    while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual([1, 5, 7]);
    expect(a.stats.sendErrors).toBeGreaterThanOrEqual(3);
    expect(a.lastError).toBeDefined();
  });

  it('close releases the port and delivers nothing more; rebind moves to a new port', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    const b = await openBind({ host: '127.0.0.1' });
    const port = a.port;
    await a.rebind(0);
    expect(a.port).not.toBe(port);
    await exchange(a, b, '127.0.0.1');
    const moved = a.port;
    let late = 0;
    a.onDatagram(() => late++);
    await a.close();
    b.send(parseEndpoint(`127.0.0.1:${moved}`), Uint8Array.of(1));
    a.send(parseEndpoint(`127.0.0.1:${b.port}`), Uint8Array.of(1)); // ignored, no throw
    const again = await openBind({ host: '127.0.0.1', port: moved });
    expect(again.port).toBe(moved);
    await new Promise((r) => setTimeout(r, 50));
    expect(late).toBe(0);
  });
});
