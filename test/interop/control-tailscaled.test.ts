// A real tailscaled (v1.102.3) against our embedded control server, with our own client as its peer.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ControlClient } from '../../src/control/client.js';
import type { NetMapChange } from '../../src/control/netmap.js';
import type { ControlServer } from '../../src/control/server/server.js';
import { Rig } from '../control/helpers.js';
import { Derper, missingPeers, Tailscaled } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const bare = (addrs: readonly string[]) => addrs.map((a) => a.split('/')[0]!);

interface DebugNetmap {
  SelfNode: { Name: string; Addresses: string[] };
  Peers: { Name: string; Addresses: string[]; Online?: boolean }[] | null;
  PacketFilter: unknown;
  PacketFilterRules: unknown;
  Domain: string;
}

skipUnless(missingPeers(['tailscaled', 'tailscale', 'derper']))('tailscaled ↔ our control server', () => {
  const cleanup = new Cleanup();
  const rig = new Rig();
  let srv: ControlServer;
  let alpha: ControlClient;
  let ts: Tailscaled;
  const seen: NetMapChange[] = [];

  beforeAll(async () => {
    const derper = await Derper.start(cleanup);
    srv = await rig.server({
      baseDomain: 'quack.test',
      derpMap: derper.derpMap(),
      ephemeralTimeoutMs: 1_000,
      // alpha may reach tsone on 8080 only; anyone may reach alpha.
      policy: {
        acls: [
          { action: 'accept', src: ['alpha'], dst: ['tsone:8080'], proto: 'tcp' },
          { action: 'accept', src: ['*'], dst: ['alpha:*'] },
        ],
      },
    });
    alpha = await rig.client({ serverURL: srv.url, hostname: 'alpha', authKey: await srv.createAuthKey() });
    await alpha.login();
    alpha.start();
    await alpha.waitForNetmap(undefined, 5_000);
    alpha.on('netmap', (_nm, changes) => seen.push(...changes));
    ts = await Tailscaled.start(cleanup, 'ours');
  });

  afterAll(async () => {
    await rig.cleanup();
    await cleanup.run();
  });

  it('`tailscale up --login-server … --authkey …` succeeds against our server', async () => {
    const key = await srv.createAuthKey({ ephemeral: true });
    await ts.up(srv.url, key, 'tsone');
    const st = await ts.status();
    expect(st.BackendState).toBe('Running');
    const node = srv.registry.nodes.find((n) => n.hostname === 'tsone');
    expect(node).toBeDefined();
    expect([...st.Self.TailscaleIPs].sort()).toEqual([node!.ipv4, node!.ipv6].sort());
    expect(st.Self.DNSName).toBe('tsone.quack.test.');
  });

  it('`tailscale status --json` lists our client as a peer with the addresses our server gave it', async () => {
    const st = await waitFor(
      'alpha in tailscale status',
      async () => {
        const s = await ts.status();
        return Object.values(s.Peer ?? {}).some((p) => p.HostName === 'alpha') ? s : undefined;
      },
      10_000,
      200,
    );
    const peer = Object.values(st.Peer ?? {}).find((p) => p.HostName === 'alpha')!;
    expect([...peer.TailscaleIPs].sort()).toEqual(bare(alpha.netmap!.self.addresses).sort());
    expect(peer.DNSName).toBe('alpha.quack.test.');
    expect(peer.Online).toBe(true);
  });

  it('our client sees tailscaled join as a streamed delta with its endpoints and disco key', async () => {
    const nm = await alpha.waitForNetmap(
      (m) => [...m.peers.values()].some((p) => p.shortName === 'tsone'),
      10_000,
    );
    const peer = [...nm.peers.values()].find((p) => p.shortName === 'tsone')!;
    expect(seen).toContainEqual({ kind: 'peer-added', id: peer.id, name: 'tsone.quack.test.' });
    await alpha.waitForNetmap(
      (m) => (m.peers.get(peer.id)?.discoKey ?? '').match(/^discokey:(?!0{64})/) !== null,
      10_000,
    );
  });

  it('the policy’s packet filter reaches tailscaled', async () => {
    const out = await ts.cli(['debug', 'netmap']);
    const nm = JSON.parse(out.stdout) as DebugNetmap;
    const text = JSON.stringify(nm.PacketFilter);
    const alphaV4 = bare(alpha.netmap!.self.addresses)[0]!;
    expect(text).toContain(alphaV4);
    expect(text).toContain('8080');
    expect(text).not.toContain('"*"');
    expect(nm.Domain).toBe('quack.test');
    const own = alpha.netmap!.packetFilter;
    expect(own).toEqual([
      {
        SrcIPs: ['*'],
        DstPorts: bare(alpha.netmap!.self.addresses).map((ip) => ({
          IP: ip,
          Ports: { First: 0, Last: 65535 },
        })),
      },
    ]);
  });

  it('tailscaled leaving (ephemeral, stopped) reaches our client as deltas: offline, then removed', async () => {
    const id = [...alpha.netmap!.peers.values()].find((p) => p.shortName === 'tsone')!.id;
    await ts.stop();
    await alpha.waitForNetmap((m) => m.peers.get(id)?.online === false || !m.peers.has(id), 10_000);
    await alpha.waitForNetmap((m) => !m.peers.has(id), 10_000);
    expect(seen).toContainEqual({ kind: 'peer-removed', id, name: 'tsone.quack.test.' });
    expect(srv.registry.byId(id)).toBeUndefined();
  });
});
