/**
 * The DERP relay (derp/derpserver/derpserver.go): accepts logged-in byte streams, forwards
 * packets by destination key, tracks duplicate connections per key as derper does
 * (lastWriterIsActive), sends PeerGone to clients that heard from a departed peer, feeds mesh
 * watchers, sends keepalives and drops slow clients. Transport (HTTP, WebSocket) is
 * {@link DerpHttpServer}'s job.
 */
import {
  DefaultPerClientSendQueueDepth,
  DefaultTCPWriteTimeout,
  DiscoMagic,
  KeepAlive,
  KeyLen,
  LoginTimeout,
  NonceLen,
  PeerGoneReasonDisconnected,
  PeerGoneReasonNotHere,
  PeerPresentIsMeshPeer,
  PeerPresentIsProber,
  PeerPresentIsRegular,
} from './constants.js';
import { DerpError } from './errors.js';
import { fingerprint, generateNodeKeyPair, nodePublicKey } from './keys.js';
import { type DerpLogger, silentDerpLogger } from './logger.js';
import { type ClientInfo, encodeKeepAlive, encodePeerGone, encodePeerPresent, ipTo16 } from './messages.js';
import { ServerClient, type ServerHost } from './server-client.js';
import { type DropReason, ServerMetrics } from './server-metrics.js';
import type { DerpConn } from './transport.js';

export interface DerpServerOptions {
  /** The server's private key (32 bytes); a fresh one when omitted (like derper -dev). */
  privateKey?: Uint8Array;
  /** Most connections at once, logged in or not; more are refused (default 10 000). */
  maxClients?: number;
  /** Packets waiting per client once its socket buffer is full (derper: 32). */
  queueDepth?: number;
  /** Socket bytes buffered per client before packets queue (default 256 KiB). */
  sendBufferBytes?: number;
  /** Close a client whose output makes no progress for this long (derper: 2 s). */
  writeTimeoutMs?: number;
  /** Keepalive period (derp.go KeepAlive: 60 s, plus up to 5 s jitter). */
  keepAliveMs?: number;
  /** From the upgrade to an admitted ClientInfo (derpserver.go accept: 10 s). */
  loginTimeoutMs?: number;
  /**
   * Clients that declare CanAckPings get a Ping with each keepalive and are closed when its Pong
   * is this late (counted from when the Ping left our buffers). derper relies on the kernel
   * instead: TCP_USER_TIMEOUT of 15 s (cmd/derper --tcp-user-timeout), which Node cannot set.
   */
  pongTimeoutMs?: number;
  /** 64 hex digits: clients presenting it may mesh (WatchConns, ForwardPacket, ClosePeer). */
  meshKey?: string;
  /**
   * Admission control, like derper's -verify-client-url: called with each client's key and
   * ClientInfo once its box opens; false (or a rejection) refuses it. Mesh peers bypass it.
   */
  verifyClient?: (key: Uint8Array, info: ClientInfo, remoteAddress: string) => boolean | Promise<boolean>;
  /** Close connections that send unknown frame types (derper skips them). */
  strictFrames?: boolean;
  logger?: DerpLogger;
}

/** The connections for one key (derpserver.go clientSet + dupClientSet). */
interface ClientSet {
  conns: ServerClient[];
  active: ServerClient | undefined;
  /** The most recent to connect or send; undefined after it left until someone sends. */
  last: ServerClient | undefined;
  sendHistory: ServerClient[];
}

/**
 * A DERP server core. Hand it connected streams with {@link DerpServer.accept}.
 *
 * @example
 * const server = new DerpServer({ maxClients: 1000 });
 * httpServer.on('upgrade', (req, socket) => server.accept(new SocketConn(socket)));
 */
export class DerpServer implements ServerHost {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly metrics = new ServerMetrics();
  readonly strictFrames: boolean;
  readonly log: DerpLogger;
  private readonly all = new Set<ServerClient>();
  private readonly clients = new Map<string, ClientSet>();
  private readonly peerGoneWatchers = new Map<string, Set<ServerClient>>();
  private readonly meshWatchers = new Set<ServerClient>();
  private readonly limits: { queueDepth: number; sendBufferBytes: number };
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly loginTimeout: number;
  private readonly pongTimeout: number;
  private closing = false;

