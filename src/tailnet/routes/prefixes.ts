/**
 * Route prefixes beyond the tailnet's own addresses: what a node advertises (`advertiseRoutes`,
 * `advertiseExitNode`; each a route as control/tsaddr.ts has it, 0.0.0.0/0 only together with
 * ::/0, as `tailscale up --advertise-routes` has it) and small prefix sets that the router, the
 * filter and the client's route table share.
 */
import {
  canonicalRoute,
  EXIT_ROUTES,
  isExitRoute,
  RouteError,
  sortRoutes,
  TAILNET_RANGES,
} from '../../control/tsaddr.js';
import { type Cidr, cidrContains, formatCidr, maskCidr, parseCidr } from '../../netstack/address.js';

export { EXIT_ROUTES, isExitRoute, RouteError, TAILNET_RANGES };

/**
 * The routes a node advertises (Hostinfo.RoutableIPs), sorted as tailscale sorts them: shorter
 * prefixes first. Throws a RouteError that names the first bad entry.
 *
 * @example
 * advertisedRoutes(['192.168.1.0/24'], true); // ['0.0.0.0/0', '::/0', '192.168.1.0/24']
 */
export function advertisedRoutes(routes: readonly string[] = [], exitNode = false): string[] {
  const set = new Set<string>();
  for (const r of routes) set.add(canonicalRoute(r));
  const v4 = set.has('0.0.0.0/0');
  const v6 = set.has('::/0');
  if (v4 !== v6) {
    const [has, lacks] = v4 ? EXIT_ROUTES : [...EXIT_ROUTES].reverse();
    throw new RouteError(
      has!,
      `${has} advertised without ${lacks}: advertise both, or use advertiseExitNode`,
    );
  }
  if (exitNode) for (const r of EXIT_ROUTES) set.add(r);
  return sortRoutes(set);
}

/** A set of prefixes asked about addresses in packets (4 or 16 bytes at an offset). */
export class PrefixSet {
  private readonly cidrs: Cidr[];
  constructor(prefixes: Iterable<string>) {
    this.cidrs = [...prefixes].map((p) => parseCidr(p));
  }

  get size(): number {
    return this.cidrs.length;
  }

  /** Whether the address at `buf[offset]` (`length` 4 or 16 bytes) lies in one of the prefixes. */
  has(buf: Uint8Array, offset = 0, length = buf.length - offset): boolean {
    for (const c of this.cidrs) if (c.address.length === length && cidrContains(c, buf, offset)) return true;
    return false;
  }

  /** The prefixes, as text. */
  list(): string[] {
    return this.cidrs.map(formatCidr);
  }
}

/** The prefix of `bits` bits that holds `ip`, as canonical text (`192.168.1.7`, 24 → `192.168.1.0/24`). */
export function prefixOf(ip: string, bits: number): string {
  const c = parseCidr(ip);
  return formatCidr(maskCidr({ ...c, prefix: bits }));
}

/** The tailnet's own ranges as a {@link PrefixSet}: addresses there are nodes, never routed. */
export const TAILNET_PREFIXES = new PrefixSet(TAILNET_RANGES);
