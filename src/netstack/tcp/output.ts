/**
 * Segment transmission (RFC 9293 §3.8.6 and §3.10.7): building segments straight into the
 * packet that goes to the link, the send loop with Nagle, sender SWS avoidance, congestion and
 * flow control, SACK-based loss recovery (RFC 6675 §5) with NewReno's (RFC 6582) where the peer
 * has no SACK, and the retransmission timeout (RFC 6298 §5).
 */

import { formatIp } from '../address.js';
import type { TcpConnection } from './connection.js';
import { SocketError } from './errors.js';
import {
  optionsLength,
  setPseudoHeaderSum,
  setTcpChecksum,
  TcpFlag,
  type TcpHeaderFields,
  writeTcpHeader,
} from './segment.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqMax, seqMin } from './seq.js';

const fields: TcpHeaderFields = { srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0 };

/** Builds and sends one segment; `len` payload bytes come from the send buffer at `seq`. */
export function transmit(c: TcpConnection, now: number, seq: number, len: number, flags: number): void {
  const f = fields;
  f.srcPort = c.localPort;
  f.dstPort = c.remotePort;
  f.seq = seq;
  f.flags = flags;
  const syn = (flags & TcpFlag.SYN) !== 0;
  const rst = (flags & TcpFlag.RST) !== 0;
  f.ack = flags & TcpFlag.ACK ? c.rcvNxt : 0;
  f.window = rst ? 0 : advertise(c);
  f.synMss = syn ? c.ourMss : undefined;
  const o = c.host.options;
  const offerTs = syn ? (c.state === 'SYN_SENT' ? o.timestamps : c.tsOk) : c.tsOk && !rst;
  f.synWscale = syn && (c.state === 'SYN_SENT' ? o.windowScaling : c.wsOk) ? c.rcvWscale : undefined;
  f.synSack = syn && (c.state === 'SYN_SENT' ? o.sack : c.sackOk);
  f.tsVal = offerTs ? c.tsNow(now) : undefined;
  f.tsEcr = offerTs ? c.tsRecent : undefined;
  f.sackCount = 0;
  if (c.sackOk && !syn && !rst && !c.rx.empty) {
    f.sackCount = c.rx.sackBlocks(c.sackOut, offerTs ? 3 : 4);
    f.sack = c.sackOut;
    // Blocks ride on a full data segment only as far as they fit the MTU; pure ACKs carry them all.
    while (f.sackCount > 0 && optionsLength(f) + len > c.pathMss) f.sackCount--;
  }
  const tcpLen = 20 + optionsLength(f) + len;
  const packet = c.host.packetBuffer(c.ipHeaderLength + tcpLen);
  const off = c.ipHeaderLength;
  const hl = writeTcpHeader(packet, off, f);
  if (len > 0) c.sendBuf.copyOut(seqDiff(seq, c.sndUna), len, packet, off + hl);
  if (c.host.txChecksumOffload) setPseudoHeaderSum(packet, off, tcpLen, c.addrSum);
  else setTcpChecksum(packet, off, tcpLen, c.addrSum);
  // A segment below SND.MAX may be wholly old to the peer, which then ignores its ACK field
  // (RFC 9293 §3.10.7.4): only segments at SND.MAX settle what we owe.
  if (flags & TcpFlag.ACK && !seqLt(seq, c.sndMax)) {
    c.lastAckSent = c.rcvNxt;
    c.ackPending = 0;
    c.ackNow = false;
    c.delackAt = 0;
  }
  c.host.send(packet, c);
}

/** The window field for an outgoing segment, moving RCV.ADV right when there is room (never left). */
function advertise(c: TcpConnection): number {
  const scale = c.rcvWscale;
  const free = c.freeWindow();
  const edge = seqAdd(c.rcvNxt, Math.min(free, 0xffff << scale));
  if (seqGt(edge, c.rcvAdv) || c.state === 'SYN_SENT' || c.state === 'SYN_RECEIVED') c.rcvAdv = edge;
  const wnd = Math.max(0, seqDiff(c.rcvAdv, c.rcvNxt));
  // RFC 7323 §2.2: the window in a SYN is never scaled.
  return c.state === 'SYN_SENT' || (c.state === 'SYN_RECEIVED' && c.sndUna === c.iss)
    ? Math.min(wnd, 0xffff)
    : Math.min(wnd >>> scale, 0xffff);
}

/** Sends SYN (active open) or SYN-ACK (passive), at the ISS. */
export function sendSyn(c: TcpConnection, now: number): void {
  transmit(c, now, c.iss, 0, c.state === 'SYN_SENT' ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK);
}

/**
 * A bare ACK (or RST when `reset`) at SND.MAX: RFC 9293's SND.NXT, which never moves back (here
 * SND.NXT does, after a timeout), so the peer never finds the ACK below its window.
 */
