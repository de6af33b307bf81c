/**
 * Through real NATs (the NAT lab of test/interop/rig/natlab.ts: two sites behind nftables
 * masquerade routers, Headscale's DERP and STUN on the "internet" between them): how long a
 * pair takes from first contact to a direct path, and how fast 50 MB cross that path, for two
 * real tailscaled (the reference), ours with tailscaled, and ours with ours, in the same lab.
 *
 * Time to direct: from the moment both nodes have each other in their netmaps, pings every
 * 250 ms (`tailscale ping` / our local API's ping) until the sender's path is direct; one
 * sample per pair, each pair on fresh nodes. Throughput: curl on one host downloads 50 MB from
 * the other's blob server through its node's SOCKS5 proxy, and uploads 50 MB back; the
 * median of 3 of each.
 */
import { Cleanup } from '../test/interop/rig/exec.js';
import type { LabNode } from '../test/interop/rig/natlab-nodes.js';
import { natlabMissing, TailnetLab } from '../test/interop/rig/natlab-tailnet.js';
import { Report } from './report.js';

const MB = 50;
const ROUNDS = 3;

interface PairResult {
  directMs: number;
  downMiBps: number;
  upMiBps: number;
}

export async function run(): Promise<Report> {
  const r = new Report('natlab');
  const missing = natlabMissing();
  if (missing.length > 0) {
    console.log(`  skipped: missing ${missing.join(', ')}`);
    return r;
  }
  const cleanup = new Cleanup();
  try {
    const t = await TailnetLab.create(cleanup, MB);
    const a = await t.lab.addSite('a');
    const b = await t.lab.addSite('b');
    const ref = await measure(t, await t.tailscaled(a, 'ts-a'), await t.tailscaled(b, 'ts-b'));
    const mixed = await measure(t, await t.ours(a, 'q-a'), await t.tailscaled(b, 'ts-b2'));
    const ours = await measure(t, await t.ours(a, 'q-a2'), await t.ours(b, 'q-b'));
    const REF_DIRECT = 'reference: tailscaled ↔ tailscaled, time to direct';
    const REF_DOWN = 'reference: tailscaled ↔ tailscaled, 50 MB download';
    const REF_UP = 'reference: tailscaled ↔ tailscaled, 50 MB upload';
    r.add({ name: REF_DIRECT, value: ref.directMs, unit: 'ms' });
    r.add({
      name: 'ours ↔ tailscaled, time to direct',
      value: mixed.directMs,
      unit: 'ms',
      ratioTo: REF_DIRECT,
    });
    r.add({ name: 'ours ↔ ours, time to direct', value: ours.directMs, unit: 'ms', ratioTo: REF_DIRECT });
    r.add({ name: REF_DOWN, value: ref.downMiBps, unit: 'MiB/s' });
    r.add({
      name: 'ours ← tailscaled, 50 MB download',
      value: mixed.downMiBps,
      unit: 'MiB/s',
      ratioTo: REF_DOWN,
    });
    r.add({ name: 'ours ← ours, 50 MB download', value: ours.downMiBps, unit: 'MiB/s', ratioTo: REF_DOWN });
    r.add({ name: REF_UP, value: ref.upMiBps, unit: 'MiB/s' });
    r.add({ name: 'ours → tailscaled, 50 MB upload', value: mixed.upMiBps, unit: 'MiB/s', ratioTo: REF_UP });
    r.add({ name: 'ours → ours, 50 MB upload', value: ours.upMiBps, unit: 'MiB/s', ratioTo: REF_UP });
  } finally {
    await cleanup.run();
  }
  return r;
}

/** `a` (at site a) and `b` (at site b), fresh: time to a direct path from a to b, then transfers. */
async function measure(t: TailnetLab, a: LabNode, b: LabNode): Promise<PairResult> {
  await a.meet(b);
  const t0 = performance.now();
  await a.waitDirect(b, 60_000);
  const directMs = performance.now() - t0;
  await b.waitDirect(a, 60_000);
  const down: number[] = [];
  const up: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    down.push(rate(t, await a.download(b, MB)));
    up.push(rate(t, await a.upload(b, MB)));
  }
  // Both stopped, so the next pair has the machine to itself.
  await a.stop();
  await b.stop();
  return { directMs, downMiBps: median(down), upMiBps: median(up) };
}

function rate(t: TailnetLab, x: { bytes: number; sha256: string; ms: number }): number {
  if (x.bytes !== MB * 1024 * 1024 || x.sha256 !== t.blob.sha256(MB))
    throw new Error(`transfer arrived damaged: ${x.bytes} bytes, sha256 ${x.sha256}`);
  return (x.bytes / (1024 * 1024) / x.ms) * 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
}
