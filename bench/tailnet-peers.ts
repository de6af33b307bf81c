/**
 * A big netmap (issue: lazy WireGuard peers): the resident memory of an idle node whose netmap
 * holds 1,000 peers, ours next to tailscaled's (userspace networking), and the time each takes
 * to its first netmap, on our embedded control server and DERP relay. The 1,000 peers are
 * registered through the server's own store (keys, addresses, DERP home; offline, no
 * endpoints, so nothing is ever sent to them). The same is measured on an empty tailnet, so
 * the growth per 1,000 peers shows beside the totals. Each node runs in its own process; RSS
 * is VmRSS from /proc, the median of 5 samples a second apart after 30 s of settling (V8
 * gives back the young generation it grew for the netmap only after some idle seconds).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrivateKey } from '../src/control/keys.js';
import { allocateAddresses } from '../src/control/server/ipam.js';
import { type NodeRecord, ServerStore } from '../src/control/server/store.js';
import { startLocalTailnet } from '../src/tailnet/local.js';
import { freePort, missingPeers, Tailscaled, tempDir } from '../test/interop/control-peers.js';
import { Cleanup, sleep, waitFor } from '../test/interop/rig/exec.js';
import { Report } from './report.js';
import type { PeersNodeReport, PeersNodeRequest, PeersNodeSetup } from './tailnet-peers-node.js';

const PEERS = 1000;
const SETTLE_MS = 30_000;
const SAMPLES = 5;
const MB = 1024 * 1024;

export async function run(): Promise<Report> {
  const r = new Report('tailnet-peers');
  const missing = missingPeers(['tailscaled', 'tailscale']);
  if (missing.length > 0) {
    console.log(`  skipped: missing ${missing.join(', ')}`);
    return r;
  }
  const empty = await measure(0);
  const big = await measure(PEERS);
  r.add({ name: 'reference: tailscaled first netmap, empty tailnet', value: empty.ts.upMs, unit: 'ms' });
  r.add({
    name: 'ours: first netmap, empty tailnet',
    value: empty.ours.upMs,
    unit: 'ms',
    ratioTo: 'reference: tailscaled first netmap, empty tailnet',
  });
  r.add({ name: 'reference: tailscaled first netmap, 1,000 peers', value: big.ts.upMs, unit: 'ms' });
  r.add({
    name: 'ours: first netmap, 1,000 peers',
    value: big.ours.upMs,
    unit: 'ms',
    ratioTo: 'reference: tailscaled first netmap, 1,000 peers',
    note: `WireGuard peers configured ${big.ours.wireguard.configured}, lazy ${big.ours.wireguard.lazy}`,
  });
  r.add({ name: 'reference: tailscaled idle RSS, empty tailnet', value: empty.ts.rss / MB, unit: 'MB' });
  r.add({
    name: 'ours: idle RSS, empty tailnet',
    value: empty.ours.rss / MB,
    unit: 'MB',
    ratioTo: 'reference: tailscaled idle RSS, empty tailnet',
  });
  r.add({ name: 'reference: tailscaled idle RSS, 1,000 peers', value: big.ts.rss / MB, unit: 'MB' });
  r.add({
    name: 'ours: idle RSS, 1,000 peers',
    value: big.ours.rss / MB,
    unit: 'MB',
    ratioTo: 'reference: tailscaled idle RSS, 1,000 peers',
    note: `V8 heap ${(big.ours.heapUsed / MB).toFixed(1)} MB`,
  });
  r.add({
    name: 'reference: tailscaled RSS growth per 1,000 peers',
    value: (big.ts.rss - empty.ts.rss) / MB,
    unit: 'MB',
  });
  r.add({
    name: 'ours: RSS growth per 1,000 peers',
    value: (big.ours.rss - empty.ours.rss) / MB,
    unit: 'MB',
    ratioTo: 'reference: tailscaled RSS growth per 1,000 peers',
  });
  return r;
}

interface Measured {
  ts: { upMs: number; rss: number };
  ours: PeersNodeReport & { rss: number };
}

/** A fresh embedded tailnet with `peers` registered fake nodes; tailscaled and our node join it. */
async function measure(peers: number): Promise<Measured> {
  const cleanup = new Cleanup();
  try {
    const dir = await tempDir(cleanup, 'qs-bench-peers-');
    await seed(join(dir, 'control'), peers);
    const local = await startLocalTailnet({ stateDir: dir });
    cleanup.add('local tailnet', () => local.close());
    const key = await local.authKey();
    const want = peers + 1; // the fakes, and the other real node

    const ts = await Tailscaled.start(cleanup, `peers${peers}`);
    const t0 = performance.now();
    await ts.up(local.controlURL, key, `bench-ts-${peers}`);
    const tsUp = performance.now() - t0;
    const ours = await startNode(cleanup, {
      controlURL: local.controlURL,
      authKey: key,
      hostname: `bench-qs-${peers}`,
    });
    await waitFor(
      `tailscaled's netmap of ${want} peers`,
      async () => Object.keys((await ts.status()).Peer ?? {}).length >= want || undefined,
      60_000,
      500,
    );
    await waitFor(
      `our netmap of ${want} peers`,
      async () => (await ours.status()).peers >= want || undefined,
      60_000,
      500,
    );
    await sleep(SETTLE_MS);
    const tsRss: number[] = [];
    const ourRss: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      tsRss.push(rssOf(ts.proc!.pid));
      ourRss.push(rssOf(ours.pid));
      await sleep(1000);
    }
    const last = await ours.status();
    if (last.peers < want) throw new Error(`our node lost peers: ${last.peers} of ${want}`);
    return {
      ts: { upMs: tsUp, rss: median(tsRss) },
      ours: { ...last, upMs: ours.upMs, rss: median(ourRss) },
    };
  } finally {
    await cleanup.run();
  }
}

