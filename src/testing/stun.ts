/**
 * A STUN server on the in-memory network (RFC 5389 Binding, as derper answers it): tells each
 * client the address and port its request came from, after whatever NATs it crossed.
 */
import { parseBindingRequest, stunResponse } from '../derp/stun.js';
import { UdpEndpoint } from '../wireguard/udp-bind.js';
import type { VirtualNetwork } from './network/network.js';

/**
 * Binds a STUN responder on `host`'s `port` (default 3478); returns its socket's close.
 *
 * @example
 * net.addHost('relay', { ip: '203.0.113.1' });
 * const stop = serveStun(net, 'relay');
 */
export function serveStun(net: VirtualNetwork, host: string, port = 3478): () => Promise<void> {
  const sock = net.bind(host, port);
  sock.onDatagram((from, d) => {
    if (!(from instanceof UdpEndpoint)) return;
    let txid: Uint8Array;
    try {
      txid = parseBindingRequest(d);
    } catch {
      return; // not a Binding request: a STUN server ignores it, as derper's does
    }
    sock.send(from, stunResponse(txid, from.address, from.port));
  });
  return () => sock.close();
}
