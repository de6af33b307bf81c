// The client's route table (routes/route-table.ts) and what a node accepts to advertise
// (routes/prefixes.ts): longest-prefix match across peers, acceptRoutes, failover when control
// moves a primary route, exit node choice, and the messages for bad input.
import { describe, expect, it } from 'vitest';
import type { NetMap, NetNode } from '../../../src/control/netmap.js';
import { parseIp } from '../../../src/netstack/address.js';
import { NameResolver } from '../../../src/tailnet/names.js';
import { RoutedNets } from '../../../src/tailnet/routes/local-nets.js';
import { NodeRouting } from '../../../src/tailnet/routes/node-routing.js';
import { advertisedRoutes, PrefixSet, RouteError } from '../../../src/tailnet/routes/prefixes.js';
import { RouteTable, subnetRoutesOf } from '../../../src/tailnet/routes/route-table.js';

/** A peer as the netmap has it: `routes` are the approved, primary routes control put in its AllowedIPs. */
function peer(id: number, name: string, routes: string[] = [], more: Partial<NetNode> = {}): NetNode {
  const addresses = [`100.64.0.${id}/32`, `fd7a:115c:a1e0::${id}/128`];
  return {
    id,
    stableId: `n${id}`,
    name: `${name}.lab.test.`,
    shortName: name,
    nodeKey: `nodekey:${id}`,
    machineKey: undefined,
    discoKey: undefined,
    addresses,
    allowedIPs: [...addresses, ...routes],
    endpoints: [],
    homeDERP: 1,
    online: true,
    lastSeen: undefined,
    keyExpiry: undefined,
    expired: false,
    tags: [],
    user: 1,
    hostinfo: undefined,
    raw: {} as NetNode['raw'],
    ...more,
  };
}

function netmap(...peers: NetNode[]): NetMap {
  return {
    self: peer(99, 'self'),
    peers: new Map(peers.map((p) => [p.id, p])),
    derpMap: undefined,
    packetFilter: [],
    packetFilterChunks: new Map(),
    dns: undefined,
    domain: 'lab.test',
    magicDNSSuffix: 'lab.test',
    userProfiles: new Map(),
    controlTime: undefined,
    seq: 1,
  };
}

function resolverOf(nm: NetMap): () => NameResolver {
  const nodes = [nm.self, ...nm.peers.values()].map((n) => ({
    name: n.name,
    addresses: n.addresses.map((a) => a.slice(0, a.indexOf('/'))),
  }));
  return () => new NameResolver(nodes, 'lab.test');
}

