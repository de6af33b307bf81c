// DuckDB sessions with quackscale installed in the test's own process, for the tests that bring
// no node up (a control server here would share the event loop that the functions block).
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { installQuackscale, type QuackscaleOptions } from '../../src/sql/index.js';
import { buildForNode } from './build.js';

/** In-memory databases opened by one test file, closed together by {@link closeAll}. */
export class Sessions {
  /** The compiled worker module, once {@link build} has run. */
  workerUrl: URL | undefined;
  private readonly open: DuckDBInstance[] = [];

  /** Compiles src/ for the worker thread, into its own directory `name` (run in beforeAll). */
  build(name: string): void {
    this.workerUrl = pathToFileURL(join(buildForNode(name), 'sql/worker.js'));
  }

  /** A fresh in-memory database, closed by {@link closeAll}. */
  async instance(): Promise<DuckDBInstance> {
    const instance = await DuckDBInstance.create(':memory:');
    this.open.push(instance);
    return instance;
  }

  /** A connection with the functions installed (with the instance, so http_route works). */
  async session(opts: Partial<QuackscaleOptions> = {}): Promise<DuckDBConnection> {
    const instance = await this.instance();
    const c = await instance.connect();
    await installQuackscale(c, { instance, workerUrl: this.workerUrl, ...opts });
    return c;
  }

  closeAll(): void {
    for (const i of this.open.splice(0)) i.closeSync();
  }
}

/** The rows of `sql`, as JSON values. */
export const rows = async (c: DuckDBConnection, sql: string) =>
  (await c.runAndReadAll(sql)).getRowObjectsJson();

/** A TCP port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Every function QuackScale registers. */
export const FUNCTIONS = [
  'attach_ducklake',
  'quack_discover',
  'quack_token',
  'quack_uri',
  'quackscale_coordinator_status',
  'quackscale_new_preauth_key',
  'quackscale_nodes',
  'quackscale_remove_node',
  'quackscale_serve',
  'quackscale_stop_coordinator',
  'tailscale_down',
  'tailscale_login',
  'tailscale_login_status',
  'tailscale_peers',
  'tailscale_ping',
  'tailscale_proxy_status',
  'tailscale_quack_forward',
  'tailscale_quack_proxy',
  'tailscale_serve_local',
  'tailscale_status',
  'tailscale_up',
];
