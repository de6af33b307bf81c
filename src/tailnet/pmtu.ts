/**
 * Path MTU discovery toward one peer over its direct UDP path: RFC 8899 packetization-layer
 * PMTUD, with disco as the probe carrier (as Tailscale's peer MTU work pads disco pings to the
 * sizes in net/tstun/mtu.go WireMTUsToProbe). Pure logic over a clock: the magicsock sends the
 * probes this asks for and feeds back the acknowledgements it could unseal.
 *
 * - Only sizes whose sealed probe came back acknowledged (a quackscale-only disco message, so
 *   tailscaled and wireguard-go peers never raise) count; anything else leaves the peer at
 *   {@link BASE_INNER_MTU}, today's size.
 * - Node's dgram cannot set IP_MTU_DISCOVER=IP_PMTUDISC_DO, so Linux fragments a datagram larger
 *   than the egress interface's MTU itself (IP_PMTUDISC_WANT) and a padded probe could "work"
 *   as fragments. Probes are therefore never larger than the egress interface allows, and the
 *   confirmed size falls back at once when that interface's MTU drops.
 * - While data flows the confirmed size is re-probed every {@link PROBE_INTERVAL}; one lost
 *   confirmation falls back to the base size at once (RFC 8899 §4.3 black-hole detection), so a
 *   path that shrinks is noticed within PROBE_INTERVAL + PROBE_TIMEOUT (≤ 1 s).
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../wireguard/clock.js';
import type { AddrPort } from './disco.js';
import { addrKey, type PeerPath } from './path.js';

/** The inner MTU toward a peer that did not probe (wg-quick's and tailscaled's 1,420 bytes). */
export const BASE_INNER_MTU = 1420;
/** Largest inner packet toward a probed peer: fits one IPv4 UDP datagram (65,507) after WireGuard's 32 bytes. */
export const MAX_INNER_MTU = 65472;
/** WireGuard transport overhead on a datagram: 16-byte header and 16-byte tag (whitepaper §5.4.6). */
export const WIREGUARD_OVERHEAD = 32;
/** On-the-wire MTUs tried, ascending (Tailscale's list, then larger ones for loopback-like links). */
export const WIRE_MTUS = [1500, 4000, 8000, 9000, 16384, 32768, 65535] as const;
/** How often a probe goes out while data flows (search step or confirmation). */
export const PROBE_INTERVAL = 250;
/** A probe not acknowledged within this is lost. */
export const PROBE_TIMEOUT = 750;
/**
 * A size that failed is tried again after this (RFC 8899's PMTU_RAISE_TIMER is 600 s; a probe
 * here is one datagram between our own peers, so we retry sooner).
 */
export const RETRY_FAILED_AFTER = 30_000;
/** No probes after this long without data sent to the peer; the size falls back to base. */
export const IDLE_AFTER = 45_000;

/** The direct path data takes now. */
export interface PmtuPath {
  /** Stable key of the UDP address ("ip:port"). */
  key: string;
  /** The peer's IP on the path. */
  ip: string;
  /** IPv6 underlay (48 bytes of IP+UDP header instead of 28). */
  v6: boolean;
}

/** What the probe machine needs of the magicsock. */
export interface PmtuActions {
  /** The trusted direct UDP path to the peer, or undefined when data goes over DERP or nowhere. */
  directPath(): PmtuPath | undefined;
  /** MTU of the interface the path leaves by; undefined when unknown (then nothing is raised). */
  egressMtu(path: PmtuPath): number | undefined;
  /** Sends a sealed probe making a UDP payload of exactly `size` bytes on the path. */
  sendProbe(txid: Uint8Array, size: number): void;
  /** When data was last sent to the peer (the clock's time). */
  lastSend(): number;
  /** The inner MTU toward the peer changed. */
  changed(innerMtu: number): void;
}

/** The inner MTU that a confirmed UDP payload size allows: a multiple of 16, so padding never overflows it. */
export function innerMtuForPayload(payload: number): number {
  const inner = Math.floor((payload - WIREGUARD_OVERHEAD) / 16) * 16;
  return Math.min(MAX_INNER_MTU, Math.max(BASE_INNER_MTU, inner));
}

/** UDP payload sizes worth probing on a path whose egress interface has MTU `egress`, ascending. */
export function probeSizes(egress: number, v6: boolean): number[] {
  const header = v6 ? 48 : 28;
  const wire = [...WIRE_MTUS, Math.min(egress, 65535)].filter((w) => w <= egress);
  const sizes = new Set<number>();
  for (const w of wire) {
    const payload = Math.min(w - header, 65507);
    if (innerMtuForPayload(payload) > BASE_INNER_MTU) sizes.add(payload);
  }
  return [...sizes].sort((a, b) => a - b);
}

interface Outstanding {
  txid: string;
  size: number;
  timer: TimerHandle;
}

/** The probe state machine for one peer. */
export class PeerMtu {
  private path: string | undefined;
  /** Largest UDP payload size acknowledged on the path; 0 = none (base MTU). */
  private confirmed = 0;
  /** Smallest size that failed, not tried again before `retryAt` or before the egress MTU grows. */
  private failed = Number.POSITIVE_INFINITY;
  private retryAt = 0;
  private failedEgress = 0;
  private outstanding: Outstanding | undefined;
  private tickTimer: TimerHandle | undefined;
  private closed = false;
  /** Probes sent, acknowledged, lost, and fallbacks (for status and tests). */
  readonly stats = { probes: 0, acks: 0, lost: 0, fallbacks: 0 };

  constructor(
    private readonly clock: Clock,
    private readonly actions: PmtuActions,
  ) {}

  /** The inner MTU toward the peer now. */
  get innerMtu(): number {
    return this.confirmed > 0 ? innerMtuForPayload(this.confirmed) : BASE_INNER_MTU;
  }

