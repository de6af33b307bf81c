/**
 * ControlServer: a small ts2021 control server that real Tailscale clients accept. Outside
 * Noise it serves `GET /key?v=N` and the `/ts2021` upgrade (Headscale's hscontrol/app.go
 * router); inside, one HTTP/2 server per Noise connection answers /machine/register and
 * /machine/map. State lives in a directory and survives restarts; nodes get 100.64.0.0/10 and
 * fd7a:115c:a1e0::/48 addresses and MagicDNS names under a base domain; streams get deltas on
 * every change; ephemeral nodes are deleted after they have been gone for a while. Nodes join
 * with an auth key or interactively: an AuthURL an admin approves (interactive.ts,
 * register-page.ts, admin.ts).
 */
import * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { ConnectionGuard, resolveLimits } from '../../guard/guard.js';
import { guardAccepts, guardRequests, httpOptions } from '../../guard/http.js';
import { decodeMapRequest, decodeRegisterRequest } from '../decode.js';
import { UPGRADE_HEADER_VALUE } from '../dial.js';
import { ProtocolError } from '../errors.js';
import { type ControlLogger, silentLogger } from '../logger.js';
import type { DERPMap, MapRequest } from '../tailcfg.js';
import { MIN_CAPABILITY_VERSION } from '../version.js';
import { AdminCredential, localAdminURL } from './admin.js';
import { AuthKeyStore, type NewAuthKeyOptions } from './authkeys.js';
import { handleRegister } from './handlers.js';
import {
  type ApprovedNode,
  type ApproveOptions,
  InteractiveLogins,
  type PendingView,
} from './interactive.js';
import type { MapperConfig } from './mapper.js';
import {
  answerError,
  BodyTooLargeError,
  type NoiseHttpLimits,
  readBody,
  resolveNoiseLimits,
  serveNoiseHttp,
} from './noise-http.js';
import { CONTROL_REASONS, type ControlServerOptions } from './options.js';
import { PendingRegistrationError, PendingRegistrations } from './pending.js';
import { PING_RESPONSE_PATH, type PingAnswer, PingNodeError, PingTracker } from './ping.js';
import { servePlainHTTP } from './plain-http.js';
import { type AclPolicy, compileFilter, type PolicyNode, validatePolicy } from './policy.js';
import { serveRegisterHTTP } from './register-page.js';
import { Registry } from './registry.js';
import { type NodeRoutes, parseApprovedRoutes, RouteElection } from './routes.js';
import { serveRoutesHTTP, UnknownNodeError } from './routes-http.js';
import { MapSession } from './session.js';
import type { AuthKeyBackend } from './state-store.js';
import { type NodeRecord, ServerStore } from './store.js';
import { type AcceptedNoise, routeUpgrade } from './upgrade.js';

export type { ControlServerOptions } from './options.js';

