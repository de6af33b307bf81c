// Our HTTP/2 client (the browser bundle's node:http2) against node:http2's server, a real HTTP/2 peer with
// nghttp2's HPACK (Huffman, dynamic table) and flow control; and HPACK against RFC 7541's examples.
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HpackDecoder, HpackError } from '../../src/browser/hpack.js';
import { type ClientHttp2Session, type ClientHttp2Stream, connect } from '../../src/browser/http2.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

describe('HPACK decoder: RFC 7541 Appendix C', () => {
  it('C.4: requests with Huffman coding, sharing a dynamic table', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('C.3: the same without Huffman', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')).at(-1)).toEqual(['cache-control', 'no-cache']);
  });

  it('rejects bad input instead of guessing', () => {
    expect(() => new HpackDecoder().decode(hex('ff'))).toThrow(HpackError); // truncated integer
    expect(() => new HpackDecoder().decode(hex('be'))).toThrow(/out of range/); // empty dynamic table
    expect(() => new HpackDecoder().decode(hex('4082 ffff 00'))).toThrow(HpackError); // EOS / bad padding
  });
});

describe('HTTP/2 client against node:http2', () => {
  let server: http2.Http2Server;
  let port = 0;
  const big = randomBytes(3 * 1024 * 1024 + 5);
  const sessions: ClientHttp2Session[] = [];
  beforeAll(async () => {
    server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {}); // resets and aborts are what some tests do
      const path = headers[':path'];
      if (path === '/big') {
        stream.respond({ ':status': 200, 'x-long': 'v'.repeat(20_000) });
        return stream.end(big);
      }
      if (path === '/hash') {
        const h = createHash('sha256');
        let n = 0;
        stream.on('data', (d: Buffer) => {
          h.update(d);
          n += d.length;
        });
        stream.on('end', () => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 201, 'content-type': 'text/plain' });
          stream.end(`${n} ${h.digest('hex')}`);
        });
        return;
      }
      if (path === '/slow') {
        stream.respond({ ':status': 200 });
        let i = 0;
        const t = setInterval(() => {
          stream.write(`tick ${i}\n`);
          if (++i === 5) {
            clearInterval(t);
            stream.end();
          }
        }, 10);
        return;
      }
      if (path === '/reset') return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      if (path === '/kill') return stream.session?.destroy();
      stream.respond({ ':status': 404 });
      stream.end('none');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const session = () => {
    const s = connect(`http://127.0.0.1:${port}`, { createConnection: () => net.connect(port, '127.0.0.1') });
    sessions.push(s);
    return s;
  };
  const response = (st: ClientHttp2Stream) =>
    new Promise<{ headers: Record<string, string>; body: Buffer }>((resolve, reject) => {
      let headers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      st.on('response', (h: Record<string, string>) => (headers = h));
      st.on('data', (d: Buffer) => chunks.push(d));
      st.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
      st.on('error', reject);
    });

  it('a 3 MB response past the default windows, with a 20 KB header in CONTINUATION frames', async () => {
    const s = session();
    const { headers, body } = await response(
      s.request({ ':method': 'GET', ':path': '/big' }, { endStream: true }),
    );
    expect(headers[':status']).toBe('200');
    expect(headers['x-long']).toBe('v'.repeat(20_000));
    expect([body.length, sha(body)]).toEqual([big.length, sha(big)]);
  });

  it('a 1 MB upload waits on the server window (WINDOW_UPDATE), and several streams share a session', async () => {
    const s = session();
    const up = randomBytes(1 << 20);
    const reqs = [0, 1, 2].map(() => {
      const st = s.request({ ':method': 'POST', ':path': '/hash', 'content-type': 'application/json' });
      st.end(up);
      return response(st);
    });
    for (const r of await Promise.all(reqs)) {
      expect(r.headers[':status']).toBe('201');
      expect(r.body.toString()).toBe(`${up.length} ${sha(up)}`);
    }
  });

  it('a streamed response arrives in pieces; 404 is a response; a reset stream is an error', async () => {
    const s = session();
    const slow = await response(s.request({ ':method': 'GET', ':path': '/slow' }, { endStream: true }));
    expect(slow.body.toString()).toBe('tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n');
    const nf = await response(s.request({ ':method': 'GET', ':path': '/x' }, { endStream: true }));
    expect([nf.headers[':status'], nf.body.toString()]).toEqual(['404', 'none']);
    await expect(
      response(s.request({ ':method': 'GET', ':path': '/reset' }, { endStream: true })),
    ).rejects.toThrow(/reset by the server \(code 7\)/);
  });

  it('an abort signal cancels a stream; a session the server destroys fails its streams', async () => {
    const s = session();
    const ac = new AbortController();
    const st = s.request({ ':method': 'GET', ':path': '/slow' }, { endStream: true, signal: ac.signal });
    const done = response(st);
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    const closed = new Promise((r) => s.on('close', r));
    // node:http2 resets open streams as it goes (RST_STREAM), or the connection just ends.
    const pending = expect(response(s.request({ ':method': 'POST', ':path': '/hash' }))).rejects.toThrow(
      /reset by the server|session closed/,
    );
    await response(s.request({ ':method': 'GET', ':path': '/kill' }, { endStream: true })).catch(
      () => undefined,
    );
    await pending;
    await closed;
    expect(() => s.request({ ':method': 'GET', ':path': '/' })).toThrow(/session is closed/);
  });
});
