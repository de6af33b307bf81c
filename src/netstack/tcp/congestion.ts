/**
 * The congestion controller interface shared by NewReno and CUBIC. All windows are in bytes;
 * the connection owns the loss detection and recovery (RFC 6675 / RFC 6582) and tells the
 * controller what happened.
 */
export interface CongestionControl {
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow start threshold, bytes. */
  ssthresh: number;
  /** The segment size the window grows by (changes when the path MTU does). */
  mss: number;
  /** New data was cumulatively acknowledged outside recovery. */
  onAck(acked: number, now: number, srtt: number): void;
  /** Loss detected by duplicate ACKs or SACK: sets ssthresh (and cwnd) for recovery. */
  onCongestion(now: number, flight: number): void;
  /** The retransmission timer expired (RFC 5681 §3.1 eq. 4, cwnd to the loss window). */
  onTimeout(now: number, flight: number): void;
}

/** Which controller a connection uses. */
export type CongestionName = 'cubic' | 'newreno';

/** RFC 5681 §3.1: IW = min(10*MSS, max(2*MSS, 14600)) as updated by RFC 6928. */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}
