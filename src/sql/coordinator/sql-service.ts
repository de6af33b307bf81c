// The SQL thread's end of the coordinator's SQL (sql-channel.ts says how the two ends meet).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type BlockingSql, BlockingSqlError, cleanDuckDBError } from '../blocking-sql.js';
import { literal } from '../settings.js';
import type { SqlReply, SqlRequest } from './sql-channel.js';

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
