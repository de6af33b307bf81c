// Route approval and primary election on the embedded control server (issue 20, item 5): the
// election's rules in isolation (routes-server.test.ts has them through the server and the CLI).
import { describe, expect, it } from 'vitest';
import {
  announcedRoutes,
  autoApproversProblem,
  parseApprovedRoutes,
  RouteApprovalError,
  RouteElection,
} from '../../src/control/server/routes.js';
import type { NodeRecord } from '../../src/control/server/store.js';

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
    expect(() => parseApprovedRoutes(['10.1.2.3/16'])).toThrow(
      "'10.1.2.3/16' has non-address bits set; expected 10.1.0.0/16",
    );
    expect(() => parseApprovedRoutes(['10.1.2.3'])).toThrow(RouteApprovalError);
    expect(() => parseApprovedRoutes(['lan'])).toThrow("'lan' is not a valid IP address or CIDR prefix");
    expect(() => parseApprovedRoutes(['100.64.1.0/24'])).toThrow(
      /overlaps the tailnet's own range 100.64.0.0\/10/,
    );
    expect(() => parseApprovedRoutes(['fd7a:115c:a1e0:ab::/64'])).toThrow(/fd7a:115c:a1e0::\/48/);
    expect(() => parseApprovedRoutes(['0.0.0.0/0'])).toThrow(/together/);
    expect(autoApproversProblem({ routes: { '10.0.0.1/8': ['tag:x'] } })).toMatch(
      /'10.0.0.1\/8' has non-address bits set/,
    );
    expect(autoApproversProblem({ routes: { '10.0.0.0/8': 'tag:x' } })).toMatch(/list of strings/);
    expect(autoApproversProblem({ exitNode: [1] })).toMatch(/exitNode/);
    expect(
      autoApproversProblem({ routes: { '10.0.0.0/8': ['tag:x'] }, exitNode: ['tag:e'] }),
    ).toBeUndefined();
  });
});
