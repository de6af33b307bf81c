/**
 * TSMP on a node's IP stack, as tailscaled's tun wrapper does it (net/tstun/wrap.go
 * filterPacketInboundFromWireGuard, injectOutboundPong; wgengine/userspace.go sendTSMPPing;
 * wgengine/pendopen.go):
 * - a ping is answered with a pong carrying its 8 bytes (peerapi port 0: we run no peerapi);
 * - our pings ({@link Tsmp.ping}) are matched to pongs by those bytes;
 * - a TCP SYN our packet filter drops is answered with a rejection, reason "acl", so the dialer
 *   learns at once that it was refused, not after its connect timeout;
 * - a rejection we receive for a TCP connection of ours that is still opening ends it at once
 *   with EHOSTUNREACH and the reason (through the stack, as an ICMP unreachable would: the
 *   netstack knows nothing of TSMP). tailscaled itself only logs such a rejection and lets its
 *   dial time out (pendopen.go); failing fast is this node's choice, and invisible to the peer.
 * TSMP passes the packet filter whatever the rules say (filter.go "tsmp ok"): a peer that
 * WireGuard let in may always ping us or tell us it refused us.
 */
import { randomBytes } from 'node:crypto';
import { formatIp, parseIp, unmapIPv4 } from '../../netstack/address.js';
import { NetstackError } from '../../netstack/errors.js';
import type { IpPacket } from '../../netstack/packet.js';
import { parseIpPacket, type Stack } from '../../netstack/stack.js';
import { type Logger, silentLogger } from '../../wireguard/logger.js';
import { NO_RULE_FOR_TCP } from '../filter.js';
import { buildTsmpPing, buildTsmpPong, buildTsmpReject, parseTsmp, TSMP_PROTOCOL } from './packet.js';

const TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;
/** Rejections sent per second at most, as the stack limits its ICMP errors (RFC 1812 §4.3.2.8). */
const REJECT_RATE = 200;
/** How long {@link Tsmp.ping} waits by default: `tailscale ping`'s --timeout. */
const PING_TIMEOUT_MS = 5000;

/** What TSMP did, for metrics and tests. */
export interface TsmpStats {
  pingsAnswered: number;
  pingsSent: number;
  pongsMatched: number;
  /** Pongs for no ping of ours (late, or not ours). */
  pongsUnmatched: number;
  rejectsSent: number;
  /** Rejections not sent because of the rate limit. */
  rejectsLimited: number;
  rejectsReceived: number;
  /** Unknown types, too short, disco advertisements (not for our capability version). */
  ignored: number;
}

/** A TSMP pong. */
export interface TsmpPong {
  latencyMs: number;
  /** The peer's peerapi port, 0 when it has none. */
  peerAPIPort: number;
}

interface Waiter {
  start: number;
  timer: NodeJS.Timeout;
  resolve(p: TsmpPong | undefined): void;
}

/**
 * TSMP for one {@link Stack}: registers IP protocol 99 on it.
 *
 * @example
 * const tsmp = new Tsmp(stack);
 * const link = new FilteredLink(device, () => filter, (ip, why) => tsmp.denied(ip, why));
 * const pong = await tsmp.ping('100.64.0.2');     // undefined on timeout
 * tsmp.close();
 */
export class Tsmp {
  readonly stats: TsmpStats = {
    pingsAnswered: 0,
    pingsSent: 0,
    pongsMatched: 0,
    pongsUnmatched: 0,
    rejectsSent: 0,
    rejectsLimited: 0,
    rejectsReceived: 0,
    ignored: 0,
  };
  private readonly waiters = new Map<string, Waiter>();
  private readonly log: Logger;
  private window = 0;
  private inWindow = 0;
  private closed = false;

  constructor(
    private readonly stack: Stack,
    opts: { logger?: Logger } = {},
  ) {
    this.log = opts.logger ?? silentLogger;
    stack.registerProtocol(TSMP_PROTOCOL, (pkt) => this.receive(pkt));
  }

