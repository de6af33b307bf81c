import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/control/errors.js';
import { applyMapResponse, findPeer, type NetMap } from '../../src/control/netmap.js';
import type { MapResponse, Node } from '../../src/control/tailcfg.js';

const key = (n: number) => `nodekey:${n.toString(16).padStart(64, '0')}`;

function node(id: number, extra: Partial<Node> = {}): Node {
  return {
    ID: id,
    StableID: `s${id}`,
    Name: `host${id}.tailnet.test.`,
    User: 1,
    Key: key(id),
    Addresses: [`100.64.0.${id}/32`],
    ...extra,
  };
}

function start(peers: Node[] = [node(2), node(3)]): NetMap {
  return applyMapResponse(undefined, {
    Node: node(1),
    Peers: peers,
    DERPMap: { Regions: { '1': { RegionID: 1, RegionCode: 'a', RegionName: 'A', Nodes: [] } } },
    PacketFilter: [{ SrcIPs: ['*'] }],
    Domain: 'tailnet.test',
  }).netmap;
}

describe('applyMapResponse', () => {
  it('needs Node in the first message', () => {
    expect(() => applyMapResponse(undefined, { Peers: [node(2)] })).toThrow(ProtocolError);
  });

  it('builds a frozen snapshot and never changes the previous one', () => {
    const a = start();
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.self)).toBe(true);
    const { netmap: b, changes } = applyMapResponse(a, { PeersRemoved: [2] });
    expect(a.peers.has(2)).toBe(true);
    expect(b.peers.has(2)).toBe(false);
    expect(changes).toEqual([{ kind: 'peer-removed', id: 2, name: 'host2.tailnet.test.' }]);
    expect(b.seq).toBe(a.seq + 1);
  });

  it('replaces the peer list when Peers is non-empty and reports adds, changes and removals', () => {
    const a = start();
    const { netmap, changes } = applyMapResponse(a, { Peers: [node(3, { Online: true }), node(4)] });
    expect([...netmap.peers.keys()].sort()).toEqual([3, 4]);
    expect(changes.map((c) => c.kind).sort()).toEqual(['peer-added', 'peer-changed', 'peer-removed']);
  });

  it('treats an empty Peers list as "no change", as Go does', () => {
    const { netmap } = applyMapResponse(start(), { Peers: [] });
    expect(netmap.peers.size).toBe(2);
  });

  it('applies PeersChanged, OnlineChange, PeerSeenChange and PeersChangedPatch', () => {
    const now = new Date('2026-01-02T03:04:05.000Z');
    const { netmap, changes } = applyMapResponse(
      start(),
      {
        PeersChanged: [node(5, { Hostinfo: { Hostname: 'five' } })],
        OnlineChange: { '2': true, '99': false },
        PeerSeenChange: { '3': true },
        PeersChangedPatch: [
          {
            NodeID: 2,
            Endpoints: ['127.0.0.1:41641'],
            DERPRegion: 7,
            DiscoKey: `discokey:${'1'.repeat(64)}`,
          },
          { NodeID: 42, Online: true },
        ],
      },
      () => now,
    );
    expect(netmap.peers.get(5)?.hostinfo?.Hostname).toBe('five');
    const p2 = netmap.peers.get(2)!;
    expect(p2.online).toBe(true);
    expect(p2.endpoints).toEqual(['127.0.0.1:41641']);
    expect(p2.homeDERP).toBe(7);
    expect(p2.discoKey).toBe(`discokey:${'1'.repeat(64)}`);
    expect(netmap.peers.get(3)?.lastSeen).toBe(now.toISOString());
    expect(netmap.peers.has(42)).toBe(false);
    const patch = changes.find(
      (c) => c.kind === 'peer-changed' && c.id === 2 && c.fields.includes('endpoints'),
    );
    expect(patch).toBeDefined();
  });

  it('keeps the DERP regions when a DERPMap arrives without Regions', () => {
    const { netmap } = applyMapResponse(start(), {
      DERPMap: { HomeParams: { RegionScore: { '1': 0.5 } } } as unknown as MapResponse['DERPMap'],
    });
    expect(Object.keys(netmap.derpMap!.Regions)).toEqual(['1']);
    expect(netmap.derpMap!.HomeParams).toEqual({ RegionScore: { '1': 0.5 } });
  });

  it('merges named PacketFilters chunks in key order and clears them with "*": null', () => {
    const a = start();
    const { netmap: b } = applyMapResponse(a, { PacketFilters: { z: [{ SrcIPs: ['10.0.0.1'] }] } });
    expect(b.packetFilter.map((r) => r.SrcIPs[0])).toEqual(['*', '10.0.0.1']);
    const { netmap: c } = applyMapResponse(b, { PacketFilters: { '*': null, y: [{ SrcIPs: ['y'] }] } });
    expect(c.packetFilter.map((r) => r.SrcIPs[0])).toEqual(['y']);
    const { netmap: d, changes } = applyMapResponse(c, { PacketFilter: [] });
    expect(d.packetFilter.map((r) => r.SrcIPs[0])).toEqual(['y']);
    expect(changes).toEqual([{ kind: 'packet-filter' }]);
  });

  it('reads the legacy DERP field and treats nil AllowedIPs as Addresses', () => {
    const nm = start([node(2, { DERP: '127.3.3.40:13', AllowedIPs: null })]);
    const p = nm.peers.get(2)!;
    expect(p.homeDERP).toBe(13);
    expect(p.allowedIPs).toEqual(['100.64.0.2/32']);
  });

  it('derives the MagicDNS suffix from our own name', () => {
    expect(start().magicDNSSuffix).toBe('tailnet.test');
  });

  it('finds peers by short name, FQDN and address', () => {
    const nm = start();
    expect(findPeer(nm, 'host2')?.id).toBe(2);
    expect(findPeer(nm, 'HOST3.tailnet.test.')?.id).toBe(3);
    expect(findPeer(nm, '100.64.0.3')?.id).toBe(3);
    expect(findPeer(nm, 'nobody')).toBeUndefined();
  });

  it('reports DNS and domain changes only when they come', () => {
    const a = start();
    expect(applyMapResponse(a, { KeepAlive: false }).changes).toEqual([]);
    const { changes } = applyMapResponse(a, { DNSConfig: { Domains: ['x'] }, Domain: 'other.test' });
    expect(changes).toEqual([{ kind: 'dns' }, { kind: 'domain' }]);
  });
});
