// sqllogictest files against our SQL layer: ours (test/sql/logic/*.test) always, and the original
// QuackScale's test/sql/quackscale.test when QUACKSCALE_ORIGINAL_TEST names it (CI passes a copy
// taken from the original's repository; it is not vendored here). `require quackscale` installs
// our functions, so the file's first statement meets a DuckDB without them, as in the original.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { installQuackscale } from '../../src/sql/index.js';
import { parseLogicTest, runLogicTest } from './sqllogictest.js';

const DIR = join(__dirname, 'logic');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.test'))
  .map((f) => join(DIR, f));
const original = process.env.QUACKSCALE_ORIGINAL_TEST;

async function run(file: string) {
  const instance = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const connection = await instance.connect();
  const saved = { a: process.env.QUACK_TAILNET_TOKEN, b: process.env.QUACK_TOKEN };
  // quack_token()'s error case needs neither variable set.
  delete process.env.QUACK_TAILNET_TOKEN;
  delete process.env.QUACK_TOKEN;
  try {
    const records = parseLogicTest(readFileSync(file, 'utf8'), file);
    return await runLogicTest(connection, records, async (name) => {
      if (name !== 'quackscale') return false;
      await installQuackscale(connection, { instance, extensions: false });
      return true;
    });
  } finally {
    if (saved.a !== undefined) process.env.QUACK_TAILNET_TOKEN = saved.a;
    if (saved.b !== undefined) process.env.QUACK_TOKEN = saved.b;
    connection.closeSync();
    instance.closeSync();
  }
}

describe('sqllogictest files', () => {
  for (const file of [...files, ...(original ? [original] : [])]) {
    it(`${file.replace(`${process.cwd()}/`, '')}: every record passes`, async () => {
      const outcomes = await run(file);
      const failed = outcomes.filter((o) => !o.passed).map((o) => `line ${o.line}: ${o.sql}\n  ${o.detail}`);
      expect(failed).toEqual([]);
      // Every record ran: a file that stops early (a failed require) has failed above.
      expect(outcomes.length).toBe(parseLogicTest(readFileSync(file, 'utf8')).length);
    }, 60_000);
  }
});
