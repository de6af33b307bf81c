/**
 * One remote peer: its handshake state, sessions, staged packets, timers and counters, and
 * the sending half of the protocol (wireguard-go `device/peer.go`, `send.go`, `timers.go`).
 * The device owns the receive path and calls into here.
 */
import type { TransportAead } from './aead.js';
import type { Bind, Endpoint } from './bind.js';
import type { Clock } from './clock.js';
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  PADDING_MULTIPLE,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
} from './constants.js';
import { CookieGenerator } from './cookie.js';
import { Keypair, Keypairs } from './keypair.js';
import type { Logger } from './logger.js';
import {
  createInitiation,
  type PeerIdentity,
  type PendingInitiation,
  type SessionKeys,
  type StaticIdentity,
} from './noise.js';
import { PeerTimer, PeerTimers, type TimerScheduler } from './timers.js';

/** Staged packets per peer while no session exists (wireguard-go QueueStagedSize). */
const MAX_STAGED_PACKETS = 128;

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  readonly aead: TransportAead;
  readonly bind: Bind;
  readonly self: StaticIdentity;
  readonly logger: Logger;
  readonly scheduler: TimerScheduler;
  /** The device's handshake counters (DeviceStats). */
  readonly stats: { handshakeInitiationsSent: number; handshakeTimeouts: number };
  /** A fresh random index registered to this peer's pending handshake. */
  allocateIndex(peer: Peer): number;
  registerKeypair(peer: Peer, kp: Keypair): void;
  releaseIndex(index: number): void;
  onHandshakeComplete(peer: Peer, initiator: boolean): void;
  /**
   * Seals `ip` (empty: a keepalive) under `kp` with its next counter and sends it, at the end of
   * the current burst (transport.ts); `csumStart`/`csumField` offload its checksum.
   */
  transmit(peer: Peer, kp: Keypair, ip: Uint8Array, csumStart?: number, csumField?: number): void;
}

/** A packet held while no session exists, with its checksum offload. */
interface StagedPacket {
  ip: Uint8Array;
  csumStart: number;
  csumField: number;
}

const EMPTY = new Uint8Array(0);

/** A peer as shown by {@link Device.status}, like one `wg show` block. */
export interface PeerStatus {
  publicKey: string;
  endpoint: string | undefined;
  allowedIPs: string[];
  /** Wall-clock ms of the latest completed handshake, or undefined if none. */
  latestHandshake: number | undefined;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number;
}

export class Peer {
  endpoint: Endpoint | undefined;
  /** Seconds; 0 = off (wg(8) persistent-keepalive). */
  persistentKeepalive: number;
  readonly cookies: CookieGenerator;
  readonly keypairs = new Keypairs();
  readonly timers: PeerTimers;
  pending: PendingInitiation | undefined;
  /** Greatest TAI64N timestamp seen in an initiation from this peer (§5.1, replay of initiations). */
  lastTimestamp: Uint8Array = new Uint8Array(12);
  lastInitiationConsumed = Number.NEGATIVE_INFINITY;
  private lastSentHandshake = Number.NEGATIVE_INFINITY;
  handshakeAttempts = 0;
  private sentLastMinuteHandshake = false;
  private needAnotherKeepalive = false;
  private staged: StagedPacket[] = [];
  rxBytes = 0;
  txBytes = 0;
  latestHandshakeWall: number | undefined;
  removed = false;

  constructor(
    private readonly host: PeerHost,
    readonly identity: PeerIdentity,
    readonly publicKeyText: string,
    persistentKeepalive = 0,
  ) {
    this.cookies = new CookieGenerator(identity.publicKey, host.clock);
    this.timers = new PeerTimers(host.scheduler);
    this.persistentKeepalive = persistentKeepalive;
  }

  get publicKey(): Uint8Array {
    return this.identity.publicKey;
  }

  /**
   * Encrypts and sends one IP packet, or stages it and starts a handshake when no session is
   * usable. `csumStart`/`csumField`: checksum offload (the device's txChecksumOffload).
   */
  send(ip: Uint8Array, csumStart = -1, csumField = -1): void {
    // One clock read per packet serves both checks (each read was ~2% of the sender's time).
    const now = this.host.clock.now();
    const kp = this.usableSendKeypair(now);
    if (!kp || !this.endpoint) {
      this.stage(ip, csumStart, csumField);
      this.initiateHandshake(false);
      return;
    }
    this.host.transmit(this, kp, ip, csumStart, csumField);
    if (ip.length > 0) this.timersDataSent();
    this.keepKeyFreshSending(kp, now);
  }