describe('RouteTable', () => {
  it('sends an address in a routed prefix to the peer that serves it, the longest prefix winning', () => {
    const wide = peer(1, 'wide', ['10.0.0.0/8']);
    const narrow = peer(2, 'narrow', ['10.1.2.0/24']);
    const table = new RouteTable(netmap(wide, narrow), { acceptRoutes: true });
    expect(table.lookup('10.1.2.3')).toMatchObject({ via: 'subnet', peer: narrow, prefix: '10.1.2.0/24' });
    expect(table.lookup('10.1.3.3')).toMatchObject({ via: 'subnet', peer: wide, prefix: '10.0.0.0/8' });
    expect(table.lookup('100.64.0.2')).toMatchObject({ via: 'peer', peer: narrow, prefix: '100.64.0.2/32' });
    expect(table.lookup('192.168.0.1')).toBeUndefined();
    expect(table.lookup('not-an-ip')).toBeUndefined();
    // WireGuard's allowed IPs carry the routes too: cryptokey routing sends each packet to its router.
    expect(table.allowedIPs(narrow)).toContain('10.1.2.0/24');
    expect(subnetRoutesOf(narrow)).toEqual(['10.1.2.0/24']);
  });

  it('IPv6 routes match too, and a longer prefix inside a peer own wider one', () => {
    const r = peer(1, 'r', ['fd00:1::/32', 'fd00:1:2::/48']);
    const table = new RouteTable(netmap(r), { acceptRoutes: true });
    expect(table.lookup('fd00:1:2::5')?.prefix).toBe('fd00:1:2::/48');
    expect(table.lookup('fd00:1:3::5')?.prefix).toBe('fd00:1::/32');
  });

  it('without acceptRoutes only the peers own addresses are routed, and the reason says so', () => {
    const r = peer(1, 'router', ['10.1.2.0/24']);
    const nm = netmap(r);
    const table = new RouteTable(nm, {});
    expect(table.lookup('10.1.2.3')).toBeUndefined();
    expect(table.allowedIPs(r)).toEqual(r.addresses);
    expect(table.whyUnrouted('10.1.2.3', nm)).toBe(
      "10.1.2.3 is in 10.1.2.0/24, which 'router' routes, but this node does not accept routes (acceptRoutes / --accept-routes)",
    );
    expect(table.whyUnrouted('10.9.9.9', nm)).toBe('no tailnet node or route has this address');
  });

  it('fails over when control moves the primary route to another peer (a new netmap, a new table)', () => {
    const before = netmap(peer(1, 'r1', ['192.168.1.0/24']), peer(2, 'r2'));
    expect(new RouteTable(before, { acceptRoutes: true }).lookup('192.168.1.7')?.peer.shortName).toBe('r1');
    // r1 went offline: Headscale makes r2 primary and moves the prefix into r2's AllowedIPs.
    const after = netmap(peer(1, 'r1', [], { online: false }), peer(2, 'r2', ['192.168.1.0/24']));
    const table = new RouteTable(after, { acceptRoutes: true });
    expect(table.lookup('192.168.1.7')?.peer.shortName).toBe('r2');
    expect(table.allowedIPs(after.peers.get(1)!)).not.toContain('192.168.1.0/24');
  });

  it('a prefix two peers carry goes to one of them only (the lowest node ID); an expired peer carries none', () => {
    const table = new RouteTable(netmap(peer(5, 'b', ['10.5.0.0/16']), peer(3, 'a', ['10.5.0.0/16'])), {
      acceptRoutes: true,
    });
    expect(table.lookup('10.5.1.1')?.peer.shortName).toBe('a');
    const expired = new RouteTable(netmap(peer(3, 'a', ['10.5.0.0/16'], { expired: true })), {
      acceptRoutes: true,
    });
    expect(expired.lookup('10.5.1.1')).toBeUndefined();
  });

  it('exit routes count only for the chosen exit node; a node that offers none is a clear problem', () => {
    const exit = peer(1, 'gw', ['0.0.0.0/0', '::/0']);
    const sub = peer(2, 'sub', ['10.0.0.0/8']);
    const none = new RouteTable(netmap(exit, sub), { acceptRoutes: true });
    expect(none.lookup('8.8.8.8')).toBeUndefined();
    const chosen = new RouteTable(netmap(exit, sub), { acceptRoutes: true, exitNode: 'gw' });
    expect(chosen.exitNode).toBe(exit);
    expect(chosen.lookup('8.8.8.8')).toMatchObject({ via: 'exit', peer: exit });
    expect(chosen.lookup('10.1.1.1')).toMatchObject({ via: 'subnet', peer: sub });
    expect(new RouteTable(netmap(exit), { exitNode: '100.64.0.1' }).exitNode).toBe(exit);
    expect(new RouteTable(netmap(exit, sub), { exitNode: 'sub' }).exitProblem).toMatch(
      /^node 'sub' does not offer itself as an exit node/,
    );
    expect(new RouteTable(netmap(exit), { exitNode: 'nope' }).exitProblem).toBe(
      "exit node 'nope' is not a node of this tailnet's netmap",
    );
  });
});

