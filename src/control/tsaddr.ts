/**
 * The tailnet's address facts that its control server and its nodes share (tailscale's
 * net/tsaddr): its own ranges, the exit routes, and what counts as a route a node can offer.
 *
 * A route is a prefix written with its bits and no host bits set (netip.ParsePrefix, as
 * net/netutil/routes.go CalcAdvertiseRoutes reads `--advertise-routes`). We also refuse
 * prefixes overlapping the tailnet's own ranges, which a router could only loop back into the
 * tailnet; tailscale's CLI lets them through and the route then shadows peers' addresses.
 */
import { type Cidr, cidrOverlaps, formatCidr, maskCidr, parseCidr } from '../netstack/address.js';
import { NetstackError } from '../netstack/errors.js';

/** The IPv4 and IPv6 default routes: what an exit node advertises (tsaddr.AllIPv4/AllIPv6). */
export const EXIT_ROUTES = ['0.0.0.0/0', '::/0'] as const;
/** The tailnet's own address ranges (tsaddr.CGNATRange, TailscaleULARange). */
export const TAILNET_RANGES = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'] as const;

/** A route that cannot be offered or approved, named in the message. */
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

/** `text` as a canonical prefix, or a RouteError naming it (not address/bits, or host bits set), in tailscale's words. */
export function canonicalPrefix(text: string): string {
  const notPrefix = () => new RouteError(text, `'${text}' is not a valid IP address or CIDR prefix`);
  if (!text.includes('/')) throw notPrefix();
  let c: Cidr;
  try {
    c = parseCidr(text.trim());
  } catch (err) {
    if (!(err instanceof NetstackError)) throw err;
    throw notPrefix();
  }
  const masked = maskCidr(c);
  const canonical = formatCidr(masked);
  if (!masked.address.every((b, i) => b === c.address[i])) {
    throw new RouteError(text, `'${text}' has non-address bits set; expected ${canonical}`);
  }
  return canonical;
}

/** `text` as a canonical route a node can offer: {@link canonicalPrefix}, and clear of the tailnet's ranges. */
export function canonicalRoute(text: string): string {
  const p = canonicalPrefix(text);
  // The exit routes hold everything, the tailnet's ranges too: a router's own addresses stay its stack's.
  if (isExitRoute(p)) return p;
  const c = parseCidr(p);
  const range = TAILNET_RANGES.find((t) => cidrOverlaps(c, parseCidr(t)));
  if (range)
    throw new RouteError(
      text,
      `'${text}' overlaps the tailnet's own range ${range}: a router cannot route it`,
    );
  return p;
}

/** Canonical routes sorted as tailscale sorts them: shorter prefixes first, then by text. */
export function sortRoutes(routes: Iterable<string>): string[] {
  const bits = (p: string) => Number(p.slice(p.indexOf('/') + 1));
  return [...routes].sort((a, b) => bits(a) - bits(b) || (a < b ? -1 : a > b ? 1 : 0));
}
