// Per-destination path MTU (PacketLink.mtuTo, a tailnet's PMTUD): a connection sizes its segments
// by the path, grows them when the path is proved larger, and after the path shrinks sends no
// segment above the new size, the transfer still arriving whole.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryLink } from '../../../src/netstack/link.js';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { B, collect, type Pair, sha256, tcpPair, until } from './helpers.js';

let pair: Pair;
afterEach(() => pair?.close());

/** Gives `link` a path MTU of `mtu()` toward every destination, with an epoch to bump. */
function withPath(link: MemoryLink, state: { mtu: number; epoch: number }): void {
  Object.assign(link, { mtuTo: () => state.mtu });
  Object.defineProperty(link, 'mtuEpoch', { get: () => state.epoch });
}

describe('TCP over a per-destination path MTU', () => {
  it('grows segments when the path is raised, and shrinks them at once when it falls', async () => {
    // The link carries up to 9,000 bytes, but the path starts at the tailnet's base 1,420.
    pair = tcpPair({ mtu: 9000, a: { minRtoMs: 20 }, b: { minRtoMs: 20 } });
    const path = { mtu: 1420, epoch: 0 };
    withPath(pair.la, path);
    withPath(pair.lb, path);
    let wireMtu = 9000;
    // The wire loses what exceeds its MTU (IP 20 + TCP 20 + timestamps 12 + data).
    pair.drop = (s) => s.len + 52 > wireMtu;
    const got = new Promise<Buffer>((resolve, reject) => {
      new TcpServer(pair.b, {}, (s) => collect(s).then(resolve, reject)).listen(80);
    });
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    await new Promise((r) => client.once('connect', r));
    const data = randomBytes(24 << 20);
    let written = 0;
    const pump = () => {
      while (written < data.length) {
        const chunk = data.subarray(written, written + 256 * 1024);
        written += chunk.length;
        if (!client.write(chunk)) return void client.once('drain', pump);
      }
      client.end();
    };
    pump();
    const sent = () => pair.wire.filter((s) => s.from === 'a' && s.len > 0);
    await until(() => sent().length > 200, 10_000, '200 segments at the base size');
    expect(Math.max(...sent().map((s) => s.len))).toBe(1420 - 52);

    path.mtu = 8928; // PMTUD confirmed a larger path
    path.epoch++;
    await until(() => sent().some((s) => s.len > 1420), 10_000, 'a segment above 1,420');
    const big = Math.max(...sent().map((s) => s.len));
    expect(big).toBe(8928 - 52);

    await until(() => sent().filter((s) => s.len === big).length > 200, 10_000, 'large segments');
    // The path shrinks: the wire drops large packets, then PMTUD falls back (as within a second).
    wireMtu = 1420;
    const lostFrom = pair.wire.length;
    await new Promise((r) => setTimeout(r, 30));
    path.mtu = 1420;
    path.epoch++;
    const fellAt = pair.wire.length;
    const atServer = await got;
    expect(atServer.length).toBe(data.length);
    expect(sha256(atServer)).toBe(sha256(data));
    expect(pair.wire.slice(lostFrom, fellAt).some((s) => s.from === 'a' && s.len > 1368)).toBe(true);
    // After the fallback no segment exceeds the new size: retransmissions are re-cut.
    const after = pair.wire.slice(fellAt).filter((s) => s.from === 'a');
    expect(after.length).toBeGreaterThan(100);
    expect(Math.max(...after.map((s) => s.len))).toBeLessThanOrEqual(1368);
  }, 60_000);

  it('announces the link MTU but sends by the path toward a peer that did not probe', async () => {
    pair = tcpPair({ mtu: 9000 });
    withPath(pair.la, { mtu: 1420, epoch: 0 });
    const got = new Promise<Buffer>((resolve, reject) => {
      new TcpServer(pair.b, {}, (s) => collect(s).then(resolve, reject)).listen(80);
    });
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    const data = randomBytes(1 << 20);
    client.end(data);
    expect(sha256(await got)).toBe(sha256(data));
    const fromA = pair.wire.filter((s) => s.from === 'a' && s.len > 0);
    expect(Math.max(...fromA.map((s) => s.len))).toBe(1420 - 52);
  });
});
