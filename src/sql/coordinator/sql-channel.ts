// SQL for the coordinator, whose control server runs in the worker thread while its tables are
// in the user's database, which only the SQL thread can reach (@duckdb/node-api objects cannot
// cross threads). The worker sends statements over a MessagePort; the SQL thread runs them:
// - when it is idle, as the port's messages arrive;
// - when it is blocked waiting for the worker (NodeBridge.call: tailscale_up joining this
//   coordinator, quackscale_serve starting it), from that wait loop, which pump() serves. The
//   worker bumps the bridge's signal after each request, so that wait wakes up.
// Reads block the SQL thread on a connection of their own (BlockingSql.select, with DuckDB's
// error text). Writes run on another connection with connection.run, followed by a statement
// that writes a marker file: while the SQL thread is idle the promise reports success or
// DuckDB's error; while it is blocked, a promise cannot settle, and the marker is what says the
// write is done. A write that fails then is reported once the blocked call returns. This file
// is the worker's end (it loads no DuckDB); sql-service.ts is the SQL thread's.
import type { MessagePort } from 'node:worker_threads';
import type { JsonRow } from '../blocking-sql.js';
import { SIGNAL_SLOT } from '../protocol.js';

/** What the worker asks for. */
type SqlBody =
  | { op: 'select'; sql: string }
  /** Statements run together; `transaction` wraps them in BEGIN … COMMIT (not for ATTACH). */
  | { op: 'write'; sql: string; transaction: boolean };

export type SqlRequest = SqlBody & { id: number };

export type SqlReply = { id: number; ok: true; rows: JsonRow[] } | { id: number; ok: false; error: string };

/** A statement the coordinator's tables refused; `conflict` when another writer committed first. */
export class CoordinatorSqlError extends Error {
  constructor(
    message: string,
    readonly conflict: boolean,
  ) {
    super(message);
    this.name = 'CoordinatorSqlError';
  }
}

/** DuckDB's wording for a transaction that lost to a concurrent one (DuckLake, or DuckDB's own tables). */
function isConflict(message: string): boolean {
  return /Failed to commit DuckLake transaction|conflict/i.test(message);
}

/** The worker's end: one request at a time, in order, each answered by the SQL thread. */
export class SqlChannel {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: SqlReply) => void>();
  /** Requests run one after another, as the store issues them. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly port: MessagePort,
    private readonly signal: Int32Array,
  ) {
    port.on('message', (r: SqlReply) => {
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
    // The node and the servers keep the worker alive, not this port.
    port.unref();
  }

  private send(body: SqlBody): Promise<JsonRow[]> {
    const run = async (): Promise<JsonRow[]> => {
      const id = this.nextId++;
      const reply = new Promise<SqlReply>((resolve) => this.waiting.set(id, resolve));
      this.port.postMessage({ id, ...body } satisfies SqlRequest);
      // Wake the SQL thread if it is blocked in NodeBridge.call.
      Atomics.add(this.signal, SIGNAL_SLOT, 1);
      Atomics.notify(this.signal, SIGNAL_SLOT);
      const r = await reply;
      if (!r.ok) throw new CoordinatorSqlError(r.error, isConflict(r.error));
      return r.rows;
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The rows of one SELECT. */
  select(sql: string): Promise<JsonRow[]> {
    return this.send({ op: 'select', sql });
  }

  /** Runs statements (`;`-separated), in one transaction unless `transaction` is false. */
  async write(sql: string, transaction = true): Promise<void> {
    await this.send({ op: 'write', sql, transaction });
  }
}
