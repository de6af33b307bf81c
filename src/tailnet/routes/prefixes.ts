/**
 * Route prefixes beyond the tailnet's own addresses: parsing what a node advertises
 * (`advertiseRoutes`, `advertiseExitNode`), telling exit routes from subnet routes, and small
 * prefix sets that the router, the filter and the client's route table share.
 *
 * What a node may advertise follows `tailscale up --advertise-routes` (net/netutil/routes.go
 * CalcAdvertiseRoutes): each entry a prefix with no host bits set, 0.0.0.0/0 only together with
 * ::/0. We also refuse prefixes that overlap the tailnet's own ranges (100.64.0.0/10,
 * fd7a:115c:a1e0::/48), which a router could only loop back into the tailnet; tailscale's CLI
 * lets them through and the route then shadows peers' addresses.
 */
import {
  type Cidr,
  cidrContains,
  cidrOverlaps,
  formatCidr,
  maskCidr,
  parseCidr,
} from '../../netstack/address.js';
import { NetstackError } from '../../netstack/errors.js';

/** The IPv4 and IPv6 default routes: what an exit node advertises (tsaddr.AllIPv4/AllIPv6). */
export const EXIT_ROUTES = ['0.0.0.0/0', '::/0'] as const;
/** The tailnet's own address ranges (tsaddr.CGNATRange, TailscaleULARange). */
export const TAILNET_RANGES = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'] as const;

/** A route a node cannot advertise, named in the message. */
export class RouteError extends Error {
  override readonly name = 'RouteError';
  constructor(
    readonly route: string,
    message: string,
  ) {
    super(message);
  }
}

/** Whether `prefix` (canonical text) is an exit route, 0.0.0.0/0 or ::/0 (tsaddr.IsExitRoute). */
export function isExitRoute(prefix: string): boolean {
  return prefix === '0.0.0.0/0' || prefix === '::/0';
}

/** `text` as a canonical prefix, or a RouteError naming it (not a prefix, or host bits set). */
export function canonicalPrefix(text: string): string {
  let c: Cidr;
  try {
    c = parseCidr(text.trim());
  } catch (err) {
    if (!(err instanceof NetstackError)) throw err;
    throw new RouteError(text, `'${text}' is not a valid IP address or CIDR prefix`);
  }
  const masked = maskCidr(c);
  const canonical = formatCidr(masked);
  if (!masked.address.every((b, i) => b === c.address[i])) {
    throw new RouteError(text, `'${text}' has non-address bits set; expected ${canonical}`);
  }
  return canonical;
}

/**
 * The routes a node advertises (Hostinfo.RoutableIPs), sorted as tailscale sorts them: shorter
 * prefixes first. Throws a RouteError that names the first bad entry.
 *
 * @example
 * advertisedRoutes(['192.168.1.0/24'], true); // ['0.0.0.0/0', '::/0', '192.168.1.0/24']
 */
export function advertisedRoutes(routes: readonly string[] = [], exitNode = false): string[] {
  const set = new Set<string>();
  for (const r of routes) {
    const p = canonicalPrefix(r);
    const c = parseCidr(p);
    // The exit routes hold everything, the tailnet's ranges too: a router's own addresses stay its stack's.
    for (const t of isExitRoute(p) ? [] : TAILNET_RANGES) {
      const range = parseCidr(t);
      if (cidrOverlaps(c, range)) {
        throw new RouteError(r, `'${r}' overlaps the tailnet's own range ${t}: a router cannot route it`);
      }
    }
    set.add(p);
  }
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
  return [...set].sort((a, b) => bitsOf(a) - bitsOf(b) || (a < b ? -1 : a > b ? 1 : 0));
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

function bitsOf(prefix: string): number {
  return Number(prefix.slice(prefix.indexOf('/') + 1));
}
