// Our TCP against the Linux kernel's, through wireguard-go in a namespace: 50 MB from Python's
// http.server, 50 MB uploaded by curl, 50 MB downloaded by curl from us, all sha256-checked; the
// same (10 MB) through a userspace UDP impairment relay on the WireGuard underlay (2% loss, 20 ms
// delay, 25% reordering: this kernel has no sch_netem; the peer's TCP is still Linux's);
// 200 concurrent connections; ECONNREFUSED from a closed port. The transfers again with crypto
// worker threads (DeviceOptions.cryptoWorkers) sealing and opening.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { TcpServer } from '../../src/netstack/tcp/server.js';
import { tcpConnect } from '../../src/netstack/tcp/socket.js';
import { Cleanup, execIn } from './rig/exec.js';
import { sweepLeftovers } from './rig/netns.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';
import { randomFile, serveDirectory, startTcpNode, type TcpNode } from './rig/tcp-node.js';

const missing = checkRequirements([
  'root',
  'netns',
  'tun',
  'wireguard-go',
  'wg',
  'ip',
  'python3',
  'curl',
  'ss',
]);

type TestFile = ReturnType<typeof randomFile>;
let big: TestFile;
let medium: TestFile;
let node: TcpNode | undefined;
let cleanup = new Cleanup();

