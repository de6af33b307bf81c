/**
 * Control-plane benchmarks (issue: "Time from start to the first netmap against Headscale,
 * our client and tailscaled in the same run; decode time and memory of a 1,000-peer netmap
 * and of a stream of deltas (synthetic, from our server)").
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ControlClient } from '../src/control/client.js';
import { decodeMapResponse } from '../src/control/decode.js';
import { PrivateKey } from '../src/control/keys.js';
import { encodeMapMessage, MapMessageReader, messageText } from '../src/control/mapstream.js';
import { applyMapResponse, type NetMap } from '../src/control/netmap.js';
import { allocateAddresses } from '../src/control/server/ipam.js';
import { deltaMap, fullMap, type MapperConfig } from '../src/control/server/mapper.js';
import { FILTER_ALLOW_ALL } from '../src/control/server/policy.js';
import type { NodeRecord } from '../src/control/server/store.js';
import { Derper, Headscale, PEERS_BIN, Tailscaled } from '../test/interop/control-peers.js';
import { Cleanup } from '../test/interop/rig/exec.js';
import { Report } from './report.js';

const PEERS = 1000;
const DELTAS = 2000;
const ROUNDS = 5;

export async function run(): Promise<Report> {
  const r = new Report('control');
  await firstNetmap(r);
  synthetic(r);
  return r;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Time to the first netmap against one Headscale: our client, then tailscaled (`tailscale up`). */
async function firstNetmap(r: Report): Promise<void> {
  const needed = ['headscale', 'tailscaled', 'tailscale', 'derper'].filter(
    (b) => !existsSync(join(PEERS_BIN, b)),
  );
  if (needed.length > 0) {
    console.log(
      `  (skipping time-to-netmap: missing ${needed.join(', ')} in ${PEERS_BIN}; run scripts/build-peers.sh)`,
    );
    return;
  }
  const cleanup = new Cleanup();
  try {
    const derper = await Derper.start(cleanup);
    const hs = await Headscale.start(cleanup, { derpPort: derper.port });
    const key = await hs.createKey(await hs.createUser('bench'), { reusable: true, ephemeral: true });
    const ours: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const dir = await mkdtemp(join(tmpdir(), 'qs-bench-'));
      const t0 = performance.now();
      const c = await ControlClient.open({
        serverURL: hs.url,
        stateDir: dir,
        hostname: `bench-${i}`,
        authKey: key,
      });
      await c.login();
      c.start();
      await c.waitForNetmap(undefined, 30_000);
      ours.push(performance.now() - t0);
      await c.logout();
      await c.close();
      await rm(dir, { recursive: true, force: true });
    }
    const theirs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const ts = await Tailscaled.start(cleanup, `bench${i}`);
      const t0 = performance.now();
      await ts.up(hs.url, key, `ts-bench-${i}`);
      theirs.push(performance.now() - t0);
      await ts.cli(['logout']);
      await ts.stop();
    }
    r.add({
      name: 'first netmap: tailscaled (tailscale up → Running)',
      value: median(theirs),
      unit: 'ms',
      note: `median of ${ROUNDS}`,
    });
    r.add({
      name: 'first netmap: our client (open → login → netmap)',
      value: median(ours),
      unit: 'ms',
      ratioTo: 'first netmap: tailscaled (tailscale up → Running)',
      note: `median of ${ROUNDS}`,
    });
  } finally {
    await cleanup.run();
  }
}

function syntheticNodes(n: number): NodeRecord[] {
  const used = new Set<string>();
  let next = 1;
  const out: NodeRecord[] = [];
  for (let i = 1; i <= n; i++) {
    const a = allocateAddresses(next, used);
    next = a.next;
    used.add(a.ipv4);
    out.push({
      id: i,
      stableId: `n${i.toString(16).padStart(16, '0')}`,
      machineKey: PrivateKey.generate('machine').publicKey.toString(),
      nodeKey: PrivateKey.generate('node').publicKey.toString(),
      discoKey: PrivateKey.generate('disco').publicKey.toString(),
      hostname: `host-${i}`,
      givenName: `host-${i}`,
      userId: 1,
      tags: [],
      ipv4: a.ipv4,
      ipv6: a.ipv6,
      endpoints: [`192.0.2.${i % 250}:41641`, `[2001:db8::${i.toString(16)}]:41641`],
      hostinfo: { Hostname: `host-${i}`, OS: 'linux', IPNVersion: '1.102.3', Userspace: true },
      created: new Date(0).toISOString(),
      lastSeen: null,
      keyExpiry: null,
      ephemeral: false,
      authKeyId: null,
      capVersion: 130,
      homeDERP: 1 + (i % 3),
    });
  }
  return out;
}

