/**
 * magicsock: the WireGuard device's `Bind` for a tailnet node (wgengine/magicsock). One UDP
 * socket (IPv4 and IPv6) carries WireGuard, disco and STUN; DERP carries WireGuard and disco
 * when no direct path works. WireGuard sees one stable {@link PeerEndpoint} per peer, and
 * each send goes where that peer's {@link PeerPath} says: the trusted direct address, or
 * DERP (plus the best untrusted address while probing).
 */
import type { DerpMap } from '../derp/derpmap.js';
import { DerpClientManager, type DerpClientManagerOptions } from '../derp/manager.js';
import { isStun } from '../derp/stun.js';
import type { Bind, Endpoint } from '../wireguard/bind.js';
import { openUdpBind } from '../wireguard/bun-udp-bind.js';
import { type Clock, systemClock } from '../wireguard/clock.js';
import type { Logger } from '../wireguard/logger.js';
import { silentLogger } from '../wireguard/logger.js';
import { type UdpBind, UdpEndpoint } from '../wireguard/udp-bind.js';
import {
  type AddrPort,
  type DiscoKeyPair,
  type DiscoMessage,
  discoSender,
  discoShared,
  looksLikeDisco,
  mtuProbePadding,
  openDisco,
  sealDisco,
} from './disco.js';
import { egressMtu } from './egress-mtu.js';
import { type MagicPeer, noTraffic, PeerEndpoint, type PeerTraffic, peerKey } from './magic-peer.js';
import { addrKey, PeerPath, type PingOutcome } from './path.js';
import { type PeerMtu, peerMtuOnPath } from './pmtu.js';
import { StunTransactions } from './stun-transactions.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface PeerState {
  info: MagicPeer;
  traffic: PeerTraffic;
  endpoint: PeerEndpoint;
  path: PeerPath;
  /** The disco box key, computed on first disco message (an X25519 each: not for every netmap peer). */
  shared: Uint8Array | undefined;
  /** Path MTU discovery on the direct path (with {@link MagicsockOptions.peerMtu}). */
  pmtu: PeerMtu | undefined;
}

export interface MagicsockOptions {
  nodePrivateKey: Uint8Array;
  nodePublicKey: Uint8Array;
  disco: DiscoKeyPair;
  /** UDP port (0 = any). */
  port?: number;
  /** Local address to bind; default all. */
  host?: string;
  /** Dial DERP over plain HTTP (Tailscale's TS_DEBUG_USE_DERP_HTTP), for test relays. */
  derpHttp?: boolean;
  /** Endpoints to advertise instead of discovering them (interfaces + STUN). */
  endpoints?: string[];
  /** Never use direct UDP to peers (DERP only), like TS_DEBUG_ALWAYS_USE_DERP. */
  derpOnly?: boolean;
  clock?: Clock;
  logger?: Logger;
  /** A UDP transport instead of real sockets (quackscale/testing's in-memory network). */
  udp?: MagicUdp;
  /** How DERP connects and measures, instead of the network (quackscale/testing). */
  derp?: Pick<DerpClientManagerOptions, 'connect' | 'measure'>;
  /**
   * Path MTU discovery toward our own peers (pmtu.ts): probe each direct path with sealed disco
   * probes, let WireGuard send larger packets where one is acknowledged ({@link mtuTo}), and
   * answer peers' probes. Off: every peer stays at the device's base MTU and probes go unanswered.
   */
  peerMtu?: boolean;
  /** The MTU of the interface toward an IP (default: Linux's routes, egress-mtu.ts); undefined = unknown. */
  egressMtu?: (ip: string) => number | undefined;
}

/** What magicsock needs of its UDP socket: what {@link UdpBind} offers. */
export type MagicUdp = Pick<UdpBind, 'port' | 'send' | 'onDatagram' | 'close' | 'stats'> &
  Pick<Bind, 'beginBatch' | 'endBatch'>;

export class Magicsock implements Bind {
  private handler: (from: Endpoint, d: Uint8Array) => void = () => {};
  private readonly peers = new Map<string, PeerState>();
  private readonly byDisco = new Map<string, PeerState>();
  private readonly byAddr = new Map<string, PeerState>();
  private readonly udpEndpoints = new WeakMap<AddrPort, UdpEndpoint>();
  private derp: DerpClientManager | undefined;
  private derpMapJson: string | undefined;
  private derpReady: Promise<number> | undefined;
  private readonly stunTx: StunTransactions;
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly stats = { udpIn: 0, derpIn: 0, udpOut: 0, derpOut: 0, discoIn: 0, unknownDisco: 0 };
  private epoch = 0;

  private constructor(
    private readonly opts: MagicsockOptions,
    readonly udp: MagicUdp,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.stunTx = new StunTransactions(
      (host, port, req) => udp.send(UdpEndpoint.from(host, port), req),
      this.log,
    );
    udp.onDatagram((from, d) => this.receiveUdp(from as UdpEndpoint, d));
  }

