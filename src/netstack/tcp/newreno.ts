import { type CongestionControl, initialWindow } from './congestion.js';

/**
 * Reno's window arithmetic (RFC 5681 §3.1) with byte counting (RFC 3465) without its per-ACK
 * limit L in slow start, as Linux, so stretch ACKs grow the window by all the bytes they cover. NewReno's partial-ACK handling
 * (RFC 6582) lives in the connection's recovery, which is shared with CUBIC.
 */
export class NewReno implements CongestionControl {
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  private acc = 0;

  constructor(public mss: number) {
    this.cwnd = initialWindow(mss);
  }

  onAck(acked: number): void {
    if (this.cwnd < this.ssthresh) {
      // Every acknowledged byte counts, up to ssthresh (as CUBIC here; Linux tcp_slow_start).
      this.cwnd = Math.min(this.cwnd + acked, this.ssthresh);
      return;
    }
    // Congestion avoidance: one MSS per cwnd of acknowledged bytes (RFC 5681 eq. 3, byte counted).
    this.acc += acked;
    if (this.acc >= this.cwnd) {
      this.acc -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  onCongestion(_now: number, flight: number): void {
    // RFC 5681 eq. 4 halves FlightSize; bounded by cwnd, as CUBIC's, so that outstanding holes never raise it.
    this.ssthresh = Math.max(Math.min(flight, this.cwnd) / 2, 2 * this.mss);
    this.cwnd = this.ssthresh;
    this.acc = 0;
  }

  onTimeout(_now: number, flight: number): void {
    this.ssthresh = Math.max(Math.min(flight, this.cwnd) / 2, 2 * this.mss);
    this.cwnd = this.mss;
    this.acc = 0;
  }
}
