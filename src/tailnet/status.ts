/**
 * What {@link Tailnet.status} and {@link Tailnet.whois} report, built from the netmap, the
 * WireGuard device's per-peer counters and magicsock's paths.
 */
import type { NetMap, NetNode } from '../control/netmap.js';
import type { PeerStatus as WireGuardPeerStatus } from '../wireguard/peer.js';
import { derpCodeIn, type NodeInternals } from './internals.js';
import { BASE_INNER_MTU } from './pmtu.js';
import { offersExitNode, subnetRoutesOf } from './routes/route-table.js';

/** One peer as {@link Tailnet.status} reports it. */
export interface PeerStatus {
  name: string;
  hostname: string;
  addresses: string[];
  online: boolean | undefined;
  /** `direct IP:PORT`, `derp REGION`, or `none`. */
  path: string;
  /**
   * The largest inner IP packet sent to it now: 1,420, or more on a direct path that path MTU
   * discovery proved larger (TailnetOptions.peerMtu).
   */
  mtu: number;
  /** Wall-clock ms of the latest WireGuard handshake, if any. */
  lastHandshake: number | undefined;
  rxBytes: number;
  txBytes: number;
  /** Whether WireGuard has this peer configured; peers are configured lazily, on first traffic. */
  configured: boolean;
  /** The subnet routes it serves to us (control made it their primary), e.g. `['192.168.1.0/24']`. */
  routes: string[];
  /** Whether it offers itself as an exit node (both exit routes approved). */
  exitNodeOption: boolean;
  /** Whether it is our exit node. */
  exitNode: boolean;
}

export interface TailnetStatus {
  running: boolean;
  self: {
    name: string;
    hostname: string;
    addresses: string[];
    derpRegion: number | undefined;
    /** The routes we advertise (advertiseRoutes, advertiseExitNode); control decides which it approves. */
    advertisedRoutes: string[];
  };
  peers: PeerStatus[];
  /** Inbound packets the packet filter dropped, by reason. */
  filterDrops: Record<string, number>;
  /** WireGuard peers configured (after traffic) and still lazy (known from the netmap only). */
  wireguardPeers: { configured: number; lazy: number };
}

/** A node's identity, as Tailscale's WhoIs gives it. */
export interface WhoIs {
  name: string;
  hostname: string;
  addresses: string[];
  /** The owning user's login name, when control sent its profile. */
  user: string | undefined;
}

/** `100.64.0.1/32` → `100.64.0.1`. */
export const unprefix = (a: string): string => a.replace(/\/\d+$/, '');
/** `nodekey:<hex>` (or any `kind:<hex>` key text) → its 32 bytes. */
export const keyBytes = (text: string): Uint8Array =>
  new Uint8Array(Buffer.from(text.slice(text.indexOf(':') + 1), 'hex'));

export type PathView =
  | { kind: 'direct'; addr: string; mtu?: number }
  | { kind: 'derp'; region: number }
  | { kind: 'none' };

/** Everything a status needs, gathered by the node. */
export interface StatusInputs {
  netmap: NetMap | undefined;
  wireguard: readonly WireGuardPeerStatus[];
  pathOf(nodeKey: Uint8Array): PathView;
  derpCode(region: number | undefined): string;
  running: boolean;
  hostname: string | undefined;
  homeRegion: number | undefined;
  filterDrops: Record<string, number>;
  peerCounts: { configured: number; lazy: number };
  advertisedRoutes: readonly string[];
  exitNode: NetNode | undefined;
}

export function buildStatus(i: StatusInputs): TailnetStatus {
  const nm = i.netmap;
  const wg = new Map(i.wireguard.map((p) => [p.publicKey, p]));
  const peers: PeerStatus[] = [];
  for (const p of nm?.peers.values() ?? []) {
    const nodeKey = keyBytes(p.nodeKey);
    const w = wg.get(Buffer.from(nodeKey).toString('base64'));
    const path = i.pathOf(nodeKey);
    peers.push({
      name: p.name,
      hostname: p.shortName,
      addresses: p.addresses.map(unprefix),
      online: p.online,
      path:
        path.kind === 'direct'
          ? `direct ${path.addr}`
          : path.kind === 'derp'
            ? `derp ${i.derpCode(path.region)}`
            : 'none',
      mtu: (path.kind === 'direct' ? path.mtu : undefined) ?? BASE_INNER_MTU,
      lastHandshake: w?.latestHandshake,
      rxBytes: w?.rxBytes ?? 0,
      txBytes: w?.txBytes ?? 0,
      configured: w !== undefined,
      routes: subnetRoutesOf(p),
      exitNodeOption: offersExitNode(p),
      exitNode: p === i.exitNode,
    });
  }
  return {
    running: i.running,
    self: {
      name: nm?.self.name ?? '',
      hostname: nm?.self.shortName ?? i.hostname ?? '',
      addresses: nm?.self.addresses.map(unprefix) ?? [],
      derpRegion: i.homeRegion,
      advertisedRoutes: [...i.advertisedRoutes],
    },
    peers,
    filterDrops: { ...i.filterDrops },
    wireguardPeers: { ...i.peerCounts },
  };
}

/** {@link buildStatus} of a node's parts now. */
export function statusOf(node: NodeInternals): TailnetStatus {
  const { netmap, device, magicsock } = node;
  return buildStatus({
    netmap,
    wireguard: device?.status().peers ?? [],
    pathOf: (k) => magicsock?.pathOf(k) ?? { kind: 'none' },
    derpCode: (r) => derpCodeIn(node.netmap, r),
    running: device !== undefined && !node.closed,
    hostname: node.opts.hostname,
    homeRegion: magicsock?.homeRegion,
    filterDrops: node.filter.stats.dropReasons,
    peerCounts: device?.peerCounts ?? { configured: 0, lazy: 0 },
    advertisedRoutes: node.routing.advertised,
    exitNode: node.routing.routes?.exitNode,
  });
}

/** The node of the netmap (self or a peer) that has `addr`, as a WhoIs answer. */
export function whoisIn(nm: NetMap, addr: string): WhoIs | undefined {
  for (const n of [nm.self, ...nm.peers.values()]) {
    if (!n.addresses.some((a) => unprefix(a) === addr)) continue;
    return {
      name: n.name,
      hostname: n.shortName,
      addresses: n.addresses.map(unprefix),
      user: nm.userProfiles.get(n.user)?.LoginName,
    };
  }
  return undefined;
}
