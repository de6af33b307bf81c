/**
 * TCP for one {@link Stack}: demultiplexing to connections and listeners, passive opens with
 * backlog limits, RSTs for closed ports (RFC 9293 §3.10.7.1), ephemeral ports, the timer wheel
 * and the once-per-turn flush that batches ACKs and transmissions.
 */
import { addressAt, formatIp, parseIp, unmapIPv4 } from '../address.js';
import { NetstackError } from '../errors.js';
import type { IcmpErrorInfo } from '../icmp-error.js';
import { type IpPacket, IpProtocol, packetPseudoHeaderSum, payloadSumFromLink } from '../packet.js';
import { parseIpPacket, type Stack } from '../stack.js';
import { type ConnectionHost, TcpConnection, type TcpState } from './connection.js';
import type { Listener, TcpForwardRequest, TcpStats } from './endpoint-types.js';
import { SocketError } from './errors.js';
import { negotiate, segmentArrives } from './input.js';
import { IsnGenerator } from './isn.js';
import { type ResolvedTcpOptions, resolveTcpOptions, type TcpOptions } from './options.js';
import { sendSyn } from './output.js';
import { buildReset } from './reset.js';
import { fastSum, parseTcpSegment, TcpFlag, TcpSegment } from './segment.js';
import { seqAdd, seqGt } from './seq.js';
import { TimerWheel } from './timer-wheel.js';

export type { Listener, TcpForwardRequest, TcpStats } from './endpoint-types.js';

const EPHEMERAL_LOW = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_LOW;

/** The TCP protocol engine of one stack. Use sockets (`TcpSocket`, `TcpServer`) on top of it. */
export class TcpEndpoint implements ConnectionHost {
  readonly options: ResolvedTcpOptions;
  /** The link completes our checksums (the stack's {@link Stack.txChecksumOffload}). */
  readonly txChecksumOffload: boolean;
  readonly wheel = new TimerWheel();
  readonly stats: TcpStats = {
    segmentsIn: 0,
    segmentsOut: 0,
    badChecksum: 0,
    malformed: 0,
    resetsSent: 0,
    activeOpens: 0,
    passiveOpens: 0,
    synsDropped: 0,
    challengeAcks: 0,
    timeouts: 0,
    probes: 0,
    recoveries: 0,
    spurious: 0,
    sendErrors: 0,
  };
  private readonly table = new Map<number, TcpConnection[]>();
  private readonly listeners = new Map<number, Listener>();
  private readonly portUse = new Map<number, number>();
  private readonly isn = new IsnGenerator();
  private readonly seg = new TcpSegment();
  /** Where outgoing segments are built (see {@link packetBuffer}), and its last view. */
  private readonly scratch: ArrayBuffer;
  private packetView: Uint8Array;
  private dirty: TcpConnection[] = [];
  private forwarder: ((req: TcpForwardRequest) => void) | undefined;
  /** Forwarded SYNs awaiting their router's decision, by 4-tuple. */
  private readonly undecided = new Set<string>();
  private flushScheduled = false;
  private challengeWindow = 0;
  private challengeCount = 0;
  private closed = false;

  constructor(
    readonly stack: Stack,
    options: TcpOptions = {},
  ) {
    this.options = resolveTcpOptions(options);
    this.txChecksumOffload = stack.txChecksumOffload;
    this.scratch = new ArrayBuffer(stack.mtu);
    this.packetView = new Uint8Array(this.scratch, 0, 0);
    stack.registerProtocol(IpProtocol.TCP, (pkt) => this.input(pkt));
    // A burst of segments in gets one flush: one ACK decision and one burst of segments out.
    stack.onBurstEnd(() => this.flush());
    stack.onIcmpError(IpProtocol.TCP, (info) => this.icmpError(info));
  }

  /** Live connections, TIME_WAIT included. */
  get connectionCount(): number {
    let n = 0;
    for (const list of this.table.values()) n += list.length;
    return n;
  }

  /** Every connection and its state, like ss(8): for diagnostics and tests. */
  list(): { local: string; localPort: number; remote: string; remotePort: number; state: TcpState }[] {
    const out = [];
    for (const l of this.table.values()) {
      for (const c of l) {
        const { localPort, remotePort, state } = c;
        out.push({ local: formatIp(c.local), localPort, remote: formatIp(c.remote), remotePort, state });
      }
    }
    return out;
  }

