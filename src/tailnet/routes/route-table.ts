/**
 * Which peer carries which prefix, for a node that uses routes: Tailscale's route manager
 * (net/routemanager) re-derived. A peer's AllowedIPs from control are the only source of
 * prefixes (control puts there the subnet routes it made that peer primary for, and approved
 * exit routes); each is either one of the peer's own addresses, always routed, or a route:
 * - a subnet route counts only with `acceptRoutes` (Prefs.RouteAll, `--accept-routes`);
 * - an exit route (0.0.0.0/0, ::/0) only for the peer chosen as exit node (Prefs.ExitNodeID);
 * - when several peers carry the same prefix, the lowest node ID wins (routemanager.desiredFor
 *   with equal scores); longest-prefix match then picks among prefixes;
 * - an expired peer carries no routes.
 * The winners become the peers' WireGuard allowed IPs, so cryptokey routing (and so
 * `Device.hasRoute`) sends each destination to its peer, and replies from a routed address are
 * accepted only from that peer.
 */
import { isIP } from 'node:net';
import type { NetMap, NetNode } from '../../control/netmap.js';
import { parseIp, unmapIPv4 } from '../../netstack/address.js';
import { AllowedIPs } from '../../wireguard/allowedips.js';
import { unprefix } from '../status.js';
import { EXIT_ROUTES, isExitRoute, PrefixSet, TAILNET_PREFIXES } from './prefixes.js';

/** A node's choices about others' routes (tailscale up --accept-routes, --exit-node, --exit-node-allow-lan-access). */
export interface RoutePrefs {
  /** Use peers' subnet routes (default false, as `tailscale up`). */
  acceptRoutes?: boolean;
  /** The exit node: a peer's name (short or FQDN) or tailnet IP. */
  exitNode?: string;
  /** With an exit node, a direct net still reaches the host's LANs through the OS. */
  exitNodeAllowLANAccess?: boolean;
}

/** How a destination address is reached over the tailnet. */
export interface RouteMatch {
  /** `peer`: one of its addresses; `subnet`: a route it serves; `exit`: through it as exit node. */
  via: 'peer' | 'subnet' | 'exit';
  peer: NetNode;
  /** The prefix that matched. */
  prefix: string;
}

/** A peer's own addresses: single tailnet IPs, or among its Addresses (routemanager.peerViewOf). */
function isSelfPrefix(peer: NetNode, prefix: string): boolean {
  const single = prefix.endsWith('/32') || prefix.endsWith('/128');
  if (single && TAILNET_PREFIXES.has(unmapIPv4(parseIp(unprefix(prefix))))) return true;
  return peer.addresses.includes(prefix);
}

/** Whether a peer offers itself as exit node: both exit routes in its AllowedIPs (ipnstate ExitNodeOption). */
export function offersExitNode(peer: NetNode): boolean {
  return EXIT_ROUTES.every((r) => peer.allowedIPs.includes(r));
}

/** The subnet routes a peer serves (its AllowedIPs that are neither its addresses nor exit routes). */
export function subnetRoutesOf(peer: NetNode): string[] {
  return peer.allowedIPs.filter((p) => !isExitRoute(p) && !isSelfPrefix(peer, p));
}

/** The routes of one netmap under one node's prefs. */
export class RouteTable {
  private readonly allowed = new Map<number, string[]>();
  private readonly trie = new AllowedIPs<NetNode>();
  /** The peer in use as exit node, if one is chosen and found. */
  readonly exitNode: NetNode | undefined;
  /** Why the chosen exit node cannot be used (not found, or offers no exit routes); undefined when fine. */
  readonly exitProblem: string | undefined;

  constructor(
    nm: NetMap,
    readonly prefs: RoutePrefs,
  ) {
    const found = prefs.exitNode ? findPeer(nm, prefs.exitNode) : undefined;
    if (prefs.exitNode && !found) {
      this.exitProblem = `exit node '${prefs.exitNode}' is not a node of this tailnet's netmap`;
    } else if (found && !offersExitNode(found)) {
      this.exitProblem =
        `node '${found.shortName}' does not offer itself as an exit node: it must advertise ` +
        '0.0.0.0/0 and ::/0 (--advertise-exit-node) and control must approve them';
    } else {
      this.exitNode = found;
    }
    const taken = new Set<string>();
    for (const peer of [...nm.peers.values()].sort((a, b) => a.id - b.id)) {
      const mine: string[] = [];
      for (const prefix of peer.allowedIPs) {
        const self = isSelfPrefix(peer, prefix);
        const eligible =
          self ||
          (!peer.expired && (isExitRoute(prefix) ? peer === this.exitNode : prefs.acceptRoutes === true));
        // Our own addresses are never routed elsewhere; ties go to the lowest node ID.
        if (!eligible || (!self && taken.has(prefix))) continue;
        taken.add(prefix);
        mine.push(prefix);
        this.trie.insert(prefix, peer);
      }
      this.allowed.set(peer.id, mine);
    }
  }

  /** The WireGuard allowed IPs of `peer`: its addresses and the routes it wins. */
  allowedIPs(peer: NetNode): readonly string[] {
    return this.allowed.get(peer.id) ?? [];
  }

  /** Where packets to `ip` (an IP literal) go, or undefined when no peer takes them. */
  lookup(ip: string): RouteMatch | undefined {
    if (!isIP(ip)) return undefined;
    const addr = unmapIPv4(parseIp(ip));
    const peer = this.trie.lookup(addr);
    if (!peer) return undefined;
    let best: string | undefined;
    for (const p of this.allowedIPs(peer)) {
      if (new PrefixSet([p]).has(addr) && (!best || bits(p) > bits(best))) best = p;
    }
    const prefix = best ?? '';
    const via = isSelfPrefix(peer, prefix) ? 'peer' : isExitRoute(prefix) ? 'exit' : 'subnet';
    return { via, peer, prefix };
  }

  /**
   * Why `ip` has no route, in words a user can act on: a peer routes it but this node does not
   * accept routes, the chosen exit node is unusable, or no node has it.
   */
  whyUnrouted(ip: string, nm: NetMap): string {
    if (this.exitProblem) return this.exitProblem;
    if (isIP(ip) && !this.prefs.acceptRoutes) {
      const addr = unmapIPv4(parseIp(ip));
      for (const peer of nm.peers.values()) {
        const route = subnetRoutesOf(peer).find((p) => new PrefixSet([p]).has(addr));
        if (route) {
          return `${ip} is in ${route}, which '${peer.shortName}' routes, but this node does not accept routes (acceptRoutes / --accept-routes)`;
        }
      }
    }
    return 'no tailnet node or route has this address';
  }
}

/** The peer a name (short, FQDN with or without the dot, case-insensitive) or tailnet IP names. */
export function findPeer(nm: NetMap, nameOrIp: string): NetNode | undefined {
  const want = nameOrIp.toLowerCase().replace(/\.$/, '');
  for (const p of nm.peers.values()) {
    if (p.addresses.some((a) => unprefix(a) === want)) return p;
    const fqdn = p.name.toLowerCase().replace(/\.$/, '');
    if (want === fqdn || want === p.shortName.toLowerCase()) return p;
  }
  return undefined;
}

function bits(prefix: string): number {
  return Number(prefix.slice(prefix.indexOf('/') + 1));
}
