// A private mesh from SQL alone (README's recipe): quackscale_serve() in one DuckDB process, two
// more DuckDB processes join it with pre-auth keys it minted and query each other over Quack;
// the coordinator lists, removes and stops. Then a coordinator restarted on the same database
// file: its nodes keep their addresses, a node rejoins without a key, a key minted before the
// restart still works, and nothing private is in the tables.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../interop/control-peers.js';
import { buildForNode, extensionPath } from '../build.js';
import { DuckProcess, lit } from '../duck-process.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const TOKEN = 'mesh-token'; // a test-only Quack token
const ROWS = 50_000;

/** Polls `check` until it returns true (or the time is up). */
async function eventually(check: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

describe('a private mesh from SQL alone (quackscale_serve)', () => {
  const ducks: DuckProcess[] = [];
  let sqlModule = '';

  beforeAll(() => {
    sqlModule = join(buildForNode('coordinator-mesh'), 'sql/index.js');
  }, 180_000);

  afterAll(async () => {
    for (const d of ducks) await d.exit(5000);
  }, 60_000);

  async function duck(extensions: boolean): Promise<DuckProcess> {
    const d = await DuckProcess.start({ sqlModule, install: { endpoints: [] } });
    ducks.push(d);
    if (extensions)
      for (const e of ['httpfs', 'quack'] as const) await d.query(`LOAD ${lit(extensionPath(e))}`);
    return d;
  }

  it('one process serves, two more join with its keys and query each other; nodes listed, removed, stopped', async () => {
    const hub = await duck(false);
    const port = await freePort();
    const served = await hub.row(
      `FROM quackscale_serve(listen => '127.0.0.1:${port}', hostname => 'hub', ` +
        `coordinator_dir => ${lit(tmp('qs-mesh-coord-'))}, state_dir => ${lit(tmp('qs-mesh-hub-'))})`,
    );
    expect(served).toMatchObject({ bound: `127.0.0.1:${port}`, running: true, hostname: 'hub' });
    const controlURL = String(served.control_url);
    const keys = await hub.rows(
      'SELECT key FROM quackscale_new_preauth_key() UNION ALL SELECT key FROM quackscale_new_preauth_key()',
    );
    expect(keys).toHaveLength(2);
    expect(keys[0]?.key).not.toBe(keys[1]?.key);

    const join = async (name: string, key: unknown) => {
      const d = await duck(true);
      const up = await d.row(
        `CALL tailscale_up(${lit(name)}, authkey => ${lit(String(key))}, control_url => ${lit(controlURL)}, ` +
          `state_dir => ${lit(tmp(`qs-mesh-${name}-`))})`,
      );
      expect(up).toMatchObject({ running: true, hostname: name });
      return d;
    };
    const alpha = await join('alpha', keys[0]?.key);
    const bravo = await join('bravo', keys[1]?.key);
    // A single-use key does not let a third node in.
    const third = await duck(false);
    expect(
      await third.error(
        `CALL tailscale_up('gamma', authkey => ${lit(String(keys[0]?.key))}, control_url => ${lit(controlURL)}, ` +
          `state_dir => ${lit(tmp('qs-mesh-gamma-'))})`,
      ),
    ).toContain('auth key already used');

    // alpha serves a table over Quack to the mesh; bravo reads it by alpha's name.
    const local = await freePort();
    await alpha.query(
      `CREATE TABLE sales AS SELECT i AS id, (i * 37) % 1000 AS amount FROM range(${ROWS}) t(i)`,
    );
    await alpha.query(
      `CALL quack_serve('quack:127.0.0.1:${local}', allow_other_hostname => true, token => ${lit(TOKEN)})`,
    );
    await alpha.query(`CALL tailscale_serve_local(port => 9494, local_port => ${local})`);
    const want = await alpha.row('SELECT count(*) AS n, sum(amount) AS total FROM sales');
    expect(want.n).toBe(String(ROWS));
    expect(
      await bravo.row(
        `FROM quack_query('quack:alpha:9494', 'SELECT count(*) AS n, sum(amount) AS total FROM sales', ` +
          `token => ${lit(TOKEN)}, disable_ssl => true)`,
      ),
    ).toEqual(want);

    // The coordinator's view, and its table, agree.
    const nodes = await hub.rows('SELECT id, name, ipv4, online FROM quackscale_nodes() ORDER BY id');
    expect(nodes).toEqual([
      { id: '1', name: 'hub', ipv4: '100.64.0.1', online: true },
      { id: '2', name: 'alpha', ipv4: '100.64.0.2', online: true },
      { id: '3', name: 'bravo', ipv4: '100.64.0.3', online: true },
    ]);
    expect(await hub.rows('SELECT id, name, ipv4 FROM quackscale.nodes ORDER BY id')).toEqual(
      nodes.map(({ online: _, ...n }) => n),
    );
    expect(
      await hub.row('SELECT running, nodes, online, storage FROM quackscale_coordinator_status()'),
    ).toEqual({
      running: true,
      nodes: '3',
      online: '3',
      storage: 'memory.quackscale',
    });

    // Removing bravo takes it off everyone's peer list.
    expect(await hub.row("SELECT name, removed FROM quackscale_remove_node('bravo')")).toEqual({
      name: 'bravo',
      removed: true,
    });
    const gone = await eventually(async () =>
      (await alpha.rows('SELECT name FROM tailscale_peers()')).every((p) => p.name !== 'bravo'),
    );
    expect(gone).toBe(true);
    expect(await hub.rows('SELECT name FROM quackscale.nodes ORDER BY id')).toEqual([
      { name: 'hub' },
      { name: 'alpha' },
    ]);
    expect(await hub.error("FROM quackscale_remove_node('bravo')")).toContain("no node 'bravo'");

    expect(await hub.row('FROM quackscale_stop_coordinator()')).toEqual({ stopped: true });
    expect(await hub.row('SELECT running FROM quackscale_coordinator_status()')).toEqual({ running: false });
    await alpha.query(`CALL quack_stop('quack:127.0.0.1:${local}')`);
    for (const d of [alpha, bravo, hub]) {
      await d.query('CALL tailscale_down()');
      expect(await d.exit()).toBe(0);
    }
    expect(await third.exit()).toBe(0);
  }, 240_000);

  it('restarted on the same database file: nodes keep their addresses, rejoin without a key; keys survive; no secret in the tables', async () => {
    const dir = tmp('qs-mesh-restart-');
    const database = join(dir, 'coordinator.duckdb');
    const coordDir = join(dir, 'coordinator');
    const port = await freePort();
    const serve = (hub: DuckProcess) =>
      hub.row(
        `FROM quackscale_serve(listen => '127.0.0.1:${port}', hostname => 'hub', database => ${lit(database)}, ` +
          `coordinator_dir => ${lit(coordDir)}, state_dir => ${lit(join(dir, 'hub'))})`,
      );
    const hub1 = await duck(false);
    const first = await serve(hub1);
    const controlURL = String(first.control_url);
    const { key: later } = await hub1.row(
      'SELECT key FROM quackscale_new_preauth_key(reusable => true, expiry => INTERVAL 0 SECONDS)',
    );
    const alpha = await duck(false);
    const alphaDir = join(dir, 'alpha');
    const up1 = await alpha.row(
      `CALL tailscale_up('alpha', authkey => ${lit(String(first.preauth_key))}, control_url => ${lit(controlURL)}, state_dir => ${lit(alphaDir)})`,
    );
    const before = await hub1.rows(
      'SELECT id, name, ipv4, ipv6, node_key FROM quackscale_coordinator.quackscale.nodes ORDER BY id',
    );
    expect(before.map((n) => n.name)).toEqual(['hub', 'alpha']);
    await alpha.query('CALL tailscale_down()');
    expect(await alpha.exit()).toBe(0);
    await hub1.query('CALL quackscale_stop_coordinator()');
    await hub1.query('CALL tailscale_down()');
    expect(await hub1.exit()).toBe(0);

    // What is on disk: the key file 0600 in a 0700 directory, and no private key or pre-auth key
    // text in any table of the database.
    expect(statSync(coordDir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(coordDir)) {
      expect(statSync(join(coordDir, f)).mode & 0o077, f).toBe(0);
    }
    const secretText = readFileSync(join(coordDir, 'coordinator-noise.key'), 'utf8').trim();
    expect(secretText).toMatch(/^privkey:[0-9a-f]{64}$/);
    const db = await DuckDBInstance.create(database);
    const conn = await db.connect();
    const dump = JSON.stringify(
      await Promise.all(
        ['meta', 'users', 'nodes', 'preauth_keys'].map(async (t) =>
          (await conn.runAndReadAll(`FROM quackscale.${t}`)).getRowObjectsJson(),
        ),
      ),
    );
    conn.closeSync();
    db.closeSync();
    expect(dump).not.toContain('privkey:');
    expect(dump).not.toContain(secretText.slice('privkey:'.length));
    for (const k of [String(first.preauth_key), String(later)]) {
      expect(dump).not.toContain(k.slice(k.lastIndexOf('-') + 1));
    }
    expect(dump).toContain(String(before[1]?.node_key));

    // The restart: the same nodes and addresses, offline until they come back.
    const hub2 = await duck(false);
    const second = await serve(hub2);
    expect(second).toMatchObject({ running: true, tailnet_ips: first.tailnet_ips });
    expect(
      await hub2.rows(
        'SELECT id, name, ipv4, ipv6, node_key FROM quackscale_coordinator.quackscale.nodes ORDER BY id',
      ),
    ).toEqual(before);
    const back = await duck(false);
    expect(
      await back.row(
        `CALL tailscale_up('alpha', control_url => ${lit(controlURL)}, state_dir => ${lit(alphaDir)})`,
      ),
    ).toEqual(up1);
    const charlie = await duck(false);
    expect(
      await charlie.row(
        `CALL tailscale_up('charlie', authkey => ${lit(String(later))}, control_url => ${lit(controlURL)}, ` +
          `state_dir => ${lit(join(dir, 'charlie'))})`,
      ),
    ).toMatchObject({ running: true, tailnet_ips: ['100.64.0.3', 'fd7a:115c:a1e0::3'] });
    expect(await hub2.rows('SELECT name, online FROM quackscale_nodes() ORDER BY id')).toEqual([
      { name: 'hub', online: true },
      { name: 'alpha', online: true },
      { name: 'charlie', online: true },
    ]);
    for (const d of [back, charlie, hub2]) {
      await d.query('CALL tailscale_down()');
    }
    await hub2.query('CALL quackscale_stop_coordinator()');
    for (const d of [back, charlie, hub2]) expect(await d.exit()).toBe(0);
  }, 240_000);
});
