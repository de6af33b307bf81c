// A runner for the subset of DuckDB's sqllogictest format that extension test files use, so that
// such a file (the original QuackScale's test/sql/quackscale.test is one) runs against our SQL
// layer unchanged: `statement ok`, `statement error` (with the expected text after `----`, matched
// as a substring, as DuckDB's runner does), `query <types>` with its expected rows, `require`, and
// `#` comments. `require quackscale` installs our functions on the connection at that point, so
// the statements before it see a DuckDB without them, as in the original. Any other directive is
// an error rather than a silent skip: a file this runner cannot read must not pass.
import { type DuckDBConnection, DuckDBListValue, type DuckDBValue } from '@duckdb/node-api';

/** One record of a test file, with the line it starts on (for messages). */
export type LogicRecord =
  | { kind: 'statement'; line: number; expect: 'ok' }
  | { kind: 'statement'; line: number; expect: 'error'; sql: string; message: string | undefined }
  | { kind: 'query'; line: number; types: string; sql: string; rows: string[][] }
  | { kind: 'require'; line: number; extension: string };

/** What running one record gave, for the test to assert on. */
export interface LogicOutcome {
  line: number;
  sql: string;
  passed: boolean;
  /** Why it failed (what was expected and what came instead). */
  detail: string;
}

/** A file the runner cannot read; names the line. */
export class LogicSyntaxError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'LogicSyntaxError';
  }
}

type Parsed = LogicRecord & { sql: string };

/** Splits a test file into records. */
export function parseLogicTest(text: string, file = '<test>'): Parsed[] {
  const lines = text.split('\n');
  const out: Parsed[] = [];
  let i = 0;
  /** Lines up to the next blank line (or `----`), from i. */
  const block = (): string[] => {
    const got: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '' && lines[i]!.trim() !== '----') got.push(lines[i++]!);
    return got;
  };
  while (i < lines.length) {
    const raw = lines[i]!;
    const head = raw.trim();
    const line = i + 1;
    i++;
    if (head === '' || head.startsWith('#')) continue;
    const [word, arg, ...rest] = head.split(/\s+/);
    if (word === 'require') {
      if (!arg) throw new LogicSyntaxError(file, line, 'require wants an extension name');
      out.push({ kind: 'require', line, extension: arg, sql: '' });
      continue;
    }
    if (word === 'statement' && (arg === 'ok' || arg === 'error') && rest.length === 0) {
      const sql = block().join('\n');
      if (sql === '') throw new LogicSyntaxError(file, line, 'statement without SQL');
      if (arg === 'ok') {
        out.push({ kind: 'statement', line, expect: 'ok', sql });
        continue;
      }
      let message: string | undefined;
      if (lines[i]?.trim() === '----') {
        i++;
        message = block().join('\n');
      }
      out.push({ kind: 'statement', line, expect: 'error', sql, message });
      continue;
    }
    if (word === 'query' && arg && /^[ITRB]+$/.test(arg) && rest.length === 0) {
      const sql = block().join('\n');
      if (lines[i]?.trim() !== '----') throw new LogicSyntaxError(file, line, 'query without ----');
      i++;
      const rows = block().map((l) => l.split('\t'));
      for (const r of rows) {
        if (r.length !== arg.length) {
          throw new LogicSyntaxError(file, line, `a row has ${r.length} values for ${arg.length} columns`);
        }
      }
      out.push({ kind: 'query', line, types: arg, sql, rows });
      continue;
    }
    throw new LogicSyntaxError(file, line, `unsupported directive: ${head}`);
  }
  return out;
}

/** A value as DuckDB's sqllogictest prints it: NULL, true/false, lists as [a, b]. */
export function renderValue(v: DuckDBValue): string {
  if (v === null) return 'NULL';
  if (v instanceof DuckDBListValue) return `[${v.items.map(renderValue).join(', ')}]`;
  return String(v);
}

/**
 * Runs the records on `connection` in order. `requireExtension` is called for each `require`
 * and says whether the extension is there; a missing one ends the file (as DuckDB's runner
 * skips the rest), reported as a failure so that a test cannot pass by skipping.
 */
export async function runLogicTest(
  connection: DuckDBConnection,
  records: readonly Parsed[],
  requireExtension: (name: string) => Promise<boolean>,
): Promise<LogicOutcome[]> {
  const out: LogicOutcome[] = [];
  for (const r of records) {
    if (r.kind === 'require') {
      const ok = await requireExtension(r.extension);
      out.push({
        line: r.line,
        sql: `require ${r.extension}`,
        passed: ok,
        detail: ok ? '' : 'not available',
      });
      if (!ok) break;
      continue;
    }
    let error: string | undefined;
    let rows: string[][] = [];
    try {
      rows = (await connection.runAndReadAll(r.sql)).getRows().map((row) => row.map(renderValue));
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    if (r.kind === 'statement' && r.expect === 'ok') {
      out.push({ line: r.line, sql: r.sql, passed: error === undefined, detail: error ?? '' });
    } else if (r.kind === 'statement') {
      const passed = error !== undefined && (r.message === undefined || error.includes(r.message));
      const detail = error === undefined ? 'succeeded, expected an error' : `error ${JSON.stringify(error)}`;
      out.push({
        line: r.line,
        sql: r.sql,
        passed,
        detail: passed ? '' : `${detail}; expected ${r.message}`,
      });
    } else if (error !== undefined) {
      out.push({ line: r.line, sql: r.sql, passed: false, detail: `error ${JSON.stringify(error)}` });
    } else {
      const got = rows.map((row) => row.join('\t')).join('\n');
      const want = r.rows.map((row) => row.join('\t')).join('\n');
      out.push({
        line: r.line,
        sql: r.sql,
        passed: got === want,
        detail: got === want ? '' : `got\n${got}\nexpected\n${want}`,
      });
    }
  }
  return out;
}