describe('advertised routes', () => {
  it('are canonical and sorted, the exit routes added by advertiseExitNode', () => {
    expect(advertisedRoutes(['192.168.1.0/24', '10.0.0.0/8'], true)).toEqual([
      '0.0.0.0/0',
      '::/0',
      '10.0.0.0/8',
      '192.168.1.0/24',
    ]);
    expect(advertisedRoutes([' fd00::/64 '])).toEqual(['fd00::/64']);
  });

  it('reject what is not a prefix, has host bits, overlaps the tailnet or is half an exit node, naming it', () => {
    const bad = (routes: string[]) => {
      try {
        advertisedRoutes(routes);
      } catch (err) {
        expect(err).toBeInstanceOf(RouteError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(['10.0.0.0/8', 'lan'])).toBe("'lan' is not a valid IP address or CIDR prefix");
    expect(bad(['192.168.1.5'])).toBe("'192.168.1.5' is not a valid IP address or CIDR prefix"); // netip.ParsePrefix wants the bits
    expect(bad(['192.168.1.5/24'])).toBe(
      "'192.168.1.5/24' has non-address bits set; expected 192.168.1.0/24",
    );
    expect(bad(['100.100.0.0/16'])).toBe(
      "'100.100.0.0/16' overlaps the tailnet's own range 100.64.0.0/10: a router cannot route it",
    );
    expect(bad(['100.0.0.0/6'])).toContain('overlaps the tailnet');
    expect(bad(['fd7a:115c:a1e0:ab::/64'])).toContain('fd7a:115c:a1e0::/48');
    expect(bad(['0.0.0.0/0'])).toBe(
      '0.0.0.0/0 advertised without ::/0: advertise both, or use advertiseExitNode',
    );
  });

  it('NodeRouting refuses them at construction, before anything starts', () => {
    const names = resolverOf(netmap());
    expect(() => new NodeRouting({ advertiseRoutes: ['10.1.2.3/8'] }, names)).toThrow(RouteError);
    expect(new NodeRouting({ advertiseRoutes: ['10.1.0.0/16'] }, names).hostinfo()).toEqual({
      RoutableIPs: ['10.1.0.0/16'],
    });
    expect(new NodeRouting({}, names).hostinfo()).toEqual({});
  });
});

describe('NodeRouting', () => {
  it('says why a destination is unreachable, and where a direct net sends it', () => {
    const nm = netmap(peer(1, 'r', ['10.1.0.0/16']), peer(2, 'gw', ['0.0.0.0/0', '::/0'], { online: false }));
    const routing = new NodeRouting({ acceptRoutes: true }, resolverOf(nm));
    expect(routing.unroutable('10.1.2.3')).toBe('tailnet node is not up');
    routing.apply(nm);
    expect(routing.unroutable('10.1.2.3')).toBeUndefined();
    expect(routing.unroutable('100.64.0.99')).toBeUndefined(); // our own
    expect(routing.unroutable('10.2.0.1')).toBe('no tailnet node or route has this address');
    // A direct net: tailnet and routed addresses never go to the OS; the rest does.
    expect(routing.toOS('10.1.2.3')).toBe(false);
    expect(routing.toOS('100.64.0.1')).toBe(false);
    expect(routing.toOS('r')).toBe(false);
    expect(routing.toOS('10.2.0.1')).toBe(true);
    expect(routing.toOS('example.com')).toBe(true);
    expect(routing.classify('10.1.2.3')).toBe('peer');
    expect(routing.classify('example.com')).toBe('other');

    const viaExit = new NodeRouting({ exitNode: 'gw' }, resolverOf(nm));
    viaExit.apply(nm);
    expect(viaExit.unroutable('8.8.8.8')).toBe(
      "exit node 'gw' is offline (control says so); dials resume when it returns",
    );
    // Control's word can lag: a handshake the node completes after it was called offline lets
    // dials through, and a refused dial asks for one.
    let handshakeAt: number | undefined = Date.now() - 1_000;
    const poked: string[] = [];
    viaExit.liveness = { lastHandshake: () => handshakeAt, poke: (p) => poked.push(p.shortName) };
    expect(viaExit.unroutable('8.8.8.8')).toMatch(/offline/);
    expect(poked).toEqual(['gw']);
    handshakeAt = Date.now() + 1;
    expect(viaExit.unroutable('8.8.8.8')).toBeUndefined();
    viaExit.liveness = undefined;
    // With an exit node, only loopback stays on the OS: the rest never leaks around it.
    expect(viaExit.toOS('8.8.8.8')).toBe(false);
    expect(viaExit.toOS('example.com')).toBe(false);
    expect(viaExit.toOS('127.0.0.1')).toBe(true);
    expect(viaExit.toOS('localhost')).toBe(true);
  });
});

describe('RoutedNets (what a router forwards)', () => {
  const host = () => ({
    lans: new PrefixSet(['192.0.2.0/24']),
    addresses: new PrefixSet(['192.0.2.5/32', '127.0.0.1/32']),
  });
  const has = (nets: RoutedNets, ip: string) => {
    const b = parseIp(ip);
    return nets.contains(b, 0, b.length);
  };

  it('takes its subnet routes only, never loopback or the tailnet', () => {
    const nets = new RoutedNets(['10.1.0.0/16'], host);
    expect(has(nets, '10.1.2.3')).toBe(true);
    expect(has(nets, '10.2.0.1')).toBe(false);
    expect(has(nets, '127.0.0.1')).toBe(false);
    expect(has(nets, '100.64.0.1')).toBe(false);
    // Not even when an advertised route holds loopback.
    const wide = new RoutedNets(['127.0.0.0/8', '0.0.0.0/1'], host);
    expect([has(wide, '127.0.0.1'), has(wide, '10.0.0.1')]).toEqual([false, true]);
  });

  it('as an exit node takes the internet but not private ranges or its own LAN (only its own address there)', () => {
    const nets = new RoutedNets(['0.0.0.0/0', '::/0'], host);
    expect(has(nets, '198.51.100.10')).toBe(true);
    expect(has(nets, '2001:db8::1')).toBe(true);
    expect(has(nets, '10.1.2.3')).toBe(false);
    expect(has(nets, '192.0.2.9')).toBe(false);
    expect(has(nets, '192.0.2.5')).toBe(true);
    expect(has(nets, '127.0.0.1')).toBe(false);
    expect(has(nets, '100.64.0.1')).toBe(false);
  });
});
