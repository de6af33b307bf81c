// A private mesh from SQL alone: quackscale_serve() starts our control server and DERP relay in
// this process (the coordinator `quackscale control serve` runs) with its nodes and pre-auth
// keys in DuckDB tables, and joins it; its companions report on it, mint pre-auth keys, list
// and remove nodes, and stop it. The original's abandoned branch named the entry point
// quackscale_serve; the companions' names are ours and say what they do.
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  type DuckDBConnection,
  DuckDBIntervalValue,
  type DuckDBTableFunctionBindInfo,
  INTERVAL,
  LIST,
  listValue,
  TIMESTAMPTZ,
  timestampTZValue,
  VARCHAR,
} from '@duckdb/node-api';
import { defaultStateDir, expandHome, type FunctionDefaults } from '../functions.js';
import type { NodeState, Reply } from '../protocol.js';
import type { NodeSession } from '../session.js';
import { boolArg, type Column, registerOneRow, registerRows, stringArg } from '../table.js';
import { NO_COORDINATOR } from './host.js';
import {
  type CoordinatorNode,
  type CoordinatorStart,
  type CoordinatorState,
  type NewKey,
  STOPPED,
} from './protocol.js';

/** Where the coordinator keeps its Noise key, relay certificate and admin token by default. */
const DEFAULT_COORDINATOR_DIR = join(homedir(), '.local', 'share', 'quackscale', 'coordinator');

const DAY_MS = 24 * 3600_000;

const tsz = (ms: number | null) => (ms === null ? null : timestampTZValue(BigInt(Math.round(ms)) * 1000n));

/** `host:port` or `[v6]:port`, checked. */
function parseListen(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(text.trim());
  const host = m?.[1];
  const port = Number(m?.[2]);
  if (!host || !Number.isInteger(port) || port > 65535) {
    throw new Error(`listen must be HOST:PORT, e.g. 127.0.0.1:8080 (got ${JSON.stringify(text)})`);
  }
  return { host, port };
}

/** An INTERVAL parameter in ms (a month as 30 days), `dflt` when absent. */
function intervalMs(bind: DuckDBTableFunctionBindInfo, name: string, dflt: number): number {
  const v = bind.getNamedParameter(name);
  if (v === null) return dflt;
  if (!(v instanceof DuckDBIntervalValue)) throw new Error(`${name} must be an INTERVAL`);
  const ms = (v.months * 30 + v.days) * DAY_MS + Number(v.micros / 1000n);
  if (ms < 0) throw new Error(`${name} must not be negative`);
  return ms;
}

const SERVE_PARAMS = {
  listen: VARCHAR,
  server_url: VARCHAR,
  derp_port: BIGINT,
  domain: VARCHAR,
  catalog: VARCHAR,
  database: VARCHAR,
  schema: VARCHAR,
  coordinator_dir: VARCHAR,
  join: BOOLEAN,
  hostname: VARCHAR,
  state_dir: VARCHAR,
  ephemeral: BOOLEAN,
  http_route: BOOLEAN,
  loopback_proxy: BOOLEAN,
} as const;

function serveRequest(bind: DuckDBTableFunctionBindInfo, defaults: FunctionDefaults) {
  const { host, port } = parseListen(stringArg(bind, 'listen') ?? '127.0.0.1:8080');
  const derpPort = bind.getNamedParameter('derp_port');
  const start: CoordinatorStart = {
    host,
    port,
    derpPort: derpPort === null ? 0 : Number(derpPort),
    serverURL: stringArg(bind, 'server_url'),
    domain: stringArg(bind, 'domain') ?? 'tailnet.internal',
    store: {
      catalog: stringArg(bind, 'catalog'),
      database: stringArg(bind, 'database'),
      schema: stringArg(bind, 'schema'),
    },
    dir: expandHome(stringArg(bind, 'coordinator_dir') ?? DEFAULT_COORDINATOR_DIR),
  };
  if (!Number.isInteger(start.derpPort) || start.derpPort < 0 || start.derpPort > 65535) {
    throw new Error(`derp_port must be between 0 and 65535 (got ${String(derpPort)})`);
  }
  if (start.store.database) start.store.database = expandHome(start.store.database);
  const hostname = stringArg(bind, 'hostname');
  const join = boolArg(bind, 'join', true)
    ? {
        hostname,
        authKey: undefined,
        controlURL: undefined,
        stateDir: expandHome(stringArg(bind, 'state_dir') ?? defaults.stateDir ?? defaultStateDir(hostname)),
        ephemeral: boolArg(bind, 'ephemeral', false),
        httpRoute: boolArg(bind, 'http_route', true),
        loopbackProxy: boolArg(bind, 'loopback_proxy', false),
        derpHttp: defaults.derpHttp,
        endpoints: defaults.endpoints,
      }
    : undefined;
  return { op: 'serve' as const, start, join };
}

type Served = { coordinator: CoordinatorState; preauthKey: string; state: NodeState };

const statusColumns: Column<CoordinatorState>[] = [
  { name: 'running', type: BOOLEAN, value: (s) => s.running },
  { name: 'bound', type: VARCHAR, value: (s) => s.bound },
  { name: 'control_url', type: VARCHAR, value: (s) => s.controlURL },
  { name: 'derp_url', type: VARCHAR, value: (s) => s.derpURL },
  { name: 'domain', type: VARCHAR, value: (s) => s.domain },
  { name: 'storage', type: VARCHAR, value: (s) => s.storage },
  { name: 'nodes', type: BIGINT, value: (s) => BigInt(s.nodes) },
  { name: 'online', type: BIGINT, value: (s) => BigInt(s.online) },
  { name: 'last_warning', type: VARCHAR, value: (s) => s.lastWarning },
];

