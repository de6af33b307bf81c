/**
 * A resolver with dns.lookup's signature, answering from the netmap (MagicDNS), for the
 * libraries and sockets that take a `lookup`. Names of tailnet nodes resolve to their
 * addresses; IP literals to themselves, as dns.lookup does; any other name is ENOTFOUND,
 * unless `direct` (a flag, or asked per call: an exit node makes it so) sends it to the OS
 * resolver. Names inside the tailnet's own domain never
 * leave it: a name there that no node has is ENOTFOUND either way, as MagicDNS answers
 * NXDOMAIN for it.
 */
import dns, { type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { LookupError } from '../../netstack/tcp/errors.js';

/** What the lookup needs of the node: its MagicDNS names. */
export interface TailnetNames {
  /** The addresses of the node `host` names (IPv4 first), or undefined. */
  addressesOf(host: string): readonly string[] | undefined;
  /** Whether `host` is a tailnet name or address, known or not. */
  isTailnetHost(host: string): boolean;
}

type LookupOptions = { family?: number | string; all?: boolean };
type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A dns.lookup for the tailnet: `lookup(host[, options | family], callback)`, with
 * `options.family` (0, 4, 6, 'IPv4', 'IPv6') and `options.all`.
 *
 * @example
 * const lookup = tailnetLookup(names);
 * lookup('db-server', { all: true }, (err, addresses) => console.log(addresses));
 */
export function tailnetLookup(
  names: () => TailnetNames,
  opts: { direct?: boolean | (() => boolean) } = {},
): LookupFunction {
  const direct = typeof opts.direct === 'function' ? opts.direct : () => opts.direct === true;
  function lookup(host: string, ...rest: unknown[]): void {
    const callback = rest.pop() as LookupCallback;
    if (typeof callback !== 'function') throw new TypeError('lookup: the last argument must be a callback');
    const o: LookupOptions =
      typeof rest[0] === 'number' ? { family: rest[0] } : ((rest[0] as LookupOptions) ?? {});
    const family = o.family === 'IPv4' ? 4 : o.family === 'IPv6' ? 6 : Number(o.family ?? 0);
    let found: readonly string[] | undefined;
    let tailnet = true;
    try {
      const n = names();
      const literal = host.replace(/^\[|\]$/g, '');
      found = isIP(literal) ? [literal] : n.addressesOf(host);
      tailnet = isIP(literal) > 0 || n.isTailnetHost(host);
    } catch (err) {
      process.nextTick(() => callback(err as NodeJS.ErrnoException, ''));
      return;
    }
    if (!found && !tailnet && direct()) {
      dns.lookup(host, { family: family === 4 || family === 6 ? family : 0, all: o.all === true }, callback);
      return;
    }
    const addresses = (found ?? []).filter((a) => (family !== 4 && family !== 6 ? true : isIP(a) === family));
    process.nextTick(() => {
      if (addresses.length === 0) {
        const why = found
          ? `unknown tailnet host: the node has no IPv${family} address`
          : 'unknown tailnet host: not the MagicDNS name of any node';
        callback(new LookupError(host, why), '');
      } else if (o.all) {
        callback(
          null,
          addresses.map((address) => ({ address, family: isIP(address) })),
        );
      } else {
        callback(null, addresses[0]!, isIP(addresses[0]!));
      }
    });
  }
  return lookup as LookupFunction;
}
