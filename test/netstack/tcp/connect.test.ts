// TcpSocket as net.Socket: unconnected until connect(), in each of connect's argument forms,
// with names resolved through a lookup, writes made before the connection exists, and
// options set before it (how pg and mysql2 use the socket a factory hands them).
import { once } from 'node:events';
import type { LookupFunction } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { TcpSocket } from '../../../src/netstack/tcp/socket.js';
import { B, type Pair, sha256, tcpPair } from './helpers.js';

let pair: Pair;
afterEach(() => pair?.close());

/** An echo server on b:port that reports each accepted socket. */
function echo(p: Pair, port: number, accepted: TcpSocket[] = []): TcpServer {
  return new TcpServer(p.b, {}, (s) => {
    accepted.push(s);
    s.on('error', () => {}); // the client resets it when a test ends
    s.pipe(s);
  }).listen(port);
}

/** Reads `n` bytes from a socket, leaving it open. */
function readN(s: TcpSocket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      if (have >= n) resolve(Buffer.concat(chunks));
    });
  });
}

const lookupB: LookupFunction = (host, _opts, cb) => {
  if (host === 'bee') process.nextTick(() => cb(null, B, 4));
  else process.nextTick(() => cb(Object.assign(new Error(`no ${host}`), { code: 'ENOTFOUND' }), '', 0));
};

describe('TcpSocket.connect', () => {
  it('starts unconnected, then connects with (port, host, listener); writes made before connect arrive', async () => {
    pair = tcpPair();
    echo(pair, 7);
    const s = new TcpSocket({ endpoint: pair.a });
    expect(s.pending).toBe(true);
    expect(s.connecting).toBe(false);
    expect(s.remoteAddress).toBeUndefined();
    let connected = false;
    s.connect(7, B, () => {
      connected = true;
    });
    expect(s.connecting).toBe(true);
    const payload = Buffer.alloc(200_000, 7);
    s.write(payload);
    const back = await readN(s, payload.length);
    expect(connected).toBe(true);
    expect(s.remoteAddress).toBe(B);
    expect(s.remotePort).toBe(7);
    expect(sha256(back)).toBe(sha256(payload));
    s.destroy();
  });

  it('resolves a name through the lookup option and emits lookup; options set before connect apply', async () => {
    pair = tcpPair();
    echo(pair, 8);
    const s = new TcpSocket({ endpoint: pair.a, lookup: lookupB });
    s.setNoDelay(true);
    s.setKeepAlive(true, 5000);
    const looked = once(s, 'lookup');
    s.connect({ port: '8', host: 'bee' });
    // A write before the lookup has answered waits for the connection.
    s.write('hello');
    const [err, address, family, host] = await looked;
    expect([err, address, family, host]).toEqual([null, B, 4, 'bee']);
    expect((await readN(s, 5)).toString()).toBe('hello');
    const conn = (s as unknown as { conn: { nodelay: boolean; keepaliveMs: number } }).conn;
    expect(conn.nodelay).toBe(true);
    expect(conn.keepaliveMs).toBe(5000);
    s.destroy();
  });

  it('ends a write-then-end before connect with the data and a FIN', async () => {
    pair = tcpPair();
    const accepted: TcpSocket[] = [];
    new TcpServer(pair.b, {}, (s) => accepted.push(s)).listen(9);
    const s = new TcpSocket({ endpoint: pair.a, lookup: lookupB, allowHalfOpen: true });
    s.connect(9, 'bee');
    s.end('last words');
    await new Promise((r) => setTimeout(r, 50));
    const got: Buffer[] = [];
    for await (const c of accepted[0]!) got.push(c as Buffer);
    expect(Buffer.concat(got).toString()).toBe('last words');
    s.destroy();
  });

  it('reports a failed lookup as error, ECONNREFUSED for a closed port, and throws for a bad port', async () => {
    pair = tcpPair();
    const unknown = new TcpSocket({ endpoint: pair.a, lookup: lookupB }).connect(80, 'nobody');
    const [e1] = (await once(unknown, 'error')) as [NodeJS.ErrnoException];
    expect(e1.code).toBe('ENOTFOUND');
    expect(unknown.destroyed).toBe(true);

    const noLookup = new TcpSocket({ endpoint: pair.a }).connect(80, 'bee');
    const [e2] = (await once(noLookup, 'error')) as [NodeJS.ErrnoException];
    expect(e2.code).toBe('ENOTFOUND');
    expect((e2 as unknown as { hostname: string }).hostname).toBe('bee');

    const refused = new TcpSocket({ endpoint: pair.a }).connect({ port: 81, host: B });
    const [e3] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(e3.code).toBe('ECONNREFUSED');

    for (const port of [0, 65536, -1, 1.5, 'http', Number.NaN]) {
      expect(() => new TcpSocket({ endpoint: pair.a }).connect(port as number, B)).toThrow(
        expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }),
      );
    }
  });

  it('refuses a second connect, and fails a socket with no endpoint with an error event', async () => {
    pair = tcpPair();
    echo(pair, 10);
    const s = new TcpSocket({ endpoint: pair.a }).connect(10, B);
    expect(() => s.connect(10, B)).toThrow(/already connecting/);
    await once(s, 'connect');
    s.destroy();
    const orphan = new TcpSocket().connect(10, B);
    const [err] = (await once(orphan, 'error')) as [Error & { code: string }];
    expect(err.code).toBe('INVALID_STATE');
  });

  it('destroyed during its lookup, it never opens a connection', async () => {
    pair = tcpPair();
    const accepted: TcpSocket[] = [];
    echo(pair, 11, accepted);
    const s = new TcpSocket({ endpoint: pair.a, lookup: lookupB }).connect(11, 'bee');
    s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted).toHaveLength(0);
    expect(pair.a.connectionCount).toBe(0);
  });
});
