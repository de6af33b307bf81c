/**
 * The host's own networks, as a router and an exit node's user need them:
 * - what a router takes packets for (ipnlocal updateFilterLocked's localNets beyond our own
 *   addresses): its advertised subnet routes, and with the exit routes the whole internet minus
 *   the host's LANs (re-adding the host's own addresses) minus the private, link-local,
 *   multicast and tailnet ranges (shrinkDefaultRoute, removeFromDefaultRoute): an exit node is
 *   a "guest Wi-Fi" that reaches its LANs only through subnet routes advertised as well. Unlike
 *   tailscaled we never forward to loopback: a peer that may use our exit node does not thereby
 *   reach this host's 127.0.0.1 services;
 * - what "the LAN" is for exitNodeAllowLANAccess (ipnlocal internalAndExternalInterfaces): the
 *   prefixes of the host's non-loopback interfaces, tailnet addresses excluded.
 */
import { networkInterfaces } from 'node:os';
import { parseIp, unmapIPv4 } from '../../netstack/address.js';
import { isExitRoute, PrefixSet, prefixOf, TAILNET_PREFIXES, TAILNET_RANGES } from './prefixes.js';

/** ipnlocal removeFromDefaultRoute: never reached through an exit node. */
const NOT_THROUGH_EXIT = new PrefixSet([
  '192.168.0.0/16',
  '172.16.0.0/12',
  '10.0.0.0/8',
  '169.254.0.0/16',
  '224.0.0.0/4',
  'fe80::/10',
  'ff00::/8',
  ...TAILNET_RANGES,
]);
const LOOPBACK = new PrefixSet(['127.0.0.0/8', '::1/128']);

/** The host's interface prefixes (not single addresses, not tailnet) and addresses. */
export interface HostNetworks {
  /** Prefixes of non-loopback interfaces: the LANs. */
  lans: PrefixSet;
  /** Every address of every interface (loopback included). */
  addresses: PrefixSet;
}

/** Reads the host's interfaces now. */
export function hostNetworks(): HostNetworks {
  const lans: string[] = [];
  const addresses: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const ip = a.address.replace(/%.*$/, '');
      const bits = Number(a.cidr?.slice(a.cidr.indexOf('/') + 1) ?? (a.family === 'IPv4' ? 32 : 128));
      if (TAILNET_PREFIXES.has(unmapIPv4(parseIp(ip)))) continue;
      addresses.push(`${ip}/${a.family === 'IPv4' ? 32 : 128}`);
      const single = bits === (a.family === 'IPv4' ? 32 : 128);
      if (!a.internal && !single && a.cidr) lans.push(prefixOf(ip, bits));
    }
  }
  return { lans: new PrefixSet(lans), addresses: new PrefixSet(addresses) };
}

/**
 * What a router takes packets for, beyond its own addresses: `advertised` subnet routes, and
 * with the exit routes the internet as described above. `host` is read again when older than
 * `refreshMs` (interfaces come and go).
 */
export class RoutedNets {
  private readonly subnets: PrefixSet;
  private readonly exit4: boolean;
  private readonly exit6: boolean;
  private host: HostNetworks;
  private readAt: number;

  constructor(
    advertised: readonly string[],
    private readonly readHost: () => HostNetworks = hostNetworks,
    private readonly refreshMs = 5_000,
  ) {
    this.subnets = new PrefixSet(advertised.filter((p) => !isExitRoute(p)));
    this.exit4 = advertised.includes('0.0.0.0/0');
    this.exit6 = advertised.includes('::/0');
    this.host = readHost();
    this.readAt = Date.now();
  }

  /** Whether the address at `buf[offset]` (`length` 4 or 16 bytes) is one this router forwards to. */
  contains(buf: Uint8Array, offset: number, length: number): boolean {
    // Loopback first: an advertised route that holds it (127.0.0.0/8, ::/1…) must not open this host's
    // 127.0.0.1 services to the tailnet.
    if (LOOPBACK.has(buf, offset, length)) return false;
    if (this.subnets.has(buf, offset, length)) return true;
    if (!(length === 4 ? this.exit4 : this.exit6)) return false;
    if (NOT_THROUGH_EXIT.has(buf, offset, length)) return false;
    const host = this.hostNow();
    if (host.addresses.has(buf, offset, length)) return true;
    return !host.lans.has(buf, offset, length);
  }

  private hostNow(): HostNetworks {
    if (Date.now() - this.readAt > this.refreshMs) {
      this.host = this.readHost();
      this.readAt = Date.now();
    }
    return this.host;
  }
}
