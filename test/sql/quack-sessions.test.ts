// Every QuackScale function in the sessions DuckDB's quack extension opens for remote clients:
// a server DuckDB process (lakea) is driven through quack_query only, first from this process
// over loopback (it has no tailnet yet), then from a second DuckDB process (rnode) over the
// tailnet lakea itself starts with quackscale_serve(). Each function is called once through
// quack_query and its answer checked; what each returned is printed at the end.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../interop/control-peers.js';
import { buildForNode, extensionPath } from './build.js';
import { DuckProcess, lit, type Row } from './duck-process.js';
import { FUNCTIONS } from './in-process.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const TOKEN = 'sessions-token'; // a test-only Quack token
const DOMAIN = 'tailnet.internal';

describe('QuackScale functions in the quack extension’s remote sessions', () => {
  const ducks: DuckProcess[] = [];
  let local: DuckDBInstance | undefined;
  /** What each function returned through quack_query, for the closing note. */
  const seen = new Map<string, Row[]>();

  afterAll(async () => {
    for (const d of ducks) await d.exit(5000);
    local?.closeSync();
    const width = Math.max(...[...seen.keys()].map((k) => k.length));
    // Pre-auth keys are secrets even in a test: printed as their id only.
    const shown = (rows: Row[]) => JSON.stringify(rows).replace(/(qskey-auth-[0-9a-f]+-)[0-9a-f]+/g, '$1…');
    console.log([...seen].map(([f, rows]) => `${f.padEnd(width)}  ${shown(rows)}`).join('\n'));
  }, 60_000);

  let build = '';
  beforeAll(() => {
    build = buildForNode('quack-sessions');
  }, 180_000);

  /** A DuckDB process with quackscale installed and DuckDB's extensions loaded. */
  async function duck(env: Record<string, string> = {}): Promise<DuckProcess> {
    const d = await DuckProcess.start({
      sqlModule: join(build, 'sql/index.js'),
      install: { endpoints: [] },
      env,
    });
    ducks.push(d);
    for (const e of ['httpfs', 'quack', 'ducklake'] as const) await d.query(`LOAD ${lit(extensionPath(e))}`);
    return d;
  }

  it('every function answers through quack_query: from loopback, then across the tailnet the server starts itself', async () => {
    // ---- the server: Quack on loopback with a token, a DuckLake of its own; nothing else
    const server = await duck({ QUACK_TAILNET_TOKEN: TOKEN });
    const port = await freePort();
    const lakeDir = tmp('qs-sessions-lake-');
    await server.query(
      `ATTACH ${lit(`ducklake:${join(lakeDir, 'meta.ducklake')}`)} AS lake (DATA_PATH ${lit(join(lakeDir, 'data'))})`,
    );
    await server.query('CREATE TABLE lake.inventory AS SELECT range AS id, range * 3 AS qty FROM range(100)');
    await server.query(
      `CALL quack_serve('quack:127.0.0.1:${port}', allow_other_hostname => true, token => quack_token())`,
    );

    // ---- this process: a plain DuckDB with httpfs and quack, no QuackScale at all
    local = await DuckDBInstance.create(':memory:', {
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    const c: DuckDBConnection = await local.connect();
    for (const e of ['httpfs', 'quack'] as const) await c.run(`LOAD ${lit(extensionPath(e))}`);
    const remote = (uri: string, sql: string) =>
      `FROM quack_query(${lit(uri)}, ${lit(sql)}, token => ${lit(TOKEN)}, disable_ssl => true)`;
    const viaLoopback = async (fn: string, sql: string): Promise<Row[]> => {
      const rows = (
        await c.runAndReadAll(remote(`quack:127.0.0.1:${port}`, sql))
      ).getRowObjectsJson() as Row[];
      seen.set(fn, rows);
      return rows;
    };

    // The remote session sees every function, not only those registered without a macro.
    expect(
      await viaLoopback(
        'duckdb_functions',
        `SELECT list(DISTINCT function_name ORDER BY function_name) AS f FROM duckdb_functions() WHERE function_name IN (${FUNCTIONS.map(lit).join(', ')})`,
      ),
    ).toEqual([{ f: FUNCTIONS }]);
    seen.delete('duckdb_functions');

    expect(await viaLoopback('tailscale_status', 'FROM tailscale_status()')).toEqual([
      { libtailscale_linked: true, running: false, hostname: null, tailnet_ips: [] },
    ]);
    expect(await viaLoopback('tailscale_login_status', 'FROM tailscale_login_status()')).toEqual([
      { status: 'idle', login_url: null, message: null, running: false, hostname: null, tailnet_ips: [] },
    ]);
    expect(
      await viaLoopback(
        'quackscale_coordinator_status',
        'SELECT running, nodes FROM quackscale_coordinator_status()',
      ),
    ).toEqual([{ running: false, nodes: '0' }]);

    // ---- the server becomes a coordinator and joins it, asked from a remote session
    const control = await freePort();
    const [served] = await viaLoopback(
      'quackscale_serve',
      `FROM quackscale_serve(listen => '127.0.0.1:${control}', hostname => 'lakea', ` +
        `coordinator_dir => ${lit(tmp('qs-sessions-coord-'))}, state_dir => ${lit(tmp('qs-sessions-lakea-'))})`,
    );
    expect(served).toMatchObject({
      bound: `127.0.0.1:${control}`,
      control_url: `http://127.0.0.1:${control}`,
      domain: DOMAIN,
      running: true,
      hostname: 'lakea',
      tailnet_ips: ['100.64.0.1', 'fd7a:115c:a1e0::1'],
    });
    expect(String(served?.preauth_key)).toMatch(/^qskey-auth-/);
    expect(
      await viaLoopback(
        'tailscale_serve_local',
        `FROM tailscale_serve_local(port => 9494, local_port => ${port})`,
      ),
    ).toEqual([{ listen_port: 9494, local_port: port, local_forward: `127.0.0.1:${port}` }]);
    const [key] = await viaLoopback(
      'quackscale_new_preauth_key',
      'FROM quackscale_new_preauth_key(reusable => true)',
    );
    expect(key).toMatchObject({ reusable: true, ephemeral: false });

    // ---- a client node on that tailnet, with a Quack server of its own for lakea to reach
    const client = await duck();
    const up = await client.row(
      `CALL tailscale_up('rnode', authkey => ${lit(String(key?.key))}, control_url => ${lit(String(served?.control_url))}, ` +
        `state_dir => ${lit(tmp('qs-sessions-rnode-'))})`,
    );
    expect(up).toMatchObject({ running: true, hostname: 'rnode' });
    const rport = await freePort();
    await client.query(`CALL quack_serve('quack:127.0.0.1:${rport}', token => ${lit(TOKEN)})`);
    await client.query(`CALL tailscale_serve_local(port => 9494, local_port => ${rport})`);
    const viaTailnet = async (fn: string, sql: string): Promise<Row[]> => {
      const rows = await client.rows(remote('quack:lakea:9494', sql), fn);
      seen.set(fn, rows);
      return rows;
    };

    const fqdn = `lakea.${DOMAIN}`;
    expect(await viaTailnet('quack_discover', 'FROM quack_discover()')).toEqual([
      { listen_uri: `quack:${fqdn}:9494`, host: fqdn, port: 9494, via: 'magicdns' },
      { listen_uri: 'quack:100.64.0.1:9494', host: '100.64.0.1', port: 9494, via: 'tailnet_ip' },
      {
        listen_uri: 'quack:[fd7a:115c:a1e0::1]:9494',
        host: 'fd7a:115c:a1e0::1',
        port: 9494,
        via: 'tailnet_ip',
      },
    ]);
    expect(await viaTailnet('quack_uri', 'SELECT quack_uri() AS uri')).toEqual([
      { uri: `quack:${fqdn}:9494` },
    ]);
    expect(await viaTailnet('quack_token', 'SELECT quack_token() AS token')).toEqual([{ token: TOKEN }]);
    expect(await viaTailnet('tailscale_status', 'FROM tailscale_status()')).toEqual([
      {
        libtailscale_linked: true,
        running: true,
        hostname: 'lakea',
        tailnet_ips: ['100.64.0.1', 'fd7a:115c:a1e0::1'],
      },
    ]);
    expect(await viaTailnet('tailscale_up', "FROM tailscale_up(hostname => 'lakea')")).toEqual([
      { running: true, hostname: 'lakea', tailnet_ips: ['100.64.0.1', 'fd7a:115c:a1e0::1'] },
    ]);
    expect(await viaTailnet('tailscale_login', 'FROM tailscale_login()')).toEqual([
      { status: 'up', login_url: null, message: 'Connected' },
    ]);
    const peers = await viaTailnet('tailscale_peers', 'SELECT name, dns_name, online FROM tailscale_peers()');
    expect(peers).toEqual([{ name: 'rnode', dns_name: `rnode.${DOMAIN}`, online: true }]);
    expect(await viaTailnet('tailscale_ping', "FROM tailscale_ping(host => 'rnode', port => 9494)")).toEqual([
      { host: 'rnode', port: 9494, reachable: true },
    ]);
    const [fwd] = await viaTailnet(
      'tailscale_quack_forward',
      "FROM tailscale_quack_forward(host => 'rnode', local_port => 0)",
    );
    expect(fwd).toMatchObject({ active: true, remote_host: 'rnode', remote_port: 9494 });
    // lakea reads rnode's Quack server through that forwarder: a remote session calling out again.
    expect(
      await viaTailnet(
        'quack_query through the forwarder',
        `SELECT * FROM quack_query(${lit(String(fwd?.quack_uri))}, 'SELECT 6 * 7 AS answer', token => ${lit(TOKEN)}, disable_ssl => true)`,
      ),
    ).toEqual([{ answer: 42 }]);
    seen.delete('quack_query through the forwarder');
    expect(await viaTailnet('tailscale_proxy_status', 'FROM tailscale_proxy_status()')).toEqual([
      { enabled: false, active: false, listen_addr: null, proxy_url: null },
    ]);
    const [socks] = await viaTailnet('tailscale_quack_proxy', 'FROM tailscale_quack_proxy()');
    expect(socks).toMatchObject({ active: true, listen_addr: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(String(socks?.proxy_url)).toMatch(/^socks5h:\/\/tsnet:\*\*\*@127\.0\.0\.1:\d+$/);
    expect(
      await viaTailnet('tailscale_login_status', 'SELECT status, running FROM tailscale_login_status()'),
    ).toEqual([{ status: 'up', running: true }]);
    expect(
      await viaTailnet(
        'attach_ducklake',
        `FROM attach_ducklake('quack:127.0.0.1:${port}', remote_catalog => 'lake', alias => 'mirror', token => ${lit(TOKEN)})`,
      ),
    ).toEqual([{ local_view: 'mirror.inventory', remote_table: 'lake.inventory', status: 'created' }]);
    expect(await server.row('SELECT count(*) AS n, sum(qty) AS total FROM mirror.inventory')).toEqual({
      n: '100',
      total: String(3 * 4950),
    });
    const nodes = await viaTailnet(
      'quackscale_nodes',
      'SELECT name, ipv4, online FROM quackscale_nodes() ORDER BY id',
    );
    expect(nodes).toEqual([
      { name: 'lakea', ipv4: '100.64.0.1', online: true },
      { name: 'rnode', ipv4: '100.64.0.2', online: true },
    ]);
    expect(
      await viaTailnet(
        'quackscale_coordinator_status',
        'SELECT running, storage, nodes, online FROM quackscale_coordinator_status()',
      ),
    ).toEqual([{ running: true, storage: 'memory.quackscale', nodes: '2', online: '2' }]);

    // ---- the calls that end the path they travel on go over loopback again
    expect(
      await viaLoopback(
        'quackscale_remove_node',
        "SELECT name, ipv4, removed FROM quackscale_remove_node('rnode')",
      ),
    ).toEqual([{ name: 'rnode', ipv4: '100.64.0.2', removed: true }]);
    expect(await viaLoopback('quackscale_stop_coordinator', 'FROM quackscale_stop_coordinator()')).toEqual([
      { stopped: true },
    ]);
    expect(await viaLoopback('tailscale_down', 'FROM tailscale_down()')).toEqual([{ shutdown_ok: true }]);
    expect(await server.row('SELECT running FROM tailscale_status()')).toEqual({ running: false });
    expect(new Set(seen.keys())).toEqual(new Set(FUNCTIONS));

    await client.query('CALL tailscale_down()');
    await server.query(`CALL quack_stop('quack:127.0.0.1:${port}')`);
    for (const d of [client, server]) expect(await d.exit()).toBe(0);
  }, 240_000);
});