/** The embedded control server. */
export class ControlServer {
  readonly registry: Registry;
  readonly authKeys: AuthKeyBackend;
  /** Interactive logins: pending ones, approve and reject. */
  readonly logins: InteractiveLogins;
  /** Admission, deadlines and shed counters of every TCP connection (also on `/metrics` from this host). */
  readonly guard: ConnectionGuard;
  readonly #noiseLimits: NoiseHttpLimits;
  readonly #admin: AdminCredential;
  readonly #opts: ControlServerOptions;
  readonly #log: ControlLogger;
  readonly #http: http.Server;
  /** ts2021 over WebSocket; compression off, as Tailscale's (Noise records do not compress). */
  readonly #wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 1 << 20,
    handleProtocols: (offered) => (offered.has(UPGRADE_HEADER_VALUE) ? UPGRADE_HEADER_VALUE : false),
  });
  readonly #sessions = new Set<MapSession>();
  readonly #conns = new Set<AcceptedNoise>();
  /** Requests being handled: close() waits for them, so no state write outlives the server. */
  readonly #inflight = new Set<Promise<void>>();
  readonly #ephemeralTimers = new Map<number, NodeJS.Timeout>();
  readonly #pings = new PingTracker();
  readonly #routes: RouteElection;
  #policy: AclPolicy | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #pending = false;
  readonly baseDomain: string;
  readonly #minVersion: number;
  derpMap: DERPMap;

  private constructor(opts: ControlServerOptions, registry: Registry, admin: AdminCredential) {
    this.#opts = opts;
    this.#admin = admin;
    this.#log = opts.logger ?? silentLogger;
    this.registry = registry;
    this.authKeys = opts.authKeys ?? new AuthKeyStore(opts.stateDir);
    this.baseDomain = opts.baseDomain ?? 'tailnet.internal';
    this.#minVersion = opts.minCapVersion ?? MIN_CAPABILITY_VERSION;
    this.derpMap = opts.derpMap ?? { Regions: {} };
    if (opts.policy) validatePolicy(opts.policy);
    this.#policy = opts.policy;
    this.#routes = new RouteElection((msg) => this.#log.info(msg));
    registry.onChange = () => this.#schedule();
    this.logins = new InteractiveLogins({
      registry,
      pending: new PendingRegistrations({ max: opts.maxPending, ttlMs: opts.pendingTtlMs }),
      authURL: (id) => `${(opts.serverURL ?? this.url).replace(/\/+$/, '')}/register/${id}`,
      followupWaitMs: opts.followupWaitMs ?? 60_000,
      log: this.#log,
    });
    this.guard = new ConnectionGuard(resolveLimits(opts.limits), {
      name: 'control',
      reasons: CONTROL_REASONS,
      log: this.#log,
    });
    this.#noiseLimits = resolveNoiseLimits(opts.noiseLimits);
    this.#http = http.createServer(httpOptions(this.guard.limits), (req, res) => {
      this.#plainHTTP(req, res).catch((err: unknown) => {
        this.#log.warn(`${req.method} ${req.url?.split('?')[0]}: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    guardAccepts(this.#http, this.guard, (err) => this.#log.warn(`accept: ${err.message}`));
    guardRequests(this.#http, this.guard);
    this.#http.on('upgrade', (req, socket: Socket, head) =>
      routeUpgrade(req, socket, head, {
        guard: this.guard,
        wss: this.#wss,
        noiseKey: registry.noiseKey,
        minVersion: this.#minVersion,
        serve: (accepted) => this.#serve(accepted, socket),
      }),
    );
  }

  /** Loads (or initialises) the state directory. */
  static async create(opts: ControlServerOptions): Promise<ControlServer> {
    const store = opts.store ?? new ServerStore(opts.stateDir);
    const { data, noiseKey } = await store.load();
    const registry = new Registry(data, store, noiseKey, opts.nodeKeyTtlMs ?? 180 * 24 * 3600_000);
    return new ControlServer(opts, registry, await AdminCredential.load(opts.stateDir));
  }

  /** Starts listening; resolves with the URL clients should use. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(port, host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    let lastSweep = Date.now();
    this.#sweep = setInterval(() => {
      // Only a key expiring since the last sweep changes what streams should see.
      const now = Date.now();
      const crossed = this.registry.nodes.some((n) => {
        const t = n.keyExpiry === null ? Number.NaN : Date.parse(n.keyExpiry);
        return t > lastSweep && t <= now;
      });
      lastSweep = now;
      if (crossed) this.#schedule();
      this.logins.opts.pending.prune();
    }, this.#opts.sweepMs ?? 5_000);
    this.#sweep.unref();
    for (const n of this.registry.nodes) if (n.ephemeral) this.#scheduleEphemeralGC(n.id);
    const a = this.#http.address() as AddressInfo;
    await this.#admin.publish(localAdminURL(a.address, a.port));
    if (Object.keys(this.derpMap.Regions).length === 0) {
      // ipnlocal only reaches Running with a live DERP connection or a live peer (local.go).
      this.#log.warn('no DERP regions configured: tailscaled nodes will stay in "Starting"');
    }
    return this.url;
  }

  get url(): string {
    const a = this.#http.address() as AddressInfo | null;
    if (!a) throw new Error('control server is not listening');
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Mints an auth key (see AuthKeyBackend). */
  async createAuthKey(opts: NewAuthKeyOptions = {}): Promise<string> {
    return (await this.authKeys.create(opts)).key;
  }

  /** Where the admin credential (token and admin URL; see admin.ts) is kept. */
  get adminFile(): string {
    return this.#admin.path;
  }

  /**
   * Approves a pending interactive login, given its AuthURL or id: the node is registered
   * (for `opts.user`, with `opts.tags`) and its waiting client let in. Throws
   * PendingRegistrationError (`not-found`, `rejected`, `bad-request`).
   */
  approve(idOrAuthURL: string, opts: ApproveOptions = {}): Promise<ApprovedNode> {
    return this.logins.approve(idOrAuthURL, opts);
  }

  /** Rejects a pending interactive login; its client is told so. */
  reject(idOrAuthURL: string): void {
    this.logins.reject(idOrAuthURL);
  }

  /** The interactive logins waiting for an admin. */
  pendingLogins(): PendingView[] {
    return this.logins.list();
  }

  /** Replaces the ACL policy; every stream gets the new packet filter. */
  setPolicy(policy: AclPolicy | undefined): void {
    if (policy) validatePolicy(policy);
    this.#policy = policy;
    this.#schedule();
  }

  /** Every node that announces or has approved routes, with what it serves and is primary for. */
  routes(): NodeRoutes[] {
    this.#electRoutes();
    return this.#routes.list();
  }

  /**
   * Replaces the routes an admin approved for a node (by id or name), as `headscale nodes
   * approve-routes` does; throws RouteApprovalError naming a bad route, UnknownNodeError.
   */
  async approveRoutes(node: string | number, routes: readonly string[]): Promise<NodeRoutes> {
    const n =
      typeof node === 'number' || /^\d+$/.test(node)
        ? this.registry.byId(Number(node))
        : this.registry.nodes.find((x) => x.givenName === node.toLowerCase());
    if (!n) throw new UnknownNodeError(`no node '${node}'`);
    await this.registry.setApprovedRoutes(n, parseApprovedRoutes(routes));
    this.#electRoutes();
    return this.#routes.view(n);
  }

  isOnline(id: number): boolean {
    for (const s of this.#sessions) if (s.nodeId === id && !s.closed) return true;
    return false;
  }

  /**
   * Sends the node a PingRequest (answered over Noise) and resolves with its answer, or undefined
   * after `timeoutMs` (default 10 s). `types`: none (a HEAD: the node is alive), `c2n` (with
   * `payload`, an HTTP request), or PingTypes such as `disco,TSMP` (with `ip`, a peer's address).
   */
  async pingNode(
    id: number,
    opts: { types?: string; ip?: string; payload?: Uint8Array; timeoutMs?: number } = {},
  ): Promise<PingAnswer | undefined> {
    const live = [...this.#sessions].filter((s) => s.nodeId === id && !s.closed);
    if (live.length === 0) throw new PingNodeError(`node ${id} has no map stream open`);
    return this.#pings.send(live, new URL(this.#opts.serverURL ?? this.url).host, opts);
  }

  /** Expires a node's key now (an admin action, like `headscale nodes expire`). */
  async expireNode(id: number): Promise<void> {
    const n = this.registry.byId(id);
    if (n) await this.registry.expire(n);
  }

  async deleteNode(id: number): Promise<void> {
    const n = this.registry.byId(id);
    if (!n) return;
    for (const s of this.#sessions) if (s.nodeId === id) s.close();
    await this.registry.delete(n);
  }

  #mapperConfig(): MapperConfig {
    return {
      baseDomain: this.baseDomain,
      derpMap: this.derpMap,
      isOnline: (id) => this.isOnline(id),
      isExpired: (n) => this.registry.isExpired(n),
      userProfile: (id) => this.registry.userProfile(id),
      routesOf: (id) => this.#routes.routesOf(id),
    };
  }

  /** Re-elects primary routes; the routes and filters of the maps built next follow the result. */
  #electRoutes(): void {
    this.#routes.update(
      this.registry.nodes,
      this.#policy?.autoApprovers,
      (n) => this.registry.userProfile(n.userId).LoginName,
      (n) => this.isOnline(n.id) && !this.registry.isExpired(n),
    );
  }

  #policyNodes(): PolicyNode[] {
    this.#electRoutes();
    return this.registry.nodes.map((n) => ({
      name: n.givenName,
      tags: n.tags,
      addresses: [n.ipv4, n.ipv6],
      routes: this.#routes.servingOf(n.id),
    }));
  }

  /** Coalesces changes: one round of deltas per event-loop turn. */
  #schedule(): void {
    if (this.#pending) return;
    this.#pending = true;
    setImmediate(() => {
      this.#pending = false;
      this.#broadcast();
    });
  }

  #broadcast(): void {
    const cfg = this.#mapperConfig();
    const all = this.#policyNodes();
    for (const s of this.#sessions) this.#send(s, cfg, all);
  }

  #send(s: MapSession, cfg: MapperConfig, all: PolicyNode[]): void {
    const self = this.registry.byId(s.nodeId);
    if (!self) {
      s.close();
      return;
    }
    const me = all.find((p) => p.addresses[0] === self.ipv4)!;
    const peers = this.registry.nodes.filter((n) => n.id !== self.id);
    s.update(self, peers, compileFilter(this.#policy, all, me), cfg);
  }

  async #plainHTTP(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (await serveRegisterHTTP(req, res, this.logins, this.#admin)) return;
    if (await serveRoutesHTTP(req, res, this, this.#admin)) return;
    servePlainHTTP(req, res, {
      noiseKey: this.registry.noiseKey.publicKey.toString(),
      metrics: () =>
        `${this.guard.toPrometheus('control')}# HELP control_map_sessions Streaming map requests open.\n` +
        `# TYPE control_map_sessions gauge\ncontrol_map_sessions ${[...this.#sessions].filter((s) => !s.closed).length}\n`,
    });
  }

  /** Runs HTTP/2 over an accepted Noise connection (on TCP `socket`) and routes its requests. */
  #serve(accepted: AcceptedNoise, socket: Socket): void {
    this.#conns.add(accepted);
    accepted.conn.on('close', () => this.#conns.delete(accepted));
    accepted.conn.on('error', (err) => this.#log.debug(`noise connection: ${err.message}`));
    const ctx = { socket, guard: this.guard, limits: this.#noiseLimits, log: this.#log };
    serveNoiseHttp(accepted.conn, ctx, (stream, headers) => {
      const done = this.#route(stream, headers, accepted)
        .catch((err: unknown) => {
          const tooLarge = err instanceof BodyTooLargeError;
          if (tooLarge) this.guard.count('body_too_large', socket.remoteAddress);
          else this.#log.warn(`${headers[':path']}: ${(err as Error).message}`);
          answerError(
            stream,
            tooLarge ? 413 : err instanceof ProtocolError ? 400 : 500,
            (err as Error).message,
          );
        })
        .finally(() => this.#inflight.delete(done));
      this.#inflight.add(done);
    });
  }

  async #route(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    peer: AcceptedNoise,
  ): Promise<void> {
    stream.on('error', (err) => this.#log.debug(`h2 stream: ${err.message}`));
    const path = headers[':path'];
    if (path?.startsWith(`${PING_RESPONSE_PATH}?`)) return this.#pings.serve(stream, headers);
    if (headers[':method'] !== 'POST' || (path !== '/machine/register' && path !== '/machine/map')) {
      stream.respond({ ':status': path?.startsWith('/machine/') ? 501 : 404 });
      stream.end('Not implemented\n');
      return;
    }
    const body = await readBody(stream, headers, this.#noiseLimits.maxBodyBytes);
    const reply = (
      status: number,
      text: string,
      type = 'text/plain',
      extra: http2.OutgoingHttpHeaders = {},
    ): void => {
      if (stream.destroyed || stream.closed) return; // the client left (e.g. during a held Followup)
      // An empty end('') leaves the client's stream open in Node 20; end with the headers instead.
      stream.respond({ ':status': status, 'content-type': type, ...extra }, { endStream: text === '' });
      if (text !== '') stream.end(text);
    };
    if (path === '/machine/register') {
      const req = decodeRegisterRequest(body);
      if (req.Version < this.#minVersion) return reply(400, `unsupported client version ${req.Version}\n`);
      const gone = new AbortController();
      stream.once('close', () => gone.abort());
      try {
        const resp = await handleRegister(req, peer.machineKey, {
          registry: this.registry,
          authKeys: this.authKeys,
          interactive: this.logins,
          signal: gone.signal,
        });
        return reply(200, `${JSON.stringify(resp)}\n`, 'application/json; charset=utf-8');
      } catch (err) {
        // Tailscale's client waits out Retry-After on a 429 (controlclient/direct.go); ours reports it.
        if (err instanceof PendingRegistrationError && err.code === 'too-many') {
          this.#log.warn(err.message);
          return reply(429, `${err.message}\n`, 'text/plain', { 'retry-after': '60' });
        }
        throw err;
      }
    }
    const req = decodeMapRequest(body);
    if (req.Version < this.#minVersion) return reply(400, `unsupported client version ${req.Version}\n`);
    const node = this.registry.byNodeKey(req.NodeKey);
    if (!node || node.machineKey !== peer.machineKey.toString()) return reply(404, 'node not found\n');
    await this.#applyMapRequest(node, req);
    if (!req.Stream) {
      if (req.OmitPeers) return reply(200, '');
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      const s = new MapSession(node.id, stream, req.Compress === 'zstd', 3_600_000);
      this.#send(s, this.#mapperConfig(), this.#policyNodes());
      s.close();
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    const session = new MapSession(
      node.id,
      stream,
      req.Compress === 'zstd',
      this.#opts.keepAliveMs ?? 50_000,
    );
    const timer = this.#ephemeralTimers.get(node.id);
    if (timer) clearTimeout(timer);
    this.#ephemeralTimers.delete(node.id);
    this.#boundSessions(node.id);
    this.#sessions.add(session);
    stream.on('close', () => this.#sessionClosed(session));
    this.#send(session, this.#mapperConfig(), this.#policyNodes());
    this.#schedule();
  }

  /**
   * Makes room for one more map stream of node `id`: beyond the bound, its oldest streams end
   * (a reconnecting node's new stream always gets in; Headscale keeps every stream of a node).
   */
  #boundSessions(id: number): void {
    const max = this.#opts.maxMapSessionsPerNode ?? 4;
    const mine = [...this.#sessions].filter((s) => s.nodeId === id && !s.closed);
    for (const s of mine.slice(0, Math.max(0, mine.length - max + 1))) {
      this.guard.count('map_sessions_per_node');
      this.#log.info(`node ${id}: closing its oldest map stream (more than ${max} open)`);
      s.close();
    }
  }

  async #applyMapRequest(node: NodeRecord, req: MapRequest): Promise<void> {
    await this.registry.update(node, {
      discoKey: req.DiscoKey && !req.DiscoKey.endsWith('0'.repeat(64)) ? req.DiscoKey : undefined,
      endpoints: req.Endpoints ?? undefined,
      hostinfo: req.Hostinfo,
      capVersion: req.Version,
    });
  }

  #sessionClosed(s: MapSession): void {
    if (!this.#sessions.delete(s)) return;
    const node = this.registry.byId(s.nodeId);
    if (!node || this.isOnline(node.id)) return;
    this.registry.update(node, { lastSeen: new Date().toISOString() }).catch((err: unknown) => {
      this.#log.warn(`saving last-seen of node ${node.id}: ${(err as Error).message}`);
    });
    if (node.ephemeral) this.#scheduleEphemeralGC(node.id);
  }

  #scheduleEphemeralGC(id: number): void {
    const timer = setTimeout(() => {
      this.#ephemeralTimers.delete(id);
      const n = this.registry.byId(id);
      if (!n || this.isOnline(id)) return;
      this.#log.info(`deleting ephemeral node ${n.givenName} (${id}): gone for too long`);
      this.registry
        .delete(n)
        .catch((err: unknown) => this.#log.warn(`deleting node ${id}: ${(err as Error).message}`));
    }, this.#opts.ephemeralTimeoutMs ?? 30_000);
    timer.unref();
    this.#ephemeralTimers.set(id, timer);
  }

  /** Stops listening, ends every stream and connection. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#pings.close();
    this.logins.opts.pending.clear();
    for (const t of this.#ephemeralTimers.values()) clearTimeout(t);
    for (const s of this.#sessions) s.close();
    this.#sessions.clear();
    for (const c of this.#conns) c.conn.destroy();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    await Promise.all(this.#inflight);
    await this.registry.flush();
  }
}
