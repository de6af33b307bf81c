/**
 * A WireGuard interface in userspace: a {@link PacketLink}-shaped inside (IP packets from
 * and to a stack) and a {@link Bind} outside (datagrams). It routes by allowed IPs,
 * runs the handshake, encrypts and decrypts transport data, and drives the timers.
 * Modelled on wireguard-go `device/device.go`, `receive.go`, `send.go`.
 */
import { EventEmitter } from 'node:events';
import { type TransportAead, transportAead } from './aead.js';
import { AllowedIPs } from './allowedips.js';
import type { Bind, Endpoint } from './bind.js';
import { type Clock, systemClock } from './clock.js';
import { DEFAULT_MTU, MESSAGE_INITIATION, MESSAGE_TRANSPORT, REJECT_AFTER_TIME } from './constants.js';
import { CookieChecker } from './cookie.js';
import {
  type DeviceOptions,
  type DeviceStats,
  type DeviceStatus,
  type HandshakeEvent,
  newDeviceStats,
  type PeerOptions,
} from './device-options.js';
import { WireGuardError } from './errors.js';
import { HandshakeProcessor } from './handshake-processor.js';
import { IndexTable } from './index-table.js';
import type { Keypair } from './keypair.js';
import { keyToBase64, publicKeyFromPrivate } from './keys.js';
import { LazyPeer, type PeerConfiguredEvent } from './lazy-peer.js';
import { type Logger, silentLogger } from './logger.js';
import { messageType, readCounter, readU32, Transport } from './messages.js';
import { peerIdentity, type StaticIdentity } from './noise.js';
import { Peer, type PeerHost } from './peer.js';
import { CryptoPool } from './pool/crypto-pool.js';
import { RateLimiter } from './ratelimiter.js';
import { TimerScheduler } from './timers.js';
import { TransportPath } from './transport.js';

export type {
  DeviceOptions,
  DeviceStats,
  DeviceStatus,
  HandshakeEvent,
  PeerOptions,
} from './device-options.js';
export type { PeerConfiguredEvent };

export class Device extends EventEmitter implements PeerHost {
  readonly publicKey: Uint8Array;
  readonly self: StaticIdentity;
  /** The largest inner packet toward any peer (the link's MTU as a stack sees it). */
  readonly mtu: number;
  /** The largest inner packet toward a peer the bind says nothing more about. */
  readonly baseMtu: number;
  readonly clock: Clock;
  readonly aead: TransportAead;
  /** The crypto workers of {@link DeviceOptions.cryptoWorkers}, if any. */
  readonly cryptoPool: CryptoPool | undefined;
  readonly bind: Bind;
  readonly logger: Logger;
  readonly scheduler: TimerScheduler;
  readonly cookieChecker: CookieChecker;
  readonly rateLimiter: RateLimiter;
  readonly stats: DeviceStats = newDeviceStats();
  private readonly peersByKey = new Map<string, Peer>();
  private readonly lazyByKey = new Map<string, LazyPeer>();
  /** Peers configured from lazy ones, which {@link trimIdle} may return to lazy. */
  private readonly trimmable = new WeakSet<Peer>();
  /** rx/tx counters of each trimmable peer at the previous {@link trimIdle}. */
  private readonly idleMarks = new WeakMap<Peer, { rx: number; tx: number }>();
  private readonly allowed = new AllowedIPs<Peer | LazyPeer>();
  private readonly indices = new IndexTable();
  private readonly handshakes: HandshakeProcessor;
  private readonly transport: TransportPath;
  private packetHandler: (ip: Uint8Array, parsed: undefined, linkSum: number) => void = () => {};
  private burstEndHandler: () => void = () => {};
  private closed = false;
  private readonly roaming: boolean;