  constructor(private readonly opts: DerpServerOptions = {}) {
    this.privateKey = opts.privateKey ?? generateNodeKeyPair().privateKey;
    this.publicKey = nodePublicKey(this.privateKey);
    this.strictFrames = opts.strictFrames ?? false;
    this.log = opts.logger ?? silentDerpLogger;
    this.limits = {
      queueDepth: opts.queueDepth ?? DefaultPerClientSendQueueDepth,
      sendBufferBytes: opts.sendBufferBytes ?? 256 << 10,
    };
    this.loginTimeout = opts.loginTimeoutMs ?? LoginTimeout;
    this.pongTimeout = opts.pongTimeoutMs ?? PongTimeout;
    if (opts.meshKey !== undefined && !/^[0-9a-f]{64}$/.test(opts.meshKey)) {
      throw new DerpError('BAD_CONFIG', 'mesh key must be 64 lower-case hex digits');
    }
    // One timer for all clients: keepalives, liveness pings, login deadlines and write timeouts.
    this.sweepTimer = setInterval(() => this.sweep(), 500);
    this.sweepTimer.unref();
  }

  /** Connections currently open (logged in or not). */
  get connectionCount(): number {
    return this.all.size;
  }

  /** Distinct keys currently connected. */
  get clientKeyCount(): number {
    return this.clients.size;
  }

  /** Whether another connection may be accepted under the client limit. */
  canAccept(): boolean {
    return !this.closing && this.all.size < (this.opts.maxClients ?? 10_000);
  }

  /** Serves one upgraded stream: sends ServerKey at once, then runs the protocol. */
  accept(conn: DerpConn): void {
    if (!this.canAccept()) {
      this.metrics.rejectedOverLimit++;
      conn.destroy();
      return;
    }
    this.metrics.accepts++;
    this.all.add(new ServerClient(this, conn, this.limits));
  }

  /** True when `key` is connected and has an active connection. */
  isConnected(key: Uint8Array): boolean {
    return this.clients.get(Buffer.from(key).toString('latin1'))?.active !== undefined;
  }

  admit(c: ServerClient): boolean | Promise<boolean> {
    const verify = this.opts.verifyClient;
    if (verify === undefined || c.canMesh) return true;
    const verdict = verify(c.key, c.info, c.conn.remoteAddress);
    if (typeof verdict === 'boolean') {
      if (!verdict) this.metrics.notAdmitted++;
      return verdict;
    }
    return verdict.then((ok) => {
      if (!ok) this.metrics.notAdmitted++;
      return ok;
    });
  }

  register(c: ServerClient): boolean {
    if (this.closing) return false;
    let set = this.clients.get(c.keyId);
    if (set === undefined) {
      set = { conns: [c], active: c, last: c, sendHistory: [] };
      this.clients.set(c.keyId, set);
    } else {
      // derpserver.go registerClient: the newest connection becomes active; older ones
      // stay open (read, not written) so a transiently reconnecting client is not flapped.
      if (set.conns.length === 1) {
        this.metrics.dupClientKeys++;
        this.metrics.dupClientConns += 2;
        set.sendHistory = [set.conns[0]!];
      } else {
        this.metrics.dupClientConns++;
        set.sendHistory.push(c);
      }
      this.metrics.dupClientConnTotal++;
      for (const o of set.conns) o.isDup = true;
      c.isDup = true;
      set.conns.push(c);
      set.last = c;
      this.setActive(set, c);
      this.log.info(`derp: ${fingerprint(c.key)} connected ${set.conns.length} times; newest is active`);
    }
    if (set.active === c) c.active = true;
    this.metrics.currentConnections++;
    c.nextKeepAlive = Date.now() + this.keepAliveDelay();
    this.broadcastPresence(c, true);
    return true;
  }

  private setActive(set: ClientSet, c: ServerClient | undefined): void {
    if (set.active) set.active.active = false;
    set.active = c;
    if (c) c.active = true;
  }

