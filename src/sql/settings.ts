// Points DuckDB's proxy settings at the node's loopback proxy, and puts the user's back.
//
// A table function cannot run SQL on its own connection (that connection is busy running it),
// and @duckdb/node-api has no synchronous way to change a setting, so the change runs as a
// script on a second connection of the same database while the SQL thread waits. The thread
// cannot see a promise settle while it blocks, so the script's last statement writes a marker
// file, and the wait polls for it: once it exists, every statement before it has completed.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The three settings DuckDB's httpfs (and the quack extension through it) reads for a proxy. */
export interface ProxySettings {
  http_proxy: string;
  http_proxy_username: string;
  http_proxy_password: string;
}

/** The slice of a @duckdb/node-api connection used here. */
export interface SqlRunner {
  run(sql: string): Promise<unknown>;
}

const KEYS = ['http_proxy', 'http_proxy_username', 'http_proxy_password'] as const;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** An SQL string literal. */
export const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * Runs `script` on `runner`, then blocks this thread until it has finished (or `timeoutMs`
 * passes). `script` may write files into the directory it is given; `after` reads them before
 * the directory (private, 0700) is removed.
 */
function runAndWait<T>(
  runner: SqlRunner,
  script: (dir: string) => string,
  after: (dir: string) => T,
  timeoutMs: number,
): T {
  const dir = mkdtempSync(join(tmpdir(), 'quackscale-sql-'));
  try {
    const marker = join(dir, 'done.csv');
    // A failed script never writes the marker, so the wait below ends in a timeout error. Its
    // own error text is not reported: it could quote the proxy password.
    runner.run(`${script(dir)}; COPY (SELECT 1 AS done) TO ${literal(marker)} (FORMAT csv)`).catch(() => {});
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(marker)) {
      if (Date.now() > deadline) {
        throw new Error(`changing DuckDB's proxy settings did not finish in ${timeoutMs} ms`);
      }
      Atomics.wait(sleeper, 0, 0, 2);
    }
    return after(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Sets the proxy settings globally and returns the ones they replace. Blocks this thread; only
 * call it where the SQL thread may block (inside a table function) and with a connection that
 * is not the one running that function.
 */
export function swapProxySettings(runner: SqlRunner, next: ProxySettings, timeoutMs: number): ProxySettings {
  const select = KEYS.map((k) => `current_setting('${k}') AS ${k}`).join(', ');
  const sets = KEYS.map((k) => `SET GLOBAL ${k} = ${literal(next[k])}`).join('; ');
  return runAndWait(
    runner,
    (dir) => `COPY (SELECT ${select}) TO ${literal(join(dir, 'prev.json'))} (FORMAT json); ${sets}`,
    (dir) => {
      const row = JSON.parse(readFileSync(join(dir, 'prev.json'), 'utf8')) as Record<string, unknown>;
      const text = (k: string) => (typeof row[k] === 'string' ? (row[k] as string) : '');
      return {
        http_proxy: text('http_proxy'),
        http_proxy_username: text('http_proxy_username'),
        http_proxy_password: text('http_proxy_password'),
      };
    },
    timeoutMs,
  );
}

/** Puts back settings saved by {@link swapProxySettings}. Blocks like it. */
export function restoreProxySettings(runner: SqlRunner, saved: ProxySettings, timeoutMs: number): void {
  const sets = KEYS.map((k) => `SET GLOBAL ${k} = ${literal(saved[k])}`).join('; ');
  runAndWait(
    runner,
    () => sets,
    () => undefined,
    timeoutMs,
  );
}
