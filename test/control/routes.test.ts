// Route approval and primary election on the embedded control server (issue 20, item 5): the
// election's rules in isolation, then through the server to real control clients, then the CLI.
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NetMap } from '../../src/control/netmap.js';
import {
  announcedRoutes,
  autoApproversProblem,
  parseApprovedRoutes,
  RouteApprovalError,
  RouteElection,
} from '../../src/control/server/routes.js';
import type { NodeRecord } from '../../src/control/server/store.js';
import { Rig, runControlCli } from './helpers.js';

function node(id: number, announce: string[], more: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    stableId: `n${id}`,
    machineKey: `mkey:${id}`,
    nodeKey: `nodekey:${id}`,
    discoKey: 'discokey:0',
    hostname: `r${id}`,
    givenName: `r${id}`,
    userId: 1,
    tags: [],
    ipv4: `100.64.0.${id}`,
    ipv6: `fd7a:115c:a1e0::${id}`,
    endpoints: [],
    hostinfo: { RoutableIPs: announce },
    created: '2026-12-07T00:00:00Z',
    lastSeen: null,
    keyExpiry: null,
    ephemeral: false,
    authKeyId: null,
    capVersion: 120,
    homeDERP: 0,
    ...more,
  };
}

const LAN = '192.168.1.0/24';
const EXIT = ['0.0.0.0/0', '::/0'];

describe('route election', () => {
  const user = () => 'alice';

  it('serves only announced routes an admin approved; ignores announcements that are not routes', () => {
    const n = node(1, [LAN, '10.0.0.0/8', '100.64.0.0/24', '10.1.2.3/24', 'junk'], {
      approvedRoutes: [LAN, '172.16.0.0/12'],
    });
    expect(announcedRoutes(n)).toEqual(['10.0.0.0/8', LAN]);
    const e = new RouteElection();
    e.update([n], undefined, user, () => true);
    expect(e.servingOf(1)).toEqual([LAN]);
    expect(e.routesOf(1)).toEqual({ primary: [LAN], exit: [] });
    expect(e.view(n)).toMatchObject({ announced: ['10.0.0.0/8', LAN], approved: [LAN, '172.16.0.0/12'] });
  });

  it('auto-approves by tag or user for covered prefixes, and exit nodes by exitNode', () => {
    const auto = { routes: { '10.0.0.0/8': ['tag:router'], [LAN]: ['alice@'] }, exitNode: ['tag:exit'] };
    const tagged = node(1, ['10.1.0.0/16', '172.16.0.0/12'], { tags: ['tag:router'] });
    const alices = node(2, [LAN, '10.2.0.0/16']);
    const exit = node(3, EXIT, { tags: ['tag:exit'] });
    const notExit = node(4, EXIT);
    const e = new RouteElection();
    e.update([tagged, alices, exit, notExit], auto, user, () => true);
    expect(e.servingOf(1)).toEqual(['10.1.0.0/16']);
    expect(e.servingOf(2)).toEqual([LAN]);
    expect(e.servingOf(3)).toEqual(EXIT);
    expect(e.servingOf(4)).toEqual([]);
    // A wider announcement than the approver's prefix is not covered.
    const wide = node(5, ['10.0.0.0/7'], { tags: ['tag:router'] });
    e.update([wide], auto, user, () => true);
    expect(e.servingOf(5)).toEqual([]);
  });

  it('keeps the primary while it stays eligible, fails over to the lowest id, and back only on failure', () => {
    const logs: string[] = [];
    const e = new RouteElection((m) => logs.push(m));
    const [a, b, c] = [node(3, [LAN]), node(1, [LAN]), node(2, [LAN])];
    for (const n of [a, b, c]) n.approvedRoutes = [LAN];
    const online = new Set([3]);
    const run = () => e.update([a, b, c], undefined, user, (n) => online.has(n.id));
    run();
    expect(e.routesOf(3).primary).toEqual([LAN]);
    online.add(1).add(2);
    run();
    expect(e.routesOf(3).primary).toEqual([LAN]); // a newcomer with a lower id moves nothing
    expect(e.routesOf(1).primary).toEqual([]);
    online.delete(3);
    run();
    expect(e.routesOf(1).primary).toEqual([LAN]);
    expect(logs).toEqual([`route ${LAN}: primary moves from node 3 to node 1`]);
    online.add(3);
    run();
    expect(e.routesOf(1).primary).toEqual([LAN]);
    online.clear();
    run();
    expect(e.list().map((r) => r.primary)).toEqual([[], [], []]);
    expect(logs.at(-1)).toBe(`route ${LAN}: no node serves it now (was node 1)`);
  });

  it('does not elect exit routes: every serving exit node carries them, online or not', () => {
    const [x1, x2] = [node(1, EXIT, { approvedRoutes: EXIT }), node(2, EXIT, { approvedRoutes: EXIT })];
    const e = new RouteElection();
    e.update([x1, x2], undefined, user, (n) => n.id === 1);
    expect(e.routesOf(1)).toEqual({ primary: [], exit: EXIT });
    expect(e.routesOf(2)).toEqual({ primary: [], exit: EXIT });
  });

  it('refuses approvals that are not routes, naming them', () => {
    expect(parseApprovedRoutes(['10.1.0.0/16', ' 10.1.0.0/16', '::/0', '0.0.0.0/0'])).toEqual([
      '0.0.0.0/0',
      '::/0',
      '10.1.0.0/16',
    ]);
    expect(() => parseApprovedRoutes(['10.1.2.3/16'])).toThrow(/'10.1.2.3\/16' is not a prefix/);
    expect(() => parseApprovedRoutes(['10.1.2.3'])).toThrow(RouteApprovalError);
    expect(() => parseApprovedRoutes(['100.64.1.0/24'])).toThrow(
      /overlaps the tailnet's own range 100.64.0.0\/10/,
    );
    expect(() => parseApprovedRoutes(['fd7a:115c:a1e0:ab::/64'])).toThrow(/fd7a:115c:a1e0::\/48/);
    expect(() => parseApprovedRoutes(['0.0.0.0/0'])).toThrow(/together/);
    expect(autoApproversProblem({ routes: { '10.0.0.1/8': ['tag:x'] } })).toMatch(
      /'10.0.0.1\/8' is not a prefix/,
    );
    expect(autoApproversProblem({ routes: { '10.0.0.0/8': 'tag:x' } })).toMatch(/list of strings/);
    expect(autoApproversProblem({ exitNode: [1] })).toMatch(/exitNode/);
    expect(
      autoApproversProblem({ routes: { '10.0.0.0/8': ['tag:x'] }, exitNode: ['tag:e'] }),
    ).toBeUndefined();
  });
});

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
