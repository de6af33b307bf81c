// Subnet router failover in the NAT lab (issue 20): two tailscaled routers advertise the same LAN, both
// approved; control makes one primary. When the primary stops, control moves the route to the other and
// sends every client a new netmap. A connection through the dead router cannot survive (the router held its
// TCP state), so what counts is how soon a new one succeeds: ours (acceptRoutes) against a TUN tailscaled
// (--accept-routes) measured in the same run. Run twice: on Headscale, and on our own control server
// (routes approved with `quackscale control approve-routes`, the policy naming only the subnet, so the
// routers' packet filters come from our compiler of subnet rules).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForNode } from '../sql/build.js';
import { Cleanup, waitFor } from './rig/exec.js';
import type { Site } from './rig/natlab.js';
import { BLOB_PORT, type LabTailscaled } from './rig/natlab-nodes.js';
import { curlFrom, lanHost, ourLibNode } from './rig/natlab-routes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';

const MB = 1024 * 1024;
const BLOB_MB = 50;
const SUBNET_A = '192.168.1.0/24';

const CONTROLS = [
  { control: 'headscale', policy: { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] } },
  {
    control: 'quackscale',
    policy: { acls: [{ action: 'accept', src: ['*'], dst: [`${SUBNET_A}:${BLOB_PORT}`] }] },
  },
] as const;

describe.each(CONTROLS)('on $control', ({ control, policy }) => {
  skipUnless(natlabMissing())(`NAT lab: subnet router failover, against tailscaled, on ${control}`, () => {
    const cleanup = new Cleanup();
    let t: TailnetLab;
    let build = '';
    const sites: Record<'a' | 'b' | 'd', Site> = {} as never;

    beforeAll(async () => {
      build = buildForNode('natlab-failover');
      t = await TailnetLab.create(cleanup, BLOB_MB, { control, policy });
      for (const s of ['a', 'b', 'd'] as const) sites[s] = await t.lab.addSite(s);
    });

    afterAll(async () => {
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    it('the primary router stops: ours and tailscaled reconnect through the other; ours no later than tailscaled', async () => {
      const routers: Record<string, LabTailscaled> = {};
      for (const name of ['tsr1', 'tsr2']) {
        routers[name] = await t.tailscaled(sites.a, name, { upArgs: [`--advertise-routes=${SUBNET_A}`] });
        await t.control.approveRoutes(name, [SUBNET_A]);
      }
      const lan = await lanHost(t, sites.a, 'lana');
      const url = (mb: number) => `http://${lan.v4}:${BLOB_PORT}/blob?mb=${mb}`;
      const tsClient = await t.tailscaled(sites.d, 'tscli', { tun: true, upArgs: ['--accept-routes'] });
      const { node: ours } = await ourLibNode(t, sites.b, 'qcli', join(build, 'tailnet/index.js'), {
        acceptRoutes: true,
      });
      /** The peer our node sends the subnet to: the one control made primary. */
      const primary = async () =>
        (await ours.status()).peers.filter((p) => p.routes.includes(SUBNET_A)).map((p) => p.hostname);
      const [first] = await primary();
      expect(await primary()).toHaveLength(1);
      expect(['tsr1', 'tsr2']).toContain(first);
      const other = first === 'tsr1' ? 'tsr2' : 'tsr1';
      await waitFor(
        'both clients reach the LAN',
        async () =>
          (await ours.fetch(url(1))).bytes === MB &&
          typeof (await curlFrom(tsClient.host, url(1), 5)) === 'object'
            ? true
            : undefined,
        60_000,
        500,
      );

      const t0 = performance.now();
      await routers[first!]!.stop();
      const oursBack = waitFor(
        'ours through the other router',
        async () => {
          const got = await ours.fetch(url(1), { timeoutMs: 3000 }).catch(() => undefined);
          return got?.bytes === MB ? performance.now() - t0 : undefined;
        },
        90_000,
        100,
      );
      const tsBack = waitFor(
        'tailscaled through the other router',
        async () =>
          typeof (await curlFrom(tsClient.host, url(1), 3)) === 'object' ? performance.now() - t0 : undefined,
        90_000,
        100,
      );
      const [oursMs, tsMs] = await Promise.all([oursBack, tsBack]);
      console.log(
        `[natlab-failover] on ${control}: reconnected through ${other} after the primary stopped: ours ${Math.round(oursMs)} ms, tailscaled ${Math.round(tsMs)} ms`,
      );
      expect(await primary()).toEqual([other]);
      // Polling granularity (100 ms plus a 3 s fetch timeout in flight) is the slack.
      expect(oursMs).toBeLessThanOrEqual(tsMs + 3500);
      const got = await ours.fetch(url(BLOB_MB));
      expect([got.status, got.bytes, got.sha256]).toEqual([200, BLOB_MB * MB, t.blob.sha256(BLOB_MB)]);
    });
  });
});