  constructor(opts: DeviceOptions) {
    super();
    if (opts.privateKey.length !== 32) throw new WireGuardError('BAD_KEY', 'private key must be 32 bytes');
    this.clock = opts.clock ?? systemClock;
    this.baseMtu = opts.mtu ?? DEFAULT_MTU;
    this.mtu = Math.max(this.baseMtu, opts.maxMtu ?? this.baseMtu);
    this.aead = transportAead(opts.aead ?? 'wasm');
    this.bind = opts.bind;
    this.logger = opts.logger ?? silentLogger;
    this.roaming = opts.roaming ?? true;
    this.publicKey = publicKeyFromPrivate(opts.privateKey);
    this.self = { privateKey: opts.privateKey.slice(), publicKey: this.publicKey };
    this.cookieChecker = new CookieChecker(this.publicKey, this.clock);
    this.rateLimiter = new RateLimiter(this.clock);
    this.scheduler = new TimerScheduler(this.clock, (now) => this.runTimers(now));
    this.handshakes = new HandshakeProcessor(this);
    this.cryptoPool = opts.cryptoWorkers ? this.startCryptoPool(opts.cryptoWorkers) : undefined;
    this.transport = new TransportPath(this, this.allowed);
    this.bind.onDatagram((from, d) => this.receiveDatagram(from, d));
  }

  // ---- peers ------------------------------------------------------------------------------

  /** Adds a peer (or replaces the settings of an existing one with the same public key). */
  addPeer(opts: PeerOptions): Peer {
    this.assertOpen();
    const text = keyToBase64(opts.publicKey);
    let peer = this.peersByKey.get(text);
    if (!peer) {
      peer = new Peer(
        this,
        peerIdentity(this.self, opts.publicKey, opts.presharedKey),
        text,
        opts.persistentKeepalive,
      );
      this.peersByKey.set(text, peer);
    } else {
      peer.persistentKeepalive = opts.persistentKeepalive ?? 0;
    }
    if (opts.endpoint) peer.endpoint = opts.endpoint;
    for (const cidr of opts.allowedIPs ?? []) this.allowed.insert(cidr, peer);
    // wg(8): with persistent keepalive on, a keepalive goes out as soon as the interface is up.
    if (peer.persistentKeepalive > 0 && peer.endpoint) peer.send(new Uint8Array(0));
    return peer;
  }

  /**
   * Adds a peer that is configured only on first need, as Tailscale's lazy WireGuard
   * configuration (wgengine/userspace.go, maybeReconfigWireguardLocked: only recently active
   * peers are given to wireguard-go): its allowed IPs route at once, but the X25519
   * precomputation, sessions and timers wait until a packet is routed to it (`'outbound'`) or a
   * handshake initiation carries its key (`'inbound'`). A netmap of thousands of peers then
   * costs a routing entry each. An already configured peer is updated as by {@link addPeer};
   * a peer with persistent keepalive is configured now, since it must send at once (wg(8)).
   */
  addLazyPeer(opts: PeerOptions): void {
    this.assertOpen();
    const text = keyToBase64(opts.publicKey);
    if (this.peersByKey.has(text) || (opts.persistentKeepalive ?? 0) > 0) {
      this.addPeer(opts);
      return;
    }
    const old = this.lazyByKey.get(text);
    if (old) this.allowed.removeByValue(old);
    const lazy = new LazyPeer(
      { ...opts, publicKey: opts.publicKey.slice(), allowedIPs: [...(opts.allowedIPs ?? [])] },
      text,
    );
    this.lazyByKey.set(text, lazy);
    for (const cidr of lazy.opts.allowedIPs!) this.allowed.insert(cidr, lazy);
  }

  /** Whether the peer with this key is configured (not lazy, not absent). */
  isConfigured(publicKey: Uint8Array): boolean {
    return this.peersByKey.has(keyToBase64(publicKey));
  }

  /** How many peers are configured, and how many wait lazily. */
  get peerCounts(): { configured: number; lazy: number } {
    return { configured: this.peersByKey.size, lazy: this.lazyByKey.size };
  }

