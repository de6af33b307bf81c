// Routes through the embedded control server (issue 20, item 5): approval by the CLI and by
// autoApprovers, primary election and failover as real control clients see them in their netmaps.
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NetMap } from '../../src/control/netmap.js';
import { Rig, runControlCli } from './helpers.js';

const LAN = '192.168.1.0/24';
const EXIT = ['0.0.0.0/0', '::/0'];

describe('routes through the embedded server', () => {
  const rig = new Rig();
  afterEach(() => rig.cleanup());

  const peerByName = (nm: NetMap, name: string) => [...nm.peers.values()].find((p) => p.shortName === name);
  const primaryOf = (nm: NetMap, name: string) => peerByName(nm, name)?.raw.PrimaryRoutes ?? [];

  it('approval makes a router primary in peers’ netmaps; it fails over when the primary goes offline', async () => {
    const srv = await rig.server({
      policy: {
        acls: [{ action: 'accept', src: ['*'], dst: [`${LAN}:80`, '*:22'] }],
        autoApprovers: { routes: { [LAN]: ['tag:router'] } },
      },
    });
    const key = await srv.createAuthKey({ reusable: true });
    const tagged = await srv.createAuthKey({ reusable: true, tags: ['tag:router'] });
    const up = async (hostname: string, authKey: string, routes: string[] = []) => {
      const c = await rig.client({
        serverURL: srv.url,
        hostname,
        authKey,
        hostinfo: routes.length > 0 ? { RoutableIPs: routes } : {},
      });
      await c.login();
      c.start();
      await c.waitForNetmap(undefined, 5_000);
      return c;
    };
    const r1 = await up('r1', key, [LAN]);
    const client = await up('client', key);
    // Announced but not approved: no peer sees the route.
    let nm = await client.waitForNetmap((m) => peerByName(m, 'r1') !== undefined, 5_000);
    expect(primaryOf(nm, 'r1')).toEqual([]);
    expect(peerByName(nm, 'r1')!.allowedIPs).toEqual(peerByName(nm, 'r1')!.addresses);

    const stateDir = dirname(srv.adminFile);
    const cli = (...argv: string[]) => runControlCli([...argv, '--state-dir', stateDir]);
    const approved = await cli('approve-routes', '--node', 'r1', '--routes', LAN);
    expect(approved).toMatchObject({ code: 0, err: '' });
    expect(approved.out).toMatch(
      new RegExp(`^r1 \\(\\d+\\)\tannounced=${LAN}\tapproved=${LAN}\tserving=${LAN}\tprimary=${LAN}$`),
    );
    nm = await client.waitForNetmap((m) => primaryOf(m, 'r1').length > 0, 5_000);
    expect(primaryOf(nm, 'r1')).toEqual([LAN]);
    expect(peerByName(nm, 'r1')!.allowedIPs).toEqual([...peerByName(nm, 'r1')!.addresses, LAN]);
    // The router's filter holds the subnet rule with the prefix as written; the client's does not.
    await r1.waitForNetmap(
      (m) => m.packetFilter.some((r) => (r.DstPorts ?? []).some((d) => d.IP === LAN)),
      5_000,
    );
    expect(r1.netmap!.packetFilter.flatMap((r) => (r.DstPorts ?? []).map((d) => d.IP))).toContain(LAN);
    expect(client.netmap!.packetFilter.flatMap((r) => (r.DstPorts ?? []).map((d) => d.IP))).not.toContain(
      LAN,
    );

    // A second router, approved by autoApprovers (its tag): it does not take the route over.
    const r2 = await up('r2', tagged, [LAN]);
    nm = await client.waitForNetmap((m) => peerByName(m, 'r2')?.online === true, 5_000);
    expect(primaryOf(nm, 'r1')).toEqual([LAN]);
    expect(primaryOf(nm, 'r2')).toEqual([]);
    const listed = JSON.parse((await cli('routes', '--json')).out) as { name: string; serving: string[] }[];
    expect(listed.map((r) => [r.name, r.serving])).toEqual([
      ['r1', [LAN]],
      ['r2', [LAN]],
    ]);

    // The primary goes offline: the route moves to r2 in the next delta.
    await r1.close();
    nm = await client.waitForNetmap((m) => primaryOf(m, 'r2').length > 0, 5_000);
    expect(primaryOf(nm, 'r1')).toEqual([]);
    expect(peerByName(nm, 'r2')!.allowedIPs).toContain(LAN);
    expect(peerByName(nm, 'r1')!.allowedIPs).not.toContain(LAN);
    void r2;

    // Withdrawing approval: r2 is still auto-approved; bad input is refused with the route named.
    expect((await cli('approve-routes', '--node', 'r2', '--routes', '')).code).toBe(0);
    expect(srv.routes().find((r) => r.name === 'r2')!.serving).toEqual([LAN]);
    const bad = await cli('approve-routes', '--node', 'r2', '--routes', '100.64.0.0/24');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/HTTP 400: '100.64.0.0\/24' overlaps the tailnet's own range/);
    const unknown = await cli('approve-routes', '--node', 'nobody', '--routes', LAN);
    expect(unknown.err).toMatch(/HTTP 404: no node 'nobody'/);
  });

  it('gives exit nodes both default routes in AllowedIPs once approved, and the * rule covers them', async () => {
    const srv = await rig.server({ policy: { acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] } });
    const key = await srv.createAuthKey({ reusable: true });
    const exit = await rig.client({
      serverURL: srv.url,
      hostname: 'exit',
      authKey: key,
      hostinfo: { RoutableIPs: EXIT },
    });
    await exit.login();
    exit.start();
    const client = await rig.client({ serverURL: srv.url, hostname: 'client', authKey: key });
    await client.login();
    client.start();
    await client.waitForNetmap((m) => peerByName(m, 'exit') !== undefined, 5_000);
    await expect(srv.approveRoutes('exit', ['0.0.0.0/0'])).rejects.toThrow(/together/);
    await srv.approveRoutes('exit', EXIT);
    const nm = await client.waitForNetmap((m) => peerByName(m, 'exit')!.allowedIPs.includes('::/0'), 5_000);
    expect(peerByName(nm, 'exit')!.allowedIPs.slice(2)).toEqual(EXIT);
    expect(primaryOf(nm, 'exit')).toEqual([]);
    const enm = await exit.waitForNetmap(
      (m) => m.packetFilter.some((r) => (r.DstPorts ?? []).some((d) => d.IP === '::/0')),
      5_000,
    );
    expect((enm.packetFilter[0]!.DstPorts ?? []).map((d) => d.IP)).toEqual([
      ...enm.self.addresses.map((a) => a.split('/')[0]),
      ...EXIT,
    ]);
  });
});
