// Two coordinators on one DuckLake catalog never hand out the same address. The catalog's
// metadata lives in a third DuckDB (this process) served over Quack, as `ducklake:quack:` does
// for several writers; each coordinator is a DuckDB process that attaches it and runs
// quackscale_serve(catalog => 'lake'). Nodes register with both at once (our control client,
// from this process), so both coordinators allocate concurrently from the same range.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../../src/control/client.js';
import { freePort } from '../../interop/control-peers.js';
import { buildForNode, extensionPath } from '../build.js';
import { DuckProcess, lit } from '../duck-process.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const TOKEN = 'catalog-token'; // a test-only Quack token
const PER_COORDINATOR = 6;

describe('coordinators sharing one DuckLake catalog', () => {
  const ducks: DuckProcess[] = [];
  let catalog: DuckDBInstance | undefined;
  let c: DuckDBConnection | undefined;
  let uri = '';
  let sqlModule = '';

  beforeAll(async () => {
    sqlModule = join(buildForNode('coordinator-ducklake'), 'sql/index.js');
    catalog = await DuckDBInstance.create(':memory:', {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    const conn = await catalog.connect();
    c = conn;
    for (const e of ['httpfs', 'quack'] as const) await conn.run(`LOAD ${lit(extensionPath(e))}`);
    uri = `quack:127.0.0.1:${await freePort()}`;
    await conn.run(`CALL quack_serve(${lit(uri)}, token => ${lit(TOKEN)})`);
  }, 180_000);

  afterAll(async () => {
    for (const d of ducks) await d.exit(5000);
    if (uri) await c?.run(`CALL quack_stop(${lit(uri)})`);
    catalog?.closeSync();
  }, 60_000);

  /** A coordinator process on the shared catalog. */
  async function coordinator(dataPath: string): Promise<{ duck: DuckProcess; url: string; key: string }> {
    const duck = await DuckProcess.start({ sqlModule, install: { endpoints: [] } });
    ducks.push(duck);
    for (const e of ['httpfs', 'quack', 'ducklake'] as const)
      await duck.query(`LOAD ${lit(extensionPath(e))}`);
    await duck.query(`CREATE SECRET (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(uri)})`);
    await duck.query(`ATTACH ${lit(`ducklake:${uri}`)} AS lake (DATA_PATH ${lit(dataPath)})`);
    const served = await duck.row(
      `FROM quackscale_serve(listen => '127.0.0.1:${await freePort()}', join => false, catalog => 'lake', ` +
        `coordinator_dir => ${lit(tmp('qs-shared-coord-'))})`,
    );
    expect(served).toMatchObject({ running: false });
    const { key } = await duck.row('SELECT key FROM quackscale_new_preauth_key(reusable => true)');
    return { duck, url: String(served.control_url), key: String(key) };
  }

  /** Registers one node with our control client; resolves with its IPv4 address. */
  async function register(url: string, key: string, hostname: string): Promise<string> {
    const client = await ControlClient.open({
      serverURL: url,
      stateDir: tmp('qs-shared-node-'),
      hostname,
      authKey: key,
    });
    try {
      await client.login();
      client.start();
      const nm = await client.waitForNetmap(undefined, 30_000);
      const ipv4 = nm.self.addresses.find((a) => a.startsWith('100.'));
      if (!ipv4) throw new Error(`${hostname}: no IPv4 address in ${nm.self.addresses.join(', ')}`);
      return ipv4.replace(/\/32$/, '');
    } finally {
      await client.close();
    }
  }

  it('registrations at both at once get distinct addresses, and each coordinator keeps its own nodes', async () => {
    const data = tmp('qs-shared-data-');
    const a = await coordinator(data);
    const b = await coordinator(data);
    const jobs: Promise<string>[] = [];
    for (let i = 0; i < PER_COORDINATOR; i++) {
      jobs.push(register(a.url, a.key, `a${i}`), register(b.url, b.key, `b${i}`));
    }
    const given = await Promise.all(jobs);
    expect(new Set(given).size).toBe(2 * PER_COORDINATOR);

    // The catalog agrees: every address once.
    const fromLake = await a.duck.rows('SELECT ipv4 FROM lake.quackscale.nodes ORDER BY ipv4');
    expect(fromLake.map((r) => r.ipv4).sort()).toEqual([...given].sort());
    // Our schema's rows go to Parquet files, not inlined into the catalog (src/sql/coordinator/store.ts).
    expect(
      await a.duck.rows(
        "SELECT value, scope, scope_entry FROM ducklake_options('lake') WHERE option_name = 'data_inlining_row_limit'",
      ),
    ).toContainEqual({ value: '0', scope: 'SCHEMA', scope_entry: 'quackscale' });
    for (const { duck } of [a, b]) {
      const mine = await duck.rows('SELECT name, ipv4 FROM quackscale_nodes()');
      expect(mine).toHaveLength(PER_COORDINATOR);
      expect(mine.every((n) => given.includes(String(n.ipv4)))).toBe(true);
    }
    const names = (await a.duck.rows('SELECT name FROM quackscale_nodes() ORDER BY name')).map((n) => n.name);
    expect(names).toEqual(Array.from({ length: PER_COORDINATOR }, (_, i) => `a${i}`));
    for (const { duck } of [a, b]) {
      await duck.query('CALL quackscale_stop_coordinator()');
      expect(await duck.exit()).toBe(0);
    }
  }, 240_000);
});