  private configureLazy(lazy: LazyPeer, reason: PeerConfiguredEvent['reason']): Peer {
    this.lazyByKey.delete(lazy.publicKeyText);
    this.allowed.removeByValue(lazy);
    const peer = this.addPeer(lazy.opts);
    this.trimmable.add(peer);
    this.logger.debug(`peer ${lazy.publicKeyText}: configured (${reason})`);
    this.emit('peerConfigured', { peer: lazy.publicKeyText, reason } satisfies PeerConfiguredEvent);
    return peer;
  }

  /**
   * Returns to lazy every peer configured from a lazy one that has been idle since the
   * previous call (no byte sent or received, no usable session, nothing pending). Called
   * every few minutes it trims peers idle that long, as wgengine does after
   * lazyPeerIdleThreshold (5 min): longer than REJECT_AFTER_TIME, so no live session is lost.
   * Returns how many were trimmed.
   */
  trimIdle(): number {
    const now = this.clock.now();
    let trimmed = 0;
    for (const peer of [...this.peersByKey.values()]) {
      if (!this.trimmable.has(peer)) continue;
      const previous = this.idleMarks.get(peer);
      this.idleMarks.set(peer, { rx: peer.rxBytes, tx: peer.txBytes });
      const moved = previous?.rx !== peer.rxBytes || previous.tx !== peer.txBytes;
      const kp = peer.keypairs.current;
      const live = kp !== undefined && now - kp.created < REJECT_AFTER_TIME;
      if (moved || live || peer.pending || peer.stagedCount() > 0) continue;
      const opts: PeerOptions = {
        publicKey: peer.publicKey,
        presharedKey: peer.identity.presharedKey,
        endpoint: peer.endpoint,
        allowedIPs: this.allowed.entries(peer),
      };
      this.removePeer(peer.publicKey);
      this.addLazyPeer(opts);
      trimmed++;
    }
    return trimmed;
  }

  /** Replaces a peer's allowed IPs, keeping its sessions (UAPI replace_allowed_ips); false if unknown. */
  replaceAllowedIPs(publicKey: Uint8Array, allowedIPs: readonly string[]): boolean {
    const text = keyToBase64(publicKey);
    const lazy = this.lazyByKey.get(text);
    const value = lazy ?? this.peersByKey.get(text);
    if (!value) return false;
    this.allowed.removeByValue(value);
    if (lazy) lazy.opts.allowedIPs = [...allowedIPs];
    for (const cidr of allowedIPs) this.allowed.insert(cidr, value);
    return true;
  }

  /** Removes a peer (configured or lazy): its allowed IPs, sessions and timers. */
  removePeer(publicKey: Uint8Array): boolean {
    const text = keyToBase64(publicKey);
    const lazy = this.lazyByKey.get(text);
    if (lazy) {
      this.allowed.removeByValue(lazy);
      this.lazyByKey.delete(text);
      return true;
    }
    const peer = this.peersByKey.get(text);
    if (!peer) return false;
    peer.removed = true;
    peer.zeroKeyMaterial();
    peer.timers.clear();
    this.allowed.removeByValue(peer);
    this.peersByKey.delete(text);
    return true;
  }

  getPeer(publicKey: Uint8Array): Peer | undefined {
    return this.peersByKey.get(keyToBase64(publicKey));
  }

  peers(): Peer[] {
    return [...this.peersByKey.values()];
  }

  /**
   * Looks up a peer by the static key a handshake initiation revealed, configuring it if it
   * is lazy. The key is known only after our static key decrypted it, but anyone may send
   * an initiation naming any key; the most that costs is configuring peers we were given.
   */
  peerForKey(publicKey: Uint8Array): Peer | undefined {
    const text = keyToBase64(publicKey);
    const peer = this.peersByKey.get(text);
    if (peer || this.closed) return peer;
    const lazy = this.lazyByKey.get(text);
    return lazy ? this.configureLazy(lazy, 'inbound') : undefined;
  }

