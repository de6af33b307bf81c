/**
 * The canonical text of an IPv6 address (RFC 5952: lower case, longest zero run as `::`), the
 * form node:dgram reports senders in, so a configured endpoint and a reply from it compare
 * equal. Node's SocketAddress formats through the OS's inet_ntop; Bun's keeps the spelling it
 * was given and a page has none, so there the WHATWG URL parser (RFC 5952 as well) does it.
 *
 * @example
 * canonicalIPv6('FD00:0:0::1');   // 'fd00::1'
 */
import net from 'node:net';

const viaSocketAddress = (address: string) => new net.SocketAddress({ address, family: 'ipv6' }).address;
const viaUrl = (address: string) => new URL(`http://[${address}]/`).hostname.slice(1, -1);

const socketAddressCanonicalises =
  typeof net.SocketAddress === 'function' && viaSocketAddress('FD00:0:0::1') === 'fd00::1';

/** `address` (an IPv6 literal without zone) in canonical form; throws on a malformed one. */
export function canonicalIPv6(address: string): string {
  return socketAddressCanonicalises ? viaSocketAddress(address) : viaUrl(address);
}
