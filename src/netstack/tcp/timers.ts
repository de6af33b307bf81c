/**
 * A connection's timers, fired by the endpoint's wheel: TIME_WAIT and FIN_WAIT_2 expiry, the
 * retransmission timeout or tail loss probe (RFC 6298, RFC 8985 §7), the delayed ACK
 * (RFC 1122 §4.2.3.2), the persist timer (RFC 9293 §3.8.6.1) and keepalive (RFC 1122 §4.2.3.6).
 * A connection holds one wheel entry, at its earliest deadline.
 */
import type { TcpConnection } from './connection.js';
import { output, retransmitTimeout, sendAck, sendProbe, tailLossProbe, timeoutError } from './output.js';
import { seqAdd, seqGt } from './seq.js';

/** Runs every deadline of `c` that has passed, then puts the earliest one left back on the wheel. */
export function runTimers(c: TcpConnection, now: number): void {
  const due = now + 1;
  if (c.closeAt && c.closeAt <= due) {
    c.closeAt = 0;
    c.terminate(c.state === 'TIME_WAIT' ? undefined : timeoutError(c));
    return;
  }
  if (c.rtoAt && c.rtoAt <= due) {
    c.rtoAt = 0;
    if (c.probeArmed) tailLossProbe(c, now);
    else if (!retransmitTimeout(c, now)) return;
  }
  if (c.delackAt && c.delackAt <= due) {
    c.delackAt = 0;
    if (c.ackPending > 0) sendAck(c, now, false);
  }
  if (c.persistAt && c.persistAt <= due) {
    c.persistAt = 0;
    if (seqGt(seqAdd(c.sndUna, c.sendBuf.length), c.sndNxt) && c.sndMax === c.sndUna) {
      if (c.sndWnd === 0) sendProbe(c, now);
      else output(c, now, true);
      c.persistBackoff = Math.min(c.persistBackoff + 1, 10);
      c.persistAt = now + Math.min(c.host.options.maxRtoMs, c.rto.current() * 2 ** c.persistBackoff);
    }
  }
  if (c.keepaliveAt && c.keepaliveAt <= due) {
    c.keepaliveAt = 0;
    if (c.keepaliveProbesSent === 0 && now - c.lastReceived < c.keepaliveMs) {
      // Traffic arrived since the timer was set: wait the rest of the idle time.
      c.keepaliveAt = c.lastReceived + c.keepaliveMs;
    } else if (c.keepaliveProbesSent >= c.host.options.keepaliveProbes) {
      c.terminate(timeoutError(c));
      return;
    } else {
      c.keepaliveProbesSent++;
      sendProbe(c, now);
      c.armKeepalive(now);
    }
  }
  let next = 0;
  for (const t of [c.closeAt, c.rtoAt, c.delackAt, c.persistAt, c.keepaliveAt]) {
    if (t !== 0 && (next === 0 || t < next)) next = t;
  }
  if (next !== 0) c.host.wheel.schedule(c, next);
}
