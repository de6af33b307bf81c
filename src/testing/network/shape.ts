/**
 * What a link of the in-memory network does to the datagrams crossing it: loss, delay (with
 * jitter), reordering, an MTU, and UDP blocked outright. Checked when the network is built, so
 * that an impossible shape fails with a message instead of behaving oddly.
 */

/** A link's behaviour. Every field is optional: the default is a perfect link. */
export interface LinkShape {
  /** Probability a datagram is lost, 0 to 1. */
  loss?: number;
  /** One-way delay in ms (0: the next microtask). */
  delayMs?: number;
  /** Extra delay up to this many ms, drawn per datagram. */
  jitterMs?: number;
  /** Probability a datagram is held back and delivered after the next one, 0 to 1. */
  reorder?: number;
  /** The largest IP packet the link carries (UDP payload plus 28 or 48 bytes of headers). */
  mtu?: number;
  /** Drop all UDP: a network that lets only TCP through. */
  udpBlocked?: boolean;
}

/** Thrown for a network that cannot be built as asked; the message names the field and the value. */
export class TestNetworkError extends Error {
  override readonly name = 'TestNetworkError';
}

/** The smallest MTU an IPv4 link may have (RFC 791), the largest an IPv6 jumbogram-free one can. */
const MIN_MTU = 68;
const MAX_MTU = 65_535;

/**
 * Returns the shape with its defaults, or throws a TestNetworkError naming what is impossible.
 *
 * @example
 * checkShape({ loss: 0.02, delayMs: 30 }, 'link a');   // ok
 * checkShape({ loss: 2 }, 'link a');                    // TestNetworkError: link a: loss 2 is not within 0..1
 */
export function checkShape(shape: LinkShape, where: string): Required<LinkShape> {
  const s = { loss: 0, delayMs: 0, jitterMs: 0, reorder: 0, mtu: 1500, udpBlocked: false, ...shape };
  const bad = (field: string, value: unknown, why: string): never => {
    throw new TestNetworkError(`${where}: ${field} ${String(value)} ${why}`);
  };
  for (const f of ['loss', 'reorder'] as const)
    if (!(Number.isFinite(s[f]) && s[f] >= 0 && s[f] <= 1)) bad(f, s[f], 'is not within 0..1');
  for (const f of ['delayMs', 'jitterMs'] as const)
    if (!(Number.isFinite(s[f]) && s[f] >= 0)) bad(f, s[f], 'is not a delay (ms, 0 or more)');
  if (!Number.isInteger(s.mtu) || s.mtu < MIN_MTU || s.mtu > MAX_MTU)
    bad('mtu', s.mtu, `is not within ${MIN_MTU}..${MAX_MTU}`);
  return s;
}