  /** An empty transport message: proof of liveness that carries no data (§6.5). */
  sendKeepalive(): void {
    const kp = this.usableSendKeypair();
    if (kp && this.endpoint) this.host.transmit(this, kp, EMPTY);
  }

  /**
   * Sends what was staged while there was no session. The initiator sends a keepalive when
   * nothing was staged, so that the responder can confirm the session (§5.4.5, §6.5).
   */
  flushStaged(keepaliveIfEmpty: boolean): void {
    const kp = this.usableSendKeypair();
    if (!kp || !this.endpoint) return;
    const staged = this.staged;
    this.staged = [];
    if (staged.length === 0) {
      if (keepaliveIfEmpty) this.sendKeepalive();
      return;
    }
    for (const s of staged) this.host.transmit(this, kp, s.ip, s.csumStart, s.csumField);
    this.timersDataSent();
  }

  /** After transport messages went out (timersAnyAuthenticatedPacketSent, …Traversal). */
  authenticatedPacketsSent(): void {
    this.timers.del(PeerTimer.SendKeepalive);
    this.timersAnyAuthenticatedPacketTraversal();
  }

  private usableSendKeypair(now = this.host.clock.now()): Keypair | undefined {
    const kp = this.keypairs.current;
    if (!kp) return undefined;
    if (now - kp.created >= REJECT_AFTER_TIME || kp.sendCounter >= REJECT_AFTER_MESSAGES) {
      return undefined;
    }
    return kp;
  }