  /** Starts an active open to `host`:`port`. Throws SocketError (EADDRINUSE, EADDRNOTAVAIL). */
  connect(host: string, port: number, localPort = 0): TcpConnection {
    if (this.closed) throw new NetstackError('CLOSED', 'TCP endpoint is closed');
    if (
      !Number.isInteger(port) ||
      port < 1 ||
      port > 65535 ||
      !Number.isInteger(localPort) ||
      localPort < 0 ||
      localPort > 65535
    ) {
      throw new NetstackError('INVALID_ARGUMENT', `port ${port} (local ${localPort}) out of range`);
    }
    const remote = unmapIPv4(parseIp(host));
    const local = this.stack.localAddress(remote.length === 4 ? 4 : 6);
    if (!local)
      throw new SocketError('EADDRNOTAVAIL', 'connect', host, port, 'no local address of that family');
    let lport = localPort;
    if (lport === 0) lport = this.ephemeralPort();
    else if (this.find(local, lport, remote, port))
      throw new SocketError('EADDRINUSE', 'connect', formatIp(local), lport);
    const c = new TcpConnection(
      this,
      local,
      lport,
      remote,
      port,
      this.isn.next(local, lport, remote, port),
      this.stack.mtu,
      'SYN_SENT',
    );
    this.add(c);
    this.stats.activeOpens++;
    c.open(performance.now());
    return c;
  }

  /** Starts listening. Throws SocketError EADDRINUSE when the port has a listener. */
  listen(listener: Listener): void {
    if (this.closed) throw new NetstackError('CLOSED', 'TCP endpoint is closed');
    if (this.listeners.has(listener.port)) {
      const at = listener.address ? formatIp(listener.address) : '::';
      throw new SocketError('EADDRINUSE', 'listen', at, listener.port);
    }
    this.listeners.set(listener.port, listener);
    this.usePort(listener.port, 1);
  }

  /**
   * A router's forwarder: SYNs to routed addresses (not our own) are handed to it as
   * {@link TcpForwardRequest}s; undefined stops it. Without one, they are answered with a RST.
   */
  setForwarder(forwarder: ((req: TcpForwardRequest) => void) | undefined): void {
    this.forwarder = forwarder;
  }

  /** Stops listening; established connections are unaffected. */
  unlisten(listener: Listener): void {
    if (this.listeners.get(listener.port) !== listener) return;
    this.listeners.delete(listener.port);
    this.usePort(listener.port, -1);
  }

  /** A local port no connection or listener uses, from a random start (RFC 6056 §3.3.1). */
  ephemeralPort(): number {
    const start = Math.floor(Math.random() * EPHEMERAL_COUNT);
    for (let i = 0; i < EPHEMERAL_COUNT; i++) {
      const p = EPHEMERAL_LOW + ((start + i) % EPHEMERAL_COUNT);
      if (!this.portUse.has(p)) return p;
    }
    throw new SocketError('EADDRNOTAVAIL', 'connect', undefined, undefined, 'no free ephemeral port');
  }

  /** Aborts every connection (RST) and detaches from the stack. */
  close(): void {
    if (this.closed) return;
    for (const list of [...this.table.values()]) for (const c of [...list]) c.abort(true);
    this.flush();
    this.closed = true;
    this.wheel.stop();
    this.listeners.clear();
    this.stack.unregisterProtocol(IpProtocol.TCP);
  }

  /** ConnectionHost: the stack's per-destination MTU (a tailnet's path MTU toward the peer). */
  mtuTo(remote: Uint8Array): number {
    return this.stack.mtuTo(remote);
  }

  get mtuEpoch(): number {
    return this.stack.mtuEpoch;
  }

  packetBuffer(n: number): Uint8Array {
    // Bulk segments repeat one length: keep the view while it does.
    if (this.packetView.length !== n) this.packetView = new Uint8Array(this.scratch, 0, n);
    return this.packetView;
  }

  send(packet: Uint8Array, c: TcpConnection): void {
    if (this.closed) return;
    this.stats.segmentsOut++;
    this.transmitIp(packet, c.remote, c.sendOptions);
  }

  /**
   * Hands a packet to the IP layer. A stack closed under us (or with no route) loses the segment
   * like a dead link would, counted in `sendErrors`: TCP's timers must not throw out of a timer.
   */
  private transmitIp(packet: Uint8Array, dst: Uint8Array, options: { src: Uint8Array }): void {
    try {
      this.stack.sendPrepared(packet, dst, IpProtocol.TCP, options);
    } catch (err) {
      if (!(err instanceof NetstackError) || (err.code !== 'CLOSED' && err.code !== 'NO_ROUTE')) throw err;
      this.stats.sendErrors++;
    }
  }