const nodeColumns: Column<CoordinatorNode>[] = [
  { name: 'id', type: BIGINT, value: (n) => BigInt(n.id) },
  { name: 'name', type: VARCHAR, value: (n) => n.name },
  { name: 'hostname', type: VARCHAR, value: (n) => n.hostname },
  { name: 'ipv4', type: VARCHAR, value: (n) => n.ipv4 },
  { name: 'ipv6', type: VARCHAR, value: (n) => n.ipv6 },
  { name: 'online', type: BOOLEAN, value: (n) => n.online },
  { name: 'ephemeral', type: BOOLEAN, value: (n) => n.ephemeral },
  { name: 'node_key', type: VARCHAR, value: (n) => n.nodeKey },
  { name: 'created', type: TIMESTAMPTZ, value: (n) => tsz(n.created) },
  { name: 'last_seen', type: TIMESTAMPTZ, value: (n) => tsz(n.lastSeen) },
  { name: 'expires', type: TIMESTAMPTZ, value: (n) => tsz(n.expires) },
];

/** A companion's reply field, which the worker always sets for that request. */
function field<K extends 'key' | 'nodes'>(reply: Extract<Reply, { ok: true }>, k: K) {
  const v = reply[k];
  if (v === undefined) throw new Error(`the worker's reply has no ${k}`);
  return v as NonNullable<Extract<Reply, { ok: true }>[K]>;
}

/** Registers quackscale_serve and its companions on `connection` (every connection sees them). */
export async function registerCoordinator(
  connection: DuckDBConnection,
  session: NodeSession,
  defaults: FunctionDefaults,
): Promise<void> {
  const idle = () => ({ ok: true as const, state: session.status(), coordinator: STOPPED, nodes: [] });
  const noCoordinator = (): never => {
    throw new Error(NO_COORDINATOR);
  };

  registerOneRow<Served>(
    connection,
    'quackscale_serve',
    [
      { name: 'bound', type: VARCHAR, value: (r) => r.coordinator.bound },
      { name: 'control_url', type: VARCHAR, value: (r) => r.coordinator.controlURL },
      { name: 'derp_url', type: VARCHAR, value: (r) => r.coordinator.derpURL },
      { name: 'domain', type: VARCHAR, value: (r) => r.coordinator.domain },
      { name: 'preauth_key', type: VARCHAR, value: (r) => r.preauthKey },
      { name: 'running', type: BOOLEAN, value: (r) => r.state.running },
      { name: 'hostname', type: VARCHAR, value: (r) => r.state.hostname },
      { name: 'tailnet_ips', type: LIST(VARCHAR), value: (r) => listValue(r.state.tailnetIps) },
    ],
    SERVE_PARAMS,
    (bind) => {
      const reply = session.serve(serveRequest(bind, defaults));
      if (!reply.coordinator || reply.preauthKey === undefined)
        throw new Error("the worker's reply has no coordinator");
      return { coordinator: reply.coordinator, preauthKey: reply.preauthKey, state: reply.state };
    },
  );

  registerOneRow<CoordinatorState>(connection, 'quackscale_coordinator_status', statusColumns, {}, () => {
    const reply = session.coordinator({ op: 'coordinator' }, idle);
    return reply.coordinator ?? STOPPED;
  });

  registerOneRow<NewKey>(
    connection,
    'quackscale_new_preauth_key',
    [
      { name: 'key', type: VARCHAR, value: (k) => k.key },
      { name: 'id', type: VARCHAR, value: (k) => k.id },
      { name: 'reusable', type: BOOLEAN, value: (k) => k.reusable },
      { name: 'ephemeral', type: BOOLEAN, value: (k) => k.ephemeral },
      { name: 'expires', type: TIMESTAMPTZ, value: (k) => tsz(k.expires) },
    ],
    { reusable: BOOLEAN, ephemeral: BOOLEAN, expiry: INTERVAL },
    (bind) => {
      const body = {
        op: 'newKey' as const,
        reusable: boolArg(bind, 'reusable', false),
        ephemeral: boolArg(bind, 'ephemeral', false),
        // A zero interval: a key that never expires.
        ttlMs: intervalMs(bind, 'expiry', DAY_MS),
      };
      return field(session.coordinator(body, noCoordinator), 'key');
    },
  );

  registerRows<CoordinatorNode>(connection, 'quackscale_nodes', nodeColumns, {}, () =>
    field(session.coordinator({ op: 'nodes' }, idle), 'nodes'),
  );

  // The node is required, so it is positional: the form every connection accepts.
  registerRows<CoordinatorNode>(
    connection,
    'quackscale_remove_node',
    [...nodeColumns.slice(0, 5), { name: 'removed', type: BOOLEAN, value: () => true }],
    {},
    (bind) => {
      const v = bind.getParameter(0);
      const node = v === null ? '' : String(v).trim();
      if (!node)
        throw new Error(
          "the node (id, name, hostname or address) is required, e.g. quackscale_remove_node('bravo')",
        );
      return field(session.coordinator({ op: 'removeNode', node }, noCoordinator), 'nodes');
    },
    'quackscale_remove_node',
    [VARCHAR],
  );

  registerOneRow(
    connection,
    'quackscale_stop_coordinator',
    [{ name: 'stopped', type: BOOLEAN, value: () => true }],
    {},
    () => session.coordinator({ op: 'stopCoordinator' }, noCoordinator),
  );
}
