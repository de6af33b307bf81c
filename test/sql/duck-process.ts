// The test's side of duck-child.mjs: a DuckDB process with the quackscale functions, queried over
// IPC. Used by the SQL tests (embedded tailnet and Headscale) and by the SQL benchmark.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IpcChild } from '../interop/rig/ipc-child.js';

/** A row as @duckdb/node-api's getRowObjectsJson gives it (big integers as strings). */
export type Row = Record<string, unknown>;

/** An SQL statement that failed in the child; the statement itself is not quoted (it may hold a key). */
export class SqlError extends Error {
  constructor(
    readonly label: string,
    readonly sqlMessage: string,
  ) {
    super(`${label}: ${sqlMessage}`);
    this.name = 'SqlError';
  }
}

export interface DuckProcessOptions {
  /** The compiled `quackscale/sql` module (…/sql/index.js). */
  sqlModule: string;
  /** installQuackscale options (JSON-serialisable: derpHttp, endpoints, timeouts). */
  install?: Record<string, unknown>;
  /** Extra environment (e.g. QUACK_TAILNET_TOKEN). */
  env?: Record<string, string>;
  /** duck-child.mjs, when this module runs compiled elsewhere (the benchmark). */
  script?: string;
  /** Run in this network namespace (`ip netns exec`, which keeps the IPC channel's descriptor). */
  netns?: string;
}

type Reply = { id: number; rows: Row[]; ms: number } | { id: number; error: string };

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'duck-child.mjs');

/** One DuckDB process. Every call is answered in order; `exit()` ends it. */
export class DuckProcess {
  private readonly ipc: IpcChild<Reply>;

  private constructor(child: ChildProcess) {
    this.ipc = new IpcChild<Reply>(child, 'DuckDB process', (id, stderr) => ({
      id,
      error: `DuckDB process exited:\n${stderr}`,
    }));
  }

  /** Starts the process and waits until quackscale is installed. */
  static async start(opts: DuckProcessOptions): Promise<DuckProcess> {
    const env = {
      ...process.env,
      ...opts.env,
      QS_SQL_MODULE: opts.sqlModule,
      QS_INSTALL: JSON.stringify(opts.install ?? {}),
    };
    const stdio: ['ignore', 'inherit', 'pipe', 'ipc'] = ['ignore', 'inherit', 'pipe', 'ipc'];
    const script = opts.script ?? CHILD;
    const child = opts.netns
      ? spawn('ip', ['netns', 'exec', opts.netns, process.execPath, script], { env, stdio })
      : fork(script, [], { env, stdio });
    const p = new DuckProcess(child);
    await p.ipc.ready();
    return p;
  }

  /** Runs `sql` (`repeat` times, timed in the child); rejects with SqlError named by `label`. */
  async query(
    sql: string,
    opts: { label?: string; repeat?: number } = {},
  ): Promise<{ rows: Row[]; ms: number }> {
    const r = await this.ipc.request({ sql, repeat: opts.repeat ?? 1 });
    if ('error' in r) throw new SqlError(opts.label ?? sql.slice(0, 40), r.error);
    return r;
  }

  /** The rows of `sql`. */
  async rows(sql: string, label?: string): Promise<Row[]> {
    return (await this.query(sql, { label })).rows;
  }

  /** The one row of `sql`. */
  async row(sql: string, label?: string): Promise<Row> {
    const rows = await this.rows(sql, label);
    if (rows.length !== 1) throw new Error(`${label ?? sql}: ${rows.length} rows, expected 1`);
    return rows[0] as Row;
  }

  /** The error text of `sql`, which must fail. */
  async error(sql: string): Promise<string> {
    try {
      await this.query(sql);
    } catch (err) {
      if (err instanceof SqlError) return err.sqlMessage;
      throw err;
    }
    throw new Error(`expected an SQL error from: ${sql}`);
  }

  /**
   * Closes the database and the IPC channel, and resolves with the exit code once the process
   * has ended by itself (a node still up would keep it alive: then it is killed after `graceMs`
   * and the code is null).
   */
  exit(graceMs = 20_000): Promise<number | null> {
    return this.ipc.exit(graceMs);
  }
}

/** An SQL string literal. */
export const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
