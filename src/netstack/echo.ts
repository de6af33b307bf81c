import { randomInt } from 'node:crypto';
import { addressAt } from './address.js';
import { pseudoHeaderSum } from './checksum.js';
import { NetstackError } from './errors.js';
import { ICMP_HEADER_LENGTH, type IcmpMessage, Icmpv4Type, Icmpv6Type, writeIcmpEcho } from './icmp.js';
import { IPV4_HEADER_LENGTH } from './ipv4.js';
import { IPV6_HEADER_LENGTH } from './ipv6.js';
import { type IpPacket, IpProtocol, packetSource } from './packet.js';

/** Options for a ping. */
export interface PingOptions {
  /** Echo sequence number; default: the next one of this stack. */
  seq?: number;
  /** Echo data bytes; default 56, as ping(8). */
  size?: number;
  /** Default 5000. */
  timeoutMs?: number;
}

/** The outcome of one echo exchange. */
export interface PingResult {
  rttMs: number;
  /** TTL or Hop Limit of the reply as received. */
  ttl: number;
  /** ICMP message length of the reply (header and data), as ping(8) reports it. */
  bytes: number;
  /** The reply's source address. */
  from: string;
}

/** Sends a packet whose payload follows room for the IP header; {@link Stack.sendPrepared}. */
export type PreparedSender = (packet: Uint8Array, dst: Uint8Array, protocol: number, src: Uint8Array) => void;

interface PendingPing {
  readonly dst: Uint8Array;
  readonly data: Uint8Array;
  readonly sentAt: number;
  readonly resolve: (result: PingResult) => void;
  readonly reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Builds the echo reply to a request, with room for the IP header still to be written. Per
 * RFC 792 and RFC 4443 §4.2 it carries the request's identifier, sequence and data; its source
 * must be the address the request was sent to (RFC 1122 §3.2.2.6), which the ICMPv6
 * pseudo-header sum already assumes.
 */
export function buildEchoReply(pkt: IpPacket, msg: IcmpMessage, local: Uint8Array): Uint8Array {
  const v4 = pkt.version === 4;
  const headerLength = v4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  const reply = new Uint8Array(headerLength + pkt.payloadLength);
  reply.set(pkt.buf.subarray(pkt.payloadOffset, pkt.end), headerLength);
  const pseudo = v4
    ? 0
    : pseudoHeaderSum(local, 0, pkt.buf, pkt.srcOffset, 16, IpProtocol.ICMPV6, pkt.payloadLength);
  const type = v4 ? Icmpv4Type.ECHO_REPLY : Icmpv6Type.ECHO_REPLY;
  const fields = { type, identifier: msg.identifier, sequence: msg.sequence, dataLength: msg.dataLength };
  writeIcmpEcho(reply, headerLength, fields, pseudo);
  return reply;
}

/**
 * The echo requests one stack has in flight. All share one random identifier, as ping(8) uses
 * its process id, so replies to other pingers on the same host are not mistaken for ours.
 */
export class Pinger {
  /** The ICMP identifier of every request this pinger sends. */
  readonly identifier = randomInt(0, 0x10000);
  private nextSeq = 0;
  private readonly pending = new Map<number, PendingPing>();

  constructor(private readonly send: PreparedSender) {}

  /**
   * Sends one echo request from `src` to `dst` (both 4 or both 16 bytes) and waits for the reply.
   * `label` names the destination in error messages. Bad arguments throw at once; TIMEOUT and
   * send failures reject the promise.
   */
  ping(
    src: Uint8Array,
    dst: Uint8Array,
    label: string,
    options: PingOptions,
    mtu: number,
  ): Promise<PingResult> {
    const v4 = dst.length === 4;
    const seq = options.seq ?? this.nextSeq;
    const size = options.size ?? 56;
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff) {
      throw new NetstackError('INVALID_ARGUMENT', `seq ${seq}`);
    }
    if (!Number.isInteger(size) || size < 0) throw new NetstackError('INVALID_ARGUMENT', `size ${size}`);
    if (!(timeoutMs >= 0)) throw new NetstackError('INVALID_ARGUMENT', `timeoutMs ${timeoutMs}`);
    const headerLength = v4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
    const icmpLength = ICMP_HEADER_LENGTH + size;
    const total = headerLength + icmpLength;
    if (total > mtu) throw new NetstackError('TOO_BIG', `${total}-byte echo exceeds MTU ${mtu}`);
    const key = (v4 ? 0 : 0x10000) | seq;
    if (this.pending.has(key)) throw new NetstackError('IN_USE', `echo sequence ${seq} is already in flight`);
    if (options.seq === undefined) this.nextSeq = (seq + 1) & 0xffff;

    const packet = new Uint8Array(total);
    const data = packet.subarray(headerLength + ICMP_HEADER_LENGTH);
    for (let i = 0; i < size; i++) data[i] = i & 0xff;
    const pseudo = v4 ? 0 : pseudoHeaderSum(src, 0, dst, 0, 16, IpProtocol.ICMPV6, icmpLength);
    const type = v4 ? Icmpv4Type.ECHO_REQUEST : Icmpv6Type.ECHO_REQUEST;
    const fields = { type, identifier: this.identifier, sequence: seq, dataLength: size };
    writeIcmpEcho(packet, headerLength, fields, pseudo);

    return new Promise<PingResult>((resolve, reject) => {
      // The link may keep or reuse `packet`, so compare replies against a copy of the data.
      const sentAt = performance.now();
      const entry: PendingPing = { dst, data: data.slice(), sentAt, resolve, reject, timer: undefined };
      entry.timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new NetstackError('TIMEOUT', `no echo reply from ${label} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(key, entry);
      try {
        this.send(packet, dst, v4 ? IpProtocol.ICMP : IpProtocol.ICMPV6, src);
      } catch (err) {
        // Not swallowed: failing to send is this ping's outcome.
        this.pending.delete(key);
        clearTimeout(entry.timer);
        reject(err);
      }
    });
  }

  /**
   * Settles the ping an echo reply answers and returns true, or returns false when no ping in
   * flight has the reply's identifier, sequence, source address and data.
   */
  onReply(pkt: IpPacket, msg: IcmpMessage): boolean {
    const key = (pkt.version === 4 ? 0 : 0x10000) | msg.sequence;
    const entry = msg.identifier === this.identifier ? this.pending.get(key) : undefined;
    if (
      !entry ||
      !addressAt(pkt.buf, pkt.srcOffset, entry.dst) ||
      msg.dataLength !== entry.data.length ||
      !sameBytes(pkt.buf, msg.dataOffset, entry.data)
    ) {
      return false;
    }
    this.pending.delete(key);
    clearTimeout(entry.timer);
    const rttMs = performance.now() - entry.sentAt;
    const from = packetSource(pkt);
    entry.resolve({ rttMs, ttl: pkt.ttl, bytes: ICMP_HEADER_LENGTH + msg.dataLength, from });
    return true;
  }

  /** Rejects every ping in flight with CLOSED and clears its timer. */
  close(): void {
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new NetstackError('CLOSED', 'stack closed before the echo reply'));
    }
    this.pending.clear();
  }
}

function sameBytes(buf: Uint8Array, offset: number, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (buf[offset + i] !== expected[i]) return false;
  return true;
}
