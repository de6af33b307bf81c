// Fuzzing what the tailnet layer reads from the network: disco messages (sealed and clear), and
// the requests its SOCKS5 and HTTP proxies take on their loopback sockets, over real TCP
// connections, each reply checked against RFC 1928/1929's conversation or HTTP's framing.

import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DiscoMessage,
  discoShared,
  encodeMessage,
  generateDiscoKey,
  looksLikeDisco,
  openDisco,
  parseMessage,
  sealDisco,
} from '../../src/tailnet/disco.js';
import { type HttpProxy, startHttpProxy } from '../../src/tailnet/http-proxy.js';
import { Socks5Server } from '../../src/tailnet/socks5-server.js';
import { formatIp } from '../../src/wireguard/allowedips.js';
import { assertFuzz, fuzzRuns } from '../fuzz.js';

/** Bytes with a few positions overwritten, and cut or extended. */
function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      base,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.integer({ min: -6, max: 4 }),
    )
    .map(([b, edits, resize]) => {
      const out = new Uint8Array(Math.max(0, b.length + resize));
      out.set(b.subarray(0, out.length));
      for (const [i, v] of edits) if (out.length > 0) out[i % out.length] = v;
      return out;
    });
}

const ip4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
/** IPv6 text as our formatter writes it (disco round-trips addresses through it). */
const ip6Text = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIp(b));

