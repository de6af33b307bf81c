/**
 * DERP connections for a node (the DERP half of wgengine/magicsock/derp.go): one connection
 * to the home region, announced with NotePreferred, plus connections opened on demand to the
 * regions peers live in and closed after a minute without traffic (derpInactiveCleanupTime).
 * Dropped connections are redialled with backoff and jitter while they are wanted; handlers
 * belong to the manager, so they survive every reconnect.
 */
import { Backoff } from './backoff.js';
import { DerpClient, type DerpClientOptions } from './client.js';
import type { DerpMap, DerpRegion } from './derpmap.js';
import { nodeTarget } from './derpmap.js';
import { DerpError, errorMessage } from './errors.js';
import { nodePublicKey } from './keys.js';
import { choosePreferredRegion, measureRegionLatency } from './latency.js';
import { type DerpLogger, silentDerpLogger } from './logger.js';

export interface DerpClientManagerOptions {
  privateKey: Uint8Array;
  derpMap: DerpMap;
  /** Plain HTTP to every node (Tailscale's TS_DEBUG_USE_DERP_HTTP). */
  useHttp?: boolean;
  websocket?: boolean;
  /** Close a non-home region after this long without packets (magicsock: 60 s). */
  idleTimeoutMs?: number;
  /** Cap of the reconnect backoff (magicsock: 5 s). */
  maxBackoffMs?: number;
  /** Packets held per region while it connects; more are dropped. */
  pendingLimit?: number;
  logger?: DerpLogger;
  /** Replaces the latency probes of {@link DerpClientManager.pickHome} (an in-memory network). */
  measure?: (timeoutMs: number) => Promise<Map<number, number>>;
  /** Replaces DerpClient.connect (tests). */
  connect?: (opts: DerpClientOptions) => Promise<DerpClient>;
}

type PacketHandler = (regionId: number, source: Uint8Array, data: Uint8Array) => void;
type PeerGoneHandler = (regionId: number, peer: Uint8Array, reason: number) => void;

interface RegionConn {
  regionId: number;
  client: DerpClient | undefined;
  dialing: boolean;
  lastActive: number;
  backoff: Backoff;
  retry: NodeJS.Timeout | undefined;
  pending: Array<[Uint8Array, Uint8Array]>;
  waiters: Array<{ done: () => void; fail: (err: DerpError) => void }>;
  connects: number;
  /** Set by a Restarting frame: the server's advised delay before redialling. */
  restartInMs: number | undefined;
}

/**
 * @example
 * const m = new DerpClientManager({ privateKey, derpMap });
 * m.onPacket((region, src, data) => …);
 * await m.setHome(900);
 * m.send(900, peerKey, packet);
 */
export class DerpClientManager {
  private readonly regions = new Map<number, RegionConn>();
  private packetHandler: PacketHandler = () => {};
  private peerGoneHandler: PeerGoneHandler = () => {};
  private readonly log: DerpLogger;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;
  home: number | undefined;
  /** Connections made (every region, reconnects included) and dial rounds that found no node answering. */
  readonly stats = { connects: 0, connectFailures: 0 };
  /** Our node public key: the address peers send to. */
  readonly publicKey: Uint8Array;

  constructor(private readonly opts: DerpClientManagerOptions) {
    this.log = opts.logger ?? silentDerpLogger;
    this.publicKey = nodePublicKey(opts.privateKey);
    const idle = opts.idleTimeoutMs ?? 60_000;
    this.sweepTimer = setInterval(() => this.closeIdle(), Math.max(50, Math.min(idle / 4, 15_000)));
    this.sweepTimer.unref();
  }

  onPacket(handler: PacketHandler): void {
    this.packetHandler = handler;
  }

  onPeerGone(handler: PeerGoneHandler): void {
    this.peerGoneHandler = handler;
  }

  private region(regionId: number): DerpRegion {
    const r = this.opts.derpMap.Regions[String(regionId)];
    if (!r) throw new DerpError('BAD_CONFIG', `DERP region ${regionId} is not in the map`);
    return r;
  }

