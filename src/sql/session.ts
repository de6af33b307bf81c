// The SQL thread's view of one node: starts the worker on first use, relays the functions'
// calls to it, and keeps DuckDB's proxy settings (and ALL_PROXY, for loopback_proxy) in step:
// pointed at the node's proxies while it is up or logging in, the user's own otherwise. The
// worker also runs quackscale_serve's coordinator: it lives while a node is up or a
// coordinator runs, and serves the coordinator's SQL while this thread waits for it.
import { MessageChannel } from 'node:worker_threads';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BlockingSql } from './blocking-sql.js';
import { type BridgeExtras, NodeBridge, NodeTimeoutError } from './bridge.js';
import type { CoordinatorRequest } from './coordinator/protocol.js';
import { SqlService } from './coordinator/sql-service.js';
import {
  IDLE_STATE,
  type LoginRequest,
  NOT_UP,
  type NodeState,
  type PeerRow,
  type Reply,
  type Request,
  type UpRequest,
} from './protocol.js';
import { type ProxySettings, restoreProxySettings, swapProxySettings } from './settings.js';

export interface NodeSessionOptions {
  /** The compiled worker module. */
  workerUrl: URL;
  /** A second connection to the same database, for changing settings; none disables http_route. */
  settings: BlockingSql | undefined;
  /** Bound on waiting for `tailscale_up`. */
  upTimeoutMs: number;
  /** Bound on every other wait (status, down, settings). */
  timeoutMs: number;
  /** How long `tailscale_login` waits for the login URL before answering `starting`. */
  loginWaitMs: number;
  /** Two more connections of the database, for the coordinator's tables; none: no coordinator. */
  coordinatorSql: { read: BlockingSql; write: DuckDBConnection } | undefined;
}

/** The environment variables loopback_proxy sets, as the original's libtailscale proxy did. */
const PROXY_ENV = ['ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'] as const;

/** The loopback SOCKS5 proxy as tailscale_proxy_status reports it. */
export interface SocksStatus {
  enabled: boolean;
  active: boolean;
  listenAddr: string | null;
  /** The ALL_PROXY URL with the password replaced by `***`. */
  proxyUrl: string | null;
}

/** The state in a reply, or its error as an exception (caught and reported by the bind). */
export function unwrap(reply: Reply): NodeState {
  if (!reply.ok) throw new Error(reply.error);
  return reply.state;
}

export class NodeSession {
  private bridge: NodeBridge | undefined;
  /** The user's proxy settings while ours are installed. */
  private saved: ProxySettings | undefined;
  /** The user's ALL_PROXY/NO_PROXY while ours are exported (undefined: were unset). */
  private savedEnv: Map<string, string | undefined> | undefined;
  private socks: SocksStatus = { enabled: false, active: false, listenAddr: null, proxyUrl: null };
  /** Whether the worker runs a coordinator (it then outlives tailscale_down). */
  private coordinating = false;

  constructor(private readonly opts: NodeSessionOptions) {}

  /** The worker, started (with the coordinator's SQL port) if it is not running. */
  private worker(): NodeBridge {
    if (this.bridge) return this.bridge;
    const extras: BridgeExtras = {};
    const sql = this.opts.coordinatorSql;
    if (sql) {
      const { port1, port2 } = new MessageChannel();
      const service = new SqlService(port1, sql.read, sql.write, this.opts.timeoutMs);
      extras.sqlPort = port2;
      extras.pump = () => service.pump();
    }
    this.bridge = new NodeBridge(this.opts.workerUrl, extras);
    return this.bridge;
  }

  /** Ends the worker (and whatever runs in it). */
  private stopWorker(): void {
    this.bridge?.stop();
    this.bridge = undefined;
    this.coordinating = false;
  }

  /** Sends a request, starting the worker if needed; a timed-out start ends the worker. */
  private start(body: Request, timeoutMs: number): Extract<Reply, { ok: true }> {
    const routed =
      body.op === 'serve'
        ? body.join?.httpRoute
        : (body.op === 'up' || body.op === 'login') && body.httpRoute;
    if (routed && !this.opts.settings) {
      throw new Error(
        'http_route needs the DuckDB instance: installQuackscale(connection, { instance }), or http_route => false',
      );
    }
    const bridge = this.worker();
    let reply: Reply;
    try {
      reply = bridge.call(body, timeoutMs);
    } catch (err) {
      // The worker may still be logging in (control retries unreachable servers): end it, so
      // a node that comes up later cannot linger unseen, and the next up starts afresh.
      if (err instanceof NodeTimeoutError) this.stopWorker();
      throw err;
    }
    if (!reply.ok) throw new Error(reply.error);
    this.coordinating = reply.coordinator?.running ?? this.coordinating;
    bridge.keepAlive(true);
    try {
      this.install(reply);
    } catch (err) {
      // A node whose routing is not installed would fail the user's next read in a way that
      // is hard to trace: report the failure and take the node down instead.
      this.down();
      throw err;
    }
    return reply;
  }