  /** Opens the UDP socket. DERP starts with {@link setDerpMap}. */
  static async open(opts: MagicsockOptions): Promise<Magicsock> {
    return new Magicsock(opts, opts.udp ?? (await openUdpBind({ port: opts.port ?? 0, host: opts.host })));
  }

  get port(): number {
    return this.udp.port;
  }

  /** The DERP home region, once chosen. */
  get homeRegion(): number | undefined {
    return this.derp?.home;
  }

  // ---- DERP ---------------------------------------------------------------------------------

  /**
   * Installs (or replaces) the DERP map and connects to the lowest-latency region as home.
   * The same map again returns the connection already made (or being made).
   */
  setDerpMap(map: DerpMap): Promise<number> {
    const json = JSON.stringify(map);
    if (json === this.derpMapJson && this.derpReady) return this.derpReady;
    this.derp?.close();
    this.derpMapJson = json;
    this.derpReady = this.connectDerp(map);
    return this.derpReady;
  }

  private async connectDerp(map: DerpMap): Promise<number> {
    const derp = new DerpClientManager({
      privateKey: this.opts.nodePrivateKey,
      derpMap: map,
      useHttp: this.opts.derpHttp,
      logger: this.log,
      ...this.opts.derp,
    });
    derp.onPacket((region, src, data) => this.receiveDerp(region, src, data));
    this.derp = derp;
    const home = await derp.pickHome();
    await derp.setHome(home);
    this.log.info(`magicsock: DERP home region ${home}`);
    return home;
  }

  // ---- peers --------------------------------------------------------------------------------

  /** Adds or updates a peer from the netmap. */
  upsertPeer(info: MagicPeer): PeerEndpoint {
    const k = peerKey(info.nodeKey);
    let st = this.peers.get(k);
    if (!st) {
      const path = new PeerPath(this.clock, {
        sendDiscoPing: (to, txid) =>
          this.sendDisco(st!, to, { type: 'ping', txid, nodeKey: this.opts.nodePublicKey, padding: 0 }),
        sendCallMeMaybe: () => this.sendCallMeMaybe(st!),
      });
      st = {
        info: { ...info, discoKey: undefined },
        endpoint: new PeerEndpoint(info.nodeKey),
        path,
        shared: undefined,
        traffic: noTraffic(),
        pmtu: undefined,
      };
      if (this.opts.peerMtu) st.pmtu = this.peerMtu(st);
      this.peers.set(k, st);
    }
    const oldDisco = st.info.discoKey && hex(st.info.discoKey);
    const newDisco = info.discoKey && hex(info.discoKey);
    if (oldDisco && oldDisco !== newDisco) {
      this.byDisco.delete(oldDisco);
      // A new disco key means the peer restarted: what we knew of its direct path is stale
      // (endpoint.go updateFromNode resets the endpoint the same way).
      if (newDisco) {
        st.path.reset();
        st.pmtu?.reset();
      }
    }
    st.info = info;
    if (newDisco !== oldDisco) {
      st.shared = undefined;
      if (newDisco) this.byDisco.set(newDisco, st);
    }
    st.path.hasDerp = info.homeDERP !== 0 || this.derp?.home !== undefined;
    st.path.setEndpoints(
      this.opts.derpOnly ? [] : info.endpoints.map(parseAddrPort).filter((a) => a !== undefined),
    );
    return st.endpoint;
  }

  removePeer(nodeKey: Uint8Array): void {
    const k = peerKey(nodeKey);
    const st = this.peers.get(k);
    if (!st) return;
    st.path.close();
    st.pmtu?.close();
    this.peers.delete(k);
    // Only our own entry: a re-keyed node keeps its disco key under its new node key.
    const disco = st.info.discoKey && hex(st.info.discoKey);
    if (disco && this.byDisco.get(disco) === st) this.byDisco.delete(disco);
    for (const [a, s] of this.byAddr) if (s === st) this.byAddr.delete(a);
  }

  /** The path WireGuard packets to a peer take now. */
  pathOf(
    nodeKey: Uint8Array,
  ):
    | { kind: 'direct'; addr: string; latencyMs: number; mtu: number | undefined }
    | { kind: 'derp'; region: number }
    | { kind: 'none' } {
    const st = this.peers.get(peerKey(nodeKey));
    if (!st) return { kind: 'none' };
    const p = st.path.current();
    if (p.kind === 'direct')
      return { kind: 'direct', addr: addrKey(p.addr), latencyMs: p.latencyMs, mtu: this.mtuTo(st.endpoint) };
    const region = this.regionFor(st);
    return region ? { kind: 'derp', region } : { kind: 'none' };
  }

