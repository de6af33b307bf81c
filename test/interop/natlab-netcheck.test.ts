// `quackscale netcheck` next to `tailscale netcheck` in the NAT lab, both run on the same host behind the
// same router with the same DERP map (two regions: Headscale's embedded one and a derper, so that two
// STUN servers can tell an endpoint-dependent NAT): an easy NAT, a hard NAT (a new port per destination)
// and a site without UDP. They must agree on UDP, IPv4, the public address, MappingVariesByDestIP, which
// regions answered and that the nearest is one of them; without UDP, tailscale's ICMP latency is the one
// difference (Node has no ICMP socket).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NetcheckReport } from '../../src/tailnet/netcheck/report.js';
import { missingPeers, TAILSCALE, tempDir } from './control-peers.js';
import { Cleanup, execIn } from './rig/exec.js';
import type { Site } from './rig/natlab.js';
import { CLI, type LabTailscaled } from './rig/natlab-nodes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';

skipUnless([...natlabMissing(), ...missingPeers(['derper'])])(
  'NAT lab: netcheck agrees with tailscale netcheck',
  () => {
    const cleanup = new Cleanup();
    let t: TailnetLab;

    beforeAll(async () => {
      t = await TailnetLab.create(cleanup, 1, { secondRegion: true });
    });

    afterAll(async () => {
      expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
    });

    /** Both netchecks on `ts`'s host: tailscale's (the DERP map from its tailscaled) and ours (the same map). */
    async function both(ts: LabTailscaled): Promise<{ theirs: NetcheckReport; ours: NetcheckReport }> {
      const socket = `--socket=${join(ts.dir, 'tailscaled.sock')}`;
      const map = (await ts.cli(['debug', 'derp-map'])).stdout;
      const file = join(await tempDir(cleanup, 'qs-natlab-derpmap-'), 'derp.json');
      await writeFile(file, map);
      const env = { TS_DISABLE_PORTMAPPER: '1' };
      const theirs = await execIn(ts.host.ns, TAILSCALE, [socket, 'netcheck', '--format=json'], {
        env,
        timeoutMs: 30_000,
      });
      const ours = await execIn(
        ts.host.ns,
        process.execPath,
        [CLI!, 'netcheck', '--derp-map', file, '--json'],
        {
          timeoutMs: 30_000,
        },
      );
      const parse = (s: string) => JSON.parse(s.slice(s.indexOf('{'))) as NetcheckReport;
      return { theirs: parse(theirs.stdout), ours: parse(ours.stdout) };
    }

    /** What both must agree on; the public port differs (each runs its own socket). */
    const view = (r: NetcheckReport) => ({
      UDP: r.UDP,
      IPv4: r.IPv4,
      IPv6: r.IPv6,
      publicIP: r.GlobalV4.replace(/:\d+$/, ''),
      MappingVariesByDestIP: r.MappingVariesByDestIP,
      regions: Object.keys(r.RegionLatency).sort(),
    });

    async function agree(site: Site, name: string) {
      const ts = await t.tailscaled(site, name);
      const { theirs, ours } = await both(ts);
      console.log(
        `[netcheck ${site.name}] tailscale ${JSON.stringify(view(theirs))} ours ${JSON.stringify(view(ours))}`,
      );
      expect(view(ours)).toEqual(view(theirs));
      // The nearest region: one that answered (both regions sit on one host, so which is nearer is noise).
      for (const r of [theirs, ours]) {
        if (view(r).regions.length === 0) expect(r.PreferredDERP).toBe(0);
        else expect(view(r).regions).toContain(String(r.PreferredDERP));
      }
      return view(ours);
    }

    it('easy NAT: UDP, the router public address, one mapping for every destination', async () => {
      const easy = await t.lab.addSite('e');
      expect(await agree(easy, 'ts-e')).toEqual({
        UDP: true,
        IPv4: true,
        IPv6: false,
        publicIP: easy.wan4,
        MappingVariesByDestIP: false,
        regions: ['998', '999'],
      });
    });

    it('hard NAT: the mapping varies by destination', async () => {
      const hard = await t.lab.addSite('h', { nat: 'hard' });
      expect(await agree(hard, 'ts-h')).toMatchObject({
        UDP: true,
        publicIP: hard.wan4,
        MappingVariesByDestIP: true,
      });
    });

    it('no UDP: no STUN answer and no public address; tailscale measures latency by ICMP, which Node cannot', async () => {
      const blocked = await t.lab.addSite('u');
      const ts = await t.tailscaled(blocked, 'ts-u');
      await t.lab.setUdpBlocked(blocked, 'all');
      const { theirs, ours } = await both(ts);
      console.log(`[netcheck u] tailscale ${JSON.stringify(theirs)}\n ours ${JSON.stringify(ours)}`);
      const udpView = (r: NetcheckReport) => ({
        UDP: r.UDP,
        IPv6: r.IPv6,
        GlobalV4: r.GlobalV4,
        MappingVariesByDestIP: r.MappingVariesByDestIP,
      });
      const none = { UDP: false, IPv6: false, GlobalV4: '', MappingVariesByDestIP: null };
      expect(udpView(theirs)).toEqual(none);
      expect(udpView(ours)).toEqual(none);
      // Without UDP, tailscale pings each region's first node with ICMP (netcheck.go measureAllICMPLatency: as
      // root, or in ping_group_range) and counts that as IPv4 and as latency; Node has no ICMP socket, so ours
      // has only the HTTPS check, which fails on both sides against these plain-HTTP relays.
      expect(theirs.ICMPv4).toBe(true);
      expect(ours).toMatchObject({ ICMPv4: false, IPv4: false, RegionLatency: {}, PreferredDERP: 0 });
    });
  },
);