  unregister(c: ServerClient): void {
    this.all.delete(c);
    this.meshWatchers.delete(c);
    for (const src of c.sawSrc) {
      const w = this.peerGoneWatchers.get(src);
      w?.delete(c);
      if (w?.size === 0) this.peerGoneWatchers.delete(src);
    }
    if (c.badInput) this.metrics.badInputCloses++;
    if (!c.loggedIn) return;
    const set = this.clients.get(c.keyId);
    if (set === undefined || !set.conns.includes(c)) return;
    this.metrics.currentConnections--;
    if (c.preferred) this.metrics.currentHomeConnections--;
    if (set.conns.length === 1) {
      this.clients.delete(c.keyId);
      c.active = false;
      this.notePeerGone(c.key, c.keyId);
      this.broadcastPresence(c, false);
      return;
    }
    set.conns = set.conns.filter((x) => x !== c);
    // dupClientSet.removeClient: drop c from the history, then collapse adjacent repeats.
    const trimmed: ServerClient[] = [];
    for (const x of set.sendHistory) if (x !== c && trimmed.at(-1) !== x) trimmed.push(x);
    set.sendHistory = trimmed;
    this.metrics.dupClientConns--;
    if (set.last === c) set.last = set.sendHistory.at(-1);
    if (set.conns.length === 1) {
      const remain = set.conns[0]!;
      this.metrics.dupClientConns--;
      this.metrics.dupClientKeys--;
      remain.isDup = false;
      set.sendHistory = [];
      set.last = remain;
      this.setActive(set, remain);
    } else {
      this.setActive(set, set.last);
    }
  }

  /** derpserver.go noteClientActivity with lastWriterIsActive: whoever speaks gets traffic. */
  noteActivity(c: ServerClient): void {
    const set = this.clients.get(c.keyId);
    if (set === undefined || set.conns.length < 2) return;
    set.last = c;
    if (set.active !== c) this.setActive(set, c);
    if (set.sendHistory.at(-1) !== c) set.sendHistory.push(c);
  }

  route(from: ServerClient, srcKey: Uint8Array, dst: Uint8Array, data: Uint8Array, forwarded: boolean): void {
    const m = this.metrics;
    if (forwarded) m.packetsForwardedIn++;
    else {
      m.packetsReceived++;
      m.bytesReceived += data.length;
    }
    let target = from.cacheTarget(dst);
    if (target === undefined) {
      const set = this.clients.get(Buffer.from(dst.buffer, dst.byteOffset, KeyLen).toString('latin1'));
      target = set?.active;
      if (target === undefined) {
        const reason: DropReason =
          set && set.conns.length > 1 ? 'dup_client' : forwarded ? 'unknown_dest_on_fwd' : 'unknown_dest';
        m.drop(reason, data.length);
        // Only disco packets get PeerGone(NotHere), rate limited (derpserver.go requestPeerGoneWriteLimited).
        if (reason !== 'dup_client' && looksLikeDisco(data) && from.allowNotHere()) {
          m.peerGoneNotHereFrames++;
          from.writeControl(encodePeerGone(dst.slice(0, KeyLen), PeerGoneReasonNotHere));
        }
        return;
      }
      from.setCacheTarget(dst, target);
    }
    const srcId = forwarded ? Buffer.from(srcKey).toString('latin1') : from.keyId;
    target.sendPacket(forwarded ? srcKey.slice() : from.key, srcId, data);
  }

  peerGoneWatch(watcher: ServerClient, srcId: string): void {
    let set = this.peerGoneWatchers.get(srcId);
    if (set === undefined) {
      set = new Set();
      this.peerGoneWatchers.set(srcId, set);
    }
    set.add(watcher);
  }

  /**
   * PeerGone(Disconnected) to everyone who received from `key`
   * (derpserver.go notePeerGoneFromRegionLocked).
   */
  private notePeerGone(key: Uint8Array, keyId: string): void {
    const watchers = this.peerGoneWatchers.get(keyId);
    if (watchers === undefined) return;
    this.peerGoneWatchers.delete(keyId);
    const frame = encodePeerGone(key, PeerGoneReasonDisconnected);
    for (const w of watchers) {
      w.sawSrc.delete(keyId);
      this.metrics.peerGoneDisconnectedFrames++;
      w.writeControl(frame);
    }
  }

  private broadcastPresence(c: ServerClient, present: boolean): void {
    if (this.meshWatchers.size === 0) return;
    const frame = present ? this.presentFrame(c) : encodePeerGone(c.key, PeerGoneReasonDisconnected);
    for (const w of this.meshWatchers) if (w !== c) w.writeControl(frame);
  }

  private presentFrame(c: ServerClient): Uint8Array {
    let flags = 0;
    if (c.info.isProber) flags |= PeerPresentIsProber;
    if (c.canMesh) flags |= PeerPresentIsMeshPeer;
    if (flags === 0) flags = PeerPresentIsRegular;
    return encodePeerPresent(c.key, ipTo16(c.conn.remoteAddress || '0.0.0.0'), c.conn.remotePort, flags);
  }

