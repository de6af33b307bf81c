// The other way: node's servers (http, https, http2 h2c and h2, ws) attached to our node's tailnet
// ports with tn.listen(port, server), and a real tailscaled's clients against them — curl through its
// SOCKS5 server for HTTP/1.1, h2c, TLS (verified against the test's CA) and the WebSocket upgrade, and
// a ws client whose socket is a CONNECT through that SOCKS5. Each server names its caller with whois.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { makeTestCA } from '../tailnet/net/tls-ca.js';
import { Derper, freePort, Headscale, missingPeers, Tailscaled, tempDir } from './control-peers.js';
import { Cleanup, exec, waitFor } from './rig/exec.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const US = 'quack.tailnet.test';

/** A socket to host:port through a SOCKS5 proxy with no auth (RFC 1928 CONNECT, domain name form). */
async function socks5Connect(proxyPort: number, host: string, port: number): Promise<net.Socket> {
  const s = net.connect(proxyPort, '127.0.0.1');
  await once(s, 'connect');
  const read = async (n: number): Promise<Buffer> => {
    for (;;) {
      const b = s.read(n) as Buffer | null;
      if (b) return b;
      await once(s, 'readable');
    }
  };
  s.write(Buffer.from([5, 1, 0]));
  expect([...(await read(2))]).toEqual([5, 0]);
  const name = Buffer.from(host);
  s.write(
    Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]),
  );
  const head = await read(4);
  expect(head[1]).toBe(0); // succeeded
  await read(head[3] === 4 ? 18 : head[3] === 1 ? 6 : 2 + (await read(1))[0]!);
  return s;
}

skipUnless([
  ...missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']),
  ...checkRequirements(['curl', 'openssl']),
])("a real tailscaled's clients against node servers on our node's tailnet ports", () => {
  const cleanup = new Cleanup();
  let socks = 0;
  let tn: Tailnet;
  const ca = makeTestCA([US, 'quack']);
  let caFile = '';
  let upFile = '';
  const up = randomBytes(10 << 20);
  const down = randomBytes(8 << 20);
  const callers: (string | undefined)[] = [];

  function handler(
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) {
    callers.push(tn.whois(req)?.hostname);
    if (req.method === 'PUT') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')} ${req.httpVersion}`));
      return;
    }
    res.end(down);
  }

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  beforeAll(async () => {
    const dir = await tempDir(cleanup, 'qs-srv-');
    caFile = join(dir, 'ca.pem');
    await writeFile(caFile, ca.ca);
    upFile = join(dir, 'up');
    await writeFile(upFile, up);
    const derper = await Derper.start(cleanup);
    const hs = await Headscale.start(cleanup, { derpPort: derper.port });
    const key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
    socks = await freePort();
    const ts = await Tailscaled.start(cleanup, 'web', { socks5Port: socks });
    await ts.up(hs.url, key, 'ts-web');
    const udp = await freePort();
    tn = new Tailnet({
      hostname: 'quack',
      controlURL: hs.url,
      authKey: key,
      stateDir: await tempDir(cleanup, 'qs-tn-'),
      derpHttp: true,
      port: udp,
      endpoints: [`127.0.0.1:${udp}`],
    });
    cleanup.add('close quack', () => tn.close());
    await tn.up();
    const tls = { cert: ca.cert, key: ca.key };
    await tn.listen(80, http.createServer(handler));
    await tn.listen(443, https.createServer(tls, handler));
    await tn.listen(8080, http2.createServer(handler));
    await tn.listen(8443, http2.createSecureServer({ ...tls, allowHTTP1: true }, handler));
    const wsHttp = http.createServer();
    new WebSocketServer({ server: wsHttp }).on('connection', (ws, req) => {
      callers.push(tn.whois(req)?.hostname);
      ws.on('message', (m: Buffer) => ws.send(m));
    });
    await tn.listen(9000, wsHttp);
    await waitFor(
      'tailscaled sees quack',
      async () =>
        Object.values((await ts.status()).Peer ?? {}).some((p) => p.HostName === 'quack' && p.Relay)
          ? true
          : undefined,
      30_000,
      200,
    );
  });

  async function curl(args: string[]): Promise<{ code: number; out: string }> {
    const r = await exec('curl', ['-sS', '-x', `socks5h://127.0.0.1:${socks}`, '--max-time', '60', ...args], {
      timeoutMs: 70_000,
      check: false,
    });
    return { code: r.code ?? -1, out: r.stdout + r.stderr };
  }

  it('HTTP/1.1: 10 MB up and 8 MB down, by MagicDNS name', async () => {
    callers.length = 0;
    expect((await curl(['--fail', '-T', upFile, `http://${US}/up`])).out).toBe(`${up.length} ${sha(up)} 1.1`);
    const got = await exec('sh', [
      '-c',
      `curl -sS --fail -x socks5h://127.0.0.1:${socks} http://${US}/down | sha256sum`,
    ]);
    expect(got.stdout.split(' ')[0]).toBe(sha(down));
    expect(callers).toEqual(['ts-web', 'ts-web']);
  });

  it('h2c (HTTP/2 prior knowledge) and h2 over TLS (ALPN), the certificate verified by curl', async () => {
    callers.length = 0;
    expect(
      (await curl(['--fail', '--http2-prior-knowledge', '-T', upFile, `http://${US}:8080/up`])).out,
    ).toBe(`${up.length} ${sha(up)} 2.0`);
    const h2 = await curl(['--fail', '--http2', '--cacert', caFile, '-T', upFile, `https://${US}:8443/up`]);
    expect(h2.out).toBe(`${up.length} ${sha(up)} 2.0`);
    expect(callers).toEqual(['ts-web', 'ts-web']);
  });

  it('https (TLS terminated in our process): verified against the CA, refused without it', async () => {
    callers.length = 0;
    expect((await curl(['--fail', '--cacert', caFile, '-T', upFile, `https://${US}/up`])).out).toBe(
      `${up.length} ${sha(up)} 1.1`,
    );
    const untrusted = await curl([`https://${US}/`]);
    expect(untrusted.code).toBe(60); // curl: peer certificate cannot be authenticated
    expect(callers).toEqual(['ts-web']);
  });

  it('WebSocket: the upgrade answered (101 with the RFC 6455 accept key), and 1 MB echoed through the SOCKS5', async () => {
    callers.length = 0;
    // RFC 6455 §1.3's example key and the accept value it must produce.
    const upgrade = await curl([
      ...['-i', '-N', '--max-time', '3', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket'],
      ...['-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='],
      `http://${US}:9000/`,
    ]);
    expect(upgrade.out).toMatch(/^HTTP\/1\.1 101 Switching Protocols/);
    expect(upgrade.out).toMatch(/Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
    const payload = randomBytes(1 << 20);
    const tunnel = await socks5Connect(socks, US, 9000);
    const ws = new WebSocket(`ws://${US}:9000/`, { createConnection: () => tunnel as never });
    await once(ws, 'open');
    ws.send(payload);
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect([msg.length, sha(msg)]).toEqual([payload.length, sha(payload)]);
    ws.close();
    expect(callers).toEqual(['ts-web', 'ts-web']);
  });
});
