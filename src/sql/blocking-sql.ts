// SQL that a table function runs on a second connection of its own database, while the SQL
// thread waits for it: DuckDB calls table functions synchronously, a function cannot run SQL on
// the connection that is running it, and the blocked thread never sees a promise settle.
//
// Two ways, because @duckdb/node-api prepares statements only asynchronously:
// - select(): one statement prepared ahead of time, `COPY (FROM query($1)) TO $2`, run with
//   the pending-result API, whose tasks execute on this thread. DuckDB's query() table function
//   runs any SELECT given as a string, and COPY writes its rows to a file read back here; an
//   error ends the task loop with DuckDB's own text.
// - exec(): any statements (DDL and SET cannot go through query()), sent with connection.run
//   and ended by a statement that writes a marker file, which this thread polls for. A failure
//   there shows only as the marker never appearing, so callers check beforehand what could
//   make it fail.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DuckDBConnection,
  type DuckDBPendingResult,
  DuckDBPendingResultState,
  type DuckDBPreparedStatement,
} from '@duckdb/node-api';
import { literal } from './settings.js';

/** A row as JSON gives it back: DuckDB's COPY (FORMAT json) writes one object per line. */
export type JsonRow = Record<string, unknown>;

/** A statement that failed or did not finish in time. The statement itself is never quoted. */
export class BlockingSqlError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = 'BlockingSqlError';
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const pause = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

/**
 * DuckDB's error text without what is only noise here: node-api's pending-task prefix and the
 * `LINE 1: …` excerpts of the statement (which would quote the SQL, and so any literal in it).
 */
export function cleanDuckDBError(text: string): string {
  const start = text.replace(/^Failure running pending result task: /, '');
  const at = start.search(/\n\s*LINE \d+:/);
  return (at === -1 ? start : start.slice(0, at)).trim();
}

/** Runs SQL on a connection reserved for it, blocking the calling thread until it is done. */
export class BlockingSql {
  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly copy: DuckDBPreparedStatement,
  ) {}

  /** Prepares the statement select() uses; `connection` must not be used for anything else. */
  static async open(connection: DuckDBConnection): Promise<BlockingSql> {
    return new BlockingSql(connection, await connection.prepare('COPY (FROM query($1)) TO $2 (FORMAT json)'));
  }

  private start(sql: string, out: string): DuckDBPendingResult {
    this.copy.bind([sql, out]);
    return this.copy.start();
  }

  /** The rows of one SELECT. Throws BlockingSqlError with DuckDB's text if it fails. */
  select(sql: string, timeoutMs: number): JsonRow[] {
    return withDir((dir) => {
      const out = join(dir, 'rows.json');
      const deadline = Date.now() + timeoutMs;
      let pending: DuckDBPendingResult | undefined;
      for (;;) {
        let state: DuckDBPendingResultState;
        try {
          // start() binds query()'s argument, so errors in planning the SELECT show here.
          pending ??= this.start(sql, out);
          state = pending.runTask();
        } catch (err) {
          throw new BlockingSqlError(
            cleanDuckDBError(err instanceof Error ? err.message : String(err)),
            false,
          );
        }
        if (state === DuckDBPendingResultState.RESULT_READY) break;
        if (Date.now() > deadline) {
          this.connection.interrupt();
          throw new BlockingSqlError(`the query did not finish within ${timeoutMs} ms`, true);
        }
        // The other states mean DuckDB's own threads hold the work: give them the core.
        if (state === DuckDBPendingResultState.NO_TASKS_AVAILABLE) pause(1);
      }
      // A query with no rows may leave no file at all.
      if (!existsSync(out)) return [];
      const text = readFileSync(out, 'utf8');
      return text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as JsonRow);
    });
  }

  /**
   * Runs `script` (statements separated by `;`) and waits for its last statement. DuckDB's
   * error, if any, cannot be read while this thread blocks; it is dropped (the script may hold
   * a secret) and the wait ends in a BlockingSqlError after `timeoutMs`.
   */
  exec(script: string, timeoutMs: number): void {
    withDir((dir) => {
      const marker = join(dir, 'done.csv');
      this.connection
        .run(`${script}; COPY (SELECT 1 AS done) TO ${literal(marker)} (FORMAT csv)`)
        .catch(() => undefined);
      const deadline = Date.now() + timeoutMs;
      while (!existsSync(marker)) {
        if (Date.now() > deadline) {
          // Stop it rather than let it finish unseen after the caller has reported a failure.
          this.connection.interrupt();
          throw new BlockingSqlError(`the statements did not finish within ${timeoutMs} ms`, true);
        }
        pause(2);
      }
    });
  }
}

/** Runs `f` with a fresh private (0700) directory, removed afterwards. */
function withDir<T>(f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'quackscale-sql-'));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