  /**
   * A peer's WireGuard traffic by path, and how long ago (ms) a data packet was last sent to it
   * (Infinity if never); undefined for a peer magicsock does not know.
   */
  peerActivity(nodeKey: Uint8Array): { traffic: Readonly<PeerTraffic>; lastSendAgoMs: number } | undefined {
    const st = this.peers.get(peerKey(nodeKey));
    return st && { traffic: st.traffic, lastSendAgoMs: this.clock.now() - st.path.lastSend };
  }

  /** DERP connections made and failed (every region, reconnects included), and the regions connected now. */
  derpStats(): { connects: number; connectFailures: number; connected: number[] } {
    const d = this.derp;
    return d
      ? { ...d.stats, connected: d.connectedRegions() }
      : { connects: 0, connectFailures: 0, connected: [] };
  }

  /** The endpoints we advertise (interfaces and STUN), as last set. */
  get localEndpoints(): readonly string[] {
    return this.opts.endpoints ?? [];
  }

  /**
   * The host's addresses changed (roaming): direct paths are unproven until pinged again, and
   * DERP reconnects from the new address (magicsock Rebind, resetEndpointStates).
   */
  noteLinkChange(): void {
    for (const st of this.peers.values()) {
      st.path.reset();
      st.pmtu?.reset();
    }
    this.derp?.reconnect();
  }

  /** A disco ping to the peer on every path; reports the first pong (like `tailscale ping`). */
  async ping(nodeKey: Uint8Array): Promise<PingOutcome | undefined> {
    const st = this.peers.get(peerKey(nodeKey));
    return st ? st.path.ping() : undefined;
  }

  // ---- path MTU -----------------------------------------------------------------------------

  private peerMtu(st: PeerState): PeerMtu {
    return peerMtuOnPath(this.clock, st.path, this.opts.egressMtu ?? ((ip) => egressMtu(ip)), {
      sendProbe: (to, txid, size) =>
        this.sendDisco(st, to, { type: 'mtuProbe', txid, padding: mtuProbePadding(size) }),
      changed: (mtu) => {
        this.epoch++;
        this.log.debug(`magicsock: ${st.endpoint}: path MTU ${mtu}`);
      },
    });
  }

  /**
   * Bind: the inner MTU toward a peer, where path MTU discovery proved its current direct path
   * larger than the base; undefined (the device's base MTU) otherwise, over DERP included.
   */
  mtuTo(to: Endpoint): number | undefined {
    const st = to instanceof PeerEndpoint ? this.peers.get(to.key) : undefined;
    const m = st?.pmtu;
    if (!m || m.confirmedPayload === 0) return undefined;
    const key = st.path.directKey();
    return key !== undefined && key === m.pathKey ? m.innerMtu : undefined;
  }

  /** Bind: bumped whenever a peer's path MTU changes. */
  get mtuEpoch(): number {
    return this.epoch;
  }

  // ---- Bind ---------------------------------------------------------------------------------

  beginBatch(): void {
    this.udp.beginBatch?.();
  }

  endBatch(): void {
    this.udp.endBatch?.();
  }

  send(to: Endpoint, datagram: Uint8Array): void {
    if (to instanceof UdpEndpoint) {
      this.stats.udpOut++;
      this.udp.send(to, datagram);
      return;
    }
    const st = this.peers.get(to.key);
    if (!st) return;
    const { udp, derp } = st.path.addrForSend();
    if (st.pmtu && !st.pmtu.running) st.pmtu.wake();
    const t = st.traffic;
    if (udp) {
      this.stats.udpOut++;
      t.directTxPackets++;
      t.directTxBytes += datagram.length;
      this.udp.send(this.udpEndpoint(udp), datagram);
    }
    if (derp) {
      t.derpTxPackets++;
      t.derpTxBytes += datagram.length;
      this.sendDerp(st, datagram);
    }
  }

  onDatagram(handler: (from: Endpoint, datagram: Uint8Array) => void): void {
    this.handler = handler;
  }

  /**
   * The socket endpoint of a path address. Paths hand out the same address objects on every
   * send, so the IP parsing behind UdpEndpoint.from runs once per address, not per packet.
   */
  private udpEndpoint(a: AddrPort): UdpEndpoint {
    let ep = this.udpEndpoints.get(a);
    if (!ep) {
      ep = UdpEndpoint.from(a.ip, a.port);
      this.udpEndpoints.set(a, ep);
    }
    return ep;
  }

  private sendDerp(st: PeerState, datagram: Uint8Array): void {
    const region = this.regionFor(st);
    if (!region || !this.derp) return;
    this.stats.derpOut++;
    this.derp.send(region, st.info.nodeKey, datagram);
  }

  private regionFor(st: PeerState): number | undefined {
    return st.info.homeDERP || this.derp?.home;
  }