  private stage(ip: Uint8Array, csumStart: number, csumField: number): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) this.staged.shift();
    this.staged.push({ ip: ip.slice(), csumStart, csumField });
  }

  /**
   * Sends a handshake initiation. A non-retry is suppressed within REKEY_TIMEOUT of the
   * previous one (§6.4: at most one initiation per REKEY_TIMEOUT).
   */
  initiateHandshake(isRetry: boolean): void {
    const now = this.host.clock.now();
    if (!isRetry) {
      if (now - this.lastSentHandshake < REKEY_TIMEOUT) return;
      this.handshakeAttempts = 0;
    }
    this.lastSentHandshake = now;
    if (!this.endpoint || this.removed) return;
    if (this.pending) this.host.releaseIndex(this.pending.localIndex);
    const index = this.host.allocateIndex(this);
    const { message, pending } = createInitiation(
      this.host.self,
      this.identity,
      index,
      this.host.clock.wallNow(),
    );
    this.pending = pending;
    this.cookies.addMacs(message);
    this.host.logger.debug(`peer ${this.publicKeyText}: sending handshake initiation`);
    this.host.bind.send(this.endpoint, message);
    this.host.stats.handshakeInitiationsSent++;
    this.txBytes += message.length;
    this.timers.mod(PeerTimer.RetransmitHandshake, REKEY_TIMEOUT + jitter());
    this.timers.del(PeerTimer.SendKeepalive);
    this.timersAnyAuthenticatedPacketTraversal();
  }

  /** Installs a session derived from a completed handshake (either role). */
  installSession(keys: SessionKeys): Keypair {
    const aead = this.host.aead;
    const kp = new Keypair(
      aead.prepareKey(keys.sendKey),
      aead.prepareKey(keys.receiveKey),
      keys.isInitiator,
      keys.localIndex,
      keys.remoteIndex,
      this.host.clock.now(),
    );
    for (const old of this.keypairs.install(kp)) this.dropKeypair(old);
    this.host.registerKeypair(this, kp);
    this.pending = undefined;
    this.sentLastMinuteHandshake = false;
    this.timers.mod(PeerTimer.ZeroKeyMaterial, REJECT_AFTER_TIME * 3); // timersSessionDerived
    return kp;
  }

  /** timersHandshakeComplete: stop retrying, record the time for `wg show`. */
  handshakeComplete(initiator: boolean): void {
    this.timers.del(PeerTimer.RetransmitHandshake);
    this.handshakeAttempts = 0;
    this.latestHandshakeWall = this.host.clock.wallNow();
    this.host.onHandshakeComplete(this, initiator);
  }

  dropKeypair(kp: Keypair): void {
    this.host.releaseIndex(kp.localIndex);
    kp.zero();
  }

  /**
   * After any authenticated packet from the peer (wireguard-go timersAnyAuthenticatedPacketReceived).
   * `now` is the device's clock read for this packet, if it has one.
   */
  onAuthenticatedReceive(kp: Keypair, isData: boolean, now = this.host.clock.now()): void {
    this.timers.del(PeerTimer.NewHandshake);
    this.timersAnyAuthenticatedPacketTraversal();
    if (isData) {
      if (!this.timers.isPending(PeerTimer.SendKeepalive))
        this.timers.mod(PeerTimer.SendKeepalive, KEEPALIVE_TIMEOUT);
      else this.needAnotherKeepalive = true;
    }
    // keepKeyFreshReceiving: the initiator renews before the session expires under it (§6.2).
    if (
      !this.sentLastMinuteHandshake &&
      kp === this.keypairs.current &&
      kp.isInitiator &&
      now - kp.created > REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
    ) {
      this.sentLastMinuteHandshake = true;
      this.initiateHandshake(false);
    }
  }

  private timersDataSent(): void {
    if (!this.timers.isPending(PeerTimer.NewHandshake)) {
      this.timers.mod(PeerTimer.NewHandshake, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter());
    }
  }

  private timersAnyAuthenticatedPacketTraversal(): void {
    if (this.persistentKeepalive > 0)
      this.timers.mod(PeerTimer.PersistentKeepalive, this.persistentKeepalive * 1000);
  }

  /** keepKeyFreshSending: the initiator rekeys after REKEY_AFTER_TIME or REKEY_AFTER_MESSAGES (§6.2). */
  private keepKeyFreshSending(kp: Keypair, now: number): void {
    if (kp.sendCounter > REKEY_AFTER_MESSAGES || (kp.isInitiator && now - kp.created > REKEY_AFTER_TIME)) {
      this.initiateHandshake(false);
    }
  }

  /** Runs one expired timer (wireguard-go expired* functions). */
  expire(t: PeerTimer): void {
    switch (t) {
      case PeerTimer.RetransmitHandshake:
        if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
          this.host.logger.info(
            `peer ${this.publicKeyText}: handshake did not complete after ${this.handshakeAttempts + 1} attempts, giving up`,
          );
          this.host.stats.handshakeTimeouts++;
          this.timers.del(PeerTimer.SendKeepalive);
          this.staged = [];
          if (!this.timers.isPending(PeerTimer.ZeroKeyMaterial)) {
            this.timers.mod(PeerTimer.ZeroKeyMaterial, REJECT_AFTER_TIME * 3);
          }
        } else {
          this.handshakeAttempts++;
          this.host.logger.debug(`peer ${this.publicKeyText}: handshake did not complete, retrying`);
          this.initiateHandshake(true);
        }
        return;
      case PeerTimer.SendKeepalive:
        this.sendKeepalive();
        if (this.needAnotherKeepalive) {
          this.needAnotherKeepalive = false;
          this.timers.mod(PeerTimer.SendKeepalive, KEEPALIVE_TIMEOUT);
        }
        return;
      case PeerTimer.NewHandshake:
        this.host.logger.debug(`peer ${this.publicKeyText}: no reply to data, retrying handshake`);
        this.initiateHandshake(false);
        return;
      case PeerTimer.ZeroKeyMaterial:
        this.zeroKeyMaterial();
        return;
      case PeerTimer.PersistentKeepalive:
        if (this.persistentKeepalive > 0) this.sendKeepalive();
        return;
    }
  }

  /** Erases every session and the pending handshake (§6.3). */
  zeroKeyMaterial(): void {
    for (const kp of this.keypairs.clear()) this.dropKeypair(kp);
    if (this.pending) {
      this.host.releaseIndex(this.pending.localIndex);
      this.pending.ephemeralPrivate.fill(0);
      this.pending = undefined;
    }
  }

  stagedCount(): number {
    return this.staged.length;
  }
}

/** §5.4.6: pad to a multiple of 16, but never beyond the MTU. */
export function paddedLength(length: number, mtu: number): number {
  const rem = length % PADDING_MULTIPLE;
  if (rem === 0) return length;
  const padded = length + PADDING_MULTIPLE - rem;
  return padded > mtu ? Math.max(length, mtu) : padded;
}

/** REKEY_TIMEOUT jitter so that peers do not retry in lockstep (§6.1). */
function jitter(): number {
  return Math.floor(Math.random() * REKEY_TIMEOUT_JITTER_MAX);
}