/** Registers `n` fake nodes in a control server's state directory, through its store. */
async function seed(stateDir: string, n: number): Promise<void> {
  const store = new ServerStore(stateDir);
  const { data } = await store.load();
  const used = new Set(data.nodes.map((x) => x.ipv4));
  const now = new Date().toISOString();
  for (let i = 0; i < n; i++) {
    const a = allocateAddresses(data.nextAddress, used);
    data.nextAddress = a.next;
    used.add(a.ipv4);
    const id = data.nextNodeId++;
    const hostname = `fake-${i}`;
    const node: NodeRecord = {
      id,
      stableId: `nfake${id.toString(16).padStart(12, '0')}`,
      machineKey: PrivateKey.generate('machine').publicKey.toString(),
      nodeKey: PrivateKey.generate('node').publicKey.toString(),
      discoKey: PrivateKey.generate('disco').publicKey.toString(),
      hostname,
      givenName: hostname,
      userId: 1,
      tags: [],
      ipv4: a.ipv4,
      ipv6: a.ipv6,
      // No endpoints and an offline DERP home: nothing is ever sent towards a fake.
      endpoints: [],
      hostinfo: { Hostname: hostname, OS: 'linux', IPNVersion: '1.102.3' },
      created: now,
      lastSeen: null,
      keyExpiry: null,
      ephemeral: false,
      authKeyId: null,
      capVersion: 130,
      homeDERP: 900,
    };
    data.nodes.push(node);
  }
  await store.save(data);
}

interface Node {
  pid: number;
  upMs: number;
  status(): Promise<PeersNodeReport>;
}

/** Our node in a child process (bench/tailnet-peers-node.ts), once up. */
async function startNode(cleanup: Cleanup, setup: Omit<PeersNodeSetup, 'port'>): Promise<Node> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child: ChildProcess = fork(join(here, 'tailnet-peers-node.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  cleanup.add(`stop ${setup.hostname}`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.send({ cmd: 'stop' } satisfies PeersNodeRequest);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const reply = () =>
    new Promise<PeersNodeReport>((res) => child.once('message', (m) => res(m as PeersNodeReport)));
  const first = reply();
  child.send({ ...setup, port: await freePort() } satisfies PeersNodeSetup);
  const { upMs } = await first;
  return {
    pid: child.pid!,
    upMs,
    status: () => {
      const got = reply();
      child.send({ cmd: 'status' } satisfies PeersNodeRequest);
      return got;
    },
  };
}

/** Resident set size of a process, from /proc (bytes). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
