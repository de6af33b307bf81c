/**
 * The MTU of the interface a UDP datagram to an address leaves by, read from Linux's /proc and
 * /sys. Path MTU probes must not be larger: node:dgram cannot set IP_MTU_DISCOVER to
 * IP_PMTUDISC_DO, and under the default IP_PMTUDISC_WANT Linux fragments a datagram larger than
 * the route's MTU itself, so a too-big probe would arrive as fragments and look like success.
 * Only the main routing table is read (policy routing is not followed); where nothing can be
 * read (another OS, no /proc) the answer is undefined and no path is raised.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseIp } from '../netstack/address.js';

/** Reads a file, or undefined where it does not exist (another OS, a sandbox without /proc). */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // not Linux, or not visible here: the caller raises nothing
  }
};

/** The egress interface MTU toward `ip` (dotted IPv4 or IPv6 text), or undefined if unknown. */
export function egressMtu(
  ip: string,
  read: ReadText = readText,
  locals = localAddresses,
): number | undefined {
  let bytes: Uint8Array;
  try {
    bytes = parseIp(ip);
  } catch {
    return undefined; // not an address: nothing to route
  }
  const loopback = bytes.length === 4 ? bytes[0] === 127 : bytes.every((b, i) => b === (i === 15 ? 1 : 0));
  // Our own addresses are reached through the loopback interface (the kernel's local table).
  const dev = loopback || locals().has(ip) ? 'lo' : routeDevice(bytes, read);
  if (!dev || !/^[\w.@:-]+$/.test(dev)) return undefined;
  const mtu = Number(read(`/sys/class/net/${dev}/mtu`)?.trim());
  return Number.isInteger(mtu) && mtu > 0 ? mtu : undefined;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** Longest-prefix match in the main table (/proc/net/route, /proc/net/ipv6_route). */
function routeDevice(ip: Uint8Array, read: ReadText): string | undefined {
  return ip.length === 4 ? routeDevice4(ip, read) : routeDevice6(ip, read);
}

function routeDevice4(ip: Uint8Array, read: ReadText): string | undefined {
  const text = read('/proc/net/route');
  if (!text) return undefined;
  const addr = ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0;
  let best: { dev: string; len: number; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = Number.parseInt(f[3]!, 16);
    if (!(flags & 1)) continue; // RTF_UP
    // Destination and mask are the kernel's little-endian words in hex.
    const dst = swap32(Number.parseInt(f[1]!, 16));
    const mask = swap32(Number.parseInt(f[7]!, 16));
    if ((addr & mask) >>> 0 !== (dst & mask) >>> 0) continue;
    const len = popcount(mask);
    const metric = Number(f[6]);
    if (!best || len > best.len || (len === best.len && metric < best.metric))
      best = { dev: f[0]!, len, metric };
  }
  return best?.dev;
}

function routeDevice6(ip: Uint8Array, read: ReadText): string | undefined {
  const text = read('/proc/net/ipv6_route');
  if (!text) return undefined;
  let best: { dev: string; len: number; metric: number } | undefined;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const len = Number.parseInt(f[1]!, 16);
    const flags = Number.parseInt(f[8]!, 16);
    if (!(flags & 1) || flags & 0x200) continue; // RTF_UP, not RTF_REJECT
    const dst = Buffer.from(f[0]!, 'hex');
    if (!prefixMatch(ip, dst, len)) continue;
    const metric = Number.parseInt(f[5]!, 16);
    if (!best || len > best.len || (len === best.len && metric < best.metric))
      best = { dev: f[9]!, len, metric };
  }
  return best?.dev;
}

function prefixMatch(a: Uint8Array, b: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) {
    const bit = 0x80 >> (i & 7);
    if ((a[i >> 3]! & bit) !== (b[i >> 3]! & bit)) return false;
  }
  return true;
}

const swap32 = (x: number) =>
  (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | ((x >>> 24) & 0xff)) >>> 0;

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v; v >>>= 1) n += v & 1;
  return n;
}
