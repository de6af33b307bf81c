/**
 * A tailnet node in a Node.js process: the TypeScript counterpart of Tailscale's
 * `tsnet.Server`. It logs in to a control server (Tailscale or Headscale), keeps the netmap,
 * runs WireGuard over magicsock (direct UDP or DERP), enforces the packet filter, and gives
 * the program `dial` / `listen` / `ping` on its tailnet addresses.
 *
 * @example
 * const tn = new Tailnet({ hostname: 'worker-1', controlURL, authKey, stateDir });
 * await tn.up();
 * console.log(tn.status().self.addresses);
 * await tn.close();
 */
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type https from 'node:https';
import type net from 'node:net';
import type { Dispatcher } from 'undici';
import { ControlClient } from '../control/client.js';
import type { NetMap, NetMapChange, NetNode } from '../control/netmap.js';
import type { DerpMap } from '../derp/derpmap.js';
import { Stack } from '../netstack/stack.js';
import { TcpEndpoint } from '../netstack/tcp/endpoint.js';
import type { TcpServer } from '../netstack/tcp/server.js';
import type { TcpSocket } from '../netstack/tcp/socket.js';
import { type UdpSocket, UdpEndpoint as UdpSockets } from '../netstack/udp.js';
import { Device } from '../wireguard/device.js';
import { type Logger, silentLogger } from '../wireguard/logger.js';
import { EndpointDiscovery, withPort } from './endpoints.js';
import { type RequestInit, type Response, TailnetFetch } from './fetch.js';
import { PacketFilter } from './filter.js';
import { FilteredLink } from './filtered-link.js';
import { listenForward, relayToLocal } from './forward.js';
import { type HttpProxy, startHttpProxy } from './http-proxy.js';
import type { NodeInternals } from './internals.js';
import { Magicsock } from './magicsock.js';
import { type NodeMetrics, nodeMetrics } from './metrics/collect.js';
import { NameResolver, UnknownHostError } from './names.js';
import { TailnetHttpAgent, TailnetHttpsAgent } from './net/agents.js';
import { createTailnetDispatcher, type TailnetDispatcherOptions } from './net/dispatcher.js';
import { createTailnetNet, type TailnetNet, type TailnetNetOptions } from './net/net.js';
import { type RemoteLike, remoteAddressOf } from './net/remote-address.js';
import { assertCanHandOff, reportListening, type TailnetSocketHost } from './net/socket.js';
import { type NetcheckReport, runNetcheck } from './netcheck/netcheck.js';
import { controlClientOptions, magicsockOptions, type TailnetOptions } from './options.js';
import { PeerTable } from './peers.js';
import { type PingReply, type PingType, pingPeer } from './ping.js';
import { pingRequestAnswerer } from './ping-request.js';
import { MAX_INNER_MTU } from './pmtu.js';
import { deviceLiveness, ExitNodeError, NodeRouting } from './routes/node-routing.js';
import { Socks5Server } from './socks5-server.js';
import { type PeerStatus, statusOf, type TailnetStatus, unprefix, type WhoIs, whoisIn } from './status.js';
import { buildIpnStatus, type IpnStatus } from './status-json.js';
import { Tsmp } from './tsmp/tsmp.js';

export { DEFAULT_CONTROL_URL } from './options.js';
export type { IpnStatus, PeerStatus, TailnetOptions, TailnetStatus, WhoIs };

/** How often idle WireGuard peers are trimmed back to lazy: wgengine's lazyPeerIdleThreshold. */
const LAZY_PEER_IDLE_MS = 5 * 60_000;

