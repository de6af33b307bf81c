/**
 * SEGMENT ARRIVES for an existing connection (RFC 9293 §3.10.7.3–4), with the RFC 5961
 * blind-attack checks (§3 RST, §4 SYN, §5 ACK), PAWS and TS.Recent (RFC 7323 §4–5), SACK
 * processing (RFC 2018, RFC 6675 §5) and NewReno's partial ACKs (RFC 6582 §3.2).
 */
import { formatIp } from '../address.js';
import type { TcpConnection } from './connection.js';
import { SocketError } from './errors.js';
import { markUndo, pipe, retransmitHead, sendAck, sendSyn, transmit } from './output.js';
import { TcpFlag, type TcpSegment } from './segment.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from './seq.js';

const { FIN, SYN, RST, ACK } = TcpFlag;

/** Processes one segment addressed to `c`'s 4-tuple. */
export function segmentArrives(c: TcpConnection, seg: TcpSegment, now: number): void {
  c.lastReceived = now;
  c.keepaliveProbesSent = 0;
  if (c.state === 'SYN_SENT') {
    synSent(c, seg, now);
    return;
  }
  const flags = seg.flags;
  const wnd = seqDiff(c.rcvAdv, c.rcvNxt);
  if (flags & RST) {
    // RFC 5961 §3.2: only an exact match resets; anything else in the window gets a challenge ACK.
    if (seg.seq === c.rcvNxt) reset(c);
    else if (inWindow(seg.seq, c.rcvNxt, Math.max(wnd, 1))) challengeAck(c, now);
    return;
  }
  // PAWS (RFC 7323 §5.3): a timestamp older than TS.Recent marks an old duplicate.
  if (c.tsOk && seg.hasTimestamp && seqLt(seg.tsVal, c.tsRecent) && c.state !== 'SYN_RECEIVED') {
    outOfWindowAck(c, seg, now);
    return;
  }
  let len = seg.dataLength;
  let seq = seg.seq;
  let off = seg.dataOffset;
  if (flags & SYN) {
    if (c.state === 'SYN_RECEIVED' && seq === c.irs) {
      if (!(flags & ACK)) {
        sendSyn(c, now); // our SYN-ACK was lost: the peer repeats its SYN
        return;
      }
      // Simultaneous open (RFC 9293 §3.5 figure 8): the SYN is old news; the rest is new.
      seq = seqAdd(seq, 1);
      len = 0;
    } else {
      if (c.state === 'TIME_WAIT') sendAck(c, now, false);
      else challengeAck(c, now); // RFC 5961 §4.2
      return;
    }
  }
  // Acceptability (RFC 9293 §3.10.7.4, first check), then trimming to the window.
  let fin = (flags & FIN) !== 0;
  const segLen = len + (fin ? 1 : 0);
  const acceptable =
    segLen === 0
      ? wnd === 0
        ? seq === c.rcvNxt
        : inWindow(seq, c.rcvNxt, wnd) || seq === seqAdd(c.rcvNxt, wnd)
      : wnd > 0 && (inWindow(seq, c.rcvNxt, wnd) || inWindow(seqAdd(seq, segLen - 1), c.rcvNxt, wnd));
  if (!acceptable && !(wnd === 0 && seq === c.rcvNxt)) {
    outOfWindowAck(c, seg, now);
    return;
  }
  if (seqLt(seq, c.rcvNxt)) {
    const skip = Math.min(seqDiff(c.rcvNxt, seq), len);
    off += skip;
    len -= skip;
    seq = seqAdd(seq, skip);
    c.ackNow = true; // a duplicate: tell the sender where we are
  }
  const room = seqDiff(c.rcvAdv, seq);
  if (len > room) {
    len = Math.max(0, room);
    fin = false;
  }
  if (c.tsOk && seg.hasTimestamp && seqLe(seg.seq, c.lastAckSent)) c.tsRecent = seg.tsVal;
  if (!(flags & ACK)) return;
  if (c.state === 'SYN_RECEIVED') {
    if (!(seqLt(c.sndUna, seg.ack) && seqLe(seg.ack, c.sndMax))) {
      transmit(c, now, seg.ack, 0, RST);
      return;
    }
    c.state = 'ESTABLISHED';
    c.sndWnd = seg.window << c.sndWscale;
    c.maxSndWnd = c.sndWnd;
    c.sndWl1 = seg.seq;
    c.sndWl2 = seg.ack;
    c.sndUna = seg.ack;
    c.retries = 0;
    c.rtoAt = 0;
    if (c.tsOk && seg.hasTimestamp && seg.tsEcr !== 0) c.rto.sample(c.tsNow(now) - seg.tsEcr);
    if (c.listener) c.host.accepted(c);
    else c.events.onEstablished(); // the active side of a simultaneous open
    if (c.state !== 'ESTABLISHED') return;
  } else if (!processAck(c, seg, now)) {
    return;
  }
  if (c.state === 'TIME_WAIT') {
    if (fin) {
      sendAck(c, now, false);
      c.enterTimeWait(now); // restart the 2·MSL timer (RFC 9293 §3.10.7.4, eighth step)
    }
    return;
  }
  if (len > 0 && (c.state === 'ESTABLISHED' || c.state === 'FIN_WAIT_1' || c.state === 'FIN_WAIT_2')) {
    receiveData(c, seg.buf, off, len, seq);
    pendingFin(c, now);
  }
  if (fin) {
    const finAt = seqAdd(seq, len);
    if (finAt === c.rcvNxt) finArrives(c, now);
    else if (seqGt(finAt, c.rcvNxt)) c.rx.finSeq = finAt;
  }
  if (c.ackNow || c.ackPending > 0) c.host.markDirty(c);
}

