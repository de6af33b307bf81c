/**
 * Handshake messages are processed off the hot path, through a bounded queue drained a
 * batch per event-loop turn, as wireguard-go's handshake queue (`device/receive.go`,
 * RoutineHandshake). Transport packets never wait behind it, so a flood of initiations
 * cannot disturb established sessions. A long queue means "under load" (§5.3): then only
 * messages with a valid MAC2 are processed, rate-limited per source, and the rest get a
 * cookie reply.
 */
import type { Endpoint } from './bind.js';
import {
  HANDSHAKE_INITATION_RATE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  UNDER_LOAD_AFTER_TIME,
  UNDER_LOAD_QUEUE_THRESHOLD,
} from './constants.js';
import { timestampAfter } from './crypto.js';
import type { Device } from './device.js';
import { WireGuardError } from './errors.js';
import { CookieReply, Initiation, messageType, Response, readU32 } from './messages.js';
import { consumeInitiation, consumeResponse, createResponse, type PeerIdentity } from './noise.js';
import type { Peer } from './peer.js';

/** wireguard-go QueueHandshakeSize. */
const HANDSHAKE_QUEUE_SIZE = 1024;
/** Messages handled per event-loop turn before yielding to transport traffic. */
const BATCH = 16;

const enc = new TextEncoder();

export class HandshakeProcessor {
  private queue: Array<{ from: Endpoint; msg: Uint8Array }> = [];
  private head = 0;
  private scheduled: ReturnType<typeof setImmediate> | undefined;
  private underLoadUntil = Number.NEGATIVE_INFINITY;
  /** Test hook: treat the device as under load regardless of the queue. */
  forceUnderLoad = false;

  constructor(private readonly device: Device) {}

  enqueue(from: Endpoint, msg: Uint8Array): void {
    if (this.queue.length - this.head >= HANDSHAKE_QUEUE_SIZE) {
      this.device.stats.handshakeQueueDrops++;
      return;
    }
    this.queue.push({ from, msg: msg.slice() });
    if (!this.scheduled) this.scheduled = setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = undefined;
    for (let i = 0; i < BATCH && this.head < this.queue.length; i++) {
      const { from, msg } = this.queue[this.head++]!;
      this.process(from, msg);
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      this.scheduled = setImmediate(() => this.drain());
    }
  }

  private isUnderLoad(): boolean {
    const now = this.device.clock.now();
    if (this.forceUnderLoad || this.queue.length - this.head >= UNDER_LOAD_QUEUE_THRESHOLD) {
      this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
      return true;
    }
    return now < this.underLoadUntil;
  }

  private process(from: Endpoint, msg: Uint8Array): void {
    const d = this.device;
    const type = messageType(msg);
    if (type === MESSAGE_COOKIE_REPLY) {
      this.consumeCookieReply(msg);
      return;
    }
    if (!d.cookieChecker.checkMac1(msg)) {
      d.stats.badMac1++;
      return;
    }
    if (this.isUnderLoad()) {
      const source = enc.encode(from.key);
      if (!d.cookieChecker.checkMac2(msg, source)) {
        // Initiation and response both carry the sender index at offset 4.
        d.bind.send(from, d.cookieChecker.createReply(msg, Initiation.sender, source));
        d.stats.cookiesSent++;
        return;
      }
      if (!d.rateLimiter.allow(from.key)) {
        d.stats.rateLimited++;
        return;
      }
    }
    try {
      if (type === MESSAGE_INITIATION) this.consumeInitiation(from, msg);
      else if (type === MESSAGE_RESPONSE) this.consumeResponse(from, msg);
    } catch (err) {
      if (!(err instanceof WireGuardError)) throw err;
      d.stats.handshakeErrors++;
      d.logger.debug(`handshake message from ${from.toString()} rejected: ${err.message}`);
    }
  }

  private consumeInitiation(from: Endpoint, msg: Uint8Array): void {
    const d = this.device;
    const { consumed } = consumeInitiation(
      d.self,
      msg,
      (key): PeerIdentity | undefined => d.peerForKey(key)?.identity,
    );
    const peer = d.peerForKey(consumed.peerPublicKey)!;
    // §5.1: an initiation must carry a timestamp newer than any before it (replay), and
    // initiations faster than HANDSHAKE_INITATION_RATE are flood, not retries.
    const now = d.clock.now();
    if (!timestampAfter(consumed.timestamp, peer.lastTimestamp)) {
      d.stats.staleInitiations++;
      return;
    }
    if (now - peer.lastInitiationConsumed <= 1000 / HANDSHAKE_INITATION_RATE) {
      d.stats.rateLimited++;
      return;
    }
    peer.lastTimestamp = consumed.timestamp;
    peer.lastInitiationConsumed = now;
    d.learnEndpoint(peer, from);

    const index = d.allocateIndex(peer);
    const { message, keys } = createResponse(peer.identity, consumed, index);
    peer.cookies.addMacs(message);
    peer.installSession(keys);
    d.bind.send(from, message);
    peer.txBytes += message.length;
  }

  private consumeResponse(from: Endpoint, msg: Uint8Array): void {
    const d = this.device;
    const peer: Peer | undefined = d.pendingHandshakePeer(readU32(msg, Response.receiver));
    if (!peer?.pending) throw new WireGuardError('UNKNOWN_PEER', 'response to no pending handshake');
    const keys = consumeResponse(d.self, peer.identity, peer.pending, msg);
    peer.pending.ephemeralPrivate.fill(0);
    d.learnEndpoint(peer, from);
    peer.installSession(keys);
    peer.handshakeComplete(true);
    peer.flushStaged(true);
  }

  private consumeCookieReply(msg: Uint8Array): void {
    const d = this.device;
    const peer = d.indexPeer(readU32(msg, CookieReply.receiver));
    if (!peer) {
      d.stats.unknownIndex++;
      return;
    }
    try {
      peer.cookies.consumeReply(msg);
      d.logger.debug(`peer ${peer.publicKeyText}: received cookie reply`);
    } catch (err) {
      if (!(err instanceof WireGuardError)) throw err;
      d.stats.handshakeErrors++;
    }
  }

  close(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.queue = [];
    this.head = 0;
  }
}