  /** The largest UDP payload acknowledged on the current path (0 if none). */
  get confirmedPayload(): number {
    return this.confirmed;
  }

  /** The key of the direct path the size was found on (undefined: none yet). */
  get pathKey(): string | undefined {
    return this.path;
  }

  /** Whether the machine is ticking (the magicsock wakes it on sends when it is not). */
  get running(): boolean {
    return this.tickTimer !== undefined;
  }

  /** Data is flowing: start probing if not already. */
  wake(): void {
    if (this.closed || this.tickTimer) return;
    this.tick();
  }

  /**
   * An acknowledgement the magicsock unsealed: `size` is the UDP payload length the peer says it
   * received. Only the outstanding probe's txid with its exact size counts.
   */
  handleAck(txid: Uint8Array, size: number): boolean {
    const o = this.outstanding;
    if (!o || o.txid !== Buffer.from(txid).toString('hex') || o.size !== size) return false;
    this.clock.clearTimeout(o.timer);
    this.outstanding = undefined;
    this.stats.acks++;
    const p = this.actions.directPath();
    if (!p || p.key !== this.path) return true; // path changed meanwhile: the next tick resets
    // An answer to a probe sent before the egress interface shrank may have arrived as fragments.
    if (size > this.confirmed && size <= this.maxPayload(p)) {
      this.set(size);
      this.probe(); // keep climbing the ladder without waiting for the next tick
    }
    return true;
  }

  /** Forgets the path (e.g. the peer restarted): back to base, searching again on the next tick. */
  reset(): void {
    this.cancelProbe();
    this.path = undefined;
    this.failed = Number.POSITIVE_INFINITY;
    this.set(0);
  }

  close(): void {
    this.closed = true;
    this.cancelProbe();
    if (this.tickTimer) this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
  }

  private tick(): void {
    this.tickTimer = undefined;
    if (this.closed) return;
    const now = this.clock.now();
    if (now - this.actions.lastSend() > IDLE_AFTER) {
      this.reset(); // nothing confirms an idle path: start from base when data flows again
      return;
    }
    const p = this.actions.directPath();
    if (p?.key !== this.path) {
      this.reset();
      this.path = p?.key;
    }
    if (p && this.confirmed > this.maxPayload(p)) {
      this.stats.fallbacks++;
      this.set(0); // the egress interface shrank: larger datagrams would leave as fragments
    }
    if (!this.outstanding) this.probe();
    this.tickTimer = this.clock.setTimeout(() => this.tick(), PROBE_INTERVAL);
  }

  private maxPayload(p: PmtuPath): number {
    const egress = this.actions.egressMtu(p);
    return egress === undefined ? 0 : Math.min(egress, 65535) - (p.v6 ? 48 : 28);
  }

  /** Sends the next search probe, or a confirmation of the current size when the search is done. */
  private probe(): void {
    const p = this.actions.directPath();
    if (!p || p.key !== this.path || this.outstanding) return;
    const now = this.clock.now();
    const egress = this.actions.egressMtu(p);
    if (egress === undefined) return;
    // An interface whose MTU was raised (jumbo frames turned on) is worth searching again at once.
    if (now >= this.retryAt || egress > this.failedEgress) this.failed = Number.POSITIVE_INFINITY;
    const next = probeSizes(egress, p.v6).find((s) => s > this.confirmed && s < this.failed);
    const size = next ?? this.confirmed;
    if (size === 0) return;
    const txid = new Uint8Array(randomBytes(12));
    const timer = this.clock.setTimeout(() => this.lost(size), PROBE_TIMEOUT);
    this.outstanding = { txid: Buffer.from(txid).toString('hex'), size, timer };
    this.stats.probes++;
    this.actions.sendProbe(txid, size);
  }

  private lost(size: number): void {
    this.outstanding = undefined;
    this.stats.lost++;
    this.failed = Math.min(this.failed, size);
    this.retryAt = this.clock.now() + RETRY_FAILED_AFTER;
    const p = this.actions.directPath();
    this.failedEgress = (p && this.actions.egressMtu(p)) ?? 0;
    if (size <= this.confirmed) {
      // RFC 8899 §4.3: a lost confirmation is a black hole at this size: back to base at once,
      // and search again below the failed size.
      this.stats.fallbacks++;
      this.set(0);
    }
  }

  private cancelProbe(): void {
    if (this.outstanding) this.clock.clearTimeout(this.outstanding.timer);
    this.outstanding = undefined;
  }

  private set(payload: number): void {
    const before = this.innerMtu;
    this.confirmed = payload;
    if (this.innerMtu !== before) this.actions.changed(this.innerMtu);
  }
}

/**
 * A {@link PeerMtu} for one peer's {@link PeerPath}: it probes the path's trusted direct address
 * (nothing over DERP), with `egress` giving the MTU of the interface toward an IP.
 */
export function peerMtuOnPath(
  clock: Clock,
  path: PeerPath,
  egress: (ip: string) => number | undefined,
  io: { sendProbe(to: AddrPort, txid: Uint8Array, size: number): void; changed(innerMtu: number): void },
): PeerMtu {
  return new PeerMtu(clock, {
    directPath: () => {
      const c = path.current();
      return c.kind === 'direct'
        ? { key: addrKey(c.addr), ip: c.addr.ip, v6: c.addr.ip.includes(':') }
        : undefined;
    },
    egressMtu: (p) => egress(p.ip),
    sendProbe: (txid, size) => {
      const c = path.current();
      if (c.kind === 'direct') io.sendProbe(c.addr, txid, size);
    },
    lastSend: () => path.lastSend,
    changed: (mtu) => io.changed(mtu),
  });
}