  // ---- PacketLink (inside) --------------------------------------------------------------------

  /**
   * Stack → tunnel: routes one IP packet to the peer whose allowed IPs hold its destination.
   * Within a burst ({@link beginBurst}) it is sealed with the rest of the burst; `csumStart` and
   * `csumField` offload its transport checksum (see {@link txChecksumOffload}).
   */
  writePacket(ip: Uint8Array, csumStart?: number, csumField?: number): void {
    if (this.closed) return;
    const version = ip.length > 0 ? ip[0]! >> 4 : 0;
    let peer: Peer | LazyPeer | undefined;
    if (version === 4 && ip.length >= 20) peer = this.allowed.lookupV4(ip, 16);
    else if (version === 6 && ip.length >= 40) peer = this.allowed.lookupV6(ip, 24);
    if (!peer) {
      this.stats.noRoute++;
      return;
    }
    if (peer instanceof LazyPeer) peer = this.configureLazy(peer, 'outbound');
    if (ip.length > this.baseMtu && ip.length > this.peerMtu(peer)) {
      this.stats.tooBig++; // as a link drops what exceeds its MTU; TCP sizes its segments by mtuTo
      return;
    }
    peer.send(ip, csumStart, csumField);
  }

  /**
   * The largest inner packet toward `dst` (4 or 16 bytes): the base MTU, or more where the bind
   * proved the peer's path larger. A stack sizes its TCP segments to a destination by it.
   */
  mtuTo(dst: Uint8Array): number {
    if (this.mtu === this.baseMtu) return this.mtu;
    const peer = this.allowed.lookup(dst);
    return peer instanceof Peer ? this.peerMtu(peer) : this.baseMtu;
  }

  /** Bumped whenever an answer of {@link mtuTo} may have changed. */
  get mtuEpoch(): number {
    return this.bind.mtuEpoch ?? 0;
  }

  private peerMtu(peer: Peer): number {
    const ep = peer.endpoint;
    const m = ep && this.mtu > this.baseMtu ? this.bind.mtuTo?.(ep) : undefined;
    return m === undefined ? this.baseMtu : Math.min(this.mtu, Math.max(this.baseMtu, m));
  }

  /** Whether {@link writePacket} has a peer for packets to `ip` (4 or 16 bytes): cryptokey routing's lookup. */
  hasRoute(ip: Uint8Array): boolean {
    return this.allowed.lookup(ip) !== undefined;
  }

  /** Whether {@link writePacket} completes checksums (the wasm engine does, as it seals). */
  get txChecksumOffload(): boolean {
    return this.transport.txChecksumOffload;
  }

  /** Packets written until the matching {@link endBurst} are sealed as one vector. Bursts nest. */
  beginBurst(): void {
    this.transport.beginBurst();
  }

  endBurst(): void {
    this.transport.endBurst();
  }

  /**
   * Tunnel → stack: the handler receives each decrypted, source-checked IP packet (valid only
   * during the call) and, when the engine summed it, its one's complement sum (else -1).
   */
  onPacket(handler: (ip: Uint8Array, parsed: undefined, linkSum: number) => void): void {
    this.packetHandler = handler;
  }

  /** Called after each burst of received packets (inside a send burst). */
  onBurstEnd(handler: () => void): void {
    this.burstEndHandler = handler;
  }

  // ---- receive path (outside) ---------------------------------------------------------------

  private receiveDatagram(from: Endpoint, d: Uint8Array): void {
    if (this.closed) return;
    const type = messageType(d);
    if (type === MESSAGE_TRANSPORT) this.receiveTransport(from, d);
    else if (type >= MESSAGE_INITIATION) this.handshakes.enqueue(from, d);
    else this.stats.invalidMessages++;
  }

  /** The hot path: find the session, and queue the message to be opened with its burst (§5.4.6). */
  private receiveTransport(from: Endpoint, d: Uint8Array): void {
    const entry = this.indices.get(readU32(d, Transport.receiver));
    const kp = entry?.keypair;
    if (!entry || !kp) {
      this.stats.unknownIndex++;
      return;
    }
    this.transport.receive(entry.peer, kp, from, d, readCounter(d, Transport.counter));
  }