  markDirty(c: TcpConnection): void {
    if (c.dirty) return;
    c.dirty = true;
    this.dirty.push(c);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  allowChallengeAck(): boolean {
    const now = performance.now();
    if (now - this.challengeWindow >= 1000) {
      this.challengeWindow = now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.options.challengeAckLimit) return false;
    this.challengeCount++;
    this.stats.challengeAcks++;
    return true;
  }

  remove(c: TcpConnection): void {
    const key = c.localPort * 65536 + c.remotePort;
    const list = this.table.get(key);
    const i = list ? list.indexOf(c) : -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.table.delete(key);
    this.usePort(c.localPort, -1);
    const l = c.listener as Listener | undefined;
    if (l) {
      l.halfOpen--;
      c.listener = undefined;
      l.onAbandoned?.();
    }
  }

  accepted(c: TcpConnection): void {
    const l = c.listener as Listener | undefined;
    if (l) l.halfOpen--;
    c.listener = undefined;
    if (!l || (!l.oneShot && this.listeners.get(l.port) !== l)) {
      c.abort(true); // the listener closed while the handshake was in progress
      return;
    }
    l.onConnection(c);
  }

  /** End of a turn or of a received burst: every dirty connection sends, as one burst. */
  private flush(): void {
    if (this.dirty.length === 0 || this.closed) return;
    const list = this.dirty;
    this.dirty = [];
    const now = performance.now();
    this.stack.burst(() => {
      for (const c of list) {
        c.dirty = false;
        c.flush(now);
      }
    });
  }

  private add(c: TcpConnection): void {
    const key = c.localPort * 65536 + c.remotePort;
    const list = this.table.get(key);
    if (list) list.push(c);
    else this.table.set(key, [c]);
    this.usePort(c.localPort, 1);
  }

  private usePort(port: number, delta: number): void {
    const n = (this.portUse.get(port) ?? 0) + delta;
    if (n > 0) this.portUse.set(port, n);
    else this.portUse.delete(port);
  }

  private find(
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
  ): TcpConnection | undefined {
    const list = this.table.get(lport * 65536 + rport);
    if (!list) return undefined;
    for (const c of list) {
      if (addressAt(remote, 0, c.remote) && addressAt(local, 0, c.local)) return c;
    }
    return undefined;
  }

  private lookup(pkt: IpPacket, seg: TcpSegment): TcpConnection | undefined {
    const list = this.table.get(seg.dstPort * 65536 + seg.srcPort);
    if (!list) return undefined;
    for (const c of list) {
      if (
        c.remote.length === pkt.addressLength &&
        addressAt(pkt.buf, pkt.srcOffset, c.remote) &&
        addressAt(pkt.buf, pkt.dstOffset, c.local)
      ) {
        return c;
      }
    }
    return undefined;
  }

  /** IP → TCP: one segment. Bad input is counted, never thrown. */
  private input(pkt: IpPacket): void {
    if (this.closed) return;
    this.stats.segmentsIn++;
    const pseudo = packetPseudoHeaderSum(pkt);
    const sum =
      pkt.linkSum >= 0
        ? payloadSumFromLink(pkt, pseudo)
        : fastSum(pkt.buf, pkt.payloadOffset, pkt.payloadLength, pseudo);
    if (sum !== 0xffff) {
      this.stats.badChecksum++;
      return;
    }
    const seg = this.seg;
    try {
      parseTcpSegment(seg, pkt.buf, pkt.payloadOffset, pkt.payloadLength);
    } catch (err) {
      if (!(err instanceof NetstackError)) throw err;
      this.stats.malformed++;
      return;
    }
    const now = performance.now();
    let c = this.lookup(pkt, seg);
    // RFC 6191 / RFC 9293 §3.10.7.4: a new SYN beyond the old sequence space may reuse a TIME_WAIT 4-tuple.
    if (c?.state === 'TIME_WAIT' && seg.flags === TcpFlag.SYN && seqGt(seg.seq, c.rcvNxt)) {
      c.terminate(undefined);
      c = undefined;
    }
    if (c) {
      segmentArrives(c, seg, now);
      return;
    }
    const syn = (seg.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN;
    const l = this.listeners.get(seg.dstPort);
    // A listener on "any" address takes our own addresses only, never a router's routed ones.
    const forUs =
      l && (l.address ? addressAt(pkt.buf, pkt.dstOffset, l.address) : this.stack.isOwnDestination(pkt));
    if (l && forUs && syn) {
      this.passiveOpen(l, pkt, seg, now);
      return;
    }
    if (syn && this.forwarder && !this.stack.isOwnDestination(pkt)) {
      this.forwardSyn(pkt, seg);
      return;
    }
    if (!(seg.flags & TcpFlag.RST)) this.resetFor(pkt, seg);
  }

  /**
   * RFC 1122 §4.2.3.9 makes unreachables soft errors for established connections; like Linux we
   * let them end a connection only while it is still opening.
   */
  private icmpError(info: IcmpErrorInfo): void {
    const c = this.find(info.local, info.localPort, info.remote, info.remotePort);
    if (c?.state !== 'SYN_SENT') return;
    const code = info.reason === 'port' ? 'ECONNREFUSED' : 'EHOSTUNREACH';
    c.terminate(new SocketError(code, 'connect', formatIp(c.remote), c.remotePort, info.detail));
  }

  /** LISTEN + SYN (RFC 9293 §3.10.7.2): a SYN-RECEIVED connection, unless the backlog is full. */
  private passiveOpen(l: Listener, pkt: IpPacket, seg: TcpSegment, now: number): void {
    if (l.halfOpen >= l.backlog) {
      this.stats.synsDropped++; // as Linux without syncookies: the client retries
      return;
    }
    const remote = pkt.buf.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
    const local = pkt.buf.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
    const iss = this.isn.next(local, seg.dstPort, remote, seg.srcPort);
    const c = new TcpConnection(
      this,
      local,
      seg.dstPort,
      remote,
      seg.srcPort,
      iss,
      this.stack.mtu,
      'SYN_RECEIVED',
    );
    c.irs = seg.seq;
    c.rcvNxt = seqAdd(seg.seq, 1);
    c.sndWnd = seg.window;
    negotiate(c, seg);
    c.listener = l;
    l.halfOpen++;
    this.add(c);
    this.stats.passiveOpens++;
    sendSyn(c, now);
    c.sndNxt = seqAdd(iss, 1);
    c.sndMax = c.sndNxt;
    c.armRto(now);
  }

  /** Hands a SYN to the forwarder, once per 4-tuple until it decides. */
  private forwardSyn(pkt: IpPacket, seg: TcpSegment): void {
    const remote = formatIp(pkt.buf.subarray(pkt.srcOffset, pkt.srcOffset + pkt.addressLength));
    const local = formatIp(pkt.buf.subarray(pkt.dstOffset, pkt.dstOffset + pkt.addressLength));
    const key = `${remote}:${seg.srcPort}>${local}:${seg.dstPort}`;
    if (this.undecided.has(key)) return; // a retransmission while the router dials
    this.undecided.add(key);
    const copy = pkt.buf.slice(pkt.start, pkt.end);
    let decided = false;
    const decide = (): { pkt: IpPacket; seg: TcpSegment } | undefined => {
      if (decided) throw new NetstackError('INVALID_STATE', `forward ${key}: already decided`);
      decided = true;
      this.undecided.delete(key);
      if (this.closed) return undefined;
      const p = parseIpPacket(copy);
      const s = new TcpSegment();
      parseTcpSegment(s, p.buf, p.payloadOffset, p.payloadLength);
      return { pkt: p, seg: s };
    };
    this.forwarder!({
      local,
      localPort: seg.dstPort,
      remote,
      remotePort: seg.srcPort,
      accept: (onEstablished, onAbandoned) => {
        const syn = decide();
        if (!syn) return onAbandoned();
        const once: Listener = {
          port: syn.seg.dstPort,
          address: undefined,
          backlog: 1,
          halfOpen: 0,
          oneShot: true,
          onConnection: onEstablished,
          onAbandoned,
        };
        this.passiveOpen(once, syn.pkt, syn.seg, performance.now());
        this.flush();
      },
      reject: () => {
        const syn = decide();
        if (syn) this.resetFor(syn.pkt, syn.seg);
      },
    });
  }

  /** A RST answering a segment for no connection (RFC 9293 §3.10.7.1). */
  private resetFor(pkt: IpPacket, seg: TcpSegment): void {
    const { packet, src, dst } = buildReset(pkt, seg);
    this.stats.resetsSent++;
    this.transmitIp(packet, dst, { src });
  }
}
