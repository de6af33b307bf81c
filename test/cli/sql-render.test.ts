// The result printer of `quackscale sql` against what DuckDB's own CLI prints. The expected
// texts were recorded from the duckdb 1.5.5 CLI (PyPI `duckdb-cli` 1.5.5, `duckdb -c '…'` with
// stdout not a terminal; footer lines without their trailing spaces) for the same queries, run
// here through @duckdb/node-api 1.5.5.
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayWidth, renderTable, type TextTable } from '../../src/cli/sql-render.js';
import { formatDouble, formatFloat, nestedString, tableFromReader } from '../../src/cli/sql-values.js';

let instance: DuckDBInstance;
const query = async (sql: string, withJson = false): Promise<TextTable> => {
  const c = await instance.connect();
  try {
    return tableFromReader(await c.runAndReadAll(sql), withJson);
  } finally {
    c.closeSync();
  }
};

beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
});
afterAll(() => instance?.closeSync());

describe('duckbox, as the DuckDB CLI prints it', () => {
  it('names and types centred, numbers right, text left, NULL, lists and dates', async () => {
    const t = await query(
      `SELECT 42 AS answer, 'hello' AS s, NULL::INT AS n, 3.5::DOUBLE AS d, [1,2] AS l, DATE '2024-01-01' AS dt, true AS b`,
    );
    expect(renderTable(t, 'duckbox')).toBe(
      [
        '┌────────┬─────────┬───────┬────────┬─────────┬────────────┬─────────┐',
        '│ answer │    s    │   n   │   d    │    l    │     dt     │    b    │',
        '│ int32  │ varchar │ int32 │ double │ int32[] │    date    │ boolean │',
        '├────────┼─────────┼───────┼────────┼─────────┼────────────┼─────────┤',
        '│     42 │ hello   │  NULL │    3.5 │ [1, 2]  │ 2024-01-01 │ true    │',
        '└────────┴─────────┴───────┴────────┴─────────┴────────────┴─────────┘',
        '',
      ].join('\n'),
    );
  });

  it('wide characters, bigints and decimals', async () => {
    const t = await query(`SELECT 'aé中' AS x, 123456789012::BIGINT AS big, -1.25::DECIMAL(10,2) AS dec`);
    expect(renderTable(t, 'duckbox')).toBe(
      [
        '┌─────────┬──────────────┬───────────────┐',
        '│    x    │     big      │      dec      │',
        '│ varchar │    int64     │ decimal(10,2) │',
        '├─────────┼──────────────┼───────────────┤',
        '│ aé中    │ 123456789012 │         -1.25 │',
        '└─────────┴──────────────┴───────────────┘',
        '',
      ].join('\n'),
    );
  });

  it('a long result: the first and last 20 rows, dots between, and the row count under the box', async () => {
    const lines = renderTable(await query('SELECT * FROM range(100)'), 'duckbox')
      .trimEnd()
      .split('\n');
    expect(lines.slice(0, 5)).toEqual([
      '┌────────────┐',
      '│   range    │',
      '│   int64    │',
      '├────────────┤',
      '│          0 │',
    ]);
    expect(lines.slice(23, 27)).toEqual([
      '│         19 │',
      '│          · │',
      '│          · │',
      '│          · │',
    ]);
    expect(lines.slice(27, 28)).toEqual(['│         80 │']);
    expect(lines.slice(46)).toEqual(['│         99 │', '└────────────┘', '   100 rows', '  (40 shown)']);
  });

  it('an empty result: no separator, "0 rows" under the box', async () => {
    expect(renderTable(await query('SELECT 1 WHERE false'), 'duckbox')).toBe(
      ['┌────────┐', '│   1    │', '│ int32  │', '└────────┘', '  0 rows', ''].join('\n'),
    );
  });

  it('twelve rows of two columns: every row, then the count', async () => {
    const lines = renderTable(await query('SELECT range AS a, range*2 AS b FROM range(12)'), 'duckbox').split(
      '\n',
    );
    expect(lines[4]).toBe('│     0 │     0 │');
    expect(lines[15]).toBe('│    11 │    22 │');
    expect(lines.slice(16)).toEqual(['└───────┴───────┘', '     12 rows', '']);
  });

  it('escapes control characters and shows NULL for nulls inside lists', async () => {
    const t = await query(`SELECT 'tab\there' AS x, [NULL, 'x'] AS ln, 'NULL' AS s`);
    expect(renderTable(t, 'duckbox').split('\n')[4]).toBe('│ tab\\there │ [NULL, x] │ NULL    │');
  });

  it('narrows wide columns and elides middle ones to fit the width', () => {
    const columns = Array.from({ length: 12 }, (_, i) => ({
      name: `column_${i}`,
      type: 'varchar',
      align: 'left' as const,
    }));
    const t: TextTable = { columns, rows: [columns.map((_, i) => `value number ${i} `.repeat(3))] };
    const lines = renderTable(t, 'duckbox', { maxWidth: 100 }).trimEnd().split('\n');
    for (const l of lines.slice(0, 6)) expect(displayWidth(l)).toBeLessThanOrEqual(100);
    expect(lines[1]).toContain('│ … │');
    expect(lines[4]).toContain('…');
    expect(lines.at(-1)?.trim()).toMatch(/^12 columns \(\d+ shown\)$/);
  });
});

