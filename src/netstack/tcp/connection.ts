/**
 * One TCP connection's control block (RFC 9293 §3.3.1) and its life outside segment arrival:
 * the user calls (write, shutdown, abort), the per-turn flush, and the timers. Segment arrival
 * is in input.ts, transmission in output.ts.
 */
import type { CongestionControl } from './congestion.js';
import { Cubic } from './cubic.js';
import type { SocketError } from './errors.js';
import { NewReno } from './newreno.js';
import type { ResolvedTcpOptions } from './options.js';
import { output, sendAck, sendSyn } from './output.js';
import { Reassembly } from './reassembly.js';
import { RtoEstimator } from './rto.js';
import { SackScoreboard } from './sack.js';
import { SendBuffer } from './send-buffer.js';
import { seqAdd, seqDiff } from './seq.js';
import type { TimerWheel, WheelEntry } from './timer-wheel.js';
import { runTimers } from './timers.js';

/** RFC 9293 §3.3.2 states (LISTEN belongs to the listener, not to a connection). */
export type TcpState =
  | 'SYN_SENT'
  | 'SYN_RECEIVED'
  | 'ESTABLISHED'
  | 'FIN_WAIT_1'
  | 'FIN_WAIT_2'
  | 'CLOSE_WAIT'
  | 'CLOSING'
  | 'LAST_ACK'
  | 'TIME_WAIT'
  | 'CLOSED';

/** What a connection tells its user (the socket). */
export interface ConnectionEvents {
  onEstablished(): void;
  onData(chunk: Uint8Array): void;
  /** The peer's FIN: no more data will arrive. */
  onEof(): void;
  /** Acknowledged bytes left the send buffer. */
  onSendSpace(): void;
  /** The connection is over for its user: an error, or a clean end of both directions. */
  onClose(err: SocketError | undefined): void;
  /** Bytes delivered to the user and not yet read: they count against the receive window. */
  unread(): number;
}

/** What a connection needs from the endpoint that owns it. */
export interface ConnectionHost {
  readonly options: ResolvedTcpOptions;
  /** The link completes checksums: segments carry the pseudo-header sum in the field. */
  readonly txChecksumOffload: boolean;
  readonly stats: { timeouts: number; probes: number; recoveries: number; spurious: number };
  readonly wheel: TimerWheel;
  /**
   * `n` bytes to build one outgoing packet in, valid until the next call: links copy what they
   * keep (PacketLink.writePacket), so one buffer serves every segment.
   */
  packetBuffer(n: number): Uint8Array;
  /** Hands a packet with the IP header room filled by the caller to the IP layer. */
  send(packet: Uint8Array, c: TcpConnection): void;
  /** Queues `c` for a flush at the end of this event-loop turn. */
  markDirty(c: TcpConnection): void;
  /** The largest IP packet toward `remote` now (the link's path MTU: Stack.mtuTo). */
  mtuTo(remote: Uint8Array): number;
  /** Changes whenever {@link mtuTo} may answer differently (Stack.mtuEpoch). */
  readonly mtuEpoch: number;
  /** Whether a challenge ACK may be sent now (RFC 5961 §7 rate limit). */
  allowChallengeAck(): boolean;
  /** The connection reached CLOSED: forget it. */
  remove(c: TcpConnection): void;
  /** A passive connection reached ESTABLISHED. */
  accepted(c: TcpConnection): void;
}

const NOOP_EVENTS: ConnectionEvents = {
  onEstablished() {},
  onData() {},
  onEof() {},
  onSendSpace() {},
  onClose() {},
  unread: () => 0,
};

/** The transmission control block plus the machinery that drives it. */
export class TcpConnection implements WheelEntry {
  state: TcpState;
  events: ConnectionEvents = NOOP_EVENTS;
  wheelAt = 0;
  wheelSlot = -1;
  dirty = false;
  /** The user has let go (destroyed the socket): the connection finishes on its own. */
  orphan = false;

  // Send sequence space (RFC 9293 §3.3.1), plus SND.MAX, the highest sequence number sent.
  iss: number;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  maxSndWnd = 0;
  sndWscale = 0;
  /** Both sides offered window scaling (RFC 7323 §2.2). */
  wsOk = false;
  readonly sendBuf = new SendBuffer();
  finQueued = false;
  finSeq = 0;
  /** Payload bytes per segment, after options. */
  sndMss: number;
  /**
   * The MSS we announce: the link MTU less IP and TCP headers. With per-destination MTUs (a
   * tailnet's path MTU discovery) the link MTU is the largest any peer may get, so a connection
   * can grow its segments later if the path to it is proved larger.
   */
  readonly ourMss: number;
  /** The largest segment (TCP options + data) the path to the remote carries now. */
  pathMss: number;
  /** The link's MTU epoch {@link pathMss} was computed at. */
  mtuEpoch: number;
  /** The MSS the peer announced (0: none). */
  private peerMss = 0;