describe('fuzz: disco', () => {
  const a = generateDiscoKey();
  const b = generateDiscoKey();
  const ab = discoShared(a, b.publicKey);
  const ba = discoShared(b, a.publicKey);
  const message: fc.Arbitrary<DiscoMessage> = fc.oneof(
    fc.record({
      type: fc.constant('ping' as const),
      txid: fc.uint8Array({ minLength: 12, maxLength: 12 }),
      padding: fc.nat(200),
    }),
    fc
      .record({
        txid: fc.uint8Array({ minLength: 12, maxLength: 12 }),
        nodeKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
        padding: fc.nat(200),
      })
      .map((m) => ({ type: 'ping' as const, ...m })),
    fc.record({
      type: fc.constant('pong' as const),
      txid: fc.uint8Array({ minLength: 12, maxLength: 12 }),
      src: fc.record({ ip: fc.oneof(ip4, ip6Text), port: fc.nat(65535) }),
    }),
    fc.record({
      type: fc.constant('callMeMaybe' as const),
      endpoints: fc.array(fc.record({ ip: fc.oneof(ip4, ip6Text), port: fc.nat(65535) }), {
        minLength: 1,
        maxLength: 6,
      }),
    }),
  );

  it('a clear message parses to undefined or to one that encodes back to a message parsing the same', () => {
    assertFuzz(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated(message.map(encodeMessage))), (p) => {
        const m = parseMessage(p);
        if (m) expect(parseMessage(encodeMessage(m))).toEqual(m);
      }),
      { numRuns: fuzzRuns(3000) },
    );
  });

  it('sealed packets open only unchanged and from the right key; anything else is undefined', () => {
    assertFuzz(
      fc.property(
        message,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }),
        fc.uint8Array({ maxLength: 120 }),
        (m, flips, junk) => {
          const pkt = sealDisco(a, ab, m);
          expect(looksLikeDisco(pkt)).toBe(true);
          expect(openDisco(ba, pkt)).toEqual(parseMessage(encodeMessage(m)));
          // Flip bytes of the magic, nonce or box (the sender key only picks the shared key, given here).
          const bad = Uint8Array.from(pkt);
          for (const [at, x] of flips) {
            const i = at % (bad.length - 32);
            bad[i < 6 ? i : i + 32]! ^= x;
          }
          const changed = !Buffer.from(bad).equals(Buffer.from(pkt));
          if (changed) expect(openDisco(ba, bad)).toBeUndefined();
          expect(openDisco(ba, junk)).toBeUndefined();
          expect(
            openDisco(ab, pkt.subarray(0, Math.max(0, pkt.length - 1 - (junk.length % 20)))),
          ).toBeUndefined();
        },
      ),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

/**
 * Everything a TCP client gets back after sending `chunks`. With `halfClose` it then shuts its
 * sending side; without, it waits for the server to close (or, once a CONNECT tunnel is up, ends).
 */
function converse(port: number, chunks: Uint8Array[], halfClose = true): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const got: Buffer[] = [];
    // A server that neither answers nor closes is a finding, not a slow test.
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within 10 s after ${Buffer.concat(got).length} bytes`));
    }, 10_000);
    s.on('data', (d: Buffer) => {
      got.push(d);
      if (!halfClose && /^HTTP\/1\.1 200 [^\r]*\r\n\r\n/.test(Buffer.concat(got).toString('latin1'))) s.end();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      // The server may close on us mid-write; what it sent before counts.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    // The server is done when it closes its side; then so are we.
    s.on('end', () => s.end());
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        await new Promise((r) => setImmediate(r));
      }
      if (halfClose && !s.destroyed) s.end();
    });
  });
}

/** Splits `b` at sorted `cuts`. */
function cut(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of [...cuts].sort((x, y) => x - y)) {
    const end = Math.min(b.length, Math.max(at, c));
    if (end > at) out.push(b.subarray(at, end));
    at = end;
  }
  if (at < b.length) out.push(b.subarray(at));
  return out;
}

/** An echo server standing in for tailnet peers: what a tunnel carries comes back. */
async function echoServer(): Promise<net.Server> {
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

describe('fuzz: SOCKS5 requests', () => {
  const USER = 'quackscale';
  const PASS = 'fuzz-password';
  let echo: net.Server;
  let socks: Socks5Server;
  const dials: string[] = [];
  // Tailnet peers: MagicDNS names under peer / *.tailnet.internal, and 100.64.0.0/24.
  const classify = (h: string) =>
    /^peer(\.|$)|\.tailnet\.internal\.?$/.test(h) || h.startsWith('100.64.0.')
      ? ('peer' as const)
      : h.startsWith('100.') || h.endsWith('.ts.net')
        ? ('tailnet-unknown' as const)
        : ('other' as const);

  beforeAll(async () => {
    echo = await echoServer();
    socks = await Socks5Server.listen({
      username: USER,
      password: PASS,
      classify,
      dial: (host, port) => {
        dials.push(`${host} ${port}`);
        return new Promise<Duplex>((resolve, reject) => {
          const s = net.connect(
            { port: (echo.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true },
            () => resolve(s),
          );
          s.once('error', reject);
        });
      },
    });
  });
  afterAll(async () => {
    await socks.close();
    await new Promise((r) => echo.close(r));
  });

  /** A conversation as a client would build it, each field valid or not. */
  const conversation = fc.record({
    ver: fc.oneof({ weight: 8, arbitrary: fc.constant(5) }, fc.nat(255)),
    methods: fc.oneof({ weight: 6, arbitrary: fc.constant([0, 2]) }, fc.array(fc.nat(255), { maxLength: 4 })),
    authVer: fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, fc.nat(255)),
    user: fc.oneof({ weight: 6, arbitrary: fc.constant(USER) }, fc.string({ maxLength: 12 })),
    pass: fc.oneof({ weight: 6, arbitrary: fc.constant(PASS) }, fc.string({ maxLength: 20 })),
    reqVer: fc.oneof({ weight: 8, arbitrary: fc.constant(5) }, fc.nat(255)),
    cmd: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, fc.nat(255)),
    dst: fc.oneof(
      ip4.map((h) => ({ atyp: 1, host: h })),
      fc.constantFrom('100.64.0.7', '100.100.1.1', '127.0.0.1').map((h) => ({ atyp: 1, host: h })),
      fc
        .uint8Array({ minLength: 16, maxLength: 16 })
        .map((a) => ({ atyp: 4, host: Buffer.from(a).toString('hex') })),
      fc
        .oneof(
          fc.constantFrom('peer', 'peer.tailnet.internal', 'nobody', 'db.example.com', 'x.ts.net'),
          fc.string({ maxLength: 30 }),
        )
        .map((h) => ({ atyp: 3, host: h })),
      fc.integer({ min: 0, max: 255 }).map((atyp) => ({ atyp, host: '' })),
    ),
    port: fc.nat(65535),
    early: fc.uint8Array({ maxLength: 40 }),
  });
  type Conversation = typeof conversation extends fc.Arbitrary<infer T> ? T : never;

  function encode(c: Conversation): Buffer {
    const str = (s: string) => {
      const b = Buffer.from(s, 'latin1').subarray(0, 255);
      return Buffer.concat([Buffer.from([b.length]), b]);
    };
    const addr =
      c.dst.atyp === 1
        ? Buffer.from(c.dst.host.split('.').map(Number))
        : c.dst.atyp === 4
          ? Buffer.from(c.dst.host, 'hex')
          : c.dst.atyp === 3
            ? str(c.dst.host)
            : Buffer.alloc(0);
    return Buffer.concat([
      Buffer.from([c.ver, c.methods.length, ...c.methods]),
      Buffer.from([c.authVer]),
      str(c.user),
      str(c.pass),
      Buffer.from([c.reqVer, c.cmd, 0, c.dst.atyp]),
      addr,
      Buffer.from([c.port >> 8, c.port & 0xff]),
      c.early,
    ]);
  }

  /**
   * What the server must answer to `b` (RFC 1928 §3-6, RFC 1929 §2), and the CONNECT it must dial:
   * read field by field as the bytes allow; a conversation cut short gets what came before.
   */
  function expected(b: Buffer): { reply: Buffer; dial?: string; tunnel?: Buffer } {
    let i = 0;
    const out: number[] = [];
    const take = (n: number): Buffer | undefined => {
      if (i + n > b.length) return undefined;
      i += n;
      return b.subarray(i - n, i);
    };
    const done = () => ({ reply: Buffer.from(out) });
    const fail = (rep: number) => ({ reply: Buffer.from([...out, 5, rep, 0, 1, 0, 0, 0, 0, 0, 0]) });
    const head = take(2);
    if (head?.[0] !== 5) return done();
    const methods = take(head[1]!);
    if (!methods) return done();
    if (!methods.includes(2)) return { reply: Buffer.from([5, 0xff]) };
    out.push(5, 2);
    const auth = take(2);
    const user = auth && take(auth[1]!);
    const plen = user && take(1);
    const pass = plen && take(plen[0]!);
    if (!pass) return done();
    if (auth![0] !== 1 || user!.toString('latin1') !== USER || pass.toString('latin1') !== PASS) {
      out.push(1, 1);
      return done();
    }
    out.push(1, 0);
    const req = take(4);
    if (!req) return done();
    let host: string | undefined;
    let isName = false;
    if (req[3] === 1) host = take(4) && [...b.subarray(i - 4, i)].join('.');
    else if (req[3] === 4) host = take(16) && formatIp(b.subarray(i - 16, i));
    else if (req[3] === 3) {
      const len = take(1);
      const name = len && take(len[0]!);
      host = name?.toString('latin1');
      isName = true;
    } else return fail(8);
    const port = host !== undefined ? take(2) : undefined;
    if (host === undefined || !port) return done();
    if (req[0] !== 5) return done();
    if (req[1] !== 1) return fail(7);
    const where = classify(host);
    if (
      where === 'tailnet-unknown' ||
      (where === 'other' && isName && !host.replace(/\.$/, '').includes('.'))
    )
      return fail(4);
    if (where === 'other') return fail(2);
    return { reply: Buffer.from(out), dial: `${host} ${port.readUInt16BE(0)}`, tunnel: b.subarray(i) };
  }

  it('every reply is the one RFC 1928/1929 prescribe; only authenticated CONNECTs to peers are dialled', async () => {
    const input = fc.oneof(
      { weight: 4, arbitrary: conversation.map(encode) },
      { weight: 2, arbitrary: mutated(conversation.map(encode)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) },
    );
    await assertFuzz(
      fc.asyncProperty(input, fc.array(fc.nat(120), { maxLength: 4 }), async (bytes, cuts) => {
        const want = expected(Buffer.from(bytes));
        const before = dials.length;
        const got = await converse(socks.port, cut(bytes, cuts));
        if (want.dial === undefined) {
          expect(
            got.equals(want.reply),
            `${Buffer.from(bytes).toString('hex')}: ${got.toString('hex')}`,
          ).toBe(true);
          expect(dials.length).toBe(before);
        } else {
          expect(dials.slice(before)).toEqual([want.dial]);
          // Success (REP 0, an IPv4 BND.ADDR), then the early bytes back through the echo peer.
          expect(got.subarray(0, want.reply.length).equals(want.reply)).toBe(true);
          const rest = got.subarray(want.reply.length);
          expect([...rest.subarray(0, 4)]).toEqual([5, 0, 0, 1]);
          expect(rest.subarray(10).equals(want.tunnel!)).toBe(true);
        }
      }),
      { numRuns: fuzzRuns(2000) },
    );
  }, 600_000);
});

describe('fuzz: HTTP proxy requests', () => {
  const onNode = !process.versions.bun && !process.versions.deno;
  const AUTH = `Basic ${Buffer.from('quackscale:fuzz-password').toString('base64')}`;
  let origin: http.Server;
  let proxy: HttpProxy;
  let originRequests = 0;
  const dials: string[] = [];

  beforeAll(async () => {
    origin = http.createServer((req, res) => {
      originRequests++;
      req.resume();
      req.on('end', () => res.end('from the peer'));
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as net.AddressInfo).port;
    proxy = await startHttpProxy({
      username: 'quackscale',
      password: 'fuzz-password',
      // Every host is a tailnet host here except 127.0.0.1, the one direct destination: fuzzed
      // names and addresses must never send this test to the network.
      isTailnetHost: (h) => h !== '127.0.0.1',
      dial: (host, port) => {
        dials.push(`${host} ${port}`);
        return new Promise<Duplex>((resolve, reject) => {
          const s = net.connect({ port: originPort, host: '127.0.0.1' }, () => resolve(s));
          s.once('error', reject);
        });
      },
    });
  });
  afterAll(async () => {
    await proxy.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });

  const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
  const request = fc.record({
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'CONNECT') },
      token,
    ),
    target: fc.oneof(
      fc.constantFrom(
        'http://peer/',
        'http://peer:8000/sales.csv?x=1',
        'http://100.64.0.9/a',
        'http://[fd7a:115c:a1e0::9]:81/',
      ),
      fc.constantFrom('peer:443', '100.64.0.9:22', '[fd7a:115c:a1e0::9]:443', 'peer:99999', 'peer'),
      fc.constantFrom('/origin-form', '*', 'https://peer/', 'ftp://peer/', 'http://', 'http://127.0.0.1:1/'),
      fc.webUrl({ validSchemes: ['http'] }).map((u) => u.replace(/^(http:\/\/)[^/:?#]+/, '$1peer')),
      fc.string({ maxLength: 40 }),
    ),
    auth: fc.oneof(
      { weight: 5, arbitrary: fc.constant(AUTH) },
      fc.constant(''),
      fc.string({ maxLength: 30 }),
    ),
    headers: fc.array(fc.tuple(token, fc.string({ maxLength: 20 })), { maxLength: 3 }),
    body: fc.uint8Array({ maxLength: 64 }),
  });
  type Request = typeof request extends fc.Arbitrary<infer T> ? T : never;
  const encode = (r: Request) =>
    Buffer.concat([
      Buffer.from(
        `${r.method} ${r.target} HTTP/1.1\r\nHost: peer\r\n${r.auth ? `Proxy-Authorization: ${r.auth}\r\n` : ''}` +
          r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
          `Content-Length: ${r.body.length}\r\nConnection: close\r\n\r\n`,
        'latin1',
      ),
      r.body,
    ]);

  it('answers everything with well-formed HTTP; nothing unauthenticated reaches a peer or the network', async () => {
    // Whole requests are sent as a client sends them; mutated and random ones are followed by a
    // half-close, since a request cut short would otherwise wait for its missing bytes.
    const input = fc.oneof(
      {
        weight: 4,
        arbitrary: request.map((r) => ({ bytes: encode(r), authed: r.auth === AUTH, whole: true })),
      },
      {
        weight: 2,
        arbitrary: mutated(request.map(encode)).map((bytes) => ({ bytes, authed: undefined, whole: false })),
      },
      {
        weight: 1,
        arbitrary: fc.uint8Array({ maxLength: 120 }).map((bytes) => ({ bytes, authed: false, whole: false })),
      },
    );
    // Dials and origin requests trail their request a little (an aborted request's upstream
    // still completes), so they are checked against the count of inputs that carried our
    // credentials, never against the input at hand.
    let withCredentials = 0;
    await assertFuzz(
      fc.asyncProperty(
        input,
        fc.array(fc.nat(160), { maxLength: 3 }),
        async ({ bytes, authed, whole }, cuts) => {
          const sawAuth = Buffer.from(bytes).includes(`Proxy-Authorization: ${AUTH}\r\n`);
          if (sawAuth) withCredentials++;
          const tailnetBefore = proxy.stats.tailnet;
          const got = (await converse(proxy.port, cut(bytes, cuts), !whole)).toString('latin1');
          // Node answers what it cannot parse with 400 and closes; we answer the rest. (Bun's and
          // Deno's node:http may close without a word, and answer with codes of their own.)
          if (got.length > 0) expect(got).toMatch(/^HTTP\/1\.1 [1-5]\d\d /);
          if (whole && onNode) expect(got.length).toBeGreaterThan(0);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1]);
          // Without our exact credentials: refused (407) or unparseable (4xx/5xx), never a peer's answer.
          if ((authed === false || !sawAuth) && got.length > 0)
            expect(onNode ? [400, 407, 413, 414, 431, 501, 505] : [status]).toContain(status);
          if ((authed === false || !sawAuth) && got.length > 0) expect([200, 502]).not.toContain(status);
          expect(dials.length).toBeLessThanOrEqual(withCredentials);
          expect(originRequests).toBeLessThanOrEqual(withCredentials);
          // A whole, authenticated request that went to a peer came back from it (or as 502).
          if (whole && authed && proxy.stats.tailnet > tailnetBefore) expect([200, 502]).toContain(status);
        },
      ),
      { numRuns: fuzzRuns(2000) },
    );
    // Still serving afterwards.
    const after = `GET http://peer/after HTTP/1.1\r\nHost: peer\r\nProxy-Authorization: ${AUTH}\r\nConnection: close\r\n\r\n`;
    const ok = await converse(proxy.port, [Buffer.from(after)], false);
    expect(ok.toString()).toMatch(/^HTTP\/1\.1 200 [\s\S]*from the peer$/);
  }, 600_000);
});
