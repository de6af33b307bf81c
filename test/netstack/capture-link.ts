import type { PacketLink } from '../../src/netstack/link.js';

/** A PacketLink a test drives by hand: it records what the stack writes and injects packets synchronously. */
export class CaptureLink implements PacketLink {
  readonly sent: Uint8Array[] = [];
  private handler: ((ip: Uint8Array) => void) | undefined;

  constructor(readonly mtu = 1500) {}

  writePacket(ip: Uint8Array): void {
    this.sent.push(ip.slice());
  }

  onPacket(handler: (ip: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** Hands `ip` to the stack as if it had arrived on the link. */
  inject(ip: Uint8Array): void {
    if (!this.handler) throw new Error('no stack attached');
    this.handler(ip);
  }
}
