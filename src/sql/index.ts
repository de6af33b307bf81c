/**
 * `quackscale/sql`: QuackScale's SQL functions on a `@duckdb/node-api` connection. The tailnet
 * node runs in a worker thread; the functions block on it with a bounded wait.
 */
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { BlockingSql } from './blocking-sql.js';
import { registerConnectivity } from './connectivity.js';
import { registerDucklake } from './ducklake.js';
import { registerLifecycle } from './functions.js';
import { registerQuack } from './quack.js';
import { NodeSession } from './session.js';

export { NodeTimeoutError } from './bridge.js';
export { defaultStateDir } from './functions.js';

export interface QuackscaleOptions {
  /**
   * The database `connection` belongs to. Needed for `http_route` (the default): DuckDB's
   * proxy settings are changed from a second connection, since a table function cannot run
   * SQL on the connection that is running it.
   */
  instance?: DuckDBInstance;
  /** Control server when `control_url` is not given (default: Tailscale's). */
  controlURL?: string;
  /** State directory when `state_dir` is not given (default: ~/.local/share/quackscale/<hostname>). */
  stateDir?: string;
  /** Reach DERP over plain HTTP, for relays that only speak HTTP (default: env `TS_DEBUG_USE_DERP_HTTP=1`). */
  derpHttp?: boolean;
  /** UDP endpoints to advertise instead of discovering them (`[]`: DERP only; `127.0.0.1:0`: this node's UDP port on loopback, as in tests). */
  endpoints?: string[];
  /** Longest wait for `tailscale_up`, in ms (default 60000). */
  upTimeoutMs?: number;
  /** Longest wait for the other calls, in ms (default 15000). */
  timeoutMs?: number;
  /** How long `tailscale_login` waits for the login URL before answering `starting`, in ms (default 5000). */
  loginWaitMs?: number;
  /** The compiled worker module (default: worker.js beside this module). */
  workerUrl?: URL;
}

/**
 * Registers QuackScale's SQL functions (README "SQL functions") on `connection`.
 * One node per call; a process that calls `tailscale_down` can exit afterwards.
 */
export async function installQuackscale(
  connection: DuckDBConnection,
  options: QuackscaleOptions = {},
): Promise<void> {
  // One more connection of the same database, for the SQL the functions run while the SQL
  // thread waits (a table function cannot run SQL on the connection that runs it).
  const helper = options.instance ? await BlockingSql.open(await options.instance.connect()) : undefined;
  const session = new NodeSession({
    workerUrl: options.workerUrl ?? new URL('./worker.js', import.meta.url),
    settings: helper,
    upTimeoutMs: options.upTimeoutMs ?? 60_000,
    timeoutMs: options.timeoutMs ?? 15_000,
    loginWaitMs: options.loginWaitMs ?? 5000,
  });
  await registerLifecycle(connection, session, {
    controlURL: options.controlURL,
    stateDir: options.stateDir,
    derpHttp: options.derpHttp,
    endpoints: options.endpoints,
  });
  await registerConnectivity(connection, session);
  await registerQuack(connection, session);
  await registerDucklake(connection, helper, options.timeoutMs ?? 15_000);
}
