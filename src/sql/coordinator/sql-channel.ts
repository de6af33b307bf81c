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
// write is done. A write that fails then is reported once the blocked call returns.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type BlockingSql, BlockingSqlError, cleanDuckDBError, type JsonRow } from '../blocking-sql.js';
import { SIGNAL_SLOT } from '../protocol.js';
import { literal } from '../settings.js';

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
export function isConflict(message: string): boolean {
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

interface InFlight {
  dir: string;
  marker: string;
}

/** The SQL thread's end: runs the worker's statements on two connections of the user's database. */
export class SqlService {
  private readonly inFlight = new Map<number, InFlight>();

  /**
   * @param read a connection reserved for reads (BlockingSql)
   * @param write a connection reserved for writes
   * @param timeoutMs the bound on one read
   */
  constructor(
    private readonly port: MessagePort,
    private readonly read: BlockingSql,
    private readonly write: DuckDBConnection,
    private readonly timeoutMs: number,
  ) {
    port.on('message', (req: SqlRequest) => this.handle(req));
    port.unref();
  }

  private reply(r: SqlReply): void {
    this.port.postMessage(r);
  }

  private handle(req: SqlRequest): void {
    if (req.op === 'select') {
      try {
        this.reply({ id: req.id, ok: true, rows: this.read.select(req.sql, this.timeoutMs) });
      } catch (err) {
        const message = err instanceof BlockingSqlError ? err.message : String(err);
        this.reply({ id: req.id, ok: false, error: message });
      }
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'quackscale-coord-'));
    const marker = join(dir, 'done.csv');
    this.inFlight.set(req.id, { dir, marker });
    const body = req.transaction ? `BEGIN TRANSACTION; ${req.sql}; COMMIT` : req.sql;
    this.write.run(`${body}; COPY (SELECT 1 AS done) TO ${literal(marker)} (FORMAT csv)`).then(
      () => this.finish(req.id, undefined),
      (err: unknown) => {
        const message = cleanDuckDBError(err instanceof Error ? err.message : String(err));
        // A statement that failed inside BEGIN leaves the transaction open and aborted; a failed
        // COMMIT has already ended it. Only the first needs a ROLLBACK.
        const rollback = req.transaction
          ? this.write.run('ROLLBACK').then(
              () => undefined,
              (e: unknown) => {
                if (!/no transaction is active/.test(String(e))) throw e;
              },
            )
          : Promise.resolve();
        rollback.then(
          () => this.finish(req.id, message),
          (e: unknown) =>
            this.finish(req.id, `${message}; and the rollback failed: ${cleanDuckDBError(String(e))}`),
        );
      },
    );
  }

  private finish(id: number, error: string | undefined): void {
    const f = this.inFlight.get(id);
    if (!f) return; // already answered from the marker
    this.inFlight.delete(id);
    rmSync(f.dir, { recursive: true, force: true });
    this.reply(error === undefined ? { id, ok: true, rows: [] } : { id, ok: false, error });
  }

  /**
   * Serves the worker from a blocked SQL thread: runs the requests waiting on the port and
   * answers writes whose marker is there. Returns whether a write is still running, in which
   * case the caller should come back soon (no signal says when a marker appears).
   */
  pump(): boolean {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      this.handle(m.message as SqlRequest);
    }
    for (const [id, f] of this.inFlight) if (existsSync(f.marker)) this.finish(id, undefined);
    return this.inFlight.size > 0;
  }
}
