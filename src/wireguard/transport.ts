/**
 * The transport-data path of a device, a burst at a time (WireGuard paper §5.4.6; wireguard-go
 * `device/send.go` and `receive.go`, which move vectors of packets for the same reason): each
 * layer pays its fixed costs once per burst, not once per packet.
 *
 * Send: packets written between `beginBurst` and `endBurst` are sealed into one vector and then
 * handed to the bind one datagram each (Node has no sendmmsg). A packet written outside a burst
 * is a burst of one.
 *
 * Receive: transport messages that arrive within one event-loop turn are queued into one vector
 * and opened together at the end of the turn (a setImmediate, after the poll phase has read
 * what the sockets had); the inner packets then go up one by one, and the host is told when
 * the burst is over, inside a send burst, so that the stack answers all of it at once.
 *
 * Vectors go through queues (vector-queue.ts): sealed or opened at once on this thread, or by
 * crypto workers (pool/) while this thread fills the next; either way in submission order.
 */
import type { TransportAead } from './aead.js';
import type { Bind, Endpoint } from './bind.js';
import type { Clock } from './clock.js';
import { MESSAGE_TRANSPORT_SIZE_MIN, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME } from './constants.js';
import type { Keypair } from './keypair.js';
import type { Peer } from './peer.js';
import { paddedLength } from './peer.js';
import type { CryptoPool } from './pool/crypto-pool.js';
import { PooledQueue } from './pool/pooled-queue.js';
import type { OpenVector, SealVector } from './vector.js';
import { InlineQueue, type VectorQueue } from './vector-queue.js';

/** Drop counters of the receive path (the device's {@link DeviceStats} has them). */
export interface TransportStats {
  expiredKeypair: number;
  decryptFailed: number;
  replayed: number;
  malformedInner: number;
  disallowedSource: number;
}

/** Who may use an inner source address (the device's allowed-IPs table, §2). */
export interface SourceTable {
  lookupV4(buf: Uint8Array, offset: number): unknown;
  lookupV6(buf: Uint8Array, offset: number): unknown;
}

/** What the transport path needs from its device. */
export interface TransportHost {
  readonly aead: TransportAead;
  readonly bind: Bind;
  readonly clock: Clock;
  readonly mtu: number;
  /** The MTU toward peers not proved larger: packets within it are never padded beyond it. */
  readonly baseMtu: number;
  readonly stats: TransportStats;
  /** Crypto workers to seal and open on (else this thread does). */
  readonly cryptoPool?: CryptoPool;
  /** Roaming (§2): the peer's endpoint may follow an authenticated packet. */
  learnEndpoint(peer: Peer, from: Endpoint): void;
  /** An authentic inner IP packet from an allowed source, with its sum (-1: none); valid during the call. */
  deliver(ip: Uint8Array, sum: number): void;
  /** Every packet of a received burst went up. */
  burstEnded(): void;
}

/** What the receive path notes beside each message of an open vector. */
class ReceiveNotes {
  readonly peers: Array<Peer | undefined> = [];
  readonly keypairs: Array<Keypair | undefined> = [];
  readonly from: Array<Endpoint | undefined> = [];
  readonly counters: number[] = [];
  readonly sizes: number[] = [];
}

export class TransportPath {
  private readonly tx: VectorQueue<SealVector>;
  private readonly rx: VectorQueue<OpenVector>;
  /** Whether {@link send} may be given checksum offload (the engine completes checksums). */
  readonly txChecksumOffload: boolean;
  /** Per vector of `tx`: who sent message i. */
  private readonly txPeers: Array<Array<Peer | undefined>> = [];
  /** Per vector of `rx`: who is to receive message i, and from where it came. */
  private readonly rxNotes: ReceiveNotes[] = [];
  private burstDepth = 0;
  private drainScheduled = false;
  private closed = false;
  private readonly drainSoon = (): void => {
    this.drainScheduled = false;
    this.drain();
  };

  constructor(
    private readonly host: TransportHost,
    private readonly sources: SourceTable,
  ) {
    const pool = host.cryptoPool;
    const sent = (v: SealVector, i: number) => this.sent(v, i);
    const opened = (v: OpenVector, i: number) => this.opened(v, i);
    this.tx = pool ? new PooledQueue(pool, 'seal', sent) : new InlineQueue(host.aead.sealVector(), sent);
    this.rx = pool ? new PooledQueue(pool, 'open', opened) : new InlineQueue(host.aead.openVector(), opened);
    this.txChecksumOffload = this.tx.current.checksumOffload;
    for (let i = 0; i < this.tx.size; i++) this.txPeers.push([]);
    for (let i = 0; i < this.rx.size; i++) this.rxNotes.push(new ReceiveNotes());
  }

  // ---- send ---------------------------------------------------------------------------------

  beginBurst(): void {
    this.burstDepth++;
  }

  endBurst(): void {
    if (this.burstDepth > 0 && --this.burstDepth === 0) this.flush();
  }

  /**
   * Queues `ip` (empty for a keepalive) for `peer` under `kp`, taking the next counter; it goes
   * out at the end of the burst, or now when there is none.
   */
  send(peer: Peer, kp: Keypair, ip: Uint8Array, csumStart = -1, csumField = -1): void {
    if (this.closed) return;
    // A larger MTU toward some peers is a multiple of 16 (pmtu.ts), so padding never overflows it.
    const h = this.host;
    const padded = paddedLength(ip.length, ip.length <= h.baseMtu ? h.baseMtu : h.mtu);
    let tx = this.tx.current;
    if (!tx.add(kp.send, kp.remoteIndex, kp.sendCounter, ip, padded, csumStart, csumField)) {
      this.flush();
      tx = this.tx.current;
      tx.add(kp.send, kp.remoteIndex, kp.sendCounter, ip, padded, csumStart, csumField);
    }
    kp.sendCounter++;
    this.txPeers[this.tx.currentIndex]![tx.count - 1] = peer;
    if (this.burstDepth === 0) this.flush();
  }