describe('values as DuckDB casts them to VARCHAR', () => {
  it('matches the CLI for doubles, floats, nested types, intervals and blobs', async () => {
    const t = await query(
      `SELECT ['a','b'] AS l, {'x': 1, 'y': 'z'} AS s, map {'k': 1} AS m, 3.14::FLOAT AS f, 0.1+0.2 AS d,
              1e20::DOUBLE AS big, TIMESTAMP '2024-01-01 10:00:00' AS ts, 'ab'::BLOB AS bl, INTERVAL 3 DAY AS iv,
              1::HUGEINT AS h, 1e-7::DOUBLE AS small, 'nan'::DOUBLE AS nan, ['a,b', 'it''s'] AS q`,
    );
    expect(t.columns.map((c) => c.type)).toEqual([
      'varchar[]',
      'struct(x integer, y varchar)',
      'map(varchar, integer)',
      'float',
      'decimal(3,1)',
      'double',
      'timestamp',
      'blob',
      'interval',
      'int128',
      'double',
      'double',
      'varchar[]',
    ]);
    expect(t.rows[0]).toEqual([
      '[a, b]',
      "{'x': 1, 'y': z}",
      '{k=1}',
      '3.14',
      '0.3',
      '1e+20',
      '2024-01-01 10:00:00',
      'ab',
      '3 days',
      '1',
      '1e-07',
      'nan',
      "['a,b', 'it\\'s']",
    ]);
  });

  it('formats doubles like DuckDB (shortest digits, exponent outside 1e-4..1e16)', () => {
    const cases: [number, string][] = [
      [100, '100.0'],
      [1e15, '1000000000000000.0'],
      [1e16, '1e+16'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [-0, '-0.0'],
      [123456789.125, '123456789.125'],
      [Number.POSITIVE_INFINITY, 'inf'],
      [Number.NEGATIVE_INFINITY, '-inf'],
      [1.5e300, '1.5e+300'],
      [2.5e-300, '2.5e-300'],
      [12345678901234568, '1.2345678901234568e+16'], // DuckDB: 12345678901234567::DOUBLE
    ];
    for (const [x, s] of cases) expect(formatDouble(x)).toBe(s);
    expect(formatFloat(Math.fround(3.14))).toBe('3.14');
    expect(formatFloat(Math.fround(1e10))).toBe('10000000000.0');
    expect(formatFloat(Math.fround(0.1))).toBe('0.1');
  });

  it('quotes nested strings exactly where DuckDB does', () => {
    for (const c of '"\'(),:=[]{}') expect(nestedString(`a${c}b`)).toMatch(/^'/);
    for (const c of '!#$%&*+-./;<>?@\\^_`|~ ') expect(nestedString(`a${c}b`)).toBe(`a${c}b`);
    expect(['NULL', 'null', '', ' ', 'a '].map(nestedString)).toEqual([
      "'NULL'",
      "'null'",
      "''",
      "' '",
      "'a '",
    ]);
    expect(nestedString("it's")).toBe("'it\\'s'");
  });
});

describe('the other modes', () => {
  it('line: names right-aligned, a blank line between rows', async () => {
    const t = await query(`SELECT range AS a, 'x' AS long_name FROM range(2)`);
    expect(renderTable(t, 'line')).toBe('        a = 0\nlong_name = x\n\n        a = 1\nlong_name = x\n');
  });

  it('csv: RFC 4180 quoting, NULL as NULL', async () => {
    const t = await query(`SELECT 1 AS a, 'x,y' AS bb, NULL AS c, 'say "hi"' AS d`);
    expect(renderTable(t, 'csv')).toBe('a,bb,c,d\n1,"x,y",NULL,"say ""hi"""\n');
  });

  it('json: one object per row, numbers bare, lists and structs as JSON', async () => {
    const t = await query(
      `SELECT range AS a, 'x' AS s, NULL AS n, [1,2] AS l, {'k': 1} AS st FROM range(2)`,
      true,
    );
    expect(renderTable(t, 'json')).toBe(
      '[{"a":0,"s":"x","n":null,"l":[1,2],"st":{"k":1}},\n{"a":1,"s":"x","n":null,"l":[1,2],"st":{"k":1}}]\n',
    );
    expect(JSON.parse(renderTable(await query('SELECT 1 WHERE false', true), 'json'))).toEqual([]);
  });
});
