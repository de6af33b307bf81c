/**
 * Subnet routes in the NAT lab (test/interop/rig/natlab-routes.ts), ours against tailscaled in the
 * same role, same run: a LAN behind a tailscaled router (site a) and a LAN behind ours (site c).
 * - as router: a TUN tailscaled with --accept-routes (site d) downloads 50 MB with curl from each
 *   LAN; the reference is the download through tailscaled's router;
 * - as client: through tailscaled's router, ours (acceptRoutes, the library's fetch, site b) against
 *   the TUN tailscaled's curl.
 * Each figure is the median of 3 downloads, each checked by length and sha256.
 */
import { join } from 'node:path';
import { Cleanup } from '../test/interop/rig/exec.js';
import type { Host } from '../test/interop/rig/natlab.js';
import { BLOB_PORT } from '../test/interop/rig/natlab-nodes.js';
import { curlFrom, lanHost, ourLibNode } from '../test/interop/rig/natlab-routes.js';
import { natlabMissing, TailnetLab } from '../test/interop/rig/natlab-tailnet.js';
import { Report } from './report.js';

const MB = 50;
const ROUNDS = 3;
/** The compiled tailnet module of this build (dist-bench/src/tailnet/index.js). */
const TAILNET_MODULE = join(import.meta.dirname, '../src/tailnet/index.js');

export async function run(): Promise<Report> {
  const r = new Report('routes');
  const missing = natlabMissing();
  if (missing.length > 0) {
    console.log(`  skipped: missing ${missing.join(', ')}`);
    return r;
  }
  const cleanup = new Cleanup();
  try {
    const t = await TailnetLab.create(cleanup, MB, {
      policy: { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] },
    });
    const [a, b, c, d] = [
      await t.lab.addSite('a'),
      await t.lab.addSite('b'),
      await t.lab.addSite('c'),
      await t.lab.addSite('d'),
    ];
    await t.tailscaled(a, 'tsrtr', { upArgs: ['--advertise-routes=192.168.1.0/24'] });
    await t.control.approveRoutes('tsrtr', ['192.168.1.0/24']);
    const lanA = await lanHost(t, a, 'lana');
    await ourLibNode(t, c, 'qrtr', TAILNET_MODULE, { advertiseRoutes: ['192.168.3.0/24'] });
    await t.control.approveRoutes('qrtr', ['192.168.3.0/24']);
    const lanC = await lanHost(t, c, 'lanc');
    const tsClient = await t.tailscaled(d, 'tscli', { tun: true, upArgs: ['--accept-routes'] });
    const { node: ours } = await ourLibNode(t, b, 'qcli', TAILNET_MODULE, { acceptRoutes: true });
    const url = (lan: Host, mb = MB) => `http://${lan.v4}:${BLOB_PORT}/blob?mb=${mb}`;
    const expected = t.blob.sha256(MB);
    const curlRate = async (lan: Host): Promise<number> => {
      const t0 = performance.now();
      const got = await curlFrom(tsClient.host, url(lan), 120);
      const ms = performance.now() - t0;
      if (typeof got === 'string' || got.bytes !== MB * 1024 * 1024 || got.sha256 !== expected)
        throw new Error(`download through a router failed or arrived damaged: ${JSON.stringify(got)}`);
      return (MB / ms) * 1000;
    };
    const oursRate = async (lan: Host): Promise<number> => {
      const got = await ours.fetch(url(lan));
      if (got.bytes !== MB * 1024 * 1024 || got.sha256 !== expected)
        throw new Error(`ours: download arrived damaged: ${got.bytes} bytes`);
      return (MB / got.ms) * 1000;
    };
    // Warm-up: paths settle and both routers have been used once.
    await curlFrom(tsClient.host, url(lanA, 1), 60);
    await curlFrom(tsClient.host, url(lanC, 1), 60);
    await ours.fetch(url(lanA, 1));
    const viaTs: number[] = [];
    const viaOurs: number[] = [];
    const oursClient: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      viaTs.push(await curlRate(lanA));
      viaOurs.push(await curlRate(lanC));
      oursClient.push(await oursRate(lanA));
    }
    const REF = 'reference: tailscaled client → tailscaled router, 50 MB download';
    r.add({ name: REF, value: median(viaTs), unit: 'MiB/s' });
    r.add({
      name: 'tailscaled client → ours as router, 50 MB download',
      value: median(viaOurs),
      unit: 'MiB/s',
      ratioTo: REF,
    });
    r.add({
      name: 'ours as client → tailscaled router, 50 MB download',
      value: median(oursClient),
      unit: 'MiB/s',
      ratioTo: REF,
    });
  } finally {
    await cleanup.run();
  }
  return r;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
}
