// attach_ducklake (scenario 4 of sql-surface.md) with DuckDB's real quack and ducklake
// extensions: a server database owns a DuckLake catalog and serves it with quack_serve on
// 127.0.0.1 with a token; a client database calls attach_ducklake and reads the views.
// - Loopback: both in this process. The client's SQL thread blocks inside attach_ducklake, but
//   the Quack server answers from DuckDB's own threads, not from JavaScript.
// - Tailnet (embedded default): server and client are DuckDB processes that join with
//   tailscale_up; the server publishes its loopback Quack port with tailscale_serve_local and
//   the client reaches it at its 100.x address through the node's HTTP proxy.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockingSql } from '../../src/sql/blocking-sql.js';
import { registerDucklake, secretName } from '../../src/sql/ducklake.js';
import { ident } from '../../src/sql/settings.js';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { freePort } from '../interop/control-peers.js';
import { buildForNode, extensionPath } from './build.js';
import { DuckProcess } from './duck-process.js';

const TOKEN = 'lake-token-do-not-print';
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const rows = async (c: DuckDBConnection, sql: string) => (await c.runAndReadAll(sql)).getRowObjectsJson();
const failure = async (c: DuckDBConnection, sql: string) => {
  const err = await c.run(sql).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  return (err as Error).message;
};

/** An in-memory database that fetches no extension from the network. */
const database = () =>
  DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });

describe('attach_ducklake against a real Quack server with a DuckLake catalog', () => {
  const open: DuckDBInstance[] = [];
  let server: DuckDBConnection;
  let uri: string;
  const weird = `we"ird 'name`;

  /** A client database with the given extensions loaded and attach_ducklake registered. */
  async function client(extensions: ('httpfs' | 'quack')[] = ['httpfs', 'quack']): Promise<DuckDBConnection> {
    const instance = await database();
    open.push(instance);
    const c = await instance.connect();
    // httpfs first: quack otherwise tries to autoload it from the network.
    for (const e of extensions) await c.run(`LOAD ${lit(extensionPath(e))}`);
    await registerDucklake(c, await BlockingSql.open(await instance.connect()), 15_000);
    return c;
  }

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qs-ducklake-'));
    const instance = await database();
    open.push(instance);
    server = await instance.connect();
    for (const e of ['httpfs', 'quack', 'ducklake'] as const)
      await server.run(`LOAD ${lit(extensionPath(e))}`);
    await server.run(
      `ATTACH ${lit(`ducklake:${join(dir, 'meta.ducklake')}`)} AS lake (DATA_PATH ${lit(join(dir, 'data'))})`,
    );
    await server.run(
      'CREATE TABLE lake.inventory AS SELECT range AS id, (range * 7919) % 10007 AS qty FROM range(5000)',
    );
    await server.run(
      "CREATE TABLE lake.orders AS SELECT range AS id, 'order-' || range AS name FROM range(37)",
    );
    await server.run(`CREATE TABLE lake.${ident(weird)} AS SELECT 42 AS answer`);
    // Not mapped: only the main schema becomes local views.
    await server.run('CREATE SCHEMA lake.archive; CREATE TABLE lake.archive.old AS SELECT 1 AS x');
    await server.run(
      `ATTACH ${lit(`ducklake:${join(dir, 'empty.ducklake')}`)} AS hollow (DATA_PATH ${lit(join(dir, 'hollow'))})`,
    );
    uri = `quack:127.0.0.1:${await freePort()}`;
    const [served] = await rows(server, `CALL quack_serve(${lit(uri)}, token => ${lit(TOKEN)})`);
    expect(served?.listen_uri).toBe(uri);
  }, 120_000);

  afterAll(async () => {
    if (server && uri) await server.run(`CALL quack_stop(${lit(uri)})`).catch(() => undefined);
    for (const i of open.splice(0).reverse()) i.closeSync();
  });

  it('creates one view per remote table, and the views return the server’s rows', async () => {
    const c = await client();
    const created = await rows(
      c,
      `CALL attach_ducklake(${lit(uri)}, remote_catalog => 'lake', alias => 'lake', token => ${lit(TOKEN)})`,
    );
    expect(created).toEqual(
      ['inventory', 'orders', weird].map((t) => ({
        local_view: `lake.${t}`,
        remote_table: `lake.${t}`,
        status: 'created',
      })),
    );
    const sums = 'SELECT count(*) AS n, sum(qty) AS total, max(id) AS top FROM';
    const [want] = await rows(server, `${sums} lake.inventory`);
    expect(want).toEqual({ n: '5000', total: expect.any(String), top: '4999' });
    expect(await rows(c, `${sums} lake.inventory`)).toEqual([want]);
    expect(
      await rows(c, "SELECT count(*) AS n, min(name) AS first FROM lake.orders WHERE name LIKE 'order-%'"),
    ).toEqual([{ n: '37', first: 'order-0' }]);
    expect(await rows(c, `FROM lake.${ident(weird)}`)).toEqual([{ answer: 42 }]);
    // Views, read-only: the remote tables cannot be written through them.
    const views = await rows(
      c,
      "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'lake' ORDER BY 1",
    );
    expect(views.map((v) => v.view_name)).toEqual(['inventory', 'orders', weird]);
    expect(await failure(c, 'INSERT INTO lake.orders VALUES (1, 2)')).toMatch(/orders is not an? table/);
    // The token is in a temporary secret, never in the views' SQL.
    for (const v of views) expect(String(v.sql)).not.toContain(TOKEN);
    const secrets = await rows(c, 'SELECT name, persistent, secret_string FROM duckdb_secrets()');
    expect(secrets).toHaveLength(1);
    expect(secrets[0]?.name).toBe(secretName(uri));
    expect(secrets[0]?.persistent).toBe(false);
    expect(JSON.stringify(secrets)).not.toContain(TOKEN);
  }, 60_000);

  it('defaults: remote_catalog lake, alias = remote_catalog; a second call replaces the views', async () => {
    const c = await client();
    const first = await rows(c, `CALL attach_ducklake(${lit(uri)}, token => ${lit(TOKEN)})`);
    expect(first.map((r) => r.local_view)).toEqual(['lake.inventory', 'lake.orders', `lake.${weird}`]);
    await server.run('CREATE TABLE lake.late AS SELECT 7 AS x');
    try {
      const again = await rows(
        c,
        `CALL attach_ducklake(${lit(uri)}, alias => 'mirror', token => ${lit(TOKEN)})`,
      );
      expect(again.map((r) => r.local_view)).toContain('mirror.late');
      expect(again.map((r) => r.remote_table)).toContain('lake.late');
      expect(await rows(c, 'FROM mirror.late')).toEqual([{ x: 7 }]);
      expect(await rows(c, 'SELECT count(*) AS n FROM mirror.inventory')).toEqual([{ n: '5000' }]);
      // Same server, same secret (replaced, not duplicated).
      expect(await rows(c, 'SELECT count(*) AS n FROM duckdb_secrets()')).toEqual([{ n: '1' }]);
    } finally {
      await server.run('DROP TABLE lake.late');
    }
  }, 60_000);

  it('a token the user already stored in a quack secret is used when none is passed', async () => {
    const c = await client();
    await c.run(`CREATE SECRET mine (TYPE quack, TOKEN ${lit(TOKEN)}, SCOPE ${lit(uri)})`);
    const created = await rows(c, `CALL attach_ducklake(${lit(uri)}, alias => 'mine')`);
    expect(created).toHaveLength(3);
    expect(await rows(c, 'SELECT count(*) AS n FROM mine.orders')).toEqual([{ n: '37' }]);
  }, 60_000);

  it('bad identifiers are refused before any SQL is built, naming the parameter', async () => {
    const c = await client();
    const call = (extra: string) => `CALL attach_ducklake(${lit(uri)}, token => ${lit(TOKEN)}, ${extra})`;
    expect(await failure(c, call("remote_catalog => 'lake; DROP TABLE x'"))).toContain(
      'attach_ducklake: remote_catalog must match [A-Za-z_][A-Za-z0-9_]* (got "lake; DROP TABLE x")',
    );
    expect(await failure(c, call("alias => '1lake'"))).toContain('attach_ducklake: alias must match');
    expect(await failure(c, call(`alias => 'a"b'`))).toContain('alias must match');
    expect(await failure(c, `CALL attach_ducklake(NULL, token => ${lit(TOKEN)})`)).toContain(
      'attach_ducklake: the Quack URI (first argument',
    );
    expect(await rows(c, 'SELECT count(*) AS n FROM duckdb_views() WHERE NOT internal')).toEqual([
      { n: '0' },
    ]);
  });

  it('a remote catalog without tables is an error, and creates nothing', async () => {
    const c = await client();
    const msg = await failure(
      c,
      `CALL attach_ducklake(${lit(uri)}, remote_catalog => 'hollow', token => ${lit(TOKEN)})`,
    );
    expect(msg).toContain("attach_ducklake: no tables found in remote catalog 'hollow'");
    expect(await rows(c, "SELECT count(*) AS n FROM duckdb_schemas() WHERE schema_name = 'hollow'")).toEqual([
      { n: '0' },
    ]);
    // A catalog the server has not attached at all reads the same way.
    expect(
      await failure(
        c,
        `CALL attach_ducklake(${lit(uri)}, remote_catalog => 'nowhere', token => ${lit(TOKEN)})`,
      ),
    ).toContain("no tables found in remote catalog 'nowhere'");
  });

  it('without the quack extension loaded the error reads "attach_ducklake requires LOAD quack"', async () => {
    const c = await client(['httpfs']);
    expect(await failure(c, `CALL attach_ducklake(${lit(uri)}, token => ${lit(TOKEN)})`)).toContain(
      'attach_ducklake requires LOAD quack',
    );
  });

  it('a wrong token or an unreachable server gives DuckDB’s reason, never the token', async () => {
    const c = await client();
    const wrong = 'wrong-token-do-not-print';
    const msg = await failure(c, `CALL attach_ducklake(${lit(uri)}, token => ${lit(wrong)})`);
    expect(msg).toContain(`attach_ducklake: could not list the tables of remote catalog 'lake' at ${uri}`);
    expect(msg).toContain('Authentication failed');
    expect(msg).not.toContain(wrong);
    const closed = `quack:127.0.0.1:${await freePort()}`;
    const down = await failure(c, `CALL attach_ducklake(${lit(closed)}, token => ${lit(TOKEN)})`);
    expect(down).toMatch(/Could not connect/);
    expect(down).not.toContain(TOKEN);
    expect(await rows(c, 'SELECT count(*) AS n FROM duckdb_secrets()')).toEqual([{ n: '0' }]);
  });

  it('a read-only database is reported before anything is created', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'qs-ducklake-ro-')), 'ro.duckdb');
    (await DuckDBInstance.create(path)).closeSync();
    const instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
    open.push(instance);
    const c = await instance.connect();
    for (const e of ['httpfs', 'quack'] as const) await c.run(`LOAD ${lit(extensionPath(e))}`);
    await registerDucklake(c, await BlockingSql.open(await instance.connect()), 15_000);
    expect(await failure(c, `CALL attach_ducklake(${lit(uri)}, token => ${lit(TOKEN)})`)).toContain(
      "attach_ducklake: database 'ro' is read-only",
    );
  });

  it('a local table in the way is reported instead of replaced', async () => {
    const c = await client();
    await c.run('CREATE SCHEMA lake; CREATE TABLE lake.orders (id INTEGER)');
    expect(await failure(c, `CALL attach_ducklake(${lit(uri)}, token => ${lit(TOKEN)})`)).toContain(
      'attach_ducklake: lake.orders is a table, not a view',
    );
    expect(await rows(c, 'SELECT count(*) AS n FROM lake.orders')).toEqual([{ n: '0' }]);
  });
});