function inWindow(seq: number, start: number, wnd: number): boolean {
  return seqGe(seq, start) && seqLt(seq, seqAdd(start, wnd));
}

function challengeAck(c: TcpConnection, now: number): void {
  if (c.host.allowChallengeAck()) sendAck(c, now, false);
}

/**
 * The duplicate ACK for an out-of-window or PAWS-failing segment (RFC 9293 §3.10.7.4, RFC 7323
 * §5.3). Two ends that disagree about the sequence space (after an injected segment, say)
 * would answer each other's ACKs forever; as Linux does (tcp_oow_rate_limited), a segment with
 * neither data nor SYN gets one at most every invalidAckIntervalMs. Data is always answered:
 * it is not part of such a loop.
 */
function outOfWindowAck(c: TcpConnection, seg: TcpSegment, now: number): void {
  if (seg.dataLength === 0 && !(seg.flags & (SYN | FIN))) {
    if (now - c.lastOutOfWindowAck < c.host.options.invalidAckIntervalMs) return;
    c.lastOutOfWindowAck = now;
  }
  sendAck(c, now, false);
}

function reset(c: TcpConnection): void {
  const s = c.state;
  const quiet = s === 'SYN_RECEIVED' || s === 'CLOSING' || s === 'LAST_ACK' || s === 'TIME_WAIT';
  c.terminate(quiet ? undefined : new SocketError('ECONNRESET', 'read', formatIp(c.remote), c.remotePort));
}

