/**
 * A node's routes beyond its 100.x addresses, in one place for the Tailnet class: what it
 * advertises (Hostinfo.RoutableIPs) and forwards as a router, which peers' routes it uses
 * (RouteTable), and where each destination goes — over the tailnet, through the OS (only for
 * a `direct` net or a proxy), or nowhere, with the reason.
 *
 * With an exit node, as tailscaled in userspace networking (its SOCKS5 and HTTP proxies dial
 * through netstack whatever PeerForIP routes, net/tsdial UserDial): every destination that is
 * not the tailnet's or a routed subnet's goes through it, names outside the tailnet resolved
 * by the OS resolver. A `direct` net still sends loopback to the OS, and with
 * `exitNodeAllowLANAccess` the host's LANs (the routes tailscaled keeps local in TUN mode,
 * ipnlocal routerConfigLocked's LocalRoutes); tailscaled's userspace proxies ignore that
 * setting. While the chosen exit node is missing or offers no exit routes, such destinations
 * fail instead of leaking to the OS (the routemanager's blackhole).
 */
import { isIP } from 'node:net';
import type { NetMap, NetNode } from '../../control/netmap.js';
import type { Hostinfo } from '../../control/tailcfg.js';
import { parseIp, unmapIPv4 } from '../../netstack/address.js';
import type { Stack } from '../../netstack/stack.js';
import type { TcpEndpoint } from '../../netstack/tcp/endpoint.js';
import type { UdpEndpoint } from '../../netstack/udp.js';
import type { Device } from '../../wireguard/device.js';
import type { Logger } from '../../wireguard/logger.js';
import type { NameResolver } from '../names.js';
import type { Socks5Destination } from '../socks5-server.js';
import { keyBytes, unprefix } from '../status.js';
import { type HostNetworks, hostNetworks, RoutedNets } from './local-nets.js';
import { advertisedRoutes, PrefixSet, TAILNET_PREFIXES } from './prefixes.js';
import { type RouteMatch, type RoutePrefs, RouteTable } from './route-table.js';
import { SubnetRouter } from './router.js';

/** What a node is told about routes (the route fields of TailnetOptions). */
export interface RouteOptions extends RoutePrefs {
  /** Prefixes this node routes for the tailnet (`--advertise-routes`); control must approve them. */
  advertiseRoutes?: string[];
  /** Offer this node as an exit node: advertise 0.0.0.0/0 and ::/0 (`--advertise-exit-node`). */
  advertiseExitNode?: boolean;
}

/** What routing asks the WireGuard side about a peer (tailnet.ts supplies it once the device exists). */
export interface PeerLiveness {
  /** Wall-clock ms of the last handshake completed with the peer, if any. */
  lastHandshake(peer: NetNode): number | undefined;
  /** Starts a handshake with the peer (WireGuard sends at most one per REKEY_TIMEOUT). */
  poke(peer: NetNode): void;
}

/** A peer's liveness as `dev` knows it (a lazy peer is configured to be poked). */
export function deviceLiveness(dev: Device): PeerLiveness {
  return {
    lastHandshake: (p) => dev.getPeer(keyBytes(p.nodeKey))?.latestHandshakeWall,
    poke: (p) => dev.peerForKey(keyBytes(p.nodeKey))?.initiateHandshake(false),
  };
}

/** Thrown by `up()` when the chosen exit node cannot be used; the message says why. */
export class ExitNodeError extends Error {
  override readonly name = 'ExitNodeError';
}

const loopback = new PrefixSet(['127.0.0.0/8', '::1/128']);

/** One node's routing state; {@link apply} each netmap, {@link start} once the stack exists. */
export class NodeRouting {
  /** The routes this node advertises, canonical and sorted (validated at construction). */
  readonly advertised: readonly string[];
  /** What this node forwards to, when it advertises anything. */
  readonly routedNets: RoutedNets | undefined;
  private table: RouteTable | undefined;
  private netmap: NetMap | undefined;
  private router: SubnetRouter | undefined;
  private host: { nets: HostNetworks; at: number } | undefined;
  /** When each peer control calls offline was first seen so (ms since the epoch). */
  private readonly offlineSince = new Map<number, number>();
  /** Set once the device exists. */
  liveness: PeerLiveness | undefined;

  /** Throws a RouteError naming a route that cannot be advertised. `names`: the node's MagicDNS names now. */
  constructor(
    private readonly opts: RouteOptions,
    private readonly names: () => NameResolver,
  ) {
    this.advertised = advertisedRoutes(opts.advertiseRoutes, opts.advertiseExitNode);
    this.routedNets = this.advertised.length > 0 ? new RoutedNets(this.advertised) : undefined;
  }