  /**
   * Sends a TSMP ping to `dst` (a tailnet address) and resolves with the pong, or undefined when
   * none came within `timeoutMs`. Throws a NetstackError when the stack cannot send to `dst`.
   */
  ping(dst: string, timeoutMs = PING_TIMEOUT_MS): Promise<TsmpPong | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const data = new Uint8Array(randomBytes(8));
    const key = Buffer.from(data).toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(key, { start: performance.now(), timer, resolve });
      try {
        this.stack.sendIp(unmapIPv4(parseIp(dst)), TSMP_PROTOCOL, buildTsmpPing(data));
      } catch (err) {
        clearTimeout(timer);
        this.waiters.delete(key);
        throw err;
      }
      this.stats.pingsSent++;
    });
  }

  /**
   * The packet filter dropped `ip` for `reason`: a TCP SYN no rule admits is answered with a
   * rejection (tstun/wrap.go sends it for IPv4 only; the format and our parser take IPv6 too).
   */
  denied(ip: Uint8Array, reason: string): void {
    if (reason !== NO_RULE_FOR_TCP || this.closed) return;
    let pkt: IpPacket;
    try {
      pkt = parseIpPacket(ip);
    } catch (err) {
      if (err instanceof NetstackError) return; // the filter drops these as malformed before this
      throw err;
    }
    const t = pkt.payloadOffset;
    const flags = pkt.buf[t + 13]!;
    if (pkt.protocol !== TCP || (flags & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return;
    if (!this.allowReject()) {
      this.stats.rejectsLimited++;
      return;
    }
    const b = pkt.buf;
    const srcPort = (b[t]! << 8) | b[t + 1]!;
    const dstPort = (b[t + 2]! << 8) | b[t + 3]!;
    const peer = b.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
    const us = b.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
    const reject = buildTsmpReject({ protocol: TCP, reason: 'acl', srcPort, dstPort });
    this.stack.sendIp(peer, TSMP_PROTOCOL, reject, { src: us });
    this.stats.rejectsSent++;
  }

  /** Stops answering; pending pings resolve undefined. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stack.unregisterProtocol(TSMP_PROTOCOL);
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.waiters.clear();
  }

  private allowReject(): boolean {
    const now = performance.now();
    if (now - this.window >= 1000) {
      this.window = now;
      this.inWindow = 0;
    }
    return this.inWindow++ < REJECT_RATE;
  }

  private receive(pkt: IpPacket): void {
    const msg = parseTsmp(pkt.buf.subarray(pkt.payloadOffset, pkt.payloadOffset + pkt.payloadLength));
    const from = pkt.buf.slice(pkt.srcOffset, pkt.srcOffset + pkt.addressLength);
    const to = pkt.buf.slice(pkt.dstOffset, pkt.dstOffset + pkt.addressLength);
    switch (msg?.type) {
      case 'ping':
        // The pong goes back with the addresses swapped (wrap.go injectOutboundPong, ToResponse).
        this.stack.sendIp(from, TSMP_PROTOCOL, buildTsmpPong(msg.data), { src: to });
        this.stats.pingsAnswered++;
        return;
      case 'pong': {
        const key = Buffer.from(msg.data).toString('hex');
        const w = this.waiters.get(key);
        if (!w) {
          this.stats.pongsUnmatched++;
          return;
        }
        this.waiters.delete(key);
        clearTimeout(w.timer);
        this.stats.pongsMatched++;
        w.resolve({ latencyMs: performance.now() - w.start, peerAPIPort: msg.peerAPIPort });
        return;
      }
      case 'reject': {
        this.stats.rejectsReceived++;
        const flow = `${formatIp(to)}:${msg.srcPort} > ${formatIp(from)}:${msg.dstPort}`;
        this.log.info(`tsmp: ${formatIp(from)} rejected flow ${msg.protocol} ${flow}: ${msg.reason}`);
        // A "maybe broken" rejection is advice for a later timeout message, never final (pendopen.go).
        if (msg.maybeBroken || msg.protocol !== TCP) return;
        this.stack.reportUnreachable({
          protocol: TCP,
          local: to,
          localPort: msg.srcPort,
          remote: from,
          remotePort: msg.dstPort,
          reason: 'host',
          detail: `refused by the peer's packet filter: TSMP reject, reason ${msg.reason}`,
        });
        return;
      }
      default:
        this.stats.ignored++;
    }
  }
}
