// The lifecycle table functions of sql-surface.md: tailscale_up, tailscale_login,
// tailscale_login_status, tailscale_status, tailscale_down (and the original's deprecated
// tailscale_proxy_status and tailscale_quack_proxy), with the original's names, parameters,
// result columns and defaults.
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  BOOLEAN,
  type DuckDBConnection,
  type DuckDBTableFunctionBindInfo,
  LIST,
  listValue,
  VARCHAR,
} from '@duckdb/node-api';
import type { RouteOptions } from '../tailnet/routes/node-routing.js';
import type { NodeState, UpRequest } from './protocol.js';
import type { NodeSession, SocksStatus } from './session.js';
import { boolArg, type Column, registerOneRow, registerWithMacro, stringArg } from './table.js';

/** Settings the functions take from installQuackscale rather than from SQL. */
export interface FunctionDefaults {
  controlURL: string | undefined;
  stateDir: string | undefined;
  derpHttp: boolean | undefined;
  endpoints: string[] | undefined;
}

const stateColumns: Column<NodeState>[] = [
  { name: 'running', type: BOOLEAN, value: (s) => s.running },
  { name: 'hostname', type: VARCHAR, value: (s) => s.hostname },
  { name: 'tailnet_ips', type: LIST(VARCHAR), value: (s) => listValue(s.tailnetIps) },
];

const loginColumns: Column<NodeState>[] = [
  { name: 'status', type: VARCHAR, value: (s) => s.login.status },
  { name: 'login_url', type: VARCHAR, value: (s) => s.login.loginUrl },
  { name: 'message', type: VARCHAR, value: (s) => s.login.message },
];

/** `~/x` as the shell would expand it: the spec's examples write state dirs that way. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** Where a node keeps its keys when `state_dir` is not given: one directory per hostname. */
export function defaultStateDir(hostname: string | undefined): string {
  return join(homedir(), '.local', 'share', 'quackscale', hostname ?? 'default');
}

/**
 * tailscale_up's and tailscale_login's parameters, in the order the macro takes them
 * (hostname may be positional).
 *
 * `loopback_proxy` is the original's "start the libtailscale loopback SOCKS proxy" (its
 * REFERENCE.md; TailscaleBridge::StartLoopbackProxy exports
 * `ALL_PROXY=socks5h://tsnet:<password>@127.0.0.1:<port>` and NO_PROXY for loopback). Ours
 * does the same with our own SOCKS5 proxy (src/tailnet/socks5-server.ts) in the worker: tailnet
 * hosts over the tailnet, the rest directly; ALL_PROXY/all_proxy/NO_PROXY/no_proxy are set in
 * this process's environment (inherited by programs it starts) and restored by tailscale_down.
 */
const UP_PARAMS = {
  hostname: VARCHAR,
  authkey: VARCHAR,
  control_url: VARCHAR,
  state_dir: VARCHAR,
  ephemeral: BOOLEAN,
  http_route: BOOLEAN,
  loopback_proxy: BOOLEAN,
  accept_routes: BOOLEAN,
  advertise_routes: VARCHAR,
  advertise_exit_node: BOOLEAN,
  exit_node: VARCHAR,
  exit_node_allow_lan_access: BOOLEAN,
} as const;

/** The route parameters (`tailscale up`'s --accept-routes, --advertise-routes, --exit-node…). */
function routeArgs(bind: DuckDBTableFunctionBindInfo): RouteOptions {
  return {
    acceptRoutes: boolArg(bind, 'accept_routes', false),
    advertiseRoutes: stringArg(bind, 'advertise_routes')
      ?.split(',')
      .map((r) => r.trim())
      .filter((r) => r !== ''),
    advertiseExitNode: boolArg(bind, 'advertise_exit_node', false),
    exitNode: stringArg(bind, 'exit_node'),
    exitNodeAllowLANAccess: boolArg(bind, 'exit_node_allow_lan_access', false),
  };
}

function startRequest(bind: DuckDBTableFunctionBindInfo, defaults: FunctionDefaults): Omit<UpRequest, 'op'> {
  const hostname = stringArg(bind, 'hostname');
  const stateDir = stringArg(bind, 'state_dir') ?? defaults.stateDir ?? defaultStateDir(hostname);
  return {
    hostname,
    authKey: stringArg(bind, 'authkey') ?? (process.env.TS_AUTHKEY || undefined),
    controlURL: stringArg(bind, 'control_url') ?? defaults.controlURL,
    stateDir: expandHome(stateDir),
    ephemeral: boolArg(bind, 'ephemeral', false),
    httpRoute: boolArg(bind, 'http_route', true),
    loopbackProxy: boolArg(bind, 'loopback_proxy', false),
    derpHttp: defaults.derpHttp,
    endpoints: defaults.endpoints,
    routes: routeArgs(bind),
  };
}

/**
 * Registers tailscale_up, tailscale_login, tailscale_login_status, tailscale_status,
 * tailscale_down, tailscale_proxy_status and tailscale_quack_proxy on `connection`.
 *
 * tailscale_login answers at once (after at most `loginWaitMs`, for the login URL) and the
 * node finishes joining in the worker. As in the original, its HTTP routing is installed by
 * tailscale_login itself (DuckDB's proxy settings can only change inside a function call on
 * this thread): the proxy passes non-tailnet traffic through and dials tailnet hosts once the
 * node is up.
 */
export async function registerLifecycle(
  connection: DuckDBConnection,
  session: NodeSession,
  defaults: FunctionDefaults,
): Promise<void> {
  await registerWithMacro(connection, 'tailscale_up', stateColumns, UP_PARAMS, (bind) => [
    session.up(startRequest(bind, defaults)),
  ]);

  await registerWithMacro(connection, 'tailscale_login', loginColumns, UP_PARAMS, (bind) => [
    session.login(startRequest(bind, defaults)),
  ]);

  registerOneRow(connection, 'tailscale_login_status', [...loginColumns, ...stateColumns], {}, () =>
    session.status(),
  );

  registerOneRow(
    connection,
    'tailscale_status',
    [{ name: 'libtailscale_linked', type: BOOLEAN, value: () => true }, ...stateColumns],
    {},
    () => session.status(),
  );

  registerOneRow(
    connection,
    'tailscale_down',
    [{ name: 'shutdown_ok', type: BOOLEAN, value: () => true }],
    {},
    () => session.down(),
  );

  // Deprecated in the original; reports the loopback_proxy SOCKS5 proxy, password redacted.
  registerOneRow<SocksStatus>(
    connection,
    'tailscale_proxy_status',
    [
      { name: 'enabled', type: BOOLEAN, value: (s) => s.enabled },
      { name: 'active', type: BOOLEAN, value: (s) => s.active },
      { name: 'listen_addr', type: VARCHAR, value: (s) => s.listenAddr },
      { name: 'proxy_url', type: VARCHAR, value: (s) => s.proxyUrl },
    ],
    {},
    () => session.proxyStatus(),
  );

  // Deprecated in the original too: starts that proxy after up and exports ALL_PROXY. Its
  // errors read as the original's ("tailscale loopback proxy: call tailscale_up() first").
  registerOneRow<SocksStatus>(
    connection,
    'tailscale_quack_proxy',
    [
      { name: 'active', type: BOOLEAN, value: (s) => s.active },
      { name: 'listen_addr', type: VARCHAR, value: (s) => s.listenAddr },
      { name: 'proxy_url', type: VARCHAR, value: (s) => s.proxyUrl },
    ],
    {},
    () => session.quackProxy(),
    'tailscale loopback proxy',
  );
}