/** Heap retained by `make()`'s result, measured with explicit GCs. */
function retained<T>(make: () => T): { value: T; bytes: number } {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const value = make();
  gc();
  gc();
  return { value, bytes: process.memoryUsage().heapUsed - before };
}

function synthetic(r: Report): void {
  const nodes = syntheticNodes(PEERS + 1);
  const online = new Set(nodes.map((n) => n.id));
  const cfg: MapperConfig = {
    baseDomain: 'bench.test',
    derpMap: { Regions: {} },
    isOnline: (id) => online.has(id),
    isExpired: () => false,
  };
  const self = nodes[0]!;
  const peers = nodes.slice(1);
  const { resp, view } = fullMap(self, peers, FILTER_ALLOW_ALL, cfg);
  const wire = encodeMapMessage(JSON.stringify(resp), false);
  const decodeOne = (): NetMap => {
    const [body] = new MapMessageReader().push(wire);
    return applyMapResponse(undefined, decodeMapResponse(messageText(body!))).netmap;
  };
  for (let i = 0; i < 5; i++) decodeOne();
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    decodeOne();
    times.push(performance.now() - t0);
  }
  r.add({ name: `full netmap, ${PEERS} peers: wire size`, value: wire.length / 1024, unit: 'KiB' });
  r.add({
    name: `full netmap, ${PEERS} peers: decode + build`,
    value: median(times),
    unit: 'ms',
    note: 'median of 20',
  });
  const { value: nm, bytes } = retained(decodeOne);
  r.add({
    name: `full netmap, ${PEERS} peers: retained heap`,
    value: bytes / 1024,
    unit: 'KiB',
    note: `${Math.round(bytes / PEERS)} B/peer`,
  });

  // A stream of deltas as our server would send them: endpoints move, nodes go on/offline, hostinfo changes.
  const deltas: Buffer[] = [];
  for (let i = 0; i < DELTAS; i++) {
    const p = peers[(i * 7919) % peers.length]!;
    if (i % 3 === 0) p.endpoints = [`198.51.100.${i % 250}:${40000 + (i % 1000)}`];
    else if (i % 3 === 1) online.has(p.id) ? online.delete(p.id) : online.add(p.id);
    else p.hostinfo = { ...p.hostinfo, OSVersion: `v${i}` };
    const d = deltaMap(view, self, peers, FILTER_ALLOW_ALL, cfg);
    if (d) deltas.push(encodeMapMessage(JSON.stringify(d), false));
  }
  const apply = (start: NetMap): NetMap => {
    let cur = start;
    const reader = new MapMessageReader();
    for (const msg of deltas) {
      for (const body of reader.push(msg))
        cur = applyMapResponse(cur, decodeMapResponse(messageText(body))).netmap;
    }
    return cur;
  };
  apply(nm);
  const t0 = performance.now();
  const end = apply(nm);
  const perDelta = ((performance.now() - t0) * 1000) / deltas.length;
  if (end.seq !== nm.seq + deltas.length) throw new Error('delta stream did not apply every message');
  r.add({
    name: `delta stream on ${PEERS} peers: decode + apply`,
    value: perDelta,
    unit: 'µs/delta',
    note: `${deltas.length} deltas`,
  });
  r.add({
    name: `delta stream on ${PEERS} peers: throughput`,
    value: 1e6 / perDelta,
    unit: 'deltas/s',
  });
  const { bytes: afterBytes } = retained(() => apply(nm));
  r.add({
    name: `netmap after ${deltas.length} deltas: retained heap`,
    value: afterBytes / 1024,
    unit: 'KiB',
  });
}
