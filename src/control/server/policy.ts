/**
 * A small ACL policy compiled to tailcfg.FilterRules (the shape of Tailscale's and Headscale's
 * `acls`, without groups or autogroups). Selectors: `*`, a node's name, `tag:x`, an IP or a
 * CIDR; destinations add `:ports` (`*`, `22`, `80-90`, comma-separated). No policy, or one
 * without `acls`, allows everything (tailcfg.FilterAllowAll). Each node gets only the rules
 * whose destinations include it, rewritten to its own addresses, as Headscale's
 * ReduceFilterRules does; an empty list means "deny all inbound".
 *
 * A subnet router or exit node enforces rules for what it routes too: an IP or CIDR destination
 * that overlaps a route it serves is kept as written, and `*` covers its routes as well as its
 * addresses (in Tailscale's policy `*` holds subnets and, through exit nodes, the internet).
 */
import { cidrContains, cidrOverlaps, parseCidr } from '../../netstack/address.js';
import { NetstackError } from '../../netstack/errors.js';
import type { FilterRule, NetPortRange } from '../tailcfg.js';
import { TAILNET_RANGES } from '../tsaddr.js';
import { type AutoApprovers, autoApproversProblem } from './routes.js';

export interface AclRule {
  action: 'accept';
  src: string[];
  dst: string[];
  /** tcp, udp or icmp; default: TCP, UDP and ICMP (tailcfg's default IPProto). */
  proto?: 'tcp' | 'udp' | 'icmp';
}

export interface AclPolicy {
  acls?: AclRule[];
  /** Routes approved without an admin, by who announces them (routes.ts). */
  autoApprovers?: AutoApprovers;
}

/** What policy compilation needs to know about a node. */
export interface PolicyNode {
  name: string;
  tags: readonly string[];
  addresses: readonly string[];
  /** The routes it serves as subnet router or exit node (default none). */
  routes?: readonly string[];
}

/** tailcfg.FilterAllowAll: any source, any destination, any port. */
export const FILTER_ALLOW_ALL: FilterRule[] = [
  { SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] },
];

/** The tailnet's own ranges: a rule's destination inside them is a node, never a route. */
const TAILNET_CIDRS = TAILNET_RANGES.map((r) => parseCidr(r));
const PROTOS: Record<string, number[]> = { tcp: [6], udp: [17], icmp: [1, 58] };

/** Thrown for a policy that cannot be compiled. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

function isAddressLike(sel: string): boolean {
  return /^[0-9.]+(\/\d+)?$/.test(sel) || (sel.includes(':') && /^[0-9a-f:]+(\/\d+)?$/i.test(sel));
}

function matches(sel: string, n: PolicyNode): boolean {
  if (sel === '*') return true;
  if (sel.startsWith('tag:')) return n.tags.includes(sel);
  if (isAddressLike(sel)) {
    const c = parseCidr(sel);
    return n.addresses.some((a) => {
      const ip = parseCidr(a).address;
      return ip.length === c.address.length && cidrContains(c, ip);
    });
  }
  return n.name.toLowerCase() === sel.toLowerCase();
}

/** The destination IPs `sel` gives `self`: its addresses if it names the node, and the routed part. */
function dstIPs(sel: string, self: PolicyNode): string[] {
  const ips = matches(sel, self) ? [...self.addresses] : [];
  const routes = self.routes ?? [];
  if (sel === '*') ips.push(...routes);
  else if (isAddressLike(sel) && routes.length > 0) {
    // Tailnet addresses are never routed (peers reach them directly), even by an exit node.
    const c = parseCidr(sel);
    const inTailnet = TAILNET_CIDRS.some((t) => t.prefix <= c.prefix && cidrContains(t, c.address));
    if (!inTailnet && routes.some((r) => cidrOverlaps(parseCidr(r), c))) ips.push(sel);
  }
  return ips;
}

/** Splits `selector:ports` at the last colon (selectors may be IPv6). */
export function parseDst(dst: string): { sel: string; ports: { First: number; Last: number }[] } {
  const i = dst.lastIndexOf(':');
  if (i <= 0) throw new PolicyError(`destination '${dst}' needs ':ports'`);
  const sel = dst.slice(0, i);
  const spec = dst.slice(i + 1);
  if (spec === '*') return { sel, ports: [{ First: 0, Last: 65535 }] };
  const ports = spec.split(',').map((p) => {
    const [a, b] = p.split('-');
    const first = Number(a);
    const last = b === undefined ? first : Number(b);
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last > 65535 || first > last) {
      throw new PolicyError(`bad port range '${p}' in '${dst}'`);
    }
    return { First: first, Last: last };
  });
  return { sel, ports };
}

/** Checks a policy's syntax; throws PolicyError. */
export function validatePolicy(p: AclPolicy): void {
  for (const r of p.acls ?? []) {
    if (r.action !== 'accept') throw new PolicyError(`unsupported action '${String(r.action)}'`);
    if (!Array.isArray(r.src) || !Array.isArray(r.dst))
      throw new PolicyError('each acl needs src and dst lists');
    if (r.proto !== undefined && !(r.proto in PROTOS))
      throw new PolicyError(`unsupported proto '${r.proto}'`);
    for (const d of r.dst) {
      const { sel } = parseDst(d);
      if (isAddressLike(sel)) {
        try {
          parseCidr(sel);
        } catch (err) {
          if (!(err instanceof NetstackError)) throw err;
          throw new PolicyError(`'${sel}' in '${d}' is not an IP address or prefix`, { cause: err });
        }
      }
    }
  }
  const problem = autoApproversProblem(p.autoApprovers);
  if (problem) throw new PolicyError(problem);
}

/** The filter rules `self` should enforce on inbound traffic. */
export function compileFilter(
  policy: AclPolicy | undefined,
  all: readonly PolicyNode[],
  self: PolicyNode,
): FilterRule[] {
  if (policy?.acls === undefined) return FILTER_ALLOW_ALL;
  const rules: FilterRule[] = [];
  for (const acl of policy.acls) {
    const dstPorts: NetPortRange[] = [];
    for (const d of acl.dst) {
      const { sel, ports } = parseDst(d);
      for (const ip of dstIPs(sel, self)) for (const pr of ports) dstPorts.push({ IP: ip, Ports: pr });
    }
    if (dstPorts.length === 0) continue;
    const src = new Set<string>();
    for (const s of acl.src) {
      if (s === '*') src.add('*');
      else if (isAddressLike(s)) src.add(s);
      else {
        for (const n of all) if (matches(s, n)) for (const a of n.addresses) src.add(a);
      }
    }
    if (src.size === 0) continue;
    const rule: FilterRule = { SrcIPs: src.has('*') ? ['*'] : [...src].sort(), DstPorts: dstPorts };
    if (acl.proto) rule.IPProto = PROTOS[acl.proto];
    rules.push(rule);
  }
  return rules;
}