  /** TransportHost: an authentic inner packet from an allowed source goes up. */
  deliver(ip: Uint8Array, sum: number): void {
    this.packetHandler(ip, undefined, sum);
  }

  /** TransportHost: a received burst went up. */
  burstEnded(): void {
    this.burstEndHandler();
  }

  // ---- PeerHost ------------------------------------------------------------------------------

  /** Roaming (§2): the endpoint follows the latest authenticated packet, unless turned off. */
  learnEndpoint(peer: Peer, from: Endpoint): void {
    if (peer.endpoint?.key === from.key) return;
    if (this.roaming || !peer.endpoint) peer.endpoint = from;
  }

  allocateIndex(peer: Peer): number {
    return this.indices.allocate(peer);
  }

  registerKeypair(peer: Peer, kp: Keypair): void {
    this.indices.register(peer, kp);
  }

  releaseIndex(index: number): void {
    this.indices.release(index);
  }

  pendingHandshakePeer(index: number): Peer | undefined {
    return this.indices.pendingHandshakePeer(index);
  }

  /** The peer any index (pending handshake or session) belongs to. */
  indexPeer(index: number): Peer | undefined {
    return this.indices.get(index)?.peer;
  }

  transmit(peer: Peer, kp: Keypair, ip: Uint8Array, csumStart?: number, csumField?: number): void {
    this.transport.send(peer, kp, ip, csumStart, csumField);
  }

  onHandshakeComplete(peer: Peer, initiator: boolean): void {
    this.stats.handshakesCompleted++;
    this.logger.debug(
      `peer ${peer.publicKeyText}: handshake complete (${initiator ? 'initiator' : 'responder'})`,
    );
    const event: HandshakeEvent = {
      peer: peer.publicKeyText,
      initiator,
      endpoint: peer.endpoint?.toString(),
    };
    this.emit('handshake', event);
  }

  // ---- timers, status, lifecycle ---------------------------------------------------------------

  private runTimers(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const peer of this.peersByKey.values()) {
      for (const t of peer.timers.takeDue(now)) peer.expire(t);
      const e = peer.timers.earliest();
      if (e < next) next = e;
    }
    return next;
  }

  /** Per-peer state as `wg show` prints it. */
  status(): DeviceStatus {
    return {
      publicKey: keyToBase64(this.publicKey),
      peers: this.peers().map((p) => ({
        publicKey: p.publicKeyText,
        endpoint: p.endpoint?.toString(),
        allowedIPs: this.allowed.entries(p),
        latestHandshake: p.latestHandshakeWall,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
        persistentKeepalive: p.persistentKeepalive,
      })),
    };
  }

  /** Stops timers, erases keys and closes the bind. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.scheduler.close();
    this.handshakes.close();
    this.transport.close();
    for (const p of this.peersByKey.values()) {
      p.zeroKeyMaterial();
      p.timers.clear();
    }
    this.lazyByKey.clear();
    this.self.privateKey.fill(0);
    await this.cryptoPool?.close();
    await this.bind.close?.();
  }

  private startCryptoPool(workers: number): CryptoPool | undefined {
    const pool = CryptoPool.create(workers, (err) => this.logger.warn(`transport: ${err.message}`));
    if (!pool)
      this.logger.warn('crypto workers unavailable here (no SharedArrayBuffer or Atomics.waitAsync)');
    return pool;
  }

  /**
   * Forces the "under load" state of §5.3 (MAC2 required, cookie replies sent) regardless
   * of the handshake queue; for tests and benchmarks of the cookie path.
   */
  set forceUnderLoad(on: boolean) {
    this.handshakes.forceUnderLoad = on;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new WireGuardError('CLOSED', 'device is closed');
  }
}