/** RFC 9293 §3.10.7.3: the SYN-SENT state. */
function synSent(c: TcpConnection, seg: TcpSegment, now: number): void {
  const flags = seg.flags;
  const ackOk = (flags & ACK) !== 0 && seqGt(seg.ack, c.iss) && seqLe(seg.ack, c.sndMax);
  if (flags & ACK && !ackOk) {
    if (!(flags & RST)) transmit(c, now, seg.ack, 0, RST);
    return;
  }
  if (flags & RST) {
    if (ackOk) c.terminate(new SocketError('ECONNREFUSED', 'connect', formatIp(c.remote), c.remotePort));
    return;
  }
  if (!(flags & SYN)) return;
  c.irs = seg.seq;
  c.rcvNxt = seqAdd(seg.seq, 1);
  negotiate(c, seg);
  if (ackOk) {
    c.sndUna = seg.ack;
    c.sndWnd = seg.window << c.sndWscale;
    c.maxSndWnd = c.sndWnd;
    c.sndWl1 = seg.seq;
    c.sndWl2 = seg.ack;
    c.state = 'ESTABLISHED';
    c.retries = 0;
    c.rtoAt = 0;
    c.rto.backoff = 0;
    if (c.tsOk && seg.tsEcr !== 0) c.rto.sample(c.tsNow(now) - seg.tsEcr);
    sendAck(c, now, false);
    c.events.onEstablished();
    c.host.markDirty(c);
  } else {
    // Simultaneous open (RFC 9293 §3.5, figure 8).
    c.state = 'SYN_RECEIVED';
    c.sndWnd = seg.window;
    sendSyn(c, now);
  }
}

/** Adopts the peer's SYN options (RFC 7323 §2.2, §3.2; RFC 2018 §2). */
export function negotiate(c: TcpConnection, seg: TcpSegment): void {
  const o = c.host.options;
  c.wsOk = o.windowScaling && seg.wscale >= 0;
  c.sndWscale = c.wsOk ? seg.wscale : 0;
  if (!c.wsOk) c.rcvWscale = 0;
  c.tsOk = o.timestamps && seg.hasTimestamp;
  if (c.tsOk) c.tsRecent = seg.tsVal;
  c.sackOk = o.sack && seg.sackPermitted;
  c.setMss(seg.mss);
  c.rcvAdv = c.rcvNxt;
}

/** The fifth check of §3.10.7.4 for synchronized states. Returns false when the segment is done with. */
function processAck(c: TcpConnection, seg: TcpSegment, now: number): boolean {
  const ack = seg.ack;
  // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA − MAX.SND.WND, SND.MAX].
  if (seqGt(ack, c.sndMax) || seqLt(ack, seqAdd(c.sndUna, -Math.max(c.maxSndWnd, 1)))) {
    // Both are challenge ACKs, rate-limited, as in Linux (tcp_ack, tcp_send_challenge_ack): an
    // ACK for data we never sent answered at once would feed an ACK storm between two ends
    // that disagree about the sequence space.
    challengeAck(c, now);
    return false;
  }
  const window = seg.window << c.sndWscale;
  let sackChanged = false;
  if (c.sackOk && seg.sack.length > 0) {
    sackChanged = c.scoreboard.update(seg.sack, c.sndUna, c.sndMax);
    // Segments sent after the retransmission of the first hole arrived, and it did not: it was lost
    // too (the idea of RACK, RFC 8985 §6.2, by sequence rather than time). Send it again.
    const lost = seqAdd(c.rxtMark, 3 * c.sndMss);
    if (c.inRecovery && seqGt(c.highRxt, c.sndUna) && seqGe(c.scoreboard.highest(c.sndUna), lost)) {
      c.highRxt = c.sndUna;
      c.rxtMark = c.sndMax;
      c.host.markDirty(c);
    }
  }
  if (seqGt(ack, c.sndUna)) {
    newAck(c, seg, ack, now);
  } else if (
    ack === c.sndUna &&
    c.sndMax !== c.sndUna &&
    seg.dataLength === 0 &&
    !(seg.flags & FIN) &&
    (window === c.sndWnd || sackChanged)
  ) {
    duplicateAck(c, now);
  }
  // Window update (RFC 9293 §3.10.7.4): only from a segment newer than the last one used.
  if (seqLt(c.sndWl1, seg.seq) || (c.sndWl1 === seg.seq && seqLe(c.sndWl2, ack))) {
    const opened = window > c.sndWnd;
    c.sndWnd = window;
    c.sndWl1 = seg.seq;
    c.sndWl2 = ack;
    if (window > c.maxSndWnd) c.maxSndWnd = window;
    if (opened) {
      c.persistAt = 0;
      c.persistBackoff = 0;
      c.host.markDirty(c);
    }
  }
  const finAcked = c.finQueued && seqGt(c.sndUna, c.finSeq);
  if (finAcked) {
    if (c.state === 'FIN_WAIT_1') {
      c.state = 'FIN_WAIT_2';
      if (c.orphan) {
        c.closeAt = now + c.host.options.finTimeoutMs;
        c.host.wheel.schedule(c, c.closeAt);
      }
    } else if (c.state === 'CLOSING') {
      c.enterTimeWait(now);
    } else if (c.state === 'LAST_ACK') {
      c.terminate(undefined);
      return false;
    }
  }
  return true;
}