  watchConns(c: ServerClient): void {
    if (Buffer.compare(c.key, this.publicKey) === 0) return;
    for (const set of this.clients.values()) if (set.active) c.writeControl(this.presentFrame(set.active));
    this.meshWatchers.add(c);
  }

  closePeer(_c: ServerClient, target: Uint8Array): void {
    const set = this.clients.get(Buffer.from(target).toString('latin1'));
    this.log.info(`derp: ClosePeer ${fingerprint(target)}: ${set ? set.conns.length : 0} connection(s)`);
    for (const t of [...(set?.conns ?? [])]) t.close();
  }

  notePreferred(c: ServerClient, preferred: boolean): void {
    if (c.preferred === preferred) return;
    c.preferred = preferred;
    this.metrics.currentHomeConnections += preferred ? 1 : -1;
    // derpserver.go setPreferred: moves in the first 5 s are the initial announcement.
    if (Date.now() - c.connectedAt > 5000) {
      if (preferred) this.metrics.homeMovesIn++;
      else this.metrics.homeMovesOut++;
    }
  }

  isMeshKey(meshKey: string | undefined): boolean {
    return meshKey !== undefined && this.opts.meshKey !== undefined && meshKey === this.opts.meshKey;
  }

  countDrop(reason: DropReason, bytes: number): void {
    this.metrics.drop(reason, bytes);
  }

  countSent(bytes: number): void {
    this.metrics.packetsSent++;
    this.metrics.bytesSent += bytes;
  }

  countPing(): void {
    this.metrics.gotPing++;
    this.metrics.sentPong++;
  }

  countUnknownFrame(): void {
    this.metrics.unknownFrames++;
  }

  countPongDropped(): void {
    this.metrics.pongsDropped++;
  }

  countLivenessPong(): void {
    this.metrics.livenessPongs++;
  }

  /** derpserver.go sendLoop: KeepAlive plus up to 5 s of jitter (scaled down for shorter periods). */
  private keepAliveDelay(): number {
    const k = this.opts.keepAliveMs ?? KeepAlive;
    return k + Math.random() * Math.min(5000, k / 12);
  }

  private sweep(): void {
    const now = Date.now();
    const writeTimeout = this.opts.writeTimeoutMs ?? DefaultTCPWriteTimeout;
    for (const c of this.all) {
      if (!c.loggedIn) {
        if (now - c.connectedAt > this.loginTimeout) {
          this.metrics.loginTimeouts++;
          this.log.info(`derp: closing ${c.who()}: no ClientInfo within ${this.loginTimeout} ms`);
          c.close();
        }
        continue;
      }
      if (c.pongOverdue(now, this.pongTimeout)) {
        this.metrics.pongTimeouts++;
        this.log.info(`derp: closing ${c.who()}: no Pong within ${this.pongTimeout} ms`);
        c.close();
        continue;
      }
      const flushed = c.conn.flushedBytes;
      if (c.conn.bufferedBytes > 0 && flushed === c.lastFlushed) {
        c.stalledSince ??= now;
        if (now - c.stalledSince > writeTimeout) {
          this.metrics.writeTimeouts++;
          this.log.info(`derp: closing ${c.who()}: writes made no progress for ${writeTimeout} ms`);
          c.close();
          continue;
        }
      } else c.stalledSince = undefined;
      c.lastFlushed = flushed;
      if (now >= c.nextKeepAlive) {
        c.writeControl(encodeKeepAlive());
        if (c.info.canAckPings) c.sendLivenessPing();
        c.nextKeepAlive = now + this.keepAliveDelay();
      }
    }
  }

  /** Closes every connection and stops the timers. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweepTimer);
    for (const c of [...this.all]) c.close();
  }
}

/** How late a liveness Pong may be: derper's TCP user timeout (cmd/derper/derper.go, 15 s). */
const PongTimeout = 15_000;

/** disco/disco.go LooksLikeDiscoWrapper: magic + 32-byte key + 24-byte nonce at least. */
function looksLikeDisco(p: Uint8Array): boolean {
  if (p.length < DiscoMagic.length + KeyLen + NonceLen) return false;
  for (let i = 0; i < DiscoMagic.length; i++) if (p[i] !== DiscoMagic[i]) return false;
  return true;
}