/** GET http://host:port/path over our TCP; resolves with status, byte count and sha256 of the body. */
// No `agent` option: Node uses `createConnection` only when there is no agent.
function download(n: TcpNode, host: string, port: number, path: string) {
  return new Promise<{ length: number; sha256: string; status: number }>((resolve, reject) => {
    const req = http.get(
      {
        host,
        port,
        path,
        createConnection: () => tcpConnect(n.tcp, { host, port }) as unknown as Socket,
      },
      (res) => {
        const h = createHash('sha256');
        let length = 0;
        res.on('data', (d: Buffer) => {
          h.update(d);
          length += d.length;
        });
        res.on('end', () => resolve({ length, sha256: h.digest('hex'), status: res.statusCode ?? 0 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

/** An HTTP server on our listener: GET streams `f` (our TCP sends), POST answers with length and sha256 (we receive). */
function fileServer(n: TcpNode, port: number, f: TestFile): TcpServer {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      createReadStream(f.path).pipe(res);
      return;
    }
    const h = createHash('sha256');
    let length = 0;
    req.on('data', (d: Buffer) => {
      h.update(d);
      length += d.length;
    });
    req.on('end', () => res.end(`${length} ${h.digest('hex')}`));
  });
  return new TcpServer(n.tcp, {}, (s) => server.emit('connection', s as unknown as Duplex)).listen(port);
}

/** Linux sends to us (GET from http.server, POST by curl), then we send to Linux (curl GETs from us). */
async function transfers(n: TcpNode, f: TestFile): Promise<void> {
  await serveDirectory(n.peer.ns, n.peer.inner4, 8000, f.dir, cleanup);
  const rate = (ms: number) => (f.size / 1e6 / (ms / 1000)).toFixed(1);
  const t0 = performance.now();
  const got = await download(n, n.peer.inner4, 8000, '/blob.bin');
  const downMs = performance.now() - t0;
  expect(got.status).toBe(200);
  expect(got.length).toBe(f.size);
  expect(got.sha256).toBe(f.sha256);
  fileServer(n, 9000, f);
  const url = `http://${n.peer.hostInner4}:9000/blob`;
  const t1 = performance.now();
  const up = await execIn(n.peer.ns, 'curl', ['-sS', '--fail', '--data-binary', `@${f.path}`, url], {
    timeoutMs: 200_000,
  });
  const upMs = performance.now() - t1;
  expect(up.stdout).toBe(`${f.size} ${f.sha256}`);
  const t2 = performance.now();
  const fetched = await execIn(n.peer.ns, 'sh', ['-c', `curl -sS --fail ${url} | sha256sum`], {
    timeoutMs: 200_000,
  });
  const fetchMs = performance.now() - t2;
  expect(fetched.stdout.split(' ')[0]).toBe(f.sha256);
  console.log(
    `[tcp-linux] ${f.size >> 20} MB: Linux→us ${rate(downMs)} MB/s (GET), ${rate(upMs)} MB/s (POST); us→Linux ${rate(fetchMs)} MB/s`,
    n.tcp.stats,
  );
}

skipUnless(missing)('TCP interop with the Linux kernel through wireguard-go', () => {
  beforeAll(async () => {
    await sweepLeftovers();
    big = randomFile(50 << 20);
    medium = randomFile(10 << 20);
  });
  afterAll(() => {
    big?.remove();
    medium?.remove();
  });
  afterEach(async () => {
    await cleanup.run();
    cleanup = new Cleanup();
    if (node) expect((await node.close()).map((e) => e.message)).toEqual([]);
    node = undefined;
  });

  it('50 MB each way with Linux, and Linux downloading 50 MB from us; sha256 equal', async () => {
    node = await startTcpNode();
    await transfers(node, big);
  });

  it('10 MB each way through 2% loss, 20 ms delay and 25% reordering (userspace relay)', async () => {
    node = await startTcpNode({ impair: { loss: 0.02, delayMs: 20, reorder: 0.25, seed: 7 } });
    await transfers(node, medium);
    expect(node.relay!.stats.dropped).toBeGreaterThan(100);
    expect(node.relay!.stats.reordered).toBeGreaterThan(100);
    // We were the sender in the last transfer: our loss recovery ran.
    expect(node.tcp.stats.recoveries + node.tcp.stats.timeouts).toBeGreaterThan(0);
  }, 240_000);

  it('with 2 crypto worker threads: 50 MB each way and 50 MB downloaded from us, intact', async () => {
    node = await startTcpNode({ cryptoWorkers: 2 });
    expect(node.device.cryptoPool?.workerCount).toBe(2);
    await transfers(node, big);
    expect(node.device.cryptoPool?.failure).toBeUndefined();
  });

  it('with 2 crypto worker threads: 10 MB each way through 2% loss and 25% reordering', async () => {
    node = await startTcpNode({
      cryptoWorkers: 2,
      impair: { loss: 0.02, delayMs: 20, reorder: 0.25, seed: 11 },
    });
    await transfers(node, medium);
    expect(node.relay!.stats.dropped).toBeGreaterThan(100);
    expect(node.device.stats.decryptFailed).toBe(0);
  }, 240_000);

  it('200 concurrent connections, each an HTTP GET, all intact', async () => {
    node = await startTcpNode();
    const small = randomFile(64 * 1024, 'small.bin');
    cleanup.add('remove small file', () => small.remove());
    await serveDirectory(node.peer.ns, node.peer.inner4, 8000, small.dir, cleanup);
    const n = node;
    const results = await Promise.all(
      Array.from({ length: 200 }, () => download(n, n.peer.inner4, 8000, '/small.bin')),
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.sha256).toBe(small.sha256);
    }
    expect(n.tcp.stats.activeOpens).toBe(200);
  });

  it('IPv6 inside the tunnel: Linux downloads 10 MB from us and a closed port refuses', async () => {
    node = await startTcpNode();
    fileServer(node, 9000, medium);
    const url = `http://[${node.peer.hostInner6}]:9000/blob`;
    const fetched = await execIn(node.peer.ns, 'sh', ['-c', `curl -sS -g --fail '${url}' | sha256sum`], {
      timeoutMs: 60_000,
    });
    expect(fetched.stdout.split(' ')[0]).toBe(medium.sha256);
    const s = tcpConnect(node.tcp, { host: node.peer.inner6, port: 1 });
    const err = await new Promise<NodeJS.ErrnoException & { address?: string }>((r) => s.once('error', r));
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.address).toBe(node.peer.inner6);
  });

  it('a closed port gives ECONNREFUSED with address and port', async () => {
    node = await startTcpNode();
    const s = tcpConnect(node.tcp, { host: node.peer.inner4, port: 1 });
    const err = await new Promise<NodeJS.ErrnoException & { address?: string; port?: number }>((r) =>
      s.once('error', r),
    );
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.address).toBe(node.peer.inner4);
    expect(err.port).toBe(1);
  });
});
