// The SQL thread's view of one node: starts the worker on first use, relays lifecycle calls to
// it, and keeps DuckDB's proxy settings in step (pointed at the node's proxy while it is up with
// http_route, the user's own settings otherwise).
import { NodeBridge, NodeTimeoutError } from './bridge.js';
import type { NodeSessionLike } from './functions.js';
import { unwrap } from './functions.js';
import type { NodeState, Reply, UpRequest } from './protocol.js';
import { type ProxySettings, restoreProxySettings, type SqlRunner, swapProxySettings } from './settings.js';

export interface NodeSessionOptions {
  /** The compiled worker module. */
  workerUrl: URL;
  /** A second connection to the same database, for changing settings; none disables http_route. */
  settings: SqlRunner | undefined;
  /** Bound on waiting for `tailscale_up`. */
  upTimeoutMs: number;
  /** Bound on every other wait (status, down, settings). */
  timeoutMs: number;
}

const idle: NodeState = { running: false, hostname: null, tailnetIps: [] };

export class NodeSession implements NodeSessionLike {
  private bridge: NodeBridge | undefined;
  /** The user's proxy settings while ours are installed. */
  private saved: ProxySettings | undefined;

  constructor(private readonly opts: NodeSessionOptions) {}

  up(req: Omit<UpRequest, 'op'>): NodeState {
    if (req.httpRoute && !this.opts.settings) {
      throw new Error(
        'http_route needs the DuckDB instance: installQuackscale(connection, { instance }), or http_route => false',
      );
    }
    this.bridge ??= new NodeBridge(this.opts.workerUrl);
    const bridge = this.bridge;
    let reply: Reply;
    try {
      reply = bridge.call({ op: 'up', ...req }, this.opts.upTimeoutMs);
    } catch (err) {
      // The worker may still be logging in (control retries unreachable servers): end it, so
      // a node that comes up later cannot linger unseen, and the next up starts afresh.
      if (err instanceof NodeTimeoutError) {
        bridge.stop();
        this.bridge = undefined;
      }
      throw err;
    }
    const state = unwrap(reply);
    bridge.keepAlive(true);
    if (reply.ok && reply.proxy && this.opts.settings && !this.saved) {
      const p = reply.proxy;
      try {
        this.saved = swapProxySettings(
          this.opts.settings,
          {
            http_proxy: `${p.host}:${p.port}`,
            http_proxy_username: p.username,
            http_proxy_password: p.password,
          },
          this.opts.timeoutMs,
        );
      } catch (err) {
        // A node whose routing is not installed would fail the user's next read in a way that
        // is hard to trace: report the failure and take the node down instead.
        this.down();
        throw err;
      }
    }
    return state;
  }

  status(): NodeState {
    return this.bridge ? unwrap(this.bridge.call({ op: 'status' }, this.opts.timeoutMs)) : idle;
  }

  /** Restores the user's proxy settings, closes the node and ends the worker. */
  down(): void {
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