  private receiveUdp(from: UdpEndpoint, d: Uint8Array): void {
    this.stats.udpIn++;
    if (looksLikeDisco(d)) {
      // DERP-only nodes answer no disco over UDP, so peers never find a direct path to them.
      if (!this.opts.derpOnly) this.receiveDisco(d, { ip: from.address, port: from.port });
      return;
    }
    if (isStun(d)) {
      this.stunTx.receive(d);
      return;
    }
    const st = this.byAddr.get(from.key);
    if (st) {
      st.traffic.directRxPackets++;
      st.traffic.directRxBytes += d.length;
    }
    this.handler(st ? st.endpoint : from, d);
  }

  private receiveDerp(_region: number, src: Uint8Array, d: Uint8Array): void {
    this.stats.derpIn++;
    if (looksLikeDisco(d)) {
      this.receiveDisco(d, 'derp', src);
      return;
    }
    const st = this.peers.get(peerKey(src));
    if (!st) return;
    st.traffic.derpRxPackets++;
    st.traffic.derpRxBytes += d.length;
    this.handler(st.endpoint, d);
  }

  // ---- disco --------------------------------------------------------------------------------

  private receiveDisco(pkt: Uint8Array, via: AddrPort | 'derp', derpSrc?: Uint8Array): void {
    this.stats.discoIn++;
    const st = this.byDisco.get(hex(discoSender(pkt)));
    const shared = st && this.sharedKey(st);
    const msg = shared ? openDisco(shared, pkt) : undefined;
    if (!st || !msg) {
      this.stats.unknownDisco++;
      return;
    }
    if (derpSrc && hex(derpSrc) !== hex(st.info.nodeKey)) return; // disco key not of the DERP sender
    switch (msg.type) {
      case 'ping':
        if (via !== 'derp') {
          st.path.addCandidate(via);
          this.byAddr.set(UdpEndpoint.from(via.ip, via.port).key, st);
        }
        // The pong tells the peer the address we saw it from; over DERP Tailscale sends its magic 127.3.3.40.
        this.sendDisco(st, via, {
          type: 'pong',
          txid: msg.txid,
          src: via === 'derp' ? { ip: '127.3.3.40', port: this.regionFor(st) ?? 0 } : via,
        });
        return;
      case 'pong':
        if (st.path.handlePong(msg.txid, via) && via !== 'derp')
          this.byAddr.set(UdpEndpoint.from(via.ip, via.port).key, st);
        return;
      case 'callMeMaybe':
        if (via === 'derp' && !this.opts.derpOnly) st.path.handleCallMeMaybe(msg.endpoints);
        return;
      case 'mtuProbe':
        // Answered only on a direct path and only with PMTUD on: the size is what arrived here.
        if (via !== 'derp' && this.opts.peerMtu)
          this.sendDisco(st, via, { type: 'mtuAck', txid: msg.txid, size: pkt.length });
        return;
      case 'mtuAck':
        if (via !== 'derp') st.pmtu?.handleAck(msg.txid, msg.size);
        return;
    }
  }

  private sharedKey(st: PeerState): Uint8Array | undefined {
    if (!st.shared && st.info.discoKey) st.shared = discoShared(this.opts.disco, st.info.discoKey);
    return st.shared;
  }

  private sendDisco(st: PeerState, to: AddrPort | 'derp', msg: DiscoMessage): void {
    const shared = this.sharedKey(st);
    if (!shared) return;
    const pkt = sealDisco(this.opts.disco, shared, msg);
    if (to === 'derp') this.sendDerp(st, pkt);
    else this.udp.send(this.udpEndpoint(to), pkt);
  }

  private sendCallMeMaybe(st: PeerState): void {
    const endpoints = (this.opts.endpoints ?? []).map(parseAddrPort).filter((a) => a !== undefined);
    if (endpoints.length > 0) this.sendDisco(st, 'derp', { type: 'callMeMaybe', endpoints });
  }

  // ---- STUN ---------------------------------------------------------------------------------

  /** Our address as a STUN server on `host:port` sees it, through our own socket. */
  stun(host: string, port: number, timeoutMs = 2000): Promise<AddrPort | undefined> {
    return this.stunTx.request(host, port, timeoutMs);
  }

  /** Sets the endpoints advertised in CallMeMaybe (after discovery). */
  setLocalEndpoints(endpoints: string[]): void {
    this.opts.endpoints = endpoints;
  }

  async close(): Promise<void> {
    for (const st of this.peers.values()) {
      st.path.close();
      st.pmtu?.close();
    }
    this.peers.clear();
    this.derp?.close();
    await this.udp.close();
  }
}

/** Parses `ip:port` or `[ip]:port`. */
export function parseAddrPort(text: string): AddrPort | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { ip: m[1]!, port } : undefined;
}
