// quackscale_serve's bad input, in this process (the coordinator runs in the worker, so nothing
// here blocks the servers): a taken port is named; companions before a coordinator say so; a
// catalog that is not attached is named; a node table edited by hand into nonsense is refused at
// start with the row named, and nothing is served from it.
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../interop/control-peers.js';
import { rows, Sessions } from '../in-process.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const sessions = new Sessions();

const failure = async (c: DuckDBConnection, sql: string): Promise<string> => {
  const err = await c.run(sql).catch((e: unknown) => e);
  expect(err, sql).toBeInstanceOf(Error);
  return (err as Error).message;
};

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
const accepting = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s.destroy() && true));
    s.once('error', () => resolve(false));
  });

describe('quackscale_serve refuses bad input', () => {
  beforeAll(() => {
    sessions.build('coordinator-bad-input');
  }, 180_000);
  afterAll(() => sessions.closeAll());

  const serve = (port: number, extra = '') =>
    `FROM quackscale_serve(listen => '127.0.0.1:${port}', join => false, coordinator_dir => '${tmp('qs-bad-')}'${extra})`;

  it('a taken port is named, and nothing is left running', async () => {
    const c = await sessions.session({ extensions: false });
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      expect(await failure(c, serve(port))).toContain(
        `quackscale_serve: the control server cannot listen on 127.0.0.1:${port}: the port is taken`,
      );
      expect(await rows(c, 'SELECT running FROM quackscale_coordinator_status()')).toEqual([
        { running: false },
      ]);
      // The derp_port is checked the same way.
      const free = await freePort();
      expect(await failure(c, serve(free, `, derp_port => ${port}`))).toContain(
        `the DERP relay cannot listen on 127.0.0.1:${port}: the port is taken`,
      );
      expect(await accepting(free)).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('companions before a coordinator say so; a second coordinator is refused', async () => {
    const c = await sessions.session({ extensions: false });
    for (const fn of [
      'quackscale_new_preauth_key()',
      "quackscale_remove_node('x')",
      'quackscale_stop_coordinator()',
    ]) {
      expect(await failure(c, `FROM ${fn}`)).toContain(
        'no coordinator is running in this process; start one with quackscale_serve()',
      );
    }
    expect(await rows(c, 'FROM quackscale_nodes()')).toEqual([]);
    const port = await freePort();
    expect(await rows(c, `SELECT bound FROM (${serve(port)})`)).toEqual([{ bound: `127.0.0.1:${port}` }]);
    expect(await failure(c, serve(await freePort()))).toContain(
      `a coordinator is already running on 127.0.0.1:${port} (memory.quackscale)`,
    );
    await c.run('CALL quackscale_stop_coordinator()');
    expect(await accepting(port)).toBe(false);
  });

  it('a catalog that is not attached, or a read-only one, is named; catalog and database exclude each other', async () => {
    const c = await sessions.session({ extensions: false });
    const port = await freePort();
    expect(await failure(c, serve(port, ", catalog => 'lake'"))).toContain(
      "quackscale_serve: catalog 'lake' is not attached: ATTACH it first",
    );
    const file = join(tmp('qs-bad-ro-'), 'ro.duckdb');
    await c.run(`ATTACH '${file}' AS scratch; DETACH scratch; ATTACH '${file}' AS frozen (READ_ONLY)`);
    expect(await failure(c, serve(port, ", catalog => 'frozen'"))).toContain("catalog 'frozen' is read-only");
    expect(await failure(c, serve(port, `, catalog => 'frozen', database => '${file}'`))).toContain(
      'give catalog or database, not both',
    );
    // The alias a dedicated file goes under, taken by another file.
    await c.run(`ATTACH '${file}.other' AS quackscale_coordinator`);
    expect(await failure(c, serve(port, `, database => '${file}.mine'`))).toContain(
      `'quackscale_coordinator' is already attached to ${file}.other: DETACH it, or pass that file`,
    );
    expect(await accepting(port)).toBe(false);
  });

  it('a node table edited into nonsense is refused at start with the row named, nothing served', async () => {
    const c = await sessions.session({ extensions: false });
    const database = join(tmp('qs-bad-edit-'), 'coordinator.duckdb');
    const dir = tmp('qs-bad-edit-coord-');
    const port = await freePort();
    const start = `FROM quackscale_serve(listen => '127.0.0.1:${port}', join => false, database => '${database}', coordinator_dir => '${dir}')`;
    await c.run(start);
    await c.run('CALL quackscale_stop_coordinator()');
    const nodes = 'quackscale_coordinator.quackscale.nodes';
    const [meta] = await rows(
      c,
      "SELECT value FROM quackscale_coordinator.quackscale.meta WHERE key = 'noise_public_key'",
    );
    const me = String(meta?.value);
    const hex = (n: number) => n.toString(16).padStart(64, '0');
    const row = (id: number, name: string, ipv4: string, nodeKey = `nodekey:${hex(id)}`) =>
      `(${id}, '${name}', '${name}', '${ipv4}', 'fd7a:115c:a1e0::${id}', '${nodeKey}', 'mkey:${hex(100 + id)}', ` +
      `'discokey:${hex(200 + id)}', 1, [], false, NULL, now(), NULL, NULL, 'n${id}', '${me}')`;
    // Two well-formed rows: the coordinator starts and serves them.
    await c.run(
      `INSERT INTO ${nodes} VALUES ${row(1, 'alpha', '100.64.0.1')}, ${row(2, 'bravo', '100.64.0.2')}`,
    );
    await c.run(start);
    expect(await rows(c, 'SELECT name, ipv4 FROM quackscale_nodes() ORDER BY id')).toEqual([
      { name: 'alpha', ipv4: '100.64.0.1' },
      { name: 'bravo', ipv4: '100.64.0.2' },
    ]);
    await c.run('CALL quackscale_stop_coordinator()');

    const cases: [string, string][] = [
      [
        `UPDATE ${nodes} SET ipv4 = '100.64.0.1' WHERE id = 2`,
        `${nodes} row id=2 (name "bravo"): ipv4 100.64.0.1 is also row id=1's`,
      ],
      [
        `UPDATE ${nodes} SET node_key = 'nodekey:not-a-key' WHERE id = 2`,
        `${nodes} row id=2 (name "bravo"): node_key: node key: expected 64 lowercase hex digits after 'nodekey:'`,
      ],
      [
        `UPDATE ${nodes} SET ipv4 = '10.0.0.7' WHERE id = 2`,
        `${nodes} row id=2 (name "bravo"): ipv4 10.0.0.7 is not in 100.64.0.0/10`,
      ],
      [
        `UPDATE ${nodes} SET id = 1 WHERE id = 2`,
        `${nodes} row id=1 (name "bravo"): id 1 is also row id=1's`,
      ],
    ];
    const good = `INSERT INTO ${nodes} VALUES ${row(1, 'alpha', '100.64.0.1')}, ${row(2, 'bravo', '100.64.0.2')}`;
    for (const [edit, refusal] of cases) {
      // Committed: the coordinator reads through connections of its own.
      await c.run(`DELETE FROM ${nodes}; ${good}; ${edit}`);
      const msg = await failure(c, start);
      expect(msg, edit).toContain(`quackscale_serve: ${refusal}`);
      expect(await accepting(port), edit).toBe(false);
      expect(await rows(c, 'SELECT running FROM quackscale_coordinator_status()')).toEqual([
        { running: false },
      ]);
    }
  });
});