export function sendAck(c: TcpConnection, now: number, reset: boolean): void {
  transmit(c, now, c.sndMax, 0, reset ? TcpFlag.RST | TcpFlag.ACK : TcpFlag.ACK);
}

/** A zero-window or keepalive probe: an old sequence number the peer must ACK (RFC 9293 §3.8.6.1, RFC 1122 §4.2.3.6). */
export function sendProbe(c: TcpConnection, now: number): void {
  transmit(c, now, seqAdd(c.sndUna, -1), 0, TcpFlag.ACK);
}

/**
 * Holes below this are deemed lost: RFC 6675 §4 IsLost asks for DupThresh segments SACKed above
 * a hole; here that is the span, with DupThresh raised when reordering has fooled us before. The
 * hole at SND.UNA always qualifies once recovery has begun.
 */
export function lossEdge(c: TcpConnection): number {
  const high = c.scoreboard.highest(c.sndUna);
  const edge = seqAdd(high, -(c.reordering - 1) * c.sndMss);
  return seqGt(edge, c.sndUna) ? edge : seqMin(high, seqAdd(c.sndUna, c.sndMss));
}

/** Remembers the window before a reduction, so that a spurious one can be undone (RFC 3522, RFC 4015). */
export function markUndo(c: TcpConnection, now: number): void {
  c.undoTs = c.tsOk ? c.tsNow(now) : 0;
  c.undoSeq = c.sndUna;
  c.priorCwnd = c.cc.cwnd;
  c.priorSsthresh = c.cc.ssthresh;
}

/** Bytes believed in the network (RFC 6675 §4 "pipe"). */
export function pipe(c: TcpConnection): number {
  let p = seqDiff(c.sndNxt, c.sndUna);
  if (c.sackOk) {
    p -= c.scoreboard.sacked;
    if (c.inRecovery) p -= c.scoreboard.holeBytes(seqMax(c.highRxt, c.sndUna), lossEdge(c));
  }
  return Math.max(0, p);
}

/** Retransmits the first unacknowledged segment (fast retransmit, NewReno partial ACKs, RTO). */
export function retransmitHead(c: TcpConnection, now: number): void {
  if (c.mtuEpoch !== c.host.mtuEpoch) c.syncPathMtu();
  const dataLeft = c.sendBuf.length;
  const len = Math.min(c.sndMss, dataLeft);
  const fin = c.finQueued && seqAdd(c.sndUna, len) === c.finSeq && seqGt(c.sndMax, c.finSeq);
  transmit(c, now, c.sndUna, len, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0));
  c.highRxt = seqAdd(c.sndUna, len);
  c.rxtMark = c.sndMax;
  c.rttSeq = -1;
}

/**
 * Sends what windows, Nagle and recovery allow. Returns whether any segment went out (each
 * carries an ACK, so a pending ACK is then settled).
 */
export function output(c: TcpConnection, now: number, force = false): boolean {
  const s = c.state;
  if (s === 'SYN_SENT' || s === 'SYN_RECEIVED' || s === 'CLOSED' || s === 'TIME_WAIT') return false;
  if (c.mtuEpoch !== c.host.mtuEpoch) c.syncPathMtu();
  let sent = false;
  const mss = c.sndMss;
  let inFlight = pipe(c);
  if (c.inRecovery && c.sackOk) {
    const high = lossEdge(c);
    while (inFlight + mss <= c.cc.cwnd || (inFlight < c.cc.cwnd && inFlight === 0)) {
      const hole = c.scoreboard.nextHole(seqMax(c.highRxt, c.sndUna), high);
      if (!hole) break;
      const len = Math.min(hole.len, mss);
      transmit(c, now, hole.seq, len, TcpFlag.ACK);
      if (hole.seq === c.sndUna) c.rxtMark = c.sndMax;
      c.highRxt = seqAdd(hole.seq, len);
      inFlight += len;
      sent = true;
    }
  }
  const end = seqAdd(c.sndUna, c.sendBuf.length);
  while (seqLt(c.sndNxt, end)) {
    const avail = seqDiff(end, c.sndNxt);
    const usable = seqDiff(seqAdd(c.sndUna, c.sndWnd), c.sndNxt);
    // Limited transmit (RFC 3042): each of the first two duplicate ACKs lets one new segment out.
    const limited = c.inRecovery ? 0 : Math.min(c.dupAcks, 2) * mss;
    const room = Math.floor(c.cc.cwnd) + limited - inFlight;
    const len = Math.min(mss, avail, usable, room);
    if (len <= 0) break;
    if (len < mss) {
      if (len < avail) {
        // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): a window-limited runt only if it is half the window.
        if (!force && (len < c.maxSndWnd / 2 || room < mss)) break;
      } else if (!c.nodelay && inFlight > 0 && !c.finQueued) {
        break; // Nagle (RFC 9293 §3.7.4): one small segment in flight at a time.
      }
    }
    const seq = c.sndNxt;
    const fin = c.finQueued && seqAdd(seq, len) === c.finSeq;
    transmit(c, now, seq, len, TcpFlag.ACK | (len === avail ? TcpFlag.PSH : 0) | (fin ? TcpFlag.FIN : 0));
    if (c.rttSeq < 0 && !c.tsOk && !c.inRecovery) {
      c.rttSeq = seq;
      c.rttTime = now;
    }
    c.sndNxt = seqAdd(seq, len + (fin ? 1 : 0));
    if (seqGt(c.sndNxt, c.sndMax)) c.sndMax = c.sndNxt;
    inFlight += len;
    sent = true;
  }
  if (c.finQueued && c.sndNxt === c.finSeq) {
    transmit(c, now, c.finSeq, 0, TcpFlag.ACK | TcpFlag.FIN);
    c.sndNxt = seqAdd(c.finSeq, 1);
    if (seqGt(c.sndNxt, c.sndMax)) c.sndMax = c.sndNxt;
    sent = true;
  }
  if (c.sndMax !== c.sndUna) c.armRto(now);
  else if (seqLt(c.sndNxt, end) && c.persistAt === 0) {
    // Nothing in flight yet data waits: a zero window, or one too small to send into (SWS
    // avoidance). The persist timer probes the first and overrides the second (RFC 9293 §3.8.6.1,
    // §3.8.6.2.1).

    c.persistBackoff = 0;
    c.persistAt = now + c.rto.current();
    c.host.wheel.schedule(c, c.persistAt);
  }
  return sent;
}