  // Receive sequence space.
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window last advertised: never moves left (RFC 9293 §3.8.6.2.2). */
  rcvAdv = 0;
  rcvWscale: number;
  readonly rx = new Reassembly();
  /** RCV.NXT in the last ACK sent, for TS.Recent (RFC 7323 §4.3). */
  lastAckSent = 0;
  eofSeen = false;
  /** When the last duplicate ACK for an out-of-window segment went out (input.ts outOfWindowAck). */
  lastOutOfWindowAck = Number.NEGATIVE_INFINITY;

  // Options agreed in the handshake.
  tsOk = false;
  tsRecent = 0;
  readonly tsOffset = (Math.random() * 0x100000000) >>> 0;
  sackOk = false;
  readonly sackOut: number[] = [];

  // Congestion control and loss recovery.
  cc: CongestionControl;
  readonly rto: RtoEstimator;
  readonly scoreboard = new SackScoreboard();
  dupAcks = 0;
  inRecovery = false;
  recoverSeq = 0;
  highRxt = 0;
  /** Duplicate-ACK threshold in segments (RFC 5681's 3), raised by spurious retransmissions. */
  reordering = 3;
  /** Undo state for a window reduction (RFC 3522): our TSval at the first retransmission (0 = none). */
  undoTs = 0;
  undoSeq = 0;
  priorCwnd = 0;
  priorSsthresh = 0;
  /** SND.MAX when the hole at SND.UNA was last retransmitted: SACKs well past it mean the retransmission was lost. */
  rxtMark = 0;
  /** Karn's rule timing without timestamps: the sequence timed and when it was sent, or -1. */
  rttSeq = -1;
  rttTime = 0;
  retries = 0;
  /** The armed retransmission deadline is a tail loss probe (RFC 8985 §7), not the RTO. */
  probeArmed = false;
  /** A probe went out and no ACK of new data has come since. */
  probeSent = false;

  // Timers: absolute deadlines in ms, 0 when off.
  rtoAt = 0;
  delackAt = 0;
  persistAt = 0;
  keepaliveAt = 0;
  closeAt = 0;
  persistBackoff = 0;
  keepaliveProbesSent = 0;
  lastReceived = 0;

  // Acknowledgement obligations, settled at flush.
  ackPending = 0;
  ackNow = false;

  // In-order received data collected during a turn and delivered at flush, in one chunk.
  slab: Buffer | undefined;
  slabStart = 0;
  slabFill = 0;
  lastFlushBytes = 0;

  nodelay = false;
  keepaliveMs = 0;
  /** Options for Stack.sendPrepared, made once. */
  readonly sendOptions: { src: Uint8Array; csumStart?: number; csumField?: number };
  /** The listener that made this connection, until it is established. */
  listener: { halfOpen: number } | undefined;
  /** The pseudo-header's address words, summed once. */
  readonly addrSum: number;
  readonly ipHeaderLength: number;

  constructor(
    readonly host: ConnectionHost,
    readonly local: Uint8Array,
    readonly localPort: number,
    readonly remote: Uint8Array,
    readonly remotePort: number,
    iss: number,
    mtu: number,
    state: 'SYN_SENT' | 'SYN_RECEIVED',
  ) {
    const o = host.options;
    this.state = state;
    const ipHeader = local.length === 4 ? 20 : 40;
    this.sendOptions = host.txChecksumOffload
      ? { src: local, csumStart: ipHeader, csumField: ipHeader + 16 }
      : { src: local };
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.ipHeaderLength = ipHeader;
    this.ourMss = mtu - this.ipHeaderLength - 20;
    this.mtuEpoch = host.mtuEpoch;
    this.pathMss = Math.min(this.ourMss, host.mtuTo(remote) - this.ipHeaderLength - 20);
    this.sndMss = Math.min(this.pathMss, local.length === 4 ? 536 : 1220);
    let ws = 0;
    while (o.windowScaling && ws < 14 && o.receiveBuffer >>> ws > 0xffff) ws++;
    this.rcvWscale = o.windowScaling ? ws : 0;
    this.rto = new RtoEstimator(o.minRtoMs, o.maxRtoMs, o.initialRtoMs);
    this.cc = o.congestion === 'newreno' ? new NewReno(this.sndMss) : new Cubic(this.sndMss);
    let sum = 0;
    for (let i = 0; i < local.length; i += 2)
      sum += ((local[i]! << 8) | local[i + 1]!) + ((remote[i]! << 8) | remote[i + 1]!);
    this.addrSum = sum;
  }

