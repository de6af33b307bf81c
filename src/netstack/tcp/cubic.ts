import { type CongestionControl, initialWindow } from './congestion.js';

const C = 0.4; // RFC 9438 §5.1
const BETA = 0.7; // RFC 9438 §4.6
const ALPHA = (3 * (1 - BETA)) / (1 + BETA); // RFC 9438 §4.3, the Reno-friendly increase

/**
 * CUBIC (RFC 9438): after a loss the window follows W(t) = C·(t−K)³ + W_max (§4.2), never below
 * the Reno-friendly estimate W_est (§4.3), with fast convergence (§4.7). Windows here are in
 * bytes; the cubic itself is computed in segments as the RFC writes it.
 */
export class Cubic implements CongestionControl {
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  private wMax = 0;
  private wLastMax = 0;
  private k = 0;
  private epochStart = 0;
  private wEst = 0;
  private cwndEpoch = 0;

  constructor(public mss: number) {
    this.cwnd = initialWindow(mss);
  }

  onAck(acked: number, now: number, srtt: number): void {
    const mss = this.mss;
    if (this.cwnd < this.ssthresh) {
      // Every acknowledged byte counts (Linux tcp_slow_start), up to ssthresh: our stacks ACK
      // once per event-loop turn, tens of segments at a time, and RFC 3465's L = 2·SMSS per ACK
      // made slow start take hundreds of milliseconds to open a 1 MiB window.
      this.cwnd = Math.min(this.cwnd + acked, this.ssthresh);
      return;
    }
    if (this.epochStart === 0) {
      // §4.8: a congestion avoidance epoch with no loss behind it starts at the current window.
      this.epochStart = now;
      this.cwndEpoch = this.cwnd / mss;
      if (this.wMax <= this.cwndEpoch) {
        this.wMax = this.cwndEpoch;
        this.k = 0;
      } else {
        this.k = Math.cbrt((this.wMax - this.cwndEpoch) / C);
      }
      this.wEst = this.cwndEpoch;
    }
    const t = (now - this.epochStart) / 1000;
    const rtt = Math.max(srtt, 1) / 1000;
    const target = C * (t + rtt - this.k) ** 3 + this.wMax; // §4.2 with t + RTT as the horizon
    const cwndSeg = this.cwnd / mss;
    this.wEst += (ALPHA * (acked / mss)) / cwndSeg; // §4.3
    if (this.wEst > target) {
      this.cwnd = Math.max(this.cwnd, this.wEst * mss);
    } else if (target > cwndSeg) {
      // (target − cwnd)/cwnd per segment acknowledged, capped at 1.5× per RTT (§4.2), byte counted.
      const perSegment = (Math.min(target, 1.5 * cwndSeg) - cwndSeg) / cwndSeg;
      this.cwnd += perSegment * mss * Math.max(1, acked / mss);
    }
  }

  onCongestion(_now: number, flight: number): void {
    const mss = this.mss;
    // The reduction starts from what the window allowed, never from more: after a burst of
    // losses SND.MAX − SND.UNA spans holes and SACKed data far beyond cwnd, and taking the
    // larger raised the window on congestion (a DERP relay's 32-packet queue then dropped most
    // of every burst). An application-limited flow reduces from its smaller flight (Linux
    // tcp_cubic's ssthresh works from snd_cwnd alone).
    const w = Math.min(this.cwnd, flight) / mss;
    // §4.7 fast convergence: a flow losing at a lower window than last time yields bandwidth.
    this.wMax = w < this.wLastMax ? (w * (1 + BETA)) / 2 : w;
    this.wLastMax = w;
    this.ssthresh = Math.max(Math.floor(w * BETA * mss), 2 * mss);
    this.cwnd = this.ssthresh;
    this.epochStart = 0;
  }

  onTimeout(now: number, flight: number): void {
    this.onCongestion(now, flight);
    this.cwnd = this.mss;
  }
}