  /** Seals what was queued; {@link sent} hands it to the bind. */
  private flush(): void {
    this.tx.submit();
  }

  /** Hands sealed vector `tx` (the queue's `v`th) to the bind, in order. */
  private sent(tx: SealVector, v: number): void {
    const n = tx.count;
    const peers = this.txPeers[v]!;
    const bind = this.host.bind;
    let last: Peer | undefined;
    // The messages are the vector's: a bind that batches must have sent them before it is cleared.
    bind.beginBatch?.();
    try {
      for (let i = 0; i < n; i++) {
        const peer = peers[i]!;
        peers[i] = undefined;
        const msg = tx.message(i);
        if (peer.endpoint && !peer.removed) bind.send(peer.endpoint, msg);
        peer.txBytes += msg.length;
        if (peer !== last) {
          last?.authenticatedPacketsSent();
          last = peer;
        }
      }
      last!.authenticatedPacketsSent();
    } finally {
      bind.endBatch?.();
    }
  }

  // ---- receive ------------------------------------------------------------------------------

  /** Queues transport message `d` from `from`, for `peer`'s session `kp`; opened at the end of the turn. */
  receive(peer: Peer, kp: Keypair, from: Endpoint, d: Uint8Array, counter: number): void {
    if (this.closed) return;
    if (d.length < MESSAGE_TRANSPORT_SIZE_MIN || Number.isNaN(counter)) {
      this.host.stats.decryptFailed++;
      return;
    }
    let rx = this.rx.current;
    if (!rx.add(kp.receive, counter, d)) {
      this.drain();
      rx = this.rx.current;
      rx.add(kp.receive, counter, d);
    }
    const i = rx.count - 1;
    const notes = this.rxNotes[this.rx.currentIndex]!;
    notes.peers[i] = peer;
    notes.keypairs[i] = kp;
    notes.from[i] = from;
    notes.counters[i] = counter;
    notes.sizes[i] = d.length;
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(this.drainSoon);
    }
  }

  /** Opens the queued messages; {@link opened} checks them and hands them up. */
  private drain(): void {
    if (!this.closed) this.rx.submit();
  }

  /** Checks each message of opened vector `rx` (the queue's `v`th, §5.4.6) and hands the inner packets up, as one burst. */
  private opened(rx: OpenVector, v: number): void {
    const n = rx.count;
    const notes = this.rxNotes[v]!;
    const host = this.host;
    const stats = host.stats;
    // One clock read per burst, shared with the peers' timers.
    const now = host.clock.now();
    this.beginBurst();
    try {
      // A handler may close the device mid-burst: the rest of the burst is dropped with it.
      for (let i = 0; i < n && !this.closed; i++) {
        const peer = notes.peers[i]!;
        const kp = notes.keypairs[i]!;
        const from = notes.from[i]!;
        notes.peers[i] = undefined;
        notes.keypairs[i] = undefined;
        notes.from[i] = undefined;
        if (now - kp.created >= REJECT_AFTER_TIME) {
          stats.expiredKeypair++;
          continue;
        }
        const plain = rx.plaintext(i);
        if (!plain) {
          stats.decryptFailed++;
          continue;
        }
        if (!kp.replay.accept(notes.counters[i]!, REJECT_AFTER_MESSAGES)) {
          stats.replayed++;
          continue;
        }
        const dropped = peer.keypairs.confirm(kp);
        if (dropped) {
          for (const old of dropped) peer.dropKeypair(old);
          peer.handshakeComplete(false);
          peer.flushStaged(false);
        }
        host.learnEndpoint(peer, from);
        peer.rxBytes += notes.sizes[i]!;
        const isData = plain.length > 0;
        peer.onAuthenticatedReceive(kp, isData, now);
        if (isData) this.deliverInner(peer, plain, rx.checksum(i));
      }
      host.burstEnded();
    } finally {
      this.endBurst();
    }
  }

  /** Checks the inner packet's length and that its source is one the peer may use (§2). */
  private deliverInner(peer: Peer, plain: Uint8Array, sum: number): void {
    const { sources, host } = this;
    const stats = host.stats;
    const version = plain[0]! >> 4;
    let length: number;
    let source: unknown;
    if (version === 4 && plain.length >= 20) {
      length = (plain[2]! << 8) | plain[3]!;
      if (length < 20 || length > plain.length) length = -1;
      else source = sources.lookupV4(plain, 12);
    } else if (version === 6 && plain.length >= 40) {
      length = 40 + ((plain[4]! << 8) | plain[5]!);
      if (length > plain.length) length = -1;
      else source = sources.lookupV6(plain, 8);
    } else {
      length = -1;
    }
    if (length < 0) {
      stats.malformedInner++;
    } else if (source !== peer) {
      stats.disallowedSource++;
    } else if (length === plain.length) {
      host.deliver(plain, sum);
    } else {
      // The sum covers the padding (§5.4.6: zeros, which add nothing); a sender may pad otherwise.
      host.deliver(plain.subarray(0, length), sum >= 0 && allZero(plain, length) ? sum : -1);
    }
  }

  /** Drops whatever is queued; nothing is sent or delivered afterwards. */
  close(): void {
    this.closed = true;
    this.tx.close();
    this.rx.close();
    for (const peers of this.txPeers) peers.length = 0;
    for (const notes of this.rxNotes) {
      notes.peers.length = 0;
      notes.keypairs.length = 0;
      notes.from.length = 0;
    }
  }
}

/** Whether `buf` holds only zeros from `from` on. */
function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}