  /** Milliseconds on the connection's timestamp clock (RFC 7323 §5.4: a per-connection offset). */
  tsNow(now: number): number {
    return (Math.floor(now) + this.tsOffset) >>> 0;
  }

  /** Sets the agreed segment size once the peer's MSS is known, and restarts the window with it. */
  setMss(peerMss: number): void {
    this.peerMss = peerMss;
    this.sndMss = this.effectiveMss();
    this.cc = this.host.options.congestion === 'newreno' ? new NewReno(this.sndMss) : new Cubic(this.sndMss);
  }

  private effectiveMss(): number {
    const peer = this.peerMss > 0 ? this.peerMss : this.ipHeaderLength === 20 ? 536 : 1220;
    return Math.max(64, Math.min(this.pathMss, peer) - (this.tsOk ? 12 : 0));
  }

  /**
   * The link's path MTUs changed (Stack.mtuEpoch): resize segments to the path now, as Linux's
   * tcp_sync_mss does on a PMTU change. Segments already sent are not re-cut, but every send and
   * retransmission after this takes the new size (TCP sends from a byte stream, so a lost large
   * segment goes again as several small ones). The window keeps its bytes.
   */
  syncPathMtu(): void {
    this.mtuEpoch = this.host.mtuEpoch;
    this.pathMss = Math.min(this.ourMss, this.host.mtuTo(this.remote) - this.ipHeaderLength - 20);
    if (this.state === 'SYN_SENT' || this.state === 'SYN_RECEIVED') return; // setMss follows
    const mss = this.effectiveMss();
    if (mss === this.sndMss) return;
    this.sndMss = mss;
    this.cc.mss = mss;
  }

  /** Starts an active open: sends the SYN and arms its retransmission (RFC 9293 §3.10.1). */
  open(now: number): void {
    sendSyn(this, now);
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = this.sndNxt;
    this.armRto(now);
  }

  /** Whether the user may still queue data. */
  get writable(): boolean {
    return !this.finQueued && this.state !== 'CLOSED';
  }

  /** Queues data for sending (kept by reference). Returns whether the send buffer still has room. */
  write(chunk: Uint8Array): boolean {
    if (this.writable) {
      this.sendBuf.push(chunk);
      this.host.markDirty(this);
    }
    return this.sendBuf.length < this.host.options.sendBuffer;
  }

  /** Whether the send buffer is below its limit. */
  get sendSpace(): boolean {
    return this.sendBuf.length < this.host.options.sendBuffer;
  }

  /** The user's CLOSE for sending (RFC 9293 §3.10.4): a FIN after the queued data. */
  shutdown(): void {
    if (this.finQueued || this.state === 'CLOSED' || this.state === 'TIME_WAIT') return;
    if (this.state === 'SYN_SENT') {
      this.terminate(undefined);
      return;
    }
    this.finQueued = true;
    this.finSeq = seqAdd(this.sndUna, this.sendBuf.length);
    if (this.state === 'ESTABLISHED' || this.state === 'SYN_RECEIVED') this.state = 'FIN_WAIT_1';
    else if (this.state === 'CLOSE_WAIT') this.state = 'LAST_ACK';
    this.host.markDirty(this);
  }

  /** The user's ABORT (RFC 9293 §3.10.5): a RST in synchronized states, then CLOSED. */
  abort(sendReset: boolean): void {
    if (this.state === 'CLOSED') return;
    if (sendReset && this.state !== 'SYN_SENT' && this.state !== 'TIME_WAIT') {
      sendAck(this, performance.now(), true);
    }
    this.terminate(undefined);
  }

  /** The user read data: reopen the window if it grew enough (receiver SWS avoidance, RFC 1122 §4.2.3.3). */
  onRead(): void {
    if (this.state === 'CLOSED') return;
    const grow = this.freeWindow() - seqDiff(this.rcvAdv, this.rcvNxt);
    if (grow >= Math.min(this.host.options.receiveBuffer / 2, 2 * this.pathMss)) {
      this.ackNow = true;
      this.host.markDirty(this);
    }
  }

