/**
 * The seam between the IP stack and whatever carries whole IP packets: a WireGuard
 * device, or an in-memory wire in tests (DESIGN.md, "The seams").
 */
import type { IpPacket } from './packet.js';

export interface PacketLink {
  /** Largest IP packet the link carries, in bytes. */
  readonly mtu: number;
  /**
   * Largest IP packet the link carries toward `dst` (4 or 16 bytes), when that differs by
   * destination (a tailnet's per-peer path MTU); at most {@link mtu}. Absent: `mtu` everywhere.
   */
  mtuTo?(dst: Uint8Array): number;
  /** Bumped whenever an answer of {@link mtuTo} may have changed; TCP then resizes its segments. */
  readonly mtuEpoch?: number;
  /**
   * Stack → link: hand one whole IPv4 or IPv6 packet to the link. With `csumStart`, the link
   * offloads the transport checksum (see {@link txChecksumOffload}). The link copies what it
   * keeps: the bytes are the caller's again when this returns.
   */
  writePacket(ip: Uint8Array, csumStart?: number, csumField?: number): void;
  /**
   * Link → stack: called once per received IP packet. A later call replaces the handler. The
   * bytes are valid only during the call. A link that already parsed the packet (the tailnet's
   * filter) passes its {@link IpPacket} of `ip` too, so that the stack does not parse it a second
   * time; a link that summed the packet passes `linkSum`, the one's complement sum (RFC 1071,
   * folded) of all of `ip` (receive checksum offload, Linux's CHECKSUM_COMPLETE).
   */
  onPacket(handler: (ip: Uint8Array, parsed?: IpPacket, linkSum?: number) => void): void;
  /**
   * Transmit checksum offload (a NIC's CHECKSUM_PARTIAL): given `csumStart` and `csumField`,
   * the link completes the checksum at `csumField`, which holds the pseudo-header sum, over the
   * bytes from `csumStart` to the end of the packet.
   */
  readonly txChecksumOffload?: boolean;
  /**
   * A burst of writes: the link may hold packets written until the matching {@link endBurst} and
   * move them as one vector (the WireGuard device seals them with one call). Bursts nest.
   */
  beginBurst?(): void;
  endBurst?(): void;
  /** Called after each burst of received packets, so that the stack answers a burst at once. */
  onBurstEnd?(handler: () => void): void;
}

/** Faults a {@link MemoryLinkPair} injects, each decided per packet from a seeded PRNG. */
export interface LinkFaults {
  /** Probability a packet is dropped. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet is held back and delivered after the next one. */
  reorder?: number;
  /** Delivery delay in milliseconds (0 = next microtask turn). */
  delayMs?: number;
  /** Seed for the fault PRNG, so a failing run can be replayed. */
  seed?: number;
}

/** One end of an in-memory link; packets written here arrive at the other end. */
export class MemoryLink implements PacketLink {
  readonly mtu: number;
  private handler: (ip: Uint8Array) => void = () => {};
  /** @internal */
  peer: MemoryLink | undefined;
  private held: Uint8Array | undefined;
  private rng: () => number;
  closed = false;

  constructor(
    mtu: number,
    private readonly faults: LinkFaults = {},
  ) {
    this.mtu = mtu;
    this.rng = mulberry32(faults.seed ?? 1);
  }

  writePacket(ip: Uint8Array): void {
    const peer = this.peer;
    if (!peer || this.closed) return;
    if (ip.length > this.mtu) return; // like a real link: oversized packets are lost
    const f = this.faults;
    if (f.loss && this.rng() < f.loss) return;
    const copy = ip.slice();
    if (f.reorder && !this.held && this.rng() < f.reorder) {
      this.held = copy;
      return;
    }
    this.deliver(peer, copy);
    if (f.duplicate && this.rng() < f.duplicate) this.deliver(peer, copy.slice());
    if (this.held) {
      const h = this.held;
      this.held = undefined;
      this.deliver(peer, h);
    }
  }

  onPacket(handler: (ip: Uint8Array) => void): void {
    this.handler = handler;
  }

  private deliver(peer: MemoryLink, ip: Uint8Array): void {
    const run = () => {
      if (!peer.closed) peer.handler(ip);
    };
    if (this.faults.delayMs) setTimeout(run, this.faults.delayMs);
    else queueMicrotask(run);
  }
}

/** Two {@link MemoryLink}s joined back to back: the rig for stack-to-stack tests. */
export function memoryLinkPair(mtu = 1420, faults: LinkFaults = {}): [MemoryLink, MemoryLink] {
  const a = new MemoryLink(mtu, faults);
  const b = new MemoryLink(mtu, { ...faults, seed: (faults.seed ?? 1) + 1 });
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Small, fast, seedable PRNG (public domain, Tommy Ettinger) for reproducible faults. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
