// The runtime matrix against real peers: in each of Node 22, Node 24, Bun and Deno (scripts/fetch-runtimes.sh)
// our node (the built library, dist/) joins Headscale next to two real tailscaled, and moves 20 MB each way
// through each: one on the direct UDP path, one that only speaks over the real derper
// (TS_DEBUG_ALWAYS_USE_DERP=1). Bytes are checked by length and sha256 at both ends; every endpoint is
// 127.0.0.1.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Derper, freePort, Headscale, missingPeers, Tailscaled } from './control-peers.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';
import { installedRuntimes, RUNTIME_NAMES, runtimeArgv } from './runtimes/runtimes.js';

const MB = 1024 * 1024;
const SIZE_MB = 20;
const ROOT = join(import.meta.dirname, '../..');
const CHILD = join(import.meta.dirname, 'runtimes/child.mjs');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const runtimes = installedRuntimes();
const missing = [
  ...missingPeers(['headscale', 'tailscaled', 'tailscale', 'derper']),
  ...RUNTIME_NAMES.filter((n) => !runtimes.has(n)).map((n) => `${n} (scripts/fetch-runtimes.sh)`),
  ...(existsSync(join(ROOT, 'dist/index.js')) ? [] : ['dist/ (npm run build)']),
];

interface ChildTarget {
  name: string;
  status: number;
  downBytes: number;
  downSha: string;
  upBytes: number;
  upSha: string;
  answer: string;
  path: string;
  ms: number;
}
interface ChildResult {
  runtime: string;
  targets: ChildTarget[];
  error?: string;
}

skipUnless(missing)('our node in Node 22/24, Bun and Deno ↔ tailscaled on Headscale', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let key = '';
  let httpPort = 0;
  let direct: Tailscaled;
  let relayed: Tailscaled;
  const blob = new Uint8Array(SIZE_MB * MB).map((_, i) => (i * 2654435761) >>> 24);
  const received = new Map<string, { bytes: number; sha: string }>();

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  beforeAll(async () => {
    // dist/ is what the other runtimes load: it must not be older than the sources it was built from.
    const built = statSync(join(ROOT, 'dist/index.js')).mtimeMs;
    const newest = statSync(join(ROOT, 'src/tailnet/tailnet.ts')).mtimeMs;
    if (newest > built) throw new Error('dist/ is older than src/: run `npm run build` first');
    const derper = await Derper.start(cleanup);
    hs = await Headscale.start(cleanup, { derpPort: derper.port });
    key = await hs.createKey(await hs.createUser('matrix'), { reusable: true, ephemeral: true });
    // What the tailscaleds forward tailnet TCP to (userspace networking dials their host's 127.0.0.1).
    const web = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/blob') {
        const n = Number(url.searchParams.get('mb')) * MB;
        return res.writeHead(200, { 'content-length': n }).end(blob.subarray(0, n));
      }
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => {
        const digest = h.digest('hex');
        received.set(url.pathname, { bytes: n, sha: digest });
        res.end(`${n} ${digest}`);
      });
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    cleanup.add('web', () => new Promise((r) => web.close(r)));
    cleanup.add('web conns', () => web.closeAllConnections());
    httpPort = (web.address() as AddressInfo).port;
    direct = await Tailscaled.start(cleanup, 'direct');
    relayed = await Tailscaled.start(cleanup, 'relayed', { env: { TS_DEBUG_ALWAYS_USE_DERP: '1' } });
    await direct.up(hs.url, key, 'ts-direct');
    await relayed.up(hs.url, key, 'ts-relayed');
  });

  const ipOf = async (ts: Tailscaled) =>
    (await ts.status()).Self.TailscaleIPs.find((a) => a.startsWith('100.'))!;

  /** Runs child.mjs in `name` and returns what it printed. */
  async function runChild(name: (typeof RUNTIME_NAMES)[number]): Promise<ChildResult> {
    const [cmd, args] = runtimeArgv(name, runtimes.get(name)!, CHILD);
    const targets = [
      { name: 'ts-direct', ip: await ipOf(direct), httpPort, label: `${name}-direct`, expectDirect: true },
      {
        name: 'ts-relayed',
        ip: await ipOf(relayed),
        httpPort,
        label: `${name}-relayed`,
        expectDirect: false,
      },
    ];
    const child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        QS_CONTROL_URL: hs.url,
        QS_AUTH_KEY: key,
        QS_HOSTNAME: `quack-${name}`,
        QS_PORT: String(await freePort()),
        QS_MB: String(SIZE_MB),
        QS_TARGETS: JSON.stringify(targets),
      },
    });
    cleanup.add(`${name} child`, () => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${name} exited ${code} without a result:\n${out}`);
    const result = JSON.parse(line.slice('RESULT '.length)) as ChildResult;
    if (result.error) throw new Error(`${name}: ${result.error}\n${out}`);
    expect(code).toBe(0);
    return result;
  }

  for (const name of RUNTIME_NAMES) {
    it(`${name}: 20 MB each way with tailscaled, on the direct path and over DERP`, async () => {
      const result = await runChild(name);
      // 'node22' ran Node 22.x: the child reports the runtime it found itself in.
      expect(
        result.runtime.startsWith(name.replace(/^(node)(\d+)$/, '$1 $2.').replace(/^(bun|deno)$/, '$1 ')),
      ).toBe(true);
      const byName = new Map(result.targets.map((t) => [t.name, t]));
      for (const [peer, label] of [
        ['ts-direct', `${name}-direct`],
        ['ts-relayed', `${name}-relayed`],
      ] as const) {
        const t = byName.get(peer)!;
        expect([t.status, t.downBytes, t.downSha]).toEqual([200, blob.length, sha(blob)]);
        const got = received.get(`/up/${label}`)!;
        expect([got.bytes, got.sha]).toEqual([t.upBytes, t.upSha]);
        expect(t.answer).toBe(`${SIZE_MB * MB} ${t.upSha}`);
        console.log(`[${result.runtime}] ${peer}: ${2 * SIZE_MB} MB in ${t.ms} ms over ${t.path}`);
      }
      expect(byName.get('ts-direct')!.path).toMatch(/^direct 127\.0\.0\.1:\d+$/);
      expect(byName.get('ts-relayed')!.path).toBe('derp local');
    });
  }
});