export class Tailnet extends EventEmitter {
  private readonly opts: TailnetOptions;
  private control: ControlClient | undefined;
  private magicsock: Magicsock | undefined;
  private device: Device | undefined;
  /** The node's IP stack (ICMP, and TCP/UDP sockets), once up. */
  stack: Stack | undefined;
  private tcp: TcpEndpoint | undefined;
  private udp: UdpSockets | undefined;
  private tsmp: Tsmp | undefined;
  private peerTable: PeerTable | undefined;
  private readonly routing: NodeRouting;
  private readonly socketHost: TailnetSocketHost = {
    tcp: () => this.requireTcp(),
    unroutable: (address) => this.routing.unroutable(address),
    toOS: (host) => this.routing.toOS(host),
    resolvesOthers: () => this.routing.exitNodeChosen(),
    names: () => {
      this.requireNetmap();
      return this.names;
    },
    track: (server) => this.track(server),
  };
  /**
   * node:net over the tailnet: `createConnection`, `connect`, `Socket`, `createServer`,
   * `lookup` (MagicDNS), `isIP`. Hosts that are not on the tailnet fail; see {@link createNet}.
   */
  readonly net: TailnetNet = createTailnetNet(this.socketHost);
  private readonly fetcher = new TailnetFetch(
    () => createTailnetDispatcher(this.net),
    (h, p) => this.dial(h, p),
  );
  private readonly closers = new Set<() => Promise<void> | void>();
  private filter: PacketFilter = new PacketFilter([], []);
  private names = new NameResolver([], '');
  private netmap: NetMap | undefined;
  private readonly log: Logger;
  private closed = false;
  /** The DERP home region last reported to control. */
  private reportedHome: number | undefined;
  private homeReported: Promise<void> | undefined;
  /** The last AuthURL control gave (an interactive login waiting for approval). */
  private authURL = '';

  constructor(opts: TailnetOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    this.routing = new NodeRouting(opts, () => this.names); // throws a RouteError naming a bad route
  }

  /** Logs in (auth key, saved login, or interactive), brings up WireGuard, and resolves with the first netmap applied. */
  async up(): Promise<TailnetStatus> {
    if (this.closed) throw new Error('tailnet node is closed');
    if (this.device) return this.status();
    const control = await ControlClient.open(
      controlClientOptions(this.opts, this.log, this.routing.hostinfo(), (url) => {
        this.authURL = url;
        this.emit('authURL', url);
        this.opts.onAuthURL?.(url);
      }),
    );
    this.control = control;
    const answerPing = pingRequestAnswerer(() => this.internals(), this.log);
    control.on('ping-request', answerPing);
    await control.login();
    const nodeKey = control.state.nodeKey!;
    const disco = control.state.discoKey;
    const peerMtu = this.opts.peerMtu ?? true;
    const magicsock = await Magicsock.open(magicsockOptions(this.opts, this.log, nodeKey, disco));
    this.magicsock = magicsock;
    const discovery = this.opts.endpoints || this.opts.derpOnly ? undefined : this.discover(magicsock);
    const localEndpoints = this.opts.derpOnly
      ? []
      : (this.opts.endpoints?.map((e) => withPort(e, magicsock.port)) ?? [...discovery!.endpoints]);
    magicsock.setLocalEndpoints(localEndpoints);
    this.device = new Device({
      privateKey: nodeKey.exportRaw(),
      bind: magicsock,
      roaming: false,
      // The base 1,420 toward every peer; up to a path's proved size toward our own (Bind.mtuTo).
      ...(peerMtu ? { maxMtu: MAX_INNER_MTU } : {}),
      logger: this.log,
      cryptoWorkers: this.opts.cryptoWorkers,
      ...(this.opts.wireguardClock ? { clock: this.opts.wireguardClock } : {}),
    });
    this.peerTable = new PeerTable(this.device, magicsock);
    // Lazy peers idle for LAZY_PEER_IDLE_MS go back to lazy (wgengine lazyPeerIdleThreshold).
    const trim = setInterval(() => this.device?.trimIdle(), LAZY_PEER_IDLE_MS);
    trim.unref();
    this.closers.add(() => clearInterval(trim));
    control.on('netmap', (nm, changes) => {
      this.apply(nm, changes).catch((err: unknown) => this.log.warn(`netmap: ${(err as Error).message}`));
    });
    control.start();
    await control
      .setEndpoints(localEndpoints)
      .catch((err: unknown) => this.log.debug(`endpoints: ${(err as Error).message}`));
    const nm = await control.waitForNetmap((m) => m.self.addresses.length > 0 && m.derpMap !== undefined);
    await this.apply(nm, [{ kind: 'full' }]);
    const exitProblem = this.routing.exitProblem();
    if (exitProblem) {
      await this.close();
      throw new ExitNodeError(exitProblem);
    }
    // Up means reachable: control has our DERP home to give peers (DERP-only peers need nothing else).
    await this.homeReported;
    void discovery?.update('initial');
    return this.status();
  }

  /**
   * Interactive join: as {@link up}, for a node with no auth key. Emits `'authURL'` (and calls
   * `onAuthURL`) with the URL an admin must approve, and resolves once approved and up.
   */
  login(): Promise<TailnetStatus> {
    return this.up();
  }