function newAck(c: TcpConnection, seg: TcpSegment, ack: number, now: number): void {
  const flight = seqDiff(c.sndMax, c.sndUna);
  let acked = seqDiff(ack, c.sndUna);
  const finAcked = c.finQueued && seqGt(ack, c.finSeq);
  const dataAcked = finAcked ? acked - 1 : acked;
  c.sendBuf.consume(dataAcked);
  c.sndUna = ack;
  if (seqLt(c.sndNxt, ack)) c.sndNxt = ack;
  c.scoreboard.advance(ack);
  if (c.tsOk && seg.hasTimestamp && seg.tsEcr !== 0) {
    c.rto.sample(c.tsNow(now) - seg.tsEcr);
  } else if (c.rttSeq >= 0 && seqGt(ack, c.rttSeq)) {
    c.rto.sample(now - c.rttTime);
    c.rttSeq = -1;
  }
  c.retries = 0;
  c.dupAcks = 0;
  c.probeSent = false;
  if (c.undoTs !== 0 && seqGt(ack, c.undoSeq) && seg.hasTimestamp) {
    if (seqLt(seg.tsEcr, c.undoTs)) undo(c);
    c.undoTs = 0;
  }
  if (c.inRecovery) {
    if (seqGe(ack, c.recoverSeq)) {
      c.inRecovery = false;
      // RFC 6582 §3.2 step 3: deflate to ssthresh, or to what is in flight plus one segment.
      c.cc.cwnd = c.sackOk ? c.cc.ssthresh : Math.min(c.cc.ssthresh, pipe(c) + c.sndMss);
    } else if (!c.sackOk) {
      // A partial ACK: the next hole is lost too (RFC 6582 §3.2 step 4).
      retransmitHead(c, now);
      c.cc.cwnd = Math.max(c.cc.cwnd - acked + c.sndMss, c.sndMss);
      acked = 0;
    }
  } else if (cwndLimited(c, flight)) {
    c.cc.onAck(acked, now, c.rto.srtt);
  }
  if (c.sndUna === c.sndMax) c.rtoAt = 0;
  else c.restartRto(now);
  c.host.markDirty(c);
  c.events.onSendSpace();
}

/**
 * Whether the window, not the peer's window or the application, limited what was in flight, so
 * that an ACK may grow it (RFC 7661 §4.3; Linux tcp_is_cwnd_limited, whose slow start lets the
 * window reach twice the flight). A flow held by the receive window otherwise grows cwnd without
 * bound, and a later wider path (a DERP fallback, a window update) then gets one huge burst.
 */
function cwndLimited(c: TcpConnection, flight: number): boolean {
  const cwnd = c.cc.cwnd;
  return cwnd < c.cc.ssthresh ? cwnd < 2 * flight : flight + c.sndMss > cwnd;
}

/**
 * The ACK for the first retransmission echoes a timestamp older than that retransmission: the
 * original arrived, the loss was reordering (Eifel detection, RFC 3522 §3). Restore the window
 * (RFC 4015 §3.2) and tolerate deeper reordering from now on, as Linux raises tp->reordering.
 */
