/**
 * A NAT router of the in-memory network, as the NAT lab's nftables routers behave
 * (test/interop/rig/natlab.ts): outbound UDP gets a public port, and only the hosts a mapping
 * has sent to may answer through it (a home router's stateful firewall). `easy` maps a host's
 * port to one public port for every destination (endpoint-independent mapping, RFC 4787 §4.1;
 * Linux masquerade keeps the source port when it is free); `hard` gives every destination its
 * own random port (endpoint-dependent mapping: masquerade `random`), which disco cannot punch
 * through. Ports come from the network's seeded generator, so a run repeats.
 */

/** How a NAT maps: one public port per host port, or one per destination too. */
export type NatKind = 'easy' | 'hard';

const PORT_LOW = 1024;
const PORT_COUNT = 65536 - PORT_LOW;

interface Mapping {
  /** The inside host and port. */
  ip: string;
  port: number;
  publicPort: number;
  /** `ip:port` of destinations it has sent to: only they may answer. */
  sentTo: Set<string>;
}

/**
 * The mappings of one NAT.
 *
 * @example
 * const nat = new Nat('easy', '203.0.113.11', rng);
 * const out = nat.outbound('192.168.1.10', 41641, '203.0.113.1', 3478);   // { port: 41641 }
 * nat.inbound('203.0.113.1', 3478, out.port);                             // { ip: '192.168.1.10', port: 41641 }
 */
export class Nat {
  private readonly byPublic = new Map<number, Mapping>();
  private readonly byInside = new Map<string, Mapping>();

  constructor(
    readonly kind: NatKind,
    readonly publicIp: string,
    private readonly random: () => number,
  ) {}

  /** The public port for a datagram from `ip:port` inside to `dstIp:dstPort`, noting the flow. */
  outbound(ip: string, port: number, dstIp: string, dstPort: number): { port: number } {
    const dst = `${dstIp}:${dstPort}`;
    const key = this.kind === 'easy' ? `${ip}:${port}` : `${ip}:${port}>${dst}`;
    let m = this.byInside.get(key);
    if (!m) {
      m = { ip, port, publicPort: this.allocate(port), sentTo: new Set() };
      this.byInside.set(key, m);
      this.byPublic.set(m.publicPort, m);
    }
    m.sentTo.add(dst);
    return { port: m.publicPort };
  }

  /** The inside host for a datagram from `fromIp:fromPort` to `publicPort`, or undefined when the firewall drops it. */
  inbound(fromIp: string, fromPort: number, publicPort: number): { ip: string; port: number } | undefined {
    const m = this.byPublic.get(publicPort);
    if (!m?.sentTo.has(`${fromIp}:${fromPort}`)) return undefined;
    return { ip: m.ip, port: m.port };
  }

  /** The inside port if free (easy, as masquerade keeps it), else a random free one. */
  private allocate(wanted: number): number {
    if (this.kind === 'easy' && wanted >= PORT_LOW && !this.byPublic.has(wanted)) return wanted;
    for (;;) {
      const p = PORT_LOW + Math.floor(this.random() * PORT_COUNT);
      if (!this.byPublic.has(p)) return p;
    }
  }
}
