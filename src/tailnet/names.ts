/**
 * MagicDNS names (tailscale-wire.md "MagicDNS"): a node is `host.<tailnet domain>.`; a
 * dial target may be that FQDN with or without the trailing dot, the short name `host`
 * (searched in the tailnet's domain), or a 100.x / fd7a: literal. Matching is ASCII
 * case-insensitive (RFC 4343).
 */
import { isIP } from 'node:net';

/** What name resolution needs to know of a node. */
export interface NamedNode {
  /** FQDN with the trailing dot, e.g. `db-server.tail1234.ts.net.`. */
  name: string;
  /** Tailnet addresses without prefix length, IPv4 first. */
  addresses: readonly string[];
}

/** Thrown when a name matches no node of the tailnet. */
export class UnknownHostError extends Error {
  override readonly name = 'UnknownHostError';
  readonly code = 'ENOTFOUND';
  constructor(readonly host: string) {
    super(`unknown tailnet host '${host}': not a MagicDNS name or address of any node in the netmap`);
  }
}

/** The 100.64.0.0/10 CGNAT range and fd7a:115c:a1e0::/48 that Tailscale assigns from. */
export function isTailnetAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return a === 100 && b >= 64 && b <= 127;
  }
  return isIP(ip) === 6 && /^fd7a:115c:a1e0:/i.test(ip);
}

/** Resolves names against a set of nodes (self and peers). */
export class NameResolver {
  private readonly byName = new Map<string, NamedNode>();
  private readonly byShort = new Map<string, NamedNode>();
  private readonly byAddress = new Map<string, NamedNode>();

  constructor(
    nodes: Iterable<NamedNode>,
    /** The tailnet's DNS domain, e.g. `tail1234.ts.net` (no trailing dot). */
    readonly domain: string,
  ) {
    for (const n of nodes) {
      const fqdn = n.name.toLowerCase();
      if (!fqdn) continue;
      this.byName.set(fqdn.endsWith('.') ? fqdn : `${fqdn}.`, n);
      // Short names are the first label: what a search in the tailnet's domain finds.
      this.byShort.set(fqdn.split('.')[0]!, n);
      for (const a of n.addresses) this.byAddress.set(a.toLowerCase(), n);
    }
  }

  /** The node a host string names, or undefined. */
  lookup(host: string): NamedNode | undefined {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    if (isIP(h)) return this.byAddress.get(h);
    return this.byName.get(h.endsWith('.') ? h : `${h}.`) ?? this.byShort.get(h.replace(/\.$/, ''));
  }

  /** The addresses of the node `host` names (IPv4 first), or undefined. */
  addressesOf(host: string): readonly string[] | undefined {
    return this.lookup(host)?.addresses;
  }

  /**
   * The address to dial for `host`: a tailnet IP literal is used as given (even if no node
   * has it yet); a name gives the node's first address of the wanted family.
   */
  resolve(host: string, family?: 4 | 6): string {
    const h = host.replace(/^\[|\]$/g, '');
    if (isIP(h) && isTailnetAddress(h)) return h;
    const node = this.lookup(h);
    if (!node) throw new UnknownHostError(host);
    const addr = node.addresses.find((a) => family === undefined || isIP(a) === family);
    if (!addr) throw new UnknownHostError(host);
    return addr;
  }

  /** True if `host` is a tailnet name or address (used by the HTTP proxy to choose its route). */
  isTailnetHost(host: string): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    if (isIP(h)) return isTailnetAddress(h);
    if (h.endsWith('.ts.net') || h.endsWith('.ts.net.')) return true;
    const d = this.domain.toLowerCase();
    if (d && (h === d || h.endsWith(`.${d}`) || h.endsWith(`.${d}.`))) return true;
    return this.lookup(h) !== undefined;
  }
}