  /** Receive buffer space not taken by unread, pending or out-of-order bytes. */
  freeWindow(): number {
    const used = this.events.unread() + (this.slabFill - this.slabStart) + this.rx.bytes;
    return Math.max(0, this.host.options.receiveBuffer - used);
  }

  /** Copies in-order payload into the turn's slab; it reaches the user at flush. */
  deliver(buf: Uint8Array, off: number, len: number): void {
    let slab = this.slab;
    if (!slab || slab.length - this.slabFill < len) {
      this.flushData();
      const size = Math.min(65536, Math.max(4096, this.lastFlushBytes * 2));
      slab = Buffer.allocUnsafe(Math.max(size, len));
      this.slab = slab;
      this.slabStart = 0;
      this.slabFill = 0;
    }
    slab.set(len === buf.length ? buf : buf.subarray(off, off + len), this.slabFill);
    this.slabFill += len;
  }

  /** Hands the data collected this turn to the user. */
  flushData(): void {
    const slab = this.slab;
    if (!slab || this.slabFill === this.slabStart) return;
    const chunk = slab.subarray(this.slabStart, this.slabFill);
    this.lastFlushBytes = chunk.length;
    this.slabStart = this.slabFill;
    this.events.onData(chunk);
  }

  /** End of the turn: data to the user, then segments and ACKs out. */
  flush(now: number): void {
    this.flushData();
    if (this.slab && this.slab.length - this.slabFill < 2048) this.slab = undefined;
    if (this.state === 'CLOSED') return;
    output(this, now);
    if (this.ackNow || this.ackPending >= 2) {
      sendAck(this, now, false);
    } else if (this.ackPending > 0 && this.delackAt === 0) {
      this.delackAt = now + this.host.options.delayedAckMs;
      this.host.wheel.schedule(this, this.delackAt);
    }
  }

  /** Arms the retransmission timer (RFC 6298 §5.1) unless it runs. */
  armRto(now: number): void {
    if (this.rtoAt === 0) this.restartRto(now);
  }

  /**
   * Restarts the retransmission timer (RFC 6298 §5.3). When a tail loss probe would fire sooner
   * (PTO = 2·SRTT, plus the peer's delayed ACK when one segment is out: RFC 8985 §7.2), that is
   * armed first, so a lost last segment or ACK costs a round trip rather than an RTO.
   */
  restartRto(now: number): void {
    let at = now + this.rto.current();
    this.probeArmed = false;
    if (!this.inRecovery && !this.probeSent && this.rto.srtt > 0) {
      const oneSegment = seqDiff(this.sndMax, this.sndUna) <= this.sndMss;
      const pto = Math.max(2 * this.rto.srtt + (oneSegment ? this.host.options.delayedAckMs : 0), 10);
      if (now + pto < at) {
        at = now + pto;
        this.probeArmed = true;
      }
    }
    this.rtoAt = at;
    this.host.wheel.schedule(this, this.rtoAt);
  }

  /** Arms the keepalive (RFC 1122 §4.2.3.6) from the last segment received. */
  armKeepalive(now: number): void {
    if (this.keepaliveMs <= 0) {
      this.keepaliveAt = 0;
      return;
    }
    this.keepaliveAt =
      now + (this.keepaliveProbesSent > 0 ? this.host.options.keepaliveIntervalMs : this.keepaliveMs);
    this.host.wheel.schedule(this, this.keepaliveAt);
  }

  /** Enters TIME_WAIT (RFC 9293 §3.10.7.4): the user is done, the 4-tuple stays taken. */
  enterTimeWait(now: number): void {
    this.state = 'TIME_WAIT';
    this.rtoAt = 0;
    this.persistAt = 0;
    this.keepaliveAt = 0;
    this.closeAt = now + this.host.options.timeWaitMs;
    this.host.wheel.schedule(this, this.closeAt);
    this.sendBuf.clear();
    const ev = this.events;
    this.events = NOOP_EVENTS;
    ev.onClose(undefined);
  }

  /** Goes to CLOSED, releases everything and tells the user (with `err` if it failed). */
  terminate(err: SocketError | undefined): void {
    if (this.state === 'CLOSED') return;
    this.flushData();
    this.state = 'CLOSED';
    this.host.wheel.cancel(this);
    this.sendBuf.clear();
    this.rx.clear();
    this.slab = undefined;
    this.host.remove(this);
    const ev = this.events;
    this.events = NOOP_EVENTS;
    ev.onClose(err);
  }

  /** Timer wheel callback: runs whichever deadlines passed (timers.ts). */
  onWheel(now: number): void {
    runTimers(this, now);
  }
}
