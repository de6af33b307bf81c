/**
 * Address allocation: IPv4 from 100.64.0.0/10 (the CGNAT range Tailscale uses) and IPv6 from
 * fd7a:115c:a1e0::/48, handed out sequentially like Headscale's `allocation: sequential`
 * (100.64.0.1 and fd7a:115c:a1e0::1 first), skipping Tailscale's reserved 100.100.100.0/24
 * (quad-100) and 100.115.92.0/23.
 */

const V4_BASE = (100 << 24) | (64 << 16);
const V4_SIZE = 1 << 22;

function v4(n: number): string {
  const a = (V4_BASE + n) >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

function reserved(addr: string): boolean {
  return addr.startsWith('100.100.100.') || addr.startsWith('100.115.92.') || addr.startsWith('100.115.93.');
}

/** The IPv6 address for index n: fd7a:115c:a1e0:: plus n in the low 32 bits. */
function v6(n: number): string {
  const hi = n >>> 16;
  const lo = n & 0xffff;
  return hi === 0
    ? `fd7a:115c:a1e0::${lo.toString(16)}`
    : `fd7a:115c:a1e0::${hi.toString(16)}:${lo.toString(16)}`;
}

/** Allocates the next free pair from `next`, avoiding `used` IPv4s; returns the pair and the new counter. */
export function allocateAddresses(
  next: number,
  used: ReadonlySet<string>,
): { ipv4: string; ipv6: string; next: number } {
  for (let i = 0; i < V4_SIZE; i++) {
    const n = ((next - 1 + i) % (V4_SIZE - 2)) + 1;
    const a = v4(n);
    if (!reserved(a) && !used.has(a) && (n & 255) !== 0 && (n & 255) !== 255) {
      return { ipv4: a, ipv6: v6(n), next: n + 1 };
    }
  }
  throw new RangeError('100.64.0.0/10 is full');
}
