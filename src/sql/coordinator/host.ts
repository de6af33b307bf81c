// The worker's side of quackscale_serve and its companions: our control server and DERP relay
// (startLocalTailnet, the same coordinator `quackscale control serve` runs) with its nodes and
// pre-auth keys in DuckDB tables (store.ts), started, asked and stopped from SQL.
import { isIP } from 'node:net';
import type { ControlLogger } from '../../control/logger.js';
import type { NodeRecord } from '../../control/server/store.js';
import { type LocalTailnet, startLocalTailnet } from '../../tailnet/local.js';
import {
  type CoordinatorNode,
  type CoordinatorStart,
  type CoordinatorState,
  type NewKey,
  STOPPED,
} from './protocol.js';
import type { SqlChannel } from './sql-channel.js';
import { DuckDBStateStore } from './store.js';

/** What the companions report before quackscale_serve (their SQL texts name the function). */
export const NO_COORDINATOR = 'no coordinator is running in this process; start one with quackscale_serve()';

/** A request the running coordinator cannot carry out, in words for the SQL caller. */
export class CoordinatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoordinatorError';
  }
}

interface Running {
  local: LocalTailnet;
  store: DuckDBStateStore;
  start: CoordinatorStart;
}

const hostPort = (host: string, port: number) => (isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);

/** One coordinator per process, as one node per process. */
export class CoordinatorHost {
  private running: Running | undefined;
  private lastWarning: string | null = null;
  private readonly log: ControlLogger = {
    debug: () => {},
    info: () => {},
    warn: (msg) => {
      this.lastWarning = msg;
    },
  };

  /** @param sql the channel to the SQL thread, or undefined when the tables cannot be reached */
  constructor(private readonly sql: SqlChannel | undefined) {}

  private need(): Running {
    if (!this.running) throw new CoordinatorError(NO_COORDINATOR);
    return this.running;
  }

  /** Starts the control server and relay on the tables `start.store` names. */
  async start(start: CoordinatorStart): Promise<void> {
    if (this.running) {
      const s = this.status();
      throw new CoordinatorError(
        `a coordinator is already running on ${s.bound} (${s.storage}); stop it with quackscale_stop_coordinator() first`,
      );
    }
    if (!this.sql) {
      throw new CoordinatorError(
        'the coordinator keeps its state in DuckDB tables, which needs the DuckDB instance: ' +
          'installQuackscale(connection, { instance })',
      );
    }
    const store = await DuckDBStateStore.open(this.sql, start.store, start.dir);
    // On a wildcard address the relay is reached where the control server is.
    const wildcard = start.host === '0.0.0.0' || start.host === '::';
    const local = await startLocalTailnet({
      stateDir: start.dir,
      controlStateDir: start.dir,
      host: start.host,
      controlPort: start.port,
      derpPort: start.derpPort,
      derpMapHost: wildcard && start.serverURL ? new URL(start.serverURL).hostname : undefined,
      baseDomain: start.domain,
      serverURL: start.serverURL,
      logger: this.log,
      store,
      authKeys: store,
    });
    this.lastWarning = null;
    this.running = { local, store, start };
  }

  status(): CoordinatorState {
    const r = this.running;
    if (!r) return { ...STOPPED, lastWarning: this.lastWarning };
    const nodes = r.local.server.registry.nodes;
    return {
      running: true,
      bound: hostPort(r.start.host, Number(new URL(r.local.controlURL).port)),
      controlURL: r.start.serverURL ?? r.local.controlURL,
      derpURL: r.local.derpURL ?? null,
      domain: r.start.domain,
      storage: r.store.where,
      nodes: nodes.length,
      online: nodes.filter((n) => r.local.server.isOnline(n.id)).length,
      lastWarning: this.lastWarning,
    };
  }

  /** The URL this process's own node joins at (where it listens, even behind server_url). */
  get localURL(): string {
    return this.need().local.controlURL;
  }

  async newKey(reusable: boolean, ephemeral: boolean, ttlMs: number): Promise<NewKey> {
    const { key, record } = await this.need().store.create({ reusable, ephemeral, ttlMs });
    return {
      key,
      id: record.id,
      reusable,
      ephemeral,
      expires: record.expires === null ? null : Date.parse(record.expires),
    };
  }

  private row(n: NodeRecord): CoordinatorNode {
    return {
      id: n.id,
      name: n.givenName,
      hostname: n.hostname,
      ipv4: n.ipv4,
      ipv6: n.ipv6,
      online: this.need().local.server.isOnline(n.id),
      ephemeral: n.ephemeral,
      nodeKey: n.nodeKey,
      created: Date.parse(n.created),
      lastSeen: n.lastSeen === null ? null : Date.parse(n.lastSeen),
      expires: n.keyExpiry === null ? null : Date.parse(n.keyExpiry),
    };
  }

  /** The nodes registered here (none before quackscale_serve). */
  nodes(): CoordinatorNode[] {
    return this.running ? this.running.local.server.registry.nodes.map((n) => this.row(n)) : [];
  }

  /** Deletes the node `which` names (id, name, hostname or address); its stream ends at once. */
  async removeNode(which: string): Promise<CoordinatorNode> {
    const { local } = this.need();
    const all = local.server.registry.nodes;
    const hits = /^\d+$/.test(which)
      ? all.filter((n) => n.id === Number(which))
      : all.filter((n) => n.givenName === which || n.ipv4 === which || n.ipv6 === which);
    const matches = hits.length > 0 ? hits : all.filter((n) => n.hostname === which);
    if (matches.length === 0) {
      throw new CoordinatorError(`no node '${which}' (give its id, name, hostname or address)`);
    }
    if (matches.length > 1) {
      throw new CoordinatorError(
        `'${which}' names ${matches.length} nodes (${matches.map((n) => `id ${n.id}`).join(', ')}); give the id`,
      );
    }
    const row = this.row(matches[0]!);
    await local.server.deleteNode(row.id);
    return { ...row, online: false };
  }

  /**
   * Stops the servers after the writes already started; the tables stay. What closing itself
   * changes (each node's last-seen time) is not written: this runs while SQL waits for it, when a
   * write that lost to another coordinator could not be retried before the wait ends.
   */
  async stop(): Promise<void> {
    const r = this.need();
    this.running = undefined;
    r.store.close();
    await r.local.close();
    await r.store.flush();
  }
}
