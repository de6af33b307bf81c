// The SQL thread's view of one node: starts the worker on first use, relays the functions'
// calls to it, and keeps DuckDB's proxy settings (and ALL_PROXY, for loopback_proxy) in step:
// pointed at the node's proxies while it is up or logging in, the user's own otherwise.

import type { BlockingSql } from './blocking-sql.js';
import { NodeBridge, NodeTimeoutError } from './bridge.js';
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

  constructor(private readonly opts: NodeSessionOptions) {}

  /** Sends a request, starting the worker if needed; a timed-out start ends the worker. */
  private start(body: Request, timeoutMs: number): Extract<Reply, { ok: true }> {
    if ((body.op === 'up' || body.op === 'login') && body.httpRoute && !this.opts.settings) {
      throw new Error(
        'http_route needs the DuckDB instance: installQuackscale(connection, { instance }), or http_route => false',
      );
    }
    this.bridge ??= new NodeBridge(this.opts.workerUrl);
    const bridge = this.bridge;
    let reply: Reply;
    try {
      reply = bridge.call(body, timeoutMs);
    } catch (err) {
      // The worker may still be logging in (control retries unreachable servers): end it, so
      // a node that comes up later cannot linger unseen, and the next up starts afresh.
      if (err instanceof NodeTimeoutError) {
        bridge.stop();
        this.bridge = undefined;
      }
      throw err;
    }
    if (!reply.ok) throw new Error(reply.error);
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

  /** Returns the loopback port the forwarder listens on (the OS's choice for 0). */
  forward(host: string, port: number, localPort: number): number {
    const reply = this.call({ op: 'forward', host, port, localPort });
    return reply.localPort ?? localPort;
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
    this.bridge = undefined;
    try {
      unwrap(bridge.call({ op: 'down' }, this.opts.timeoutMs));
    } finally {
      bridge.stop();
    }
  }
}
