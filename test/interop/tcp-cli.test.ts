// `quackscale wg forward` and `wg expose` as a user runs them, against wireguard-go and Linux:
// curl in the root namespace downloads 50 MB through `forward` from Python's http.server in the
// namespace; curl in the namespace uploads 50 MB through `expose` to a local service; 100
// concurrent curls through `forward`; every connection logged; exit 0 on SIGTERM.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { generatePrivateKey, keyToBase64, publicKeyFromPrivate } from '../../src/wireguard/keys.js';
import { Cleanup, exec, execIn, waitFor } from './rig/exec.js';
import { sweepLeftovers } from './rig/netns.js';
import { startWireguardGoPeer, type WireguardGoPeer } from './rig/pair.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';
import { randomFile, serveDirectory } from './rig/tcp-node.js';

const CLI = resolve(__dirname, '../../dist/cli/main.js');
const missing = [
  ...checkRequirements([
    'root',
    'netns',
    'tun',
    'wireguard-go',
    'wg',
    'ip',
    'python3',
    'curl',
    'ss',
    'xargs',
  ]),
  ...(existsSync(CLI) ? [] : ['dist/cli/main.js (run npm run build)']),
];
const PORT = 51912;
const LOCAL = 18080;

/** Starts the CLI; resolves once `ready` appears on stderr. */
async function startCli(args: string[], ready: string) {
  const p = spawn(process.execPath, [CLI, ...args]);
  onTestFinished(() => {
    if (p.exitCode === null) p.kill('SIGKILL');
  });
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  p.stdout.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => p.on('close', res));
  await waitFor(
    `CLI: ${ready}`,
    () => {
      if (p.exitCode !== null) throw new Error(`CLI exited ${p.exitCode}: ${stderr}`);
      return stderr.includes(ready) ? true : undefined;
    },
    15_000,
  );
  return {
    log: () => stderr,
    stop: async () => {
      p.kill('SIGTERM');
      return exited;
    },
  };
}

skipUnless(missing)('quackscale wg forward / expose with wireguard-go and Linux', () => {
  let peer: WireguardGoPeer;
  let config: string;
  const cleanup = new Cleanup();
  const big = randomFile(50 << 20);
  const small = randomFile(100 * 1024, 'small.bin');
  const priv = generatePrivateKey();

  beforeAll(async () => {
    await sweepLeftovers();
    peer = await startWireguardGoPeer({
      logLevel: 'error',
      peer: { publicKey: keyToBase64(publicKeyFromPrivate(priv)), port: PORT },
    });
    const dir = mkdtempSync(join(tmpdir(), 'qs-tcp-cli-'));
    config = join(dir, 'wg0.conf');
    writeFileSync(
      config,
      `[Interface]\nPrivateKey = ${keyToBase64(priv)}\nListenPort = ${PORT}\nAddress = ${peer.hostInner4}/24\n\n` +
        `[Peer]\nPublicKey = ${peer.keys.publicKey}\nEndpoint = ${peer.underlay}:${peer.listenPort}\n` +
        `AllowedIPs = 10.200.1.0/24\nPersistentKeepalive = 25\n`,
      { mode: 0o600 },
    );
  });
  afterAll(async () => {
    await cleanup.run();
    big.remove();
    small.remove();
    expect((await peer.close()).map((e) => e.message)).toEqual([]);
  });

  it('wg forward: curl downloads 50 MB from the namespace, sha256 equal; 100 at once; logs; SIGTERM', async () => {
    await serveDirectory(peer.ns, peer.inner4, 8000, big.dir, cleanup);
    await serveDirectory(peer.ns, peer.inner4, 8001, small.dir, cleanup);
    const cli = await startCli(
      [
        'wg',
        'forward',
        '--config',
        config,
        '--local',
        `127.0.0.1:${LOCAL}`,
        '--remote',
        `${peer.inner4}:8000`,
        '--local',
        `127.0.0.1:${LOCAL + 1}`,
        '--remote',
        `${peer.inner4}:8001`,
      ],
      `forwarding 127.0.0.1:${LOCAL + 1}`,
    );
    const t0 = performance.now();
    const r = await exec(
      'sh',
      ['-c', `curl -sS --fail --noproxy '*' http://127.0.0.1:${LOCAL}/blob.bin | sha256sum`],
      {
        timeoutMs: 120_000,
      },
    );
    const ms = performance.now() - t0;
    expect(r.stdout.split(' ')[0]).toBe(big.sha256);
    console.log(
      `[tcp-cli] forward: 50 MB in ${(ms / 1000).toFixed(2)} s (${((50 * 1.048576) / (ms / 1000)).toFixed(1)} MB/s)`,
    );
    const many = await exec(
      'sh',
      [
        '-c',
        `seq 100 | xargs -P 100 -I{} curl -s --noproxy '*' -o /dev/null -w '%{http_code} %{size_download}\\n' http://127.0.0.1:${LOCAL + 1}/small.bin`,
      ],
      { timeoutMs: 120_000 },
    );
    const lines = many.stdout.trim().split('\n');
    expect(lines).toHaveLength(100);
    for (const l of lines) expect(l).toBe(`200 ${100 * 1024}`);
    expect(await cli.stop()).toBe(0);
    const log = cli.log();
    expect(log).toMatch(/#1 open 127\.0\.0\.1:\d+ -> 10\.200\.1\.2:8000/);
    const closes = log.match(/#\d+ close /g) ?? [];
    expect(closes.length).toBe(101);
    const back = /#1 close [^\n]*: (\d+) bytes out, (\d+) bytes back/.exec(log);
    expect(Number(back?.[2])).toBeGreaterThan(50 << 20); // the file plus the HTTP header
    expect(log).toMatch(/shutting down/);
  }, 240_000);

  it('wg expose: curl in the namespace uploads 50 MB to a local service, sha256 equal; logs; SIGTERM', async () => {
    const sink = http.createServer((req, res) => {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        n += d.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    onTestFinished(() => {
      sink.close();
    });
    const sinkPort = (sink.address() as { port: number }).port;
    const cli = await startCli(
      ['wg', 'expose', '--config', config, '--port', '9000', '--to', `127.0.0.1:${sinkPort}`],
      'exposing tunnel port 9000',
    );
    const t0 = performance.now();
    const up = await execIn(
      peer.ns,
      'curl',
      ['-sS', '--fail', '--data-binary', `@${big.path}`, `http://${peer.hostInner4}:9000/upload`],
      { timeoutMs: 120_000 },
    );
    const ms = performance.now() - t0;
    expect(up.stdout).toBe(`${50 << 20} ${big.sha256}`);
    console.log(`[tcp-cli] expose: 50 MB in ${(ms / 1000).toFixed(2)} s`);
    expect(await cli.stop()).toBe(0);
    const log = cli.log();
    expect(log).toMatch(/#1 open 10\.200\.1\.2:\d+ -> 127\.0\.0\.1:\d+/);
    const out = /#1 close [^\n]*: (\d+) bytes out, (\d+) bytes back/.exec(log);
    expect(Number(out?.[1])).toBeGreaterThan(50 << 20);
  }, 240_000);
});
