/**
 * Listening on a host and, where the machine has it, the same scope in the other IP family:
 * a relay told to serve loopback (or every address) answers over IPv4 and IPv6 alike, so a DERP
 * map node with both `IPv4` and `IPv6` set (derpprobe's udp and udp6 probes, tailscaled's
 * netcheck) reaches it either way.
 */

/** The other family's address of the same scope (wildcard or loopback); none for other hosts. */
export function otherFamily(host: string): string | undefined {
  switch (host) {
    case '':
    case '0.0.0.0':
      return '::';
    case '::':
      return '0.0.0.0';
    case '127.0.0.1':
      return '::1';
    case '::1':
      return '127.0.0.1';
    default:
      return undefined;
  }
}

/** Bind errors that mean the machine lacks that family or address (no IPv6, no ::1). */
const ABSENT = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EINVAL', 'EPROTONOSUPPORT']);

/** How to bind one kind of socket for {@link bindBothFamilies}. */
export interface Binder<T> {
  bind(host: string, port: number): Promise<T>;
  port(bound: T): number;
  close(bound: T): void | Promise<void>;
}

/**
 * Binds `host:port`, then its {@link otherFamily} counterpart on the same port, best effort: a
 * machine without that family gets only the first. With port 0, the port is one both could take
 * (a few tries, as the second bind can find it taken).
 *
 * @example
 * const socks = await bindBothFamilies('127.0.0.1', 0, udpBinder);   // 127.0.0.1:P and [::1]:P
 */
export async function bindBothFamilies<T>(host: string, port: number, b: Binder<T>): Promise<T[]> {
  const other = otherFamily(host);
  for (let attempt = 0; ; attempt++) {
    const first = await b.bind(host, port);
    if (other === undefined) return [first];
    try {
      return [first, await b.bind(other, b.port(first))];
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
      if (code !== undefined && ABSENT.has(code)) return [first];
      await b.close(first);
      if (port !== 0 || code !== 'EADDRINUSE' || attempt >= 4) throw err;
    }
  }
}

/** A bound address as `host:port`, or `[v6]:port`. */
export function formatAddress(a: { address: string; family: string; port: number }): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
