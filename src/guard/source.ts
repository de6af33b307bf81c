/**
 * The key a connection's limits are counted under: its IPv4 address, or the /64 its IPv6 address
 * is in. A host is usually handed a whole /64 and can pick any address inside it, so counting
 * single IPv6 addresses would let one host multiply its share (wireguard-go's
 * ratelimiter/ratelimiter.go groups IPv6 sources by /64 for the same reason).
 */

/** What an unknown (already closed) peer address counts as. */
const UNKNOWN = 'unknown';

/**
 * `1.2.3.4` for IPv4 (also when written IPv4-mapped, `::ffff:1.2.3.4`), `2001:db8:1:2::/64`
 * for IPv6, `unknown` when the address is missing or unreadable.
 *
 * @example
 * sourceKey('::ffff:192.0.2.7');          // '192.0.2.7'
 * sourceKey('2001:db8:0:1:aa::5%eth0');   // '2001:db8:0:1::/64'
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return UNKNOWN;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const groups = ipv6Groups(address.replace(/%.*$/, ''));
  if (groups === undefined) return UNKNOWN;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 literal (a trailing dotted quad included), or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const q = g.split('.').map(Number);
        if (q.length !== 4 || q.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return undefined;
        out.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
      } else if (/^[0-9a-f]{1,4}$/i.test(g)) out.push(Number.parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
