// The SOCKS5 proxy (tn.socks5(), `quackscale up --socks5`) on the embedded tailnet with two of
// our nodes, driven by real curl and by a byte-level client for the refusals.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { SOCKS5_REPLY, type Socks5Server } from '../../src/tailnet/socks5-server.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';

const MB = 1024 * 1024;
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const CLI = resolve(__dirname, '../../dist/cli/main.js');

/** Deterministic bytes: chunk i of a blob is 64 KiB of (i * 31 + 7) & 0xff. */
const chunk = (i: number) => Buffer.alloc(64 * 1024, (i * 31 + 7) & 0xff);
function blobDigest(mb: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < mb * 16; i++) h.update(chunk(i));
  return h.digest('hex');
}

/** curl through a SOCKS5 proxy; resolves with exit code, stdout and stderr (never rejects). */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile('curl', ['-sS', '--max-time', '60', ...args], (err, stdout, stderr) =>
      res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A byte-level SOCKS5 conversation: greeting, optional RFC 1929 auth, one request; returns the replies. */
async function socks(
  port: number,
  o: {
    methods?: number[];
    auth?: [string, string];
    cmd?: number;
    atyp?: number;
    addr?: Buffer;
    dstPort?: number;
  },
): Promise<{ method: number; auth?: number; rep?: number; atyp?: number }> {
  const s = net.connect(port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  let closed = false;
  const waiters: Array<() => void> = [];
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (const w of waiters.splice(0)) w();
  });
  s.on('close', () => {
    closed = true;
    for (const w of waiters.splice(0)) w();
  });
  s.on('error', () => {});
  const read = async (n: number): Promise<Buffer | undefined> => {
    while (buf.length < n && !closed) await new Promise<void>((r) => waiters.push(r));
    if (buf.length < n) return undefined;
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  try {
    const methods = o.methods ?? [2];
    s.write(Buffer.from([5, methods.length, ...methods]));
    const [, method] = (await read(2)) ?? [];
    if (method !== 2) return { method: method! };
    const [u, p] = o.auth ?? ['', ''];
    s.write(
      Buffer.concat([Buffer.from([1, u.length]), Buffer.from(u), Buffer.from([p.length]), Buffer.from(p)]),
    );
    const [, auth] = (await read(2)) ?? [];
    if (auth !== 0) return { method, auth };
    const addr = o.addr ?? Buffer.from([100, 64, 0, 1]);
    const atyp = o.atyp ?? 1;
    const dst = o.dstPort ?? 80;
    const head = atyp === 3 ? Buffer.from([addr.length]) : Buffer.alloc(0);
    s.write(
      Buffer.concat([Buffer.from([5, o.cmd ?? 1, 0, atyp]), head, addr, Buffer.from([dst >> 8, dst & 0xff])]),
    );
    const rep = await read(4);
    return { method, auth, rep: rep?.[1], atyp: rep?.[3] };
  } finally {
    s.destroy();
  }
}
const name = (n: string) => Buffer.from(n, 'latin1');

describe('SOCKS5 proxy on a tailnet node', () => {
  let local: LocalTailnet;
  const nodes: Tailnet[] = [];
  let a: Tailnet;
  let b: Tailnet;
  let proxy: Socks5Server;
  let bIPv4 = '';
  let bIPv6 = '';
  let creds = '';

  async function node(hostname: string): Promise<Tailnet> {
    const tn = new Tailnet({
      hostname,
      controlURL: local.controlURL,
      authKey: await local.authKey(),
      stateDir: tmp('qs-socks-node-'),
      endpoints: [],
    });
    nodes.push(tn);
    await tn.up();
    return tn;
  }

  beforeAll(async () => {
    local = await startLocalTailnet({ stateDir: tmp('qs-socks-') });
    a = await node('socks-a');
    b = await node('socks-b');
    // B serves /blob?mb=N (deterministic bytes) over HTTP on tailnet port 8000.
    const web = http.createServer((req, res) => {
      const mb = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('mb') ?? 0);
      res.writeHead(200, { 'Content-Length': mb * MB });
      let i = 0;
      const pump = (): void => {
        while (i < mb * 16) if (!res.write(chunk(i++))) return void res.once('drain', pump);
        res.end();
      };
      pump();
    });
    (await b.listen(8000)).on('connection', (s) => web.emit('connection', s));
    [bIPv4, bIPv6] = b.status().self.addresses as [string, string];
    proxy = await a.socks5();
    creds = `${proxy.username}:${proxy.password}`;
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.close();
    await local.close();
  });

  it('carries curl --socks5-hostname to a MagicDNS short name: 4 MB intact (sha256)', async () => {
    expect(a.status().peers.find((p) => p.hostname === 'socks-b')?.configured).toBe(false);
    const out = join(tmp('qs-socks-out-'), 'blob');
    const r = await curl([
      '--socks5-hostname',
      `${creds}@127.0.0.1:${proxy.port}`,
      '-o',
      out,
      '-w',
      '%{http_code} %{size_download}',
      'http://socks-b:8000/blob?mb=4',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`200 ${4 * MB}`);
    const got = readFileSync(out);
    expect(got.length).toBe(4 * MB);
    expect(createHash('sha256').update(got).digest('hex')).toBe(blobDigest(4));
    expect(proxy.stats.tailnet).toBe(1);
    // The first packet configured B's WireGuard peer on A.
    expect(a.status().peers.find((p) => p.hostname === 'socks-b')?.configured).toBe(true);
  });

  it('reaches the FQDN, the 100.x literal (ATYP 1) and the fd7a: literal (ATYP 4)', async () => {
    const digest = blobDigest(1);
    for (const [flag, url] of [
      ['--socks5-hostname', 'http://socks-b.tailnet.internal.:8000/blob?mb=1'],
      ['--socks5', `http://${bIPv4}:8000/blob?mb=1`],
      ['--socks5', `http://[${bIPv6}]:8000/blob?mb=1`],
    ] as const) {
      const out = join(tmp('qs-socks-out-'), 'blob');
      const r = await curl([flag, `${creds}@127.0.0.1:${proxy.port}`, '-o', out, url]);
      expect(r.stderr, url).toBe('');
      expect(createHash('sha256').update(readFileSync(out)).digest('hex'), url).toBe(digest);
    }
    expect(
      (
        await socks(proxy.port, {
          auth: [proxy.username, proxy.password],
          atyp: 4,
          addr: Buffer.from(new Uint8Array(16)),
        })
      ).rep,
    ).toBe(SOCKS5_REPLY.notAllowed);
  });

  it('refuses missing and wrong credentials', async () => {
    const before = proxy.stats.badAuth;
    expect(await socks(proxy.port, { methods: [0] })).toEqual({ method: 0xff });
    expect(await socks(proxy.port, { auth: [proxy.username, 'wrong'] })).toMatchObject({
      method: 2,
      auth: 1,
    });
    expect(await socks(proxy.port, { auth: ['someone', proxy.password] })).toMatchObject({ auth: 1 });
    const r = await curl([
      '--socks5-hostname',
      `${proxy.username}:nope@127.0.0.1:${proxy.port}`,
      'http://socks-b:8000/blob?mb=1',
    ]);
    expect(r.code).not.toBe(0);
    const none = await curl([
      '--socks5-hostname',
      `127.0.0.1:${proxy.port}`,
      'http://socks-b:8000/blob?mb=1',
    ]);
    expect(none.code).not.toBe(0);
    expect(proxy.stats.badAuth - before).toBe(5);
  });

  it('answers each refusal with its RFC 1928 reply code', async () => {
    const auth: [string, string] = [proxy.username, proxy.password];
    const ask = (o: Parameters<typeof socks>[1]) => socks(proxy.port, { auth, ...o }).then((r) => r.rep);
    // Unknown names: a short name no node has, a name under the tailnet domain, an unassigned 100.x.
    expect(await ask({ atyp: 3, addr: name('nosuch'), dstPort: 8000 })).toBe(SOCKS5_REPLY.hostUnreachable);
    expect(await ask({ atyp: 3, addr: name('nosuch.tailnet.internal') })).toBe(SOCKS5_REPLY.hostUnreachable);
    expect(await ask({ atyp: 1, addr: Buffer.from([100, 64, 99, 99]) })).toBe(SOCKS5_REPLY.hostUnreachable);
    // Outside the tailnet: refused without connecting anywhere.
    expect(await ask({ atyp: 3, addr: name('example.com') })).toBe(SOCKS5_REPLY.notAllowed);
    expect(await ask({ atyp: 1, addr: Buffer.from([127, 0, 0, 1]) })).toBe(SOCKS5_REPLY.notAllowed);
    // BIND and UDP ASSOCIATE are not offered; an unknown address type is not supported.
    expect(await ask({ cmd: 2, atyp: 3, addr: name('socks-b') })).toBe(SOCKS5_REPLY.commandNotSupported);
    expect(await ask({ cmd: 3, atyp: 3, addr: name('socks-b') })).toBe(SOCKS5_REPLY.commandNotSupported);
    expect(await ask({ atyp: 9 })).toBe(SOCKS5_REPLY.addressTypeNotSupported);
    // A tailnet port nobody listens on: the peer's RST is "connection refused".
    expect(await ask({ atyp: 3, addr: name('socks-b'), dstPort: 9 })).toBe(SOCKS5_REPLY.connectionRefused);
    // And a success reply binds a tailnet address of ours (ATYP 1).
    expect(await socks(proxy.port, { auth, atyp: 3, addr: name('socks-b'), dstPort: 8000 })).toMatchObject({
      rep: SOCKS5_REPLY.succeeded,
      atyp: 1,
    });
  });

  it('with direct: true, sends other destinations through the OS as tailscaled does', async () => {
    const web = http.createServer((_req, res) => res.end('reached directly'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const direct = await a.socks5({ direct: true });
    const url = `http://127.0.0.1:${(web.address() as net.AddressInfo).port}/`;
    const r = await curl(['--socks5', `${direct.username}:${direct.password}@127.0.0.1:${direct.port}`, url]);
    expect(r.stdout).toBe('reached directly');
    expect(direct.stats.direct).toBe(1);
    expect(direct.password).not.toBe(proxy.password);
    await new Promise((res) => web.close(res));
  });

  // The built CLI, as a user runs it: `up --socks5 PORT` prints the URL with its credentials.
  it.skipIf(!existsSync(CLI) && process.env.CI !== 'true')(
    'quackscale up --socks5 PORT prints a socks5h:// URL that curl can use',
    async () => {
      const key = await local.authKey();
      const freePort = () =>
        new Promise<number>((r) => {
          const s = net.createServer().listen(0, '127.0.0.1', () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => r(p));
          });
        });
      const port = await freePort();
      const udp = await freePort();
      const child: ChildProcess = spawn(process.execPath, [
        CLI,
        'up',
        '--control-url',
        local.controlURL,
        '--authkey',
        key,
        '--state-dir',
        tmp('qs-socks-cli-'),
        '--hostname',
        'socks-cli',
        '--port',
        String(udp),
        '--endpoint',
        `127.0.0.1:${udp}`,
        '--socks5',
        String(port),
      ]);
      const exited = new Promise((r) => child.once('exit', r));
      try {
        let out = '';
        const url = await new Promise<string>((res, rej) => {
          child.stdout!.on('data', (d) => {
            out += d;
            const m = /^socks5 proxy: (socks5h:\/\/\S+)$/m.exec(out);
            if (m) res(m[1]!);
          });
          child.on('exit', (code) => rej(new Error(`exited ${code}: ${out}`)));
        });
        expect(url).toMatch(new RegExp(`^socks5h://quackscale:[\\w-]+@127\\.0\\.0\\.1:${port}$`));
        expect(out).not.toContain(key);
        const r = await curl([
          '-x',
          url,
          '-o',
          '/dev/null',
          '-w',
          '%{size_download}',
          'http://socks-b:8000/blob?mb=2',
        ]);
        expect(r.stdout).toBe(String(2 * MB));
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    },
    60_000,
  );

  it('closes with the node: nothing listens afterwards', async () => {
    const c = await node('socks-c');
    const p = await c.socks5();
    await c.close();
    const err = await new Promise<NodeJS.ErrnoException>((res) =>
      net
        .connect(p.port, '127.0.0.1')
        .on('error', res)
        .on('connect', () => res(new Error('connected'))),
    );
    expect(err.code).toBe('ECONNREFUSED');
  });
});
