/**
 * The VPC shape of issue 21 with whole nodes: four hosts on one LAN bridge of the NAT lab (no NAT
 * between them, Headscale beyond the site's router), every link at MTU 1,500 and then 9,000. In
 * each: curl on one host downloads BULK_MB from the blob server behind the other host's node,
 * through its own node's SOCKS5 proxy — a tailscaled pair (userspace networking, the reference)
 * and our pair (`up --socks5`, `up --serve`), alternating, median of ROUNDS. Beside each: the CPU
 * seconds both daemons spent per GB, and the mean frame the serving host sent (its interface's
 * counters, Ethernet header included), which shows what path MTU discovery chose.
 */
import { Cleanup, waitFor } from '../test/interop/rig/exec.js';
import { txCounters } from '../test/interop/rig/natlab.js';
import type { LabNode, LabOurs } from '../test/interop/rig/natlab-nodes.js';
import { natlabMissing, TailnetLab } from '../test/interop/rig/natlab-tailnet.js';
import { usage } from './abuse-targets.js';
import { Report } from './report.js';

const BULK_MB = 200;
const ROUNDS = 3;
const MTUS = [1500, 9000] as const;

interface Sample {
  mibps: number;
  cpuPerGB: number;
  meanFrame: number;
}

export async function run(): Promise<Report> {
  const r = new Report('lan');
  const missing = natlabMissing();
  if (missing.length > 0) {
    console.log(`  skipped: missing ${missing.join(', ')}`);
    return r;
  }
  const cleanup = new Cleanup();
  try {
    const t = await TailnetLab.create(cleanup, BULK_MB);
    const site = await t.lab.addSite('v');
    const tsClient = await t.tailscaled(site, 'tsc');
    const tsServer = await t.tailscaled(site, 'tss');
    const qClient = await t.ours(site, 'qc');
    const qServer = await t.ours(site, 'qs');
    const hosts = [tsClient, tsServer, qClient, qServer].map((n) => n.host);
    for (const mtu of MTUS) {
      await t.lab.setLanMtu(site, hosts, mtu);
      for (const [c, s] of [
        [tsClient, tsServer],
        [qClient, qServer],
      ] as const) {
        await c.meet(s);
        await c.waitDirect(s);
        await s.waitDirect(c);
        // A first transfer warms the path; ours probe the size toward the peer while it runs.
        await transfer(t, c, s, 8);
      }
      if (mtu > 1500)
        await waitFor('our server to raise the size', () => raised(qServer, qClient), 10_000, 100);
      const ts: Sample[] = [];
      const ours: Sample[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        ts.push(await transfer(t, tsClient, tsServer, BULK_MB));
        ours.push(await transfer(t, qClient, qServer, BULK_MB));
      }
      const ref = `reference: tailscaled pair, MTU ${mtu}, curl via SOCKS5`;
      const tsM = medianBy(ts);
      const oursM = medianBy(ours);
      r.add({ name: ref, value: tsM.mibps, unit: 'MiB/s' });
      r.add({
        name: `ours, MTU ${mtu}, curl via SOCKS5 to --serve`,
        value: oursM.mibps,
        unit: 'MiB/s',
        ratioTo: ref,
      });
      const refCpu = `reference: tailscaled pair, MTU ${mtu}, CPU per GB`;
      r.add({ name: refCpu, value: tsM.cpuPerGB, unit: 'CPU-s/GB' });
      r.add({
        name: `ours, MTU ${mtu}, CPU per GB`,
        value: oursM.cpuPerGB,
        unit: 'CPU-s/GB',
        ratioTo: refCpu,
      });
      r.add({
        name: `tailscaled pair, MTU ${mtu}, mean frame sent by the server`,
        value: tsM.meanFrame,
        unit: 'B',
      });
      r.add({ name: `ours, MTU ${mtu}, mean frame sent by the server`, value: oursM.meanFrame, unit: 'B' });
    }
  } finally {
    await cleanup.run();
  }
  return r;
}

/** Whether `node` has raised its size toward `peer` past the 1,420 bytes every path starts at. */
async function raised(node: LabOurs, peer: LabOurs): Promise<true | undefined> {
  const st = await node.api<{ peers: Array<{ hostname: string; mtu: number }> }>('GET', '/status');
  return (st.peers.find((p) => p.hostname === peer.name)?.mtu ?? 0) > 1420 ? true : undefined;
}

/** Downloads `mb` MiB of `server`'s blob through `client`, checked; its rate, both daemons' CPU, the server's mean frame. */
async function transfer(t: TailnetLab, client: LabNode, server: LabNode, mb: number): Promise<Sample> {
  const pids = [client.pid, server.pid].filter((p): p is number => p !== undefined);
  const cpu = () => pids.reduce((sum, p) => sum + usage(p).cpu, 0);
  const cpu0 = cpu();
  const tx0 = await txCounters(server.host);
  const got = await client.download(server, mb);
  const tx1 = await txCounters(server.host);
  const cpu1 = cpu();
  if (got.bytes !== mb * 1024 * 1024 || got.sha256 !== t.blob.sha256(mb))
    throw new Error(`${client.name} ← ${server.name}: ${got.bytes} bytes arrived, or damaged`);
  return {
    mibps: (mb / got.ms) * 1000,
    cpuPerGB: ((cpu1 - cpu0) / mb) * 1024,
    meanFrame: (tx1.bytes - tx0.bytes) / Math.max(1, tx1.packets - tx0.packets),
  };
}

/** The sample with the median rate. */
function medianBy(xs: Sample[]): Sample {
  const s = [...xs].sort((p, q) => p.mibps - q.mibps);
  return s[Math.floor(s.length / 2)]!;
}
