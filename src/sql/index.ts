/**
 * `quackscale/sql`: QuackScale's SQL functions on a `@duckdb/node-api` connection. The tailnet
 * node runs in a worker thread; the functions block on it with a bounded wait.
 */
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { BlockingSql } from './blocking-sql.js';
import { registerConnectivity } from './connectivity.js';
import { registerCoordinator } from './coordinator/functions.js';
import { registerDucklake } from './ducklake.js';
import {
  type ExtensionName,
  extensionState,
  loadExtensions,
  missingExtensionsMessage,
} from './extensions.js';
import { registerLifecycle } from './functions.js';
import { registerQuack } from './quack.js';
import { NodeSession } from './session.js';

export { NodeTimeoutError } from './bridge.js';
export { ExtensionFetchError, fetchDuckdbExtensions } from './extension-fetch.js';
export {
  EXTENSION_NAMES,
  type ExtensionName,
  type ExtensionReport,
  extensionCacheDir,
  loadExtensions,
  missingExtensionHint,
} from './extensions.js';
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
  /**
   * DuckDB's httpfs, quack and ducklake: a directory to LOAD them from, `true` for the cache that
   * `quackscale extensions fetch` fills, `false` to leave them alone. Default: load none, but warn
   * when any of them is neither loaded nor installed, naming the command that fetches them.
   */
  extensions?: string | boolean;
  /** Where that warning and load problems go (default: `process.emitWarning`). */
  onWarning?: (message: string) => void;
}

/** What installQuackscale found of DuckDB's extensions (empty lists with `extensions: false`). */
export interface QuackscaleInstalled {
  /** Loaded, by this call or before it. */
  loaded: ExtensionName[];
  /** Neither loaded nor installed: using them would make DuckDB try a download. */
  missing: ExtensionName[];
}

/**
 * Registers QuackScale's SQL functions (docs/REFERENCE.md, "SQL functions") on `connection`.
 * One node per call; a process that calls `tailscale_down` can exit afterwards.
 */
export async function installQuackscale(
  connection: DuckDBConnection,
  options: QuackscaleOptions = {},
): Promise<QuackscaleInstalled> {
  // One more connection of the same database, for the SQL the functions run while the SQL
  // thread waits (a table function cannot run SQL on the connection that runs it).
  const helper = options.instance ? await BlockingSql.open(await options.instance.connect()) : undefined;
  // Two more for quackscale_serve's tables: reads block this thread, writes run beside it.
  const coordinatorSql = options.instance
    ? {
        read: await BlockingSql.open(await options.instance.connect()),
        write: await options.instance.connect(),
      }
    : undefined;
  const session = new NodeSession({
    workerUrl: options.workerUrl ?? new URL('./worker.js', import.meta.url),
    settings: helper,
    upTimeoutMs: options.upTimeoutMs ?? 60_000,
    timeoutMs: options.timeoutMs ?? 15_000,
    loginWaitMs: options.loginWaitMs ?? 5000,
    coordinatorSql,
  });
  const defaults = {
    controlURL: options.controlURL,
    stateDir: options.stateDir,
    derpHttp: options.derpHttp,
    endpoints: options.endpoints,
  };
  await registerLifecycle(connection, session, defaults);
  await registerConnectivity(connection, session);
  await registerQuack(connection, session);
  await registerDucklake(connection, helper, options.timeoutMs ?? 15_000);
  await registerCoordinator(connection, session, defaults);
  return checkExtensions(connection, options);
}

async function checkExtensions(
  connection: DuckDBConnection,
  options: QuackscaleOptions,
): Promise<QuackscaleInstalled> {
  const ext = options.extensions;
  if (ext === false) return { loaded: [], missing: [] };
  const warn =
    options.onWarning ?? ((m: string) => process.emitWarning(m, { code: 'QUACKSCALE_EXTENSIONS' }));
  const report =
    ext === undefined
      ? { ...(await extensionState(connection)), problems: [] }
      : await loadExtensions(connection, typeof ext === 'string' ? ext : undefined);
  for (const p of report.problems) warn(p);
  if (report.missing.length > 0) warn(missingExtensionsMessage(report.missing));
  return { loaded: report.loaded, missing: report.missing };
}