  /** Points DuckDB's proxy settings and ALL_PROXY at the worker's proxies (once each). */
  private install(reply: Extract<Reply, { ok: true }>): void {
    if (reply.proxy && this.opts.settings && !this.saved) {
      const p = reply.proxy;
      this.saved = swapProxySettings(
        this.opts.settings,
        {
          http_proxy: `${p.host}:${p.port}`,
          http_proxy_username: p.username,
          http_proxy_password: p.password,
        },
        this.opts.timeoutMs,
      );
    }
    if (reply.socks && !this.savedEnv) {
      const s = reply.socks;
      this.savedEnv = new Map(PROXY_ENV.map((k) => [k, process.env[k]]));
      const url = `socks5h://${encodeURIComponent(s.username)}:${encodeURIComponent(s.password)}@${s.host}:${s.port}`;
      const prevNoProxy = process.env.NO_PROXY ?? process.env.no_proxy;
      const noProxy = `${prevNoProxy ? `${prevNoProxy},` : ''}localhost,127.0.0.1,::1`;
      Object.assign(process.env, { ALL_PROXY: url, all_proxy: url, NO_PROXY: noProxy, no_proxy: noProxy });
      this.socks = {
        enabled: true,
        active: true,
        listenAddr: `${s.host}:${s.port}`,
        proxyUrl: `socks5h://${encodeURIComponent(s.username)}:***@${s.host}:${s.port}`,
      };
    }
  }

  up(req: Omit<UpRequest, 'op'>): NodeState {
    return this.start({ op: 'up', ...req }, this.opts.upTimeoutMs).state;
  }

  /** Starts an interactive login; answers within about loginWaitMs. */
  login(req: Omit<LoginRequest, 'op' | 'waitMs'>): NodeState {
    const waitMs = this.opts.loginWaitMs;
    return this.start({ op: 'login', waitMs, ...req }, waitMs + this.opts.timeoutMs).state;
  }

  status(): NodeState {
    return this.bridge ? unwrap(this.bridge.call({ op: 'status' }, this.opts.timeoutMs)) : IDLE_STATE;
  }

  proxyStatus(): SocksStatus {
    return this.socks;
  }

  /** A call that needs the node: `call tailscale_up() first` before any. */
  private call(body: Request, timeoutMs = this.opts.timeoutMs): Extract<Reply, { ok: true }> {
    if (!this.bridge) throw new Error(NOT_UP);
    const reply = this.bridge.call(body, timeoutMs);
    if (!reply.ok) throw new Error(reply.error);
    return reply;
  }

  peers(): PeerRow[] {
    return this.bridge ? (this.call({ op: 'peers' }).peers ?? []) : [];
  }

  serveLocal(port: number, localPort: number): void {
    this.call({ op: 'serveLocal', port, localPort });
  }

  ping(host: string, port: number, timeoutMs: number): void {
    this.call({ op: 'ping', host, port, timeoutMs }, timeoutMs + this.opts.timeoutMs);
  }

  /**
   * Starts the loopback SOCKS5 proxy (as `loopback_proxy => true` does at up) and exports it
   * through ALL_PROXY; reports it as tailscale_proxy_status does.
   */
  quackProxy(): SocksStatus {
    const reply = this.call({ op: 'socks' });
    this.install(reply);
    return this.socks;
  }

  /** Returns the loopback port the forwarder listens on (the OS's choice for 0). */
  forward(host: string, port: number, localPort: number): number {
    const reply = this.call({ op: 'forward', host, port, localPort });
    return reply.localPort ?? localPort;
  }

  /**
   * quackscale_serve: starts the coordinator in the worker (and joins it unless `join` is
   * undefined), with the node's routing installed as tailscale_up's.
   */
  serve(body: Extract<Request, { op: 'serve' }>): Extract<Reply, { ok: true }> {
    return this.start(body, this.opts.upTimeoutMs + this.opts.timeoutMs);
  }

  /**
   * One of the coordinator's companions; `idle` answers it when no worker runs (so no
   * coordinator either). The worker ends when the coordinator stops and no node is up.
   */
  coordinator(
    body: CoordinatorRequest,
    idle: () => Extract<Reply, { ok: true }>,
  ): Extract<Reply, { ok: true }> {
    const bridge = this.bridge;
    if (!bridge) return idle();
    const reply = bridge.call(body, this.opts.timeoutMs);
    if (!reply.ok) throw new Error(reply.error);
    this.coordinating = reply.coordinator?.running ?? this.coordinating;
    if (!this.coordinating && !reply.state.running && reply.state.login.status === 'idle') this.stopWorker();
    return reply;
  }

  /** Restores the user's proxy settings and environment, closes the node and ends the worker. */
  down(): void {
    if (this.savedEnv) {
      for (const [k, v] of this.savedEnv) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      this.savedEnv = undefined;
      this.socks = { enabled: false, active: false, listenAddr: null, proxyUrl: null };
    }
    if (this.saved && this.opts.settings) {
      restoreProxySettings(this.opts.settings, this.saved, this.opts.timeoutMs);
      this.saved = undefined;
    }
    const bridge = this.bridge;
    if (!bridge) return;
    // A coordinator outlives its own node: tailscale_down closes the node only.
    if (this.coordinating) {
      unwrap(bridge.call({ op: 'down' }, this.opts.timeoutMs));
      return;
    }
    this.bridge = undefined;
    try {
      unwrap(bridge.call({ op: 'down' }, this.opts.timeoutMs));
    } finally {
      bridge.stop();
    }
  }
}