  /** The Hostinfo fields that advertise our routes. */
  hostinfo(): Partial<Hostinfo> {
    return this.advertised.length > 0 ? { RoutableIPs: [...this.advertised] } : {};
  }

  /** Recomputes the peers' routes for a new netmap. */
  apply(nm: NetMap): RouteTable {
    this.netmap = nm;
    for (const p of nm.peers.values()) {
      if (p.online !== false) this.offlineSince.delete(p.id);
      else if (!this.offlineSince.has(p.id)) this.offlineSince.set(p.id, Date.now());
    }
    this.table = new RouteTable(nm, this.opts);
    return this.table;
  }

  /** The route table of the last netmap. */
  get routes(): RouteTable | undefined {
    return this.table;
  }

  /** Why the chosen exit node cannot be used (for up()), or undefined. */
  exitProblem(): string | undefined {
    return this.table?.exitProblem;
  }

  /** The WireGuard allowed IPs of a peer under our prefs. */
  allowedIPs(peer: NetNode): readonly string[] {
    return this.table?.allowedIPs(peer) ?? peer.addresses;
  }

  /** Starts forwarding routed traffic to the host's sockets, if this node advertises routes. */
  start(parts: { stack: Stack; tcp: TcpEndpoint; udp: UdpEndpoint; logger: Logger }): void {
    if (!this.routedNets || this.router) return;
    this.router = new SubnetRouter({ ...parts, nets: this.routedNets });
  }

  /** The router's counters, when this node is one. */
  get routerStats(): SubnetRouter['stats'] | undefined {
    return this.router?.stats;
  }

  close(): void {
    this.router?.close();
  }

  /** Where packets to an IP literal go over the tailnet, if anywhere. */
  lookup(ip: string): RouteMatch | undefined {
    return this.table?.lookup(ip);
  }

  /** Why packets to `ip` cannot go anywhere (EHOSTUNREACH's reason), or undefined when they can. */
  unroutable(ip: string): string | undefined {
    const nm = this.netmap;
    if (!nm || !this.table) return 'tailnet node is not up';
    if (nm.self.addresses.some((a) => unprefix(a) === ip)) return undefined;
    const m = this.table.lookup(ip);
    if (m?.via === 'exit' && m.peer.online === false && !this.answeredSinceOffline(m.peer)) {
      // Control's word can lag (Headscale may keep a node that came back marked offline), so a
      // refused dial also asks the node itself: once it completes a handshake, dials go through.
      this.liveness?.poke(m.peer);
      return `exit node '${m.peer.shortName}' is offline (control says so); dials resume when it returns`;
    }
    return m ? undefined : this.table.whyUnrouted(ip, nm);
  }

  /** Whether `peer` completed a WireGuard handshake after control called it offline. */
  private answeredSinceOffline(peer: NetNode): boolean {
    const since = this.offlineSince.get(peer.id);
    const last = this.liveness?.lastHandshake(peer);
    return since !== undefined && last !== undefined && last > since;
  }

  /** Whether an exit node is chosen: names outside the tailnet then resolve by the OS and go through it. */
  exitNodeChosen(): boolean {
    return Boolean(this.opts.exitNode);
  }

  /**
   * Whether a `direct` net (or a proxy) sends `host` to the OS: never a tailnet name or
   * address, a routed one, or (with an exit node) anything but loopback and, with
   * exitNodeAllowLANAccess, the host's LANs.
   */
  toOS(host: string): boolean {
    const h = host.replace(/^\[|\]$/g, '');
    if (!isIP(h)) {
      if (this.names().isTailnetHost(h)) return false;
      if (/^localhost\.?$|\.localhost\.?$/i.test(h)) return true;
      return !this.exitNodeChosen();
    }
    const addr = unmapIPv4(parseIp(h));
    if (TAILNET_PREFIXES.has(addr)) return false;
    const m = this.table?.lookup(h);
    if (m && m.via !== 'exit') return false;
    if (!this.exitNodeChosen()) return true;
    if (loopback.has(addr)) return true;
    return this.opts.exitNodeAllowLANAccess === true && this.hostNets().lans.has(addr);
  }

  /** Where a SOCKS5 destination lies (socks5-server.ts): a routed or exit destination counts as a peer. */
  classify(host: string): Socks5Destination {
    const h = host.replace(/^\[|\]$/g, '');
    if (this.names().lookup(h) || this.lookup(h)) return 'peer';
    if (this.names().isTailnetHost(h)) return 'tailnet-unknown';
    return this.toOS(h) ? 'other' : 'peer';
  }

  private hostNets(): HostNetworks {
    if (!this.host || Date.now() - this.host.at > 5_000) this.host = { nets: hostNetworks(), at: Date.now() };
    return this.host.nets;
  }
}