  /** Makes `regionId` home: connects, says NotePreferred(true), and un-prefers the old home. */
  async setHome(regionId: number, timeoutMs = 10_000): Promise<void> {
    this.region(regionId);
    const old = this.home;
    this.home = regionId;
    if (old !== undefined && old !== regionId) this.regions.get(old)?.client?.notePreferred(false);
    const rc = this.ensure(regionId);
    rc.client?.notePreferred(true);
    await this.waitConnected(regionId, timeoutMs);
  }

  /** Whether a logged-in connection to the region exists now. */
  isConnected(regionId: number): boolean {
    const c = this.regions.get(regionId)?.client;
    return c !== undefined && !c.closed;
  }

  /** The regions with a logged-in connection now. */
  connectedRegions(): number[] {
    return [...this.regions.keys()].filter((r) => this.isConnected(r));
  }

  /** How many times the region has been (re)connected; tests watch reconnections with it. */
  connectCount(regionId: number): number {
    return this.regions.get(regionId)?.connects ?? 0;
  }

  /** Resolves when the region is connected (dialling it if needed). */
  waitConnected(regionId: number, timeoutMs = 10_000): Promise<void> {
    const rc = this.ensure(regionId);
    if (this.isConnected(regionId)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new DerpError('TIMEOUT', `DERP region ${regionId}: not connected within ${timeoutMs} ms`)),
        timeoutMs,
      );
      rc.waiters.push({
        done: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  /**
   * Sends a packet to `dst` through `regionId`, connecting on demand; while connecting, up to
   * `pendingLimit` packets wait. Returns false when the packet was dropped.
   */
  send(regionId: number, dst: Uint8Array, data: Uint8Array): boolean {
    if (this.closed) return false;
    const rc = this.ensure(regionId);
    rc.lastActive = Date.now();
    if (rc.client && !rc.client.closed) return rc.client.send(dst, data);
    if (rc.pending.length >= (this.opts.pendingLimit ?? 32)) return false;
    rc.pending.push([dst.slice(), data.slice()]);
    return true;
  }

  private ensure(regionId: number): RegionConn {
    let rc = this.regions.get(regionId);
    if (rc === undefined) {
      rc = {
        regionId,
        client: undefined,
        dialing: false,
        lastActive: Date.now(),
        backoff: new Backoff(this.opts.maxBackoffMs ?? 5000),
        retry: undefined,
        pending: [],
        waiters: [],
        connects: 0,
        restartInMs: undefined,
      };
      this.regions.set(regionId, rc);
      void this.dial(rc);
    }
    return rc;
  }

  private wanted(rc: RegionConn): boolean {
    if (this.closed || this.regions.get(rc.regionId) !== rc) return false;
    return rc.regionId === this.home || Date.now() - rc.lastActive < (this.opts.idleTimeoutMs ?? 60_000);
  }

  private async dial(rc: RegionConn): Promise<void> {
    rc.retry = undefined;
    if (!this.wanted(rc)) return this.drop(rc);
    rc.dialing = true;
    const region = this.region(rc.regionId);
    let lastErr: unknown = new DerpError('CONNECT', `DERP region ${rc.regionId} has no DERP nodes`);
    for (const node of region.Nodes) {
      if (node.STUNOnly) continue;
      const t = nodeTarget(node, { useHttp: this.opts.useHttp });
      try {
        const client = await (this.opts.connect ?? DerpClient.connect)({
          url: t.url,
          connectHost: t.connectHost,
          tls: t.tls,
          privateKey: this.opts.privateKey,
          websocket: this.opts.websocket,
          logger: this.log,
          ...(node !== region.Nodes[0] ? { idealNode: region.Nodes[0]!.Name } : {}),
        });
        rc.dialing = false;
        if (!this.wanted(rc)) {
          client.close();
          return this.drop(rc);
        }
        return this.attach(rc, client);
      } catch (err) {
        lastErr = err;
      }
    }
    rc.dialing = false;
    this.stats.connectFailures++;
    const delay = rc.backoff.next();
    this.log.debug(
      `derp: region ${rc.regionId} connect failed (${errorMessage(lastErr)}); retry in ${Math.round(delay)} ms`,
    );
    rc.retry = setTimeout(() => void this.dial(rc), delay);
    rc.retry.unref();
  }

  private attach(rc: RegionConn, client: DerpClient): void {
    rc.client = client;
    rc.connects++;
    this.stats.connects++;
    rc.backoff.reset();
    client.onPacket((src, data) => {
      rc.lastActive = Date.now();
      this.packetHandler(rc.regionId, src, data);
    });
    client.onMessage((m) => {
      if (m.type === 'peerGone') this.peerGoneHandler(rc.regionId, m.peer, m.reason);
      else if (m.type === 'health' && m.problem)
        this.log.warn(`derp: region ${rc.regionId} health: ${m.problem}`);
      // derp_client.go ServerRestartingMessage: reconnect after ReconnectIn rather than at once.
      else if (m.type === 'restarting') rc.restartInMs = m.reconnectInMs;
    });
    client.onClose((err) => {
      if (rc.client === client) rc.client = undefined;
      if (!this.wanted(rc)) {
        this.drop(rc);
        return;
      }
      const delay = rc.restartInMs ?? rc.backoff.next();
      rc.restartInMs = undefined;
      this.log.info(
        `derp: region ${rc.regionId} lost (${err ? err.message : 'closed'}); redial in ${Math.round(delay)} ms`,
      );
      rc.retry = setTimeout(() => void this.dial(rc), delay);
      rc.retry.unref();
    });
    if (rc.regionId === this.home) client.notePreferred(true);
    for (const [dst, data] of rc.pending.splice(0)) client.send(dst, data);
    for (const w of rc.waiters.splice(0)) w.done();
  }

  private drop(rc: RegionConn): void {
    clearTimeout(rc.retry);
    if (this.regions.get(rc.regionId) === rc) this.regions.delete(rc.regionId);
    const c = rc.client;
    rc.client = undefined;
    c?.close();
  }

  /**
   * Drops every connection and dials again at once: after the host's address changed, the old
   * TCP connections are dead without knowing it (magicsock maybeCloseDERPsOnRebind).
   */
  reconnect(): void {
    for (const rc of this.regions.values()) {
      if (!rc.client) continue;
      rc.backoff.reset();
      rc.restartInMs = 0;
      rc.client.close();
    }
  }

  private closeIdle(): void {
    for (const rc of [...this.regions.values()]) {
      if (!this.wanted(rc) && !rc.dialing) {
        this.log.debug(`derp: closing idle region ${rc.regionId}`);
        this.drop(rc);
      }
    }
  }

  /** Round-trip estimates per region (ms), for choosing home; unreachable regions are absent. */
  measureLatency(timeoutMs = 2000): Promise<Map<number, number>> {
    if (this.opts.measure) return this.opts.measure(timeoutMs);
    return measureRegionLatency(this.opts.derpMap, { timeoutMs, useHttp: this.opts.useHttp });
  }

  /**
   * Measures, then makes the fastest eligible region home (keeping the current one unless
   * another is clearly faster, as netcheck does). Returns the home region's ID.
   */
  async pickHome(timeoutMs = 2000): Promise<number> {
    const lat = await this.measureLatency(timeoutMs);
    const best = choosePreferredRegion(lat, this.home, this.opts.derpMap);
    if (best === undefined) throw new DerpError('CONNECT', 'no DERP region answered the latency probes');
    await this.setHome(best);
    return best;
  }

  /** The regions with a connection or a pending dial. */
  get activeRegions(): number[] {
    return [...this.regions.keys()].sort((a, b) => a - b);
  }

  /** Closes every connection; nothing is redialled afterwards. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const rc of [...this.regions.values()]) {
      for (const w of rc.waiters.splice(0))
        w.fail(new DerpError('CLOSED', `DERP region ${rc.regionId}: manager closed`));
      this.drop(rc);
    }
  }
}
