// The guard on a plain node:http server: each limit refuses the connection over it (and only that
// one), the request deadline closes silent and trickling connections but not served ones, malformed
// requests are answered and counted, and a failed accept is counted instead of ending the process.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionGuard, type ConnectionLimits, resolveLimits } from '../../src/guard/guard.js';
import { guardAccepts, guardRequests, httpOptions } from '../../src/guard/http.js';
import { open, stillOpenAfter, trickle } from './sockets.js';

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  servers = [];
});

async function serve(limits: Partial<ConnectionLimits>): Promise<{ port: number; guard: ConnectionGuard }> {
  const guard = new ConnectionGuard(resolveLimits(limits), { name: 'test' });
  const srv = createServer(httpOptions(guard.limits), (_req, res) => res.end('ok'));
  guardAccepts(srv, guard, () => {});
  guardRequests(srv, guard);
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, guard };
}

describe('connection limits', () => {
  it('per source: the connection over the limit is closed at once, another source is still taken', async () => {
    const { port, guard } = await serve({ maxConnectionsPerSource: 2 });
    const kept = [await open(port), await open(port)];
    const over = await open(port);
    expect(await over.closed(1000)).toBeLessThan(1000);
    const other = await open(port, '127.0.0.2');
    expect(await stillOpenAfter(other, 200)).toBe(true);
    expect(kept.every((p) => p.closedAfter === undefined)).toBe(true);
    expect(guard.shed.get('max_per_source')).toBe(1);
    expect([guard.open, guard.sources]).toEqual([3, 2]);
    kept[0]!.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    // A slot freed by a close is available again.
    expect(await stillOpenAfter(await open(port), 200)).toBe(true);
  });

  it('in total, over all sources', async () => {
    const { port, guard } = await serve({ maxConnections: 2 });
    await open(port);
    await open(port, '127.0.0.2');
    expect(await (await open(port, '127.0.0.3')).closed(1000)).toBeLessThan(1000);
    expect(guard.shed.get('max_connections')).toBe(1);
  });

  it('accept rate with a burst (derper --accept-connection-limit/-burst)', async () => {
    const { port, guard } = await serve({ acceptPerSecond: 5, acceptBurst: 2 });
    const first = [await open(port), await open(port)];
    const third = await open(port);
    expect(await third.closed(1000)).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 250)); // one token back
    expect(await stillOpenAfter(await open(port), 100)).toBe(true);
    expect(first.every((p) => p.closedAfter === undefined)).toBe(true);
    expect(guard.shed.get('accept_rate')).toBe(1);
  });

  it('the accept burst follows the rate unless set, and bad limits are refused', () => {
    expect(resolveLimits({ acceptPerSecond: 7.5 }).acceptBurst).toBe(8);
    expect(() => resolveLimits({ maxConnections: 0 })).toThrow(/maxConnections must be a positive number/);
  });

  it('handshakes per source: a token bucket per address', async () => {
    const { guard } = await serve({ handshakesPerSecond: 1, handshakeBurst: 2 });
    expect([1, 2, 3].map(() => guard.allowHandshake('192.0.2.1'))).toEqual([true, true, false]);
    expect(guard.allowHandshake('192.0.2.2')).toBe(true);
    expect(guard.shed.get('handshake_rate')).toBe(1);
  });
});

describe('the request deadline', () => {
  it('closes a connection that sends nothing, counted as timeout_request', async () => {
    const { port, guard } = await serve({ requestTimeoutMs: 300 });
    const p = await open(port);
    const ms = await p.closed(3000);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1500);
    expect(guard.shed.get('timeout_request')).toBe(1);
  });

  it('is not reset by a request trickling in a byte at a time', async () => {
    const { port } = await serve({ requestTimeoutMs: 400 });
    const p = await open(port);
    trickle(p, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 40);
    expect(await p.closed(3000)).toBeLessThan(1500);
  });

  it('ends when the request is in: a served keep-alive connection stays past it', async () => {
    const { port, guard } = await serve({ requestTimeoutMs: 300 });
    const p = await open(port);
    p.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await stillOpenAfter(p, 600)).toBe(true);
    expect(p.received()).toMatch(/^HTTP\/1.1 200/);
    expect(guard.shed.get('timeout_request')).toBe(0);
  });
});

describe('bad input and accept errors', () => {
  it('a malformed request gets 400 and an oversized header 431, counted as bad_request', async () => {
    const { port, guard } = await serve({});
    const bad = await open(port);
    bad.socket.write('NOT HTTP\r\n\r\n');
    await bad.closed();
    expect(bad.received()).toMatch(/^HTTP\/1.1 400/);
    const big = await open(port);
    big.socket.write(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`);
    await big.closed();
    expect(big.received()).toMatch(/^HTTP\/1.1 431/);
    expect(guard.shed.get('bad_request')).toBe(2);
  });

  it('a failed accept (EMFILE) is counted and reported, not thrown', async () => {
    const guard = new ConnectionGuard(resolveLimits(), { name: 'test' });
    const srv = createServer();
    const seen: string[] = [];
    guardAccepts(srv, guard, (err) => seen.push(err.message));
    const err = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
    expect(() => srv.emit('error', err)).not.toThrow();
    expect(seen).toEqual(['accept EMFILE']);
    expect(guard.shed.get('accept_error')).toBe(1);
  });
});
