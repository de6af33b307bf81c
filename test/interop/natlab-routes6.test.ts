// IPv6 subnet routes both ways in the NAT lab (issue 20), against tailscaled on Headscale. Sites a and c
// have routed IPv6 LANs (2001:db8:<site>::/64); the clients' sites b and d have no IPv6 at all, so an IPv6
// LAN is reachable only through its router:
// - ours (acceptRoutes, site b) downloads from site a's LAN through a tailscaled router (userspace
//   networking, --advertise-routes 2001:db8:1::/64);
// - a TUN tailscaled (--accept-routes, site d) downloads from site c's LAN through ours (advertiseRoutes).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildForNode } from '../sql/build.js';
import { Cleanup } from './rig/exec.js';
import type { Site } from './rig/natlab.js';
import { BLOB_PORT } from './rig/natlab-nodes.js';
import { curlFrom, lanHost, ourLibNode } from './rig/natlab-routes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';

const MB = 1024 * 1024;
const BLOB_MB = 20;

skipUnless(natlabMissing())('NAT lab: IPv6 subnet routes both ways, against tailscaled', () => {
  const cleanup = new Cleanup();
  let t: TailnetLab;
  let build = '';
  const sites: Record<'a' | 'b' | 'c' | 'd', Site> = {} as never;
  const prefix = (s: Site) => `${s.lan6Prefix}:/64`;
  const url = (v6: string, mb: number) => `http://[${v6}]:${BLOB_PORT}/blob?mb=${mb}`;

  beforeAll(async () => {
    build = buildForNode('natlab-routes6');
    t = await TailnetLab.create(cleanup, BLOB_MB, {
      policy: { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] },
    });
    sites.a = await t.lab.addSite('a', { ipv6: true });
    sites.b = await t.lab.addSite('b');
    sites.c = await t.lab.addSite('c', { ipv6: true });
    sites.d = await t.lab.addSite('d');
  });

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  it('ours as client: an IPv6 LAN behind a tailscaled router, 20 MB intact', async () => {
    await t.tailscaled(sites.a, 'tsrtr6', { upArgs: [`--advertise-routes=${prefix(sites.a)}`] });
    await t.control.approveRoutes('tsrtr6', [prefix(sites.a)]);
    const lan = await lanHost(t, sites.a, 'lana6');
    const { node: ours, host } = await ourLibNode(t, sites.b, 'qcli6', join(build, 'tailnet/index.js'), {
      acceptRoutes: true,
    });
    const peer = (await ours.status()).peers.find((p) => p.hostname === 'tsrtr6');
    expect(peer?.routes).toEqual([prefix(sites.a)]);
    // Site b has no IPv6: its host's own curl cannot reach the LAN, only the tailnet can.
    expect(typeof (await curlFrom(host, url(lan.v6!, 1), 3))).toBe('string');
    const got = await ours.fetch(url(lan.v6!, BLOB_MB));
    expect([got.status, got.bytes, got.sha256]).toEqual([200, BLOB_MB * MB, t.blob.sha256(BLOB_MB)]);
  });

  it('ours as router: a TUN tailscaled reaches the IPv6 LAN behind ours, 20 MB intact', async () => {
    await ourLibNode(t, sites.c, 'qrtr6', join(build, 'tailnet/index.js'), {
      advertiseRoutes: [prefix(sites.c)],
    });
    await t.control.approveRoutes('qrtr6', [prefix(sites.c)]);
    const lan = await lanHost(t, sites.c, 'lanc6');
    const client = await t.tailscaled(sites.d, 'tscli6', { tun: true, upArgs: ['--accept-routes'] });
    const got = await curlFrom(client.host, url(lan.v6!, BLOB_MB), 120);
    expect(got).toEqual({ bytes: BLOB_MB * MB, sha256: t.blob.sha256(BLOB_MB) });
  });
});
