// BlockingSql: SQL on a second connection that the calling thread waits for without awaiting —
// rows and DuckDB's own error text from select(), a bounded wait for both, and exec()'s marker.
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockingSql, BlockingSqlError, cleanDuckDBError } from '../../src/sql/blocking-sql.js';

const open: DuckDBInstance[] = [];

async function setup(): Promise<{ main: DuckDBConnection; sql: BlockingSql }> {
  const instance = await DuckDBInstance.create(':memory:');
  open.push(instance);
  return { main: await instance.connect(), sql: await BlockingSql.open(await instance.connect()) };
}

function thrown(f: () => unknown): BlockingSqlError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(BlockingSqlError);
    return err as BlockingSqlError;
  }
  throw new Error('expected a BlockingSqlError');
}

describe('BlockingSql', () => {
  afterEach(() => {
    for (const i of open.splice(0)) i.closeSync();
  });

  it('select returns the rows, typed as JSON gives them, and none for an empty result', async () => {
    const { sql } = await setup();
    expect(sql.select("SELECT range AS i, 'x' || range AS s, [range] AS l FROM range(3)", 10_000)).toEqual([
      { i: 0, s: 'x0', l: [0] },
      { i: 1, s: 'x1', l: [1] },
      { i: 2, s: 'x2', l: [2] },
    ]);
    expect(sql.select('SELECT 1 AS one WHERE false', 10_000)).toEqual([]);
  });

  it("select reports DuckDB's error without quoting the statement, and the connection stays usable", async () => {
    const { sql } = await setup();
    const err = thrown(() => sql.select("SELECT 'secret-literal' FROM no_such_table", 10_000));
    expect(err.timedOut).toBe(false);
    expect(err.message).toMatch(/^Catalog Error: Table with name no_such_table does not exist/);
    expect(err.message).not.toContain('secret-literal');
    expect(err.message).not.toContain('LINE');
    expect(sql.select('SELECT 2 AS two', 10_000)).toEqual([{ two: 2 }]);
  });

  it('a select that outlives its bound is interrupted, and the next one runs', async () => {
    const { sql } = await setup();
    // Hours of work: only the bound can end it.
    const err = thrown(() => sql.select('SELECT count(*) FROM range(1000000000000)', 200));
    expect(err.timedOut).toBe(true);
    expect(err.message).toBe('the query did not finish within 200 ms');
    expect(sql.select('SELECT 3 AS three', 10_000)).toEqual([{ three: 3 }]);
  });

  it('exec runs every statement of a script; the other connection sees the result', async () => {
    const { main, sql } = await setup();
    sql.exec('CREATE SCHEMA s; CREATE TABLE s.t AS SELECT 5 AS v; CREATE VIEW s.w AS FROM s.t', 10_000);
    expect((await main.runAndReadAll('FROM s.w')).getRowObjectsJson()).toEqual([{ v: 5 }]);
  });

  it('a failing exec ends in a timeout that does not quote the script', async () => {
    const { main, sql } = await setup();
    const err = thrown(() => sql.exec("CREATE TABLE a (x INT); SELECT 'secret-literal' FROM nowhere", 300));
    expect(err.timedOut).toBe(true);
    expect(err.message).toBe('the statements did not finish within 300 ms');
    // Statements before the failing one ran, and the connection serves the next call.
    expect((await main.runAndReadAll('SELECT count(*) AS n FROM a')).getRowObjectsJson()).toEqual([
      { n: '0' },
    ]);
    sql.exec('CREATE TABLE b (x INT)', 10_000);
    expect(sql.select('SELECT count(*) AS n FROM b', 10_000)).toEqual([{ n: 0 }]);
  });

  it('cleanDuckDBError drops the pending-task prefix and the LINE excerpt', () => {
    expect(
      cleanDuckDBError(
        'Failure running pending result task: Invalid Input Error: Authentication failed\n\nLINE 1: COPY (FROM query($1))\n   ^',
      ),
    ).toBe('Invalid Input Error: Authentication failed');
    expect(cleanDuckDBError('Catalog Error: x\nDid you mean "y"?')).toBe(
      'Catalog Error: x\nDid you mean "y"?',
    );
  });
});
