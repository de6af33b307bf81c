// The portable HTTP/1.1 fetch (the browser entry's and Bun's tn.fetch) against node:http, a real HTTP/1.1
// server, and against raw sockets for the framings and failures node:http never sends.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FetchSocket, HttpFetchError, http1Fetch } from '../../src/tailnet/http1-fetch.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const dial = (host: string, port: number) =>
  new Promise<FetchSocket>((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.once('error', reject);
  });

describe('http1Fetch against node:http', () => {
  const blob = randomBytes(3 * 1024 * 1024 + 17);
  let server: http.Server;
  let base = '';
  const seen: {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    bytes: number;
    sha: string;
  }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => {
        const digest = h.digest('hex');
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes: n, sha: digest });
        const u = new URL(req.url!, 'http://x');
        if (u.pathname === '/blob') return res.writeHead(200, { 'content-length': blob.length }).end(blob);
        if (u.pathname === '/chunked') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          for (let o = 0; o < blob.length; o += 100_000) res.write(blob.subarray(o, o + 100_000));
          return res.end();
        }
        if (u.pathname === '/echo-hash') return res.end(`${req.method} ${n} ${digest}`);
        if (u.pathname === '/redirect')
          return res.writeHead(302, { location: '/echo-hash?after' }).end('moved');
        if (u.pathname === '/see-other') return res.writeHead(303, { location: '/echo-hash' }).end();
        if (u.pathname === '/loop') return res.writeHead(307, { location: '/loop' }).end();
        if (u.pathname === '/empty') return res.writeHead(204).end();
        if (u.pathname === '/gzip')
          return res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync('hello gzip'));
        if (u.pathname === '/cookies') {
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          return res.end('ok');
        }
        res.writeHead(404).end('no');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('a 3 MB body with Content-Length, and one chunked, arrive intact', async () => {
    for (const path of ['/blob', '/chunked']) {
      const res = await http1Fetch(dial, `${base}${path}`);
      expect(res.status).toBe(200);
      const got = new Uint8Array(await res.arrayBuffer());
      expect([got.length, sha(got)]).toEqual([blob.length, sha(blob)]);
    }
  });

  it('uploads: bytes with Content-Length, a stream chunked, a string with its content type', async () => {
    const res = await http1Fetch(dial, `${base}/echo-hash`, { method: 'PUT', body: blob });
    expect(await res.text()).toBe(`PUT ${blob.length} ${sha(blob)}`);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let o = 0; o < blob.length; o += 65_536) c.enqueue(blob.subarray(o, o + 65_536));
        c.close();
      },
    });
    const res2 = await http1Fetch(dial, `${base}/echo-hash`, { method: 'POST', body: stream });
    expect(await res2.text()).toBe(`POST ${blob.length} ${sha(blob)}`);
    expect(seen.at(-1)!.headers['transfer-encoding']).toBe('chunked');
    await (await http1Fetch(dial, `${base}/echo-hash`, { method: 'POST', body: 'héllo' })).text();
    expect(seen.at(-1)!.headers['content-type']).toBe('text/plain;charset=UTF-8');
    expect(seen.at(-1)!.bytes).toBe(6);
  });

  it('redirects: 302 followed, 303 turns POST into GET, manual and error modes, loops stop', async () => {
    const res = await http1Fetch(dial, `${base}/redirect`);
    expect(await res.text()).toBe(`GET 0 ${sha(new Uint8Array())}`);
    expect(seen.at(-1)!.url).toBe('/echo-hash?after');
    const res2 = await http1Fetch(dial, `${base}/see-other`, { method: 'POST', body: 'x' });
    expect(await res2.text()).toMatch(/^GET 0 /);
    const manual = await http1Fetch(dial, `${base}/redirect`, { redirect: 'manual' });
    expect([manual.status, manual.headers.get('location'), await manual.text()]).toEqual([
      302,
      '/echo-hash?after',
      'moved',
    ]);
    await expect(http1Fetch(dial, `${base}/redirect`, { redirect: 'error' })).rejects.toThrow(
      /redirected \(302\)/,
    );
    await expect(http1Fetch(dial, `${base}/loop`)).rejects.toThrow(/too many redirects/);
  });

  it('204 has no body; gzip is undone; repeated headers are kept; 404 is a response', async () => {
    const empty = await http1Fetch(dial, `${base}/empty`);
    expect([empty.status, empty.body]).toEqual([204, null]);
    expect(await (await http1Fetch(dial, `${base}/gzip`)).text()).toBe('hello gzip');
    const c = await http1Fetch(dial, `${base}/cookies`);
    expect(c.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    const nf = await http1Fetch(dial, `${base}/nope`);
    expect([nf.status, await nf.text()]).toEqual([404, 'no']);
  });

  it('HEAD reads no body even with a Content-Length', async () => {
    const res = await http1Fetch(dial, `${base}/blob`, { method: 'HEAD' });
    expect(res.headers.get('content-length')).toBe(String(blob.length));
    expect(await res.text()).toBe('');
  });

  it('https is refused with a clear error', async () => {
    await expect(http1Fetch(dial, 'https://127.0.0.1:1/')).rejects.toThrow(/https: is not supported/);
  });
});

describe('http1Fetch against raw responses', () => {
  let server: net.Server;
  let port = 0;
  let reply: (s: net.Socket) => void = () => {};
  beforeAll(async () => {
    server = net.createServer((s) => {
      let head = '';
      s.on('data', (d) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) reply(s);
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const get = () => http1Fetch(dial, `http://127.0.0.1:${port}/`);

  it('a body delimited by the connection closing, after a 100 Continue', async () => {
    reply = (s) => s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nx-a: b\r\n\r\nuntil close');
    const res = await get();
    expect([res.status, res.statusText, res.headers.get('x-a')]).toEqual([200, 'OK', 'b']);
    expect(await res.text()).toBe('until close');
  });

  it('chunk extensions and trailers; a body split at every byte', async () => {
    const wire =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-t: y\r\n\r\n';
    reply = (s) => {
      let i = 0;
      const tick = () => (i < wire.length ? s.write(wire[i++]!, 'latin1', tick) : s.end());
      tick();
    };
    expect(await (await get()).text()).toBe('hello world');
  });

  it('not HTTP, a bad chunk size, and a body cut short all fail', async () => {
    reply = (s) => s.end('SSH-2.0-OpenSSH\r\n\r\n');
    await expect(get()).rejects.toBeInstanceOf(HttpFetchError);
    reply = (s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    await expect((await get()).text()).rejects.toThrow(/bad chunk size/);
    reply = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort');
    await expect((await get()).text()).rejects.toThrow(/closed before the response was complete/);
  });

  it('an abort signal destroys the connection', async () => {
    reply = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart');
    const ac = new AbortController();
    const res = await http1Fetch(dial, `http://127.0.0.1:${port}/`, { signal: ac.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('part');
    ac.abort(new Error('stop'));
    await expect(reader.read()).rejects.toThrow(/stop/);
  });
});
