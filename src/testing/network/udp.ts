/**
 * A UDP socket on a host of the in-memory network: the surface magicsock uses of its real
 * socket (wireguard/udp-bind.ts UdpBind: `port`, `send`, `onDatagram`, `close`, `stats`), so that
 * `Magicsock.open({ udp })` runs its real disco, STUN and paths over {@link VirtualNetwork}.
 */
import type { Endpoint } from '../../wireguard/bind.js';
import { type UdpBindStats, UdpEndpoint } from '../../wireguard/udp-bind.js';

type Handler = (from: Endpoint, datagram: Uint8Array) => void;

/**
 * Made by {@link VirtualNetwork.bind}.
 *
 * @example
 * const sock = net.bind('laptop', 41641);
 * sock.onDatagram((from, d) => console.log(`${from}`, d.length));
 * sock.send(UdpEndpoint.from('203.0.113.1', 3478), stunRequest(txid));
 */
export class VirtualUdpSocket {
  readonly stats: UdpBindStats = { sendErrors: 0, socketErrors: 0, bufferSizeErrors: 0 };
  private handler: Handler = () => {};
  private closed = false;

  constructor(
    /** The host's address, and the port bound. */
    readonly address: string,
    readonly port: number,
    private readonly out: (ip: string, port: number, data: Uint8Array) => void,
    private readonly onClose: () => void,
  ) {}

  /** Sends to a {@link UdpEndpoint}; anything else (another kind of endpoint) counts as a send error. */
  send(to: Endpoint, datagram: Uint8Array): void {
    if (this.closed) return;
    if (!(to instanceof UdpEndpoint) || to.family !== 4) {
      this.stats.sendErrors++;
      return;
    }
    this.out(to.address, to.port, datagram);
  }

  onDatagram(handler: Handler): void {
    this.handler = handler;
  }

  /** @internal The network delivers a datagram from `ip:port` (as the receiver sees it). */
  receive(ip: string, port: number, data: Uint8Array): void {
    if (!this.closed) this.handler(UdpEndpoint.from(ip, port), data);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }
}
