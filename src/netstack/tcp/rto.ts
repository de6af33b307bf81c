/**
 * The retransmission timeout estimator of RFC 6298 §2, with timestamps as the RTT source when
 * the connection has them (RFC 7323 §4) and Karn's rule otherwise (RFC 6298 §3).
 */
export class RtoEstimator {
  srtt = 0;
  rttvar = 0;
  /** Current RTO in ms, before backoff. */
  rto: number;
  /** Exponential backoff shift (RFC 6298 §5.5), reset by a fresh sample. */
  backoff = 0;

  constructor(
    private readonly minRto: number,
    private readonly maxRto: number,
    initialRto: number,
  ) {
    this.rto = initialRto;
  }

  /** Feeds one RTT measurement in ms (RFC 6298 §2.2–2.3, with α = 1/8, β = 1/4, K = 4). */
  sample(rtt: number): void {
    const r = Math.max(rtt, 0.1);
    if (this.srtt === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    // G, the clock granularity, is the timer wheel's tick.
    this.rto = Math.min(this.maxRto, Math.max(this.minRto, this.srtt + Math.max(5, 4 * this.rttvar)));
    this.backoff = 0;
  }

  /** The timeout to arm now, including backoff (RFC 6298 §5.5, capped at maxRto per §2.5). */
  current(): number {
    return Math.min(this.maxRto, this.rto * 2 ** this.backoff);
  }
}
