import type { CongestionName } from './congestion.js';

/** Tunables of a TCP endpoint; every field has a Linux-like default. */
export interface TcpOptions {
  /**
   * Receive buffer per connection, bytes: the most the advertised window covers (default 4 MiB;
   * Linux autotunes up to 6 MiB, Tailscale's netstack up to 8 MiB). It is a bound, not an
   * allocation: an idle connection holds none of it.
   */
  receiveBuffer?: number;
  /** Send buffer per connection, bytes: `write()` returns false beyond it (default 4 MiB, Linux's tcp_wmem max). */
  sendBuffer?: number;
  /** Congestion control (default 'cubic'). */
  congestion?: CongestionName;
  /** TIME_WAIT duration, ms (default 60 000, as Linux: 2·MSL with MSL = 30 s). */
  timeWaitMs?: number;
  /** How long an orphaned connection may sit in FIN_WAIT_2, ms (default 60 000, Linux's tcp_fin_timeout). */
  finTimeoutMs?: number;
  /** RTO bounds and initial value, ms (defaults 200, 120 000, 1 000; RFC 6298 §2 with Linux's 200 ms floor). */
  minRtoMs?: number;
  maxRtoMs?: number;
  initialRtoMs?: number;
  /** Retransmissions of a SYN or SYN-ACK before ETIMEDOUT (default 6). */
  synRetries?: number;
  /** Retransmissions of data before ETIMEDOUT (default 15, as Linux's tcp_retries2). */
  maxRetries?: number;
  /** Delayed ACK timeout, ms (default 40; RFC 1122 §4.2.3.2 requires < 500). */
  delayedAckMs?: number;
  /** Keepalive probe interval and count (defaults 75 000 ms and 9, RFC 1122 §4.2.3.6 / Linux). */
  keepaliveIntervalMs?: number;
  keepaliveProbes?: number;
  /** Offer and accept SACK, timestamps and window scaling (all default true). */
  sack?: boolean;
  timestamps?: boolean;
  windowScaling?: boolean;
  /** Challenge ACKs per second, over all connections (RFC 5961 §7; default 1000). */
  challengeAckLimit?: number;
  /**
   * Least time between the duplicate ACKs one connection sends for out-of-window segments that
   * carry neither data nor SYN, in ms (Linux tcp_invalid_ratelimit; default 500).
   */
  invalidAckIntervalMs?: number;
}

/** {@link TcpOptions} with every default filled in. */
export type ResolvedTcpOptions = Required<TcpOptions>;

/** Fills in the defaults. */
export function resolveTcpOptions(o: TcpOptions = {}): ResolvedTcpOptions {
  return {
    receiveBuffer: o.receiveBuffer ?? 4 << 20,
    sendBuffer: o.sendBuffer ?? 4 << 20,
    congestion: o.congestion ?? 'cubic',
    timeWaitMs: o.timeWaitMs ?? 60_000,
    finTimeoutMs: o.finTimeoutMs ?? 60_000,
    minRtoMs: o.minRtoMs ?? 200,
    maxRtoMs: o.maxRtoMs ?? 120_000,
    initialRtoMs: o.initialRtoMs ?? 1000,
    synRetries: o.synRetries ?? 6,
    maxRetries: o.maxRetries ?? 15,
    delayedAckMs: o.delayedAckMs ?? 40,
    keepaliveIntervalMs: o.keepaliveIntervalMs ?? 75_000,
    keepaliveProbes: o.keepaliveProbes ?? 9,
    sack: o.sack ?? true,
    timestamps: o.timestamps ?? true,
    windowScaling: o.windowScaling ?? true,
    challengeAckLimit: o.challengeAckLimit ?? 1000,
    invalidAckIntervalMs: o.invalidAckIntervalMs ?? 500,
  };
}