  /** Applies a netmap: DERP map, our addresses, peers (WireGuard + paths), filter and names. */
  private async apply(nm: NetMap, changes: readonly NetMapChange[]): Promise<void> {
    const ms = this.magicsock;
    const dev = this.device;
    if (!ms || !dev || this.closed) return;
    this.netmap = nm;
    if (
      nm.derpMap &&
      (changes.some((c) => c.kind === 'full' || c.kind === 'derp-map') || ms.homeRegion === undefined)
    ) {
      await ms.setDerpMap(nm.derpMap as DerpMap);
    }
    // Peers find our DERP home in the netmap (Node.HomeDERP), which control fills from the
    // NetInfo.PreferredDERP we report: without it they cannot start a relayed conversation with us.
    const home = ms.homeRegion;
    if (home !== undefined && home !== this.reportedHome) {
      this.reportedHome = home;
      this.homeReported = this.control
        ?.setHostinfo({ NetInfo: { PreferredDERP: home } })
        .catch((err: unknown) => this.log.debug(`hostinfo: ${(err as Error).message}`));
    }
    const self = nm.self.addresses.map(unprefix);
    if (!this.stack) {
      const denied = (ip: Uint8Array, why: string) => this.tsmp?.denied(ip, why);
      this.stack = new Stack(new FilteredLink(dev, () => this.filter, denied), { addresses: self });
      this.tcp = new TcpEndpoint(this.stack, this.opts.tcp);
      this.udp = new UdpSockets(this.stack);
      this.tsmp = new Tsmp(this.stack, { logger: this.log });
      this.routing.start({ stack: this.stack, tcp: this.tcp, udp: this.udp, logger: this.log });
      this.routing.liveness = deviceLiveness(dev);
    }
    this.filter = new PacketFilter(nm.packetFilter, self, this.filter, this.routing.routedNets);
    this.names = new NameResolver(
      [nm.self, ...nm.peers.values()].map((n) => ({ name: n.name, addresses: n.addresses.map(unprefix) })),
      nm.magicDNSSuffix || nm.domain,
    );
    this.routing.apply(nm);
    this.peerTable?.apply(nm.peers.values(), (p) => this.routing.allowedIPs(p));
    this.emit('netmap', nm, changes);
  }

  /**
   * Discovers our endpoints (unless given) and keeps them current: re-STUN while active, and on
   * a change of the host's addresses also direct paths, DERP and control start afresh.
   */
  private discover(ms: Magicsock): EndpointDiscovery {
    const discovery = new EndpointDiscovery({
      port: ms.port,
      stun: (host, port) => ms.stun(host, port),
      interfaces: this.opts.network?.interfaces,
      derpMap: () => this.netmap?.derpMap as DerpMap | undefined,
      sends: () => ms.stats.udpOut + ms.stats.derpOut,
      onEndpoints: (all) => {
        ms.setLocalEndpoints(all);
        this.control
          ?.setEndpoints(all)
          .catch((err: unknown) => this.log.debug(`endpoints: ${(err as Error).message}`));
      },
      onLinkChange: () => {
        ms.noteLinkChange();
        this.control?.rebind();
      },
      logger: this.log,
    });
    this.closers.add(() => discovery.close());
    return discovery;
  }

  /** The peer node a host names (MagicDNS short name, FQDN or tailnet address). */
  peerFor(host: string): NetNode {
    const nm = this.requireNetmap();
    const addr = this.names.resolve(host);
    for (const p of nm.peers.values()) if (p.addresses.some((a) => unprefix(a) === addr)) return p;
    throw new UnknownHostError(host);
  }

  /** The address to dial for a host (MagicDNS name, tailnet literal, or a literal a route takes). */
  resolve(host: string, family?: 4 | 6): string {
    this.requireNetmap();
    const h = host.replace(/^\[|\]$/g, '');
    return this.routing.lookup(h) ? h : this.names.resolve(host, family);
  }

  /** True if the host is reached over the tailnet (a name, address or routed address; see NodeRouting.toOS). */
  isTailnetHost(host: string): boolean {
    return this.names.isTailnetHost(host) || !this.routing.toOS(host);
  }

  /**
   * A ping, as `tailscale ping`: `disco` (the default) reports whether the pong came over a
   * direct path or DERP; `tsmp` and `icmp` go through WireGuard to the peer's node or IP stack.
   * Rejects with a PingTimeoutError if no pong arrives within 5 s.
   */
  async ping(host: string, opts: { type?: PingType } = {}): Promise<PingReply> {
    return pingPeer(this.internals(), this.peerFor(host), host, opts.type);
  }