function undo(c: TcpConnection): void {
  c.host.stats.spurious++;
  c.cc.cwnd = Math.max(c.cc.cwnd, c.priorCwnd);
  c.cc.ssthresh = Math.max(c.cc.ssthresh, c.priorSsthresh);
  c.inRecovery = false;
  c.reordering = Math.min(c.reordering + 2, 32);
}

/** RFC 5681 §3.2 and RFC 6675 §5: three duplicates, or enough SACKed above SND.UNA, start recovery. */
function duplicateAck(c: TcpConnection, now: number): void {
  c.dupAcks++;
  if (c.inRecovery) {
    if (!c.sackOk) c.cc.cwnd += c.sndMss; // RFC 6582 §3.2 step 3 (window inflation)
    c.host.markDirty(c);
    return;
  }
  // Early retransmit (RFC 5827 §3.1): with fewer than four segments out and nothing new to send,
  // three duplicates may never come, so the threshold drops to what can.
  const out = Math.ceil(seqDiff(c.sndMax, c.sndUna) / c.sndMss);
  const unsent = seqDiff(seqAdd(c.sndUna, c.sendBuf.length), c.sndNxt) > 0;
  const thresh = out < 4 && !unsent ? Math.max(out - 1, 1) : c.reordering;
  if (c.dupAcks < thresh && !(c.sackOk && c.scoreboard.sacked >= thresh * c.sndMss)) return;
  c.inRecovery = true;
  c.host.stats.recoveries++;
  c.recoverSeq = c.sndMax;
  c.highRxt = c.sndUna;
  c.rttSeq = -1;
  markUndo(c, now);
  c.cc.onCongestion(now, seqDiff(c.sndMax, c.sndUna));
  if (!c.sackOk) {
    retransmitHead(c, now);
    c.cc.cwnd = c.cc.ssthresh + 3 * c.sndMss;
  }
  c.host.markDirty(c);
}

/** In-window payload: in order to the user, out of order to the reassembly queue. */
function receiveData(c: TcpConnection, buf: Uint8Array, off: number, len: number, seq: number): void {
  if (seq === c.rcvNxt) {
    c.deliver(buf, off, len);
    c.rcvNxt = seqAdd(seq, len);
    c.ackPending++;
    if (!c.rx.empty) {
      c.rcvNxt = c.rx.drain(c.rcvNxt, (d) => c.deliver(d, 0, d.length));
      c.ackNow = true; // a hole was filled (RFC 5681 §4.2)
    }
  } else {
    c.rx.insert(seq, buf, off, len);
    c.ackNow = true; // out of order: a duplicate ACK with SACK at once (RFC 5681 §4.2)
  }
}

/** The peer's FIN is next in sequence (§3.10.7.4, eighth step). */
function finArrives(c: TcpConnection, now: number): void {
  if (c.eofSeen) return;
  c.eofSeen = true;
  c.rcvNxt = seqAdd(c.rcvNxt, 1);
  c.ackNow = true;
  const s = c.state;
  if (s === 'ESTABLISHED' || s === 'SYN_RECEIVED') c.state = 'CLOSE_WAIT';
  else if (s === 'FIN_WAIT_1') c.state = 'CLOSING';
  c.host.markDirty(c);
  c.flushData();
  c.events.onEof();
  if (c.state === 'FIN_WAIT_2') {
    sendAck(c, now, false);
    c.enterTimeWait(now);
  }
}

/** After data filled a hole: a FIN that was waiting behind it. */
function pendingFin(c: TcpConnection, now: number): void {
  if (c.rx.finSeq >= 0 && c.rx.finSeq === c.rcvNxt && c.rx.empty) {
    c.rx.finSeq = -1;
    finArrives(c, now);
  }
}
