/**
 * The WireGuard device seen by the node's IP stack through the tailnet's packet filter:
 * inbound packets the netmap's rules deny are dropped (and counted in the filter's stats),
 * outbound packets are noted so that replies to our own UDP flows are let back in
 * (wgengine/filter runOut/runIn). Bursts and checksum offload pass through to the device.
 * `onDenied` hears of each dropped packet with the filter's reason (the node answers denied TCP
 * SYNs with a TSMP rejection there, as tstun/wrap.go does after its filter).
 */
import type { PacketLink } from '../netstack/link.js';
import type { IpPacket } from '../netstack/packet.js';
import type { PacketFilter } from './filter.js';

export class FilteredLink implements PacketLink {
  constructor(
    private readonly inner: PacketLink,
    private readonly filter: () => PacketFilter,
    private readonly onDenied?: (ip: Uint8Array, reason: string) => void,
  ) {}

  get mtu(): number {
    return this.inner.mtu;
  }

  mtuTo(dst: Uint8Array): number {
    return this.inner.mtuTo ? this.inner.mtuTo(dst) : this.inner.mtu;
  }

  get mtuEpoch(): number {
    return this.inner.mtuEpoch ?? 0;
  }

  get txChecksumOffload(): boolean {
    return this.inner.txChecksumOffload === true;
  }

  writePacket(ip: Uint8Array, csumStart?: number, csumField?: number): void {
    this.filter().noteOut(ip);
    this.inner.writePacket(ip, csumStart, csumField);
  }

  /** Accepted packets go up with the filter's parse of them, which the stack then reuses. */
  onPacket(handler: (ip: Uint8Array, parsed?: IpPacket, linkSum?: number) => void): void {
    this.inner.onPacket((ip, _parsed, linkSum) => {
      const filter = this.filter();
      const parsed = filter.acceptIn(ip);
      if (parsed !== undefined) handler(ip, parsed, linkSum);
      else this.onDenied?.(ip, filter.lastDropReason);
    });
  }

  beginBurst(): void {
    this.inner.beginBurst?.();
  }

  endBurst(): void {
    this.inner.endBurst?.();
  }

  onBurstEnd(handler: () => void): void {
    this.inner.onBurstEnd?.(handler);
  }
}