  // ---- sockets --------------------------------------------------------------------------------

  /**
   * Opens a TCP connection to `host:port` over the tailnet; `host` is a MagicDNS short name,
   * an FQDN (with or without the trailing dot) or a 100.x / fd7a: address. Resolves on connect
   * with a net.Socket-compatible stream; rejects with ENOTFOUND, EHOSTUNREACH, ECONNREFUSED or
   * ETIMEDOUT (after `timeout`, default 30 s).
   */
  dial(host: string, port: number, opts: { timeout?: number } = {}): Promise<TcpSocket> {
    return new Promise((resolve, reject) => {
      const sock = new this.net.Socket().connect({ host, port, connectTimeout: opts.timeout ?? 30_000 });
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(sock);
      });
    });
  }

  /**
   * node:net over the tailnet, with options: `direct: true` sends hosts that are not on the
   * tailnet to the OS (connect and lookup), as tailscaled's SOCKS5 server does. `tn.net` is
   * this without options.
   */
  createNet(opts: TailnetNetOptions = {}): TailnetNet {
    return opts.direct ? createTailnetNet(this.socketHost, opts) : this.net;
  }

  /** An http.Agent over the tailnet (keep-alive by default); closed with the node. */
  httpAgent(opts: http.AgentOptions & TailnetNetOptions = {}): http.Agent {
    const { direct, ...options } = opts;
    return this.owned(new TailnetHttpAgent(this.createNet({ direct }), options));
  }

  /** An https.Agent over the tailnet: node's TLS (SNI, `ca`, host name checks) on tailnet sockets. */
  httpsAgent(opts: https.AgentOptions & TailnetNetOptions = {}): https.Agent {
    const { direct, ...options } = opts;
    return this.owned(new TailnetHttpsAgent(this.createNet({ direct }), options));
  }

  /** An undici Dispatcher over the tailnet, for `fetch(url, { dispatcher })`; closed with the node. */
  dispatcher(opts: TailnetDispatcherOptions & TailnetNetOptions = {}): Dispatcher {
    const { direct, ...options } = opts;
    const d = createTailnetDispatcher(this.createNet({ direct }), options);
    this.closers.add(() => d.destroy());
    return d;
  }

  private owned<A extends http.Agent>(agent: A): A {
    this.closers.add(() => agent.destroy());
    return agent;
  }

  /**
   * Listens on tailnet `port` and resolves once listening. With `server` (node:http, https,
   * http2, a ws-enabled http server, any net.Server), each connection is handed to it with
   * `server.emit('connection', socket)`: TLS terminates in-process. Closed with the node.
   * While the tailnet listens for it, the server's `listening` is true.
   */
  async listen(
    port: number,
    server?: { emit(event: 'connection', socket: TcpSocket): unknown },
  ): Promise<TcpServer> {
    if (server) assertCanHandOff(server);
    const listener = this.net.createServer(server ? (s) => server.emit('connection', s) : undefined);
    if (server) reportListening(server, listener);
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    return listener;
  }

  /** A listener of ours: closing the node closes it and whatever connections it accepted. */
  private track(server: TcpServer): void {
    this.closers.add(() => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    });
  }

  /** A dgram.Socket-like UDP socket bound to `port` of our tailnet addresses. */
  async listenPacket(port: number): Promise<UdpSocket> {
    if (!this.udp) throw new Error('tailnet node is not up: call up() first');
    const sock = this.udp.createSocket();
    await new Promise<void>((resolve) => sock.bind(port, () => resolve()));
    this.closers.add(() => void sock.close());
    return sock;
  }

  /** WHATWG fetch over the tailnet (fetch.ts: undici on Node and Deno, our HTTP/1.1 client elsewhere). */
  fetch(url: string | URL, init?: RequestInit): Promise<Response> {
    return this.fetcher.fetch(url, init);
  }

  /** Carries tailnet TCP connections to `port` to `127.0.0.1:localPort` (tailscale serve --tcp). */
  async serveLocal(port: number, localPort: number): Promise<TcpServer> {
    const server = await this.listen(port);
    server.on('connection', (s: TcpSocket) => relayToLocal(s, port, localPort, this.log));
    return server;
  }

  /**
   * Carries connections to `127.0.0.1:localPort` to `host:port` on the tailnet: for programs
   * outside this process. A library in it takes a tailnet socket directly ({@link net}), with no
   * kernel hop and no door into the tailnet for other local users.
   */
  async forward(localPort: number, host: string, port: number): Promise<net.Server> {
    this.resolve(host); // fail now on an unknown name
    const fwd = await listenForward(localPort, `${host}:${port}`, () => this.dial(host, port), this.log);
    this.closers.add(fwd.close);
    return fwd.server;
  }

  /**
   * A loopback HTTP proxy (absolute-URI and CONNECT) that carries tailnet hosts over the
   * tailnet and everything else directly, with random Basic credentials.
   */
  async httpProxy(opts: { port?: number } = {}): Promise<HttpProxy> {
    const proxy = await startHttpProxy({
      port: opts.port,
      isTailnetHost: (h) => this.isTailnetHost(h),
      dial: (h, p) => this.dial(h, p),
      logger: this.log,
    });
    this.closers.add(() => proxy.close());
    return proxy;
  }

  /**
   * A SOCKS5 proxy (RFC 1928 CONNECT, RFC 1929 credentials random per call) on `host`
   * (default 127.0.0.1) that dials tailnet hosts over the tailnet and refuses other
   * destinations, unless `direct` sends them through the OS as tailscaled does (see
   * {@link Socks5Server}). Closed with the node.
   */
  async socks5(opts: { port?: number; host?: string; direct?: boolean } = {}): Promise<Socks5Server> {
    this.requireTcp();
    const server = await Socks5Server.listen({
      ...opts,
      classify: (h) => this.routing.classify(h),
      dial: (h, p) => this.dial(h, p),
      logger: this.log,
    });
    this.closers.add(() => server.close());
    return server;
  }

  /**
   * Who is at a tailnet address, as Tailscale's WhoIs: given the address, or what a server
   * hands its handler (a socket, an http/https/http2 request, a TLS socket over a tailnet one).
   */
  whois(addressOrSocket: string | RemoteLike): WhoIs | undefined {
    const addr = typeof addressOrSocket === 'string' ? addressOrSocket : remoteAddressOf(addressOrSocket);
    return this.netmap && addr ? whoisIn(this.netmap, addr) : undefined;
  }

  private requireTcp(): TcpEndpoint {
    if (!this.tcp) throw new Error('tailnet node is not up: call up() first');
    return this.tcp;
  }

  /** The netmap's peers, as status reports them. */
  peers(): PeerStatus[] {
    return this.status().peers;
  }

  status(): TailnetStatus {
    return statusOf(this.internals());
  }

  /** The node's status in `tailscale status --json`'s shape (ipnstate.Status; status-json.ts). */
  tailscaleStatus(): IpnStatus {
    return buildIpnStatus(this.internals());
  }

  /** A netcheck (netcheck/): UDP, public endpoints, NAT mapping, latency to each DERP region. */
  netcheck(): Promise<NetcheckReport> {
    this.requireNetmap();
    return runNetcheck(this.derpMap!, { currentHome: this.magicsock?.homeRegion });
  }

  /** The DERP map control gave, once up. */
  get derpMap(): DerpMap | undefined {
    return this.netmap?.derpMap as DerpMap | undefined;
  }

  /** The node's metrics, as objects and as Prometheus text (metrics/; names in docs/operations-tools.md). */
  metrics(): NodeMetrics {
    return nodeMetrics(this.internals());
  }

  private internals(): NodeInternals {
    const { control, magicsock, device, stack, tcp, filter, tsmp, netmap, closed, authURL, opts, routing } =
      this;
    return { control, magicsock, device, stack, tcp, filter, tsmp, netmap, closed, authURL, opts, routing };
  }

  private requireNetmap(): NetMap {
    if (!this.netmap) throw new Error('tailnet node is not up: call up() first');
    return this.netmap;
  }

  /** Logs the node out of the tailnet (its key expires; ephemeral nodes are deleted) and closes it. */
  async logout(): Promise<void> {
    await this.control?.logout();
    await this.close();
  }

  /** Stops everything; afterwards nothing keeps the process alive. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Reset every tailnet connection first: listeners and forwarders then close at once
    // instead of waiting for keep-alive clients.
    await this.fetcher.close();
    this.tcp?.close();
    this.udp?.close();
    this.tsmp?.close();
    this.routing.close();
    for (const c of this.closers) await c();
    this.stack?.close();
    await this.control?.close();
    await this.device?.close();
    await this.magicsock?.close();
    this.emit('close');
  }
}