/**
 * The retransmission timer fired (RFC 6298 §5.4–5.7): back off, collapse the window and go back
 * to SND.UNA, or give up with ETIMEDOUT. Returns false when the connection is gone.
 */
export function retransmitTimeout(c: TcpConnection, now: number): boolean {
  const o = c.host.options;
  if (c.state === 'SYN_SENT' || c.state === 'SYN_RECEIVED') {
    if (++c.retries > o.synRetries) {
      c.terminate(timeoutError(c));
      return false;
    }
    c.rto.backoff++;
    transmit(c, now, c.iss, 0, c.state === 'SYN_SENT' ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK);
    c.restartRto(now);
    return true;
  }
  if (c.sndMax === c.sndUna) return true;
  if (++c.retries > o.maxRetries) {
    c.terminate(timeoutError(c));
    return false;
  }
  c.host.stats.timeouts++;
  if (c.retries === 1) {
    markUndo(c, now);
    c.cc.onTimeout(now, seqDiff(c.sndMax, c.sndUna));
  } else {
    // RFC 5681 §3.1: when the same segment times out again, ssthresh is held constant (the
    // window, already one segment, would otherwise drive it to its floor); cwnd stays at LW.
    c.cc.cwnd = c.sndMss;
  }
  c.inRecovery = false;
  c.dupAcks = 0;
  c.scoreboard.clear();
  c.rto.backoff++;
  c.probeSent = true;
  c.sndNxt = c.sndUna;
  retransmitHead(c, now);
  const advanced = seqAdd(c.sndUna, Math.min(c.sndMss, c.sendBuf.length));
  c.sndNxt =
    c.finQueued && advanced === c.finSeq && seqGt(c.sndMax, c.finSeq) ? seqAdd(advanced, 1) : advanced;
  c.restartRto(now);
  return true;
}

/** ETIMEDOUT for this connection, with Node's syscall naming. */
export function timeoutError(c: TcpConnection): SocketError {
  return new SocketError(
    'ETIMEDOUT',
    c.state === 'SYN_SENT' ? 'connect' : 'read',
    formatIp(c.remote),
    c.remotePort,
  );
}

/**
 * The probe timeout fired (RFC 8985 §7.3): send one new segment if the windows allow, else
 * retransmit the last one, so that the ACK it draws reveals any loss through SACK or dupACKs.
 */
export function tailLossProbe(c: TcpConnection, now: number): void {
  c.probeArmed = false;
  if (c.sndMax === c.sndUna) return;
  c.probeSent = true;
  c.host.stats.probes++;
  const before = c.sndMax;
  output(c, now);
  if (c.sndMax === before) {
    const dataEnd = c.finQueued && seqGt(c.sndMax, c.finSeq) ? c.finSeq : c.sndMax;
    const len = Math.min(c.sndMss, seqDiff(dataEnd, c.sndUna));
    const seq = seqAdd(dataEnd, -len);
    const fin = dataEnd !== c.sndMax;
    transmit(c, now, seq, len, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0));
  }
  c.rtoAt = 0;
  c.restartRto(now);
}