describe('attach_ducklake over the tailnet (embedded default)', () => {
  let local: LocalTailnet;
  const ducks: DuckProcess[] = [];
  let sqlModule = '';

  beforeAll(async () => {
    sqlModule = join(buildForNode('ducklake'), 'sql/index.js');
    local = await startLocalTailnet({ stateDir: mkdtempSync(join(tmpdir(), 'qs-ducklake-tn-')) });
  }, 120_000);

  afterAll(async () => {
    for (const d of ducks.splice(0)) await d.exit(5000);
    await local?.close();
  }, 60_000);

  /** A DuckDB process on the tailnet as `hostname`, with `extensions` loaded (httpfs first). */
  async function node(hostname: string, extensions: ('httpfs' | 'quack' | 'ducklake')[]) {
    const duck = await DuckProcess.start({ sqlModule, install: { endpoints: [] } });
    ducks.push(duck);
    const up = await duck.row(
      `CALL tailscale_up(${lit(hostname)}, authkey => ${lit(await local.authKey())}, ` +
        `control_url => ${lit(local.controlURL)}, state_dir => ${lit(mkdtempSync(join(tmpdir(), 'qs-dl-')))}, ` +
        'ephemeral => true)',
      'tailscale_up',
    );
    expect(up.running).toBe(true);
    for (const e of extensions) await duck.query(`LOAD ${lit(extensionPath(e))}`);
    return { duck, ip: (up.tailnet_ips as string[])[0] as string };
  }

  it('a client attaches the server’s DuckLake at quack:100.x:9494 and reads the same rows', async () => {
    const server = await node('lakehouse', ['httpfs', 'quack', 'ducklake']);
    const dir = mkdtempSync(join(tmpdir(), 'qs-ducklake-tn-lake-'));
    await server.duck.query(
      `ATTACH ${lit(`ducklake:${join(dir, 'meta.ducklake')}`)} AS lake (DATA_PATH ${lit(join(dir, 'data'))})`,
    );
    await server.duck.query(
      'CREATE TABLE lake.inventory AS SELECT range AS id, (range * 7919) % 10007 AS qty FROM range(20000)',
    );
    await server.duck.query(
      "CREATE TABLE lake.sites AS SELECT range AS id, 'site-' || range AS name FROM range(12)",
    );
    // Quack on loopback only; the tailnet reaches it through serve_local (the seed's server).
    const loopback = await freePort();
    await server.duck.query(
      `CALL quack_serve('quack:127.0.0.1:${loopback}', allow_other_hostname => true, token => ${lit(TOKEN)})`,
    );
    const served = await server.duck.row(
      `CALL tailscale_serve_local(port => 9494, local_port => ${loopback})`,
    );
    expect(served).toEqual({
      listen_port: 9494,
      local_port: loopback,
      local_forward: `127.0.0.1:${loopback}`,
    });

    const client = await node('lakeclient', ['httpfs', 'quack']);
    expect(server.ip).toMatch(/^100\./);
    const created = await client.duck.rows(
      `CALL attach_ducklake('quack:${server.ip}:9494', remote_catalog => 'lake', alias => 'lake', token => ${lit(TOKEN)})`,
    );
    expect(created).toEqual([
      { local_view: 'lake.inventory', remote_table: 'lake.inventory', status: 'created' },
      { local_view: 'lake.sites', remote_table: 'lake.sites', status: 'created' },
    ]);
    const sums = 'SELECT count(*) AS n, sum(qty) AS total, sum(id) AS ids FROM lake.inventory';
    const want = await server.duck.row(sums);
    expect(want.n).toBe('20000');
    expect(await client.duck.row(sums)).toEqual(want);
    expect(await client.duck.row('SELECT count(*) AS n, max(name) AS last FROM lake.sites')).toEqual({
      n: '12',
      last: 'site-9',
    });
    const msg = await client.duck.error(
      `CALL attach_ducklake('quack:${server.ip}:9494', token => 'not-the-token')`,
    );
    expect(msg).toContain('Authentication failed');
    expect(msg).not.toContain('not-the-token');

    // Both leave as one-shot processes do, and then exit by themselves.
    await server.duck.query(`CALL quack_stop('quack:127.0.0.1:${loopback}')`);
    for (const { duck } of [client, server]) {
      expect(await duck.row('CALL tailscale_down()')).toEqual({ shutdown_ok: true });
      expect(await duck.exit()).toBe(0);
    }
  }, 180_000);
});
