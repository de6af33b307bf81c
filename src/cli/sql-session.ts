/**
 * Runs SQL and dot commands for `quackscale sql` and prints what DuckDB's CLI would: a result
 * in the current output mode for each statement that returns rows, nothing for the others
 * (CREATE, INSERT, SET…), errors on stderr. One connection, one statement at a time.
 */
import { readFile } from 'node:fs/promises';
import { type DuckDBConnection, ResultReturnType, StatementType } from '@duckdb/node-api';
import { missingExtensionHint } from '../sql/extensions.js';
import { parseDotCommand } from './sql-input.js';
import { displayWidth, OUTPUT_MODES, type OutputMode, renderTable } from './sql-render.js';
import { tableFromReader } from './sql-values.js';

/** Where a session prints, and how wide the terminal is (undefined: not a terminal). */
export interface SessionIO {
  out(text: string): void;
  err(text: string): void;
  columns(): number | undefined;
}

export type DotResult = 'ok' | 'error' | 'quit';

export const DOT_HELP = `.exit ?CODE?             Exit this program (also .quit, Ctrl-D)
.help                    Show this message
.maxrows COUNT           Rows shown in duckbox mode before the middle is elided (default 40)
.mode MODE               Output mode: duckbox (default), line, csv or json
.nullvalue STRING        Text shown for NULL (default NULL)
.quit                    Exit this program
.read FILE               Run the SQL in FILE
.tables ?PATTERN?        List tables and views, optionally those matching a LIKE pattern
.timer on|off            Print how long each statement took
`;

/** DuckDB prefixes parse errors from statement extraction with this; its CLI does not. */
const EXTRACT_PREFIX = 'Failed to extract statements: ';

export class SqlSession {
  mode: OutputMode = 'duckbox';
  maxRows = 40;
  nullValue = 'NULL';
  timer = false;
  private running = false;
  /** The exit code `.exit CODE` asked for. */
  exitCode = 0;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly io: SessionIO,
  ) {}

  /**
   * Runs every statement in `sql`, printing each result. Stops at the first error (printed on
   * stderr) and returns false, as `duckdb -c` does.
   */
  async runSql(sql: string): Promise<boolean> {
    this.running = true;
    try {
      const extracted = await this.connection.extractStatements(sql);
      for (let i = 0; i < extracted.count; i++) {
        const started = performance.now();
        const prepared = await extracted.prepare(i);
        const reader = await prepared.runAndReadAll();
        if (reader.returnType === ResultReturnType.QUERY_RESULT) {
          if (reader.statementType === StatementType.EXPLAIN) {
            // DuckDB's CLI prints a plan as its text, not as a two-column table.
            for (const row of reader.getRows()) this.io.out(`${String(row[1] ?? '')}\n`);
          } else {
            const table = tableFromReader(reader, this.mode === 'json');
            const width = this.io.columns();
            this.io.out(
              renderTable(table, this.mode, {
                maxRows: this.maxRows,
                maxWidth: width,
                nullValue: this.nullValue,
              }),
            );
          }
        }
        if (this.timer)
          this.io.out(`Run Time (s): real ${((performance.now() - started) / 1000).toFixed(3)}\n`);
      }
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.io.err(`${message.startsWith(EXTRACT_PREFIX) ? message.slice(EXTRACT_PREFIX.length) : message}\n`);
      // DuckDB's download error for httpfs, quack or ducklake: name the command that fetches them.
      const hint = missingExtensionHint(message);
      if (hint) this.io.err(`${hint}\n`);
      return false;
    } finally {
      this.running = false;
    }
  }

  /** Whether a statement is running (Ctrl-C then interrupts it rather than clearing the input). */
  get busy(): boolean {
    return this.running;
  }

  /** Asks DuckDB to stop the running statement; it ends with an "Interrupted" error. */
  interrupt(): void {
    if (this.running) this.connection.interrupt();
  }

  /** Runs one dot command line. */
  async dotCommand(line: string): Promise<DotResult> {
    const cmd = parseDotCommand(line);
    if (!cmd) return 'error';
    const { name, args } = cmd;
    switch (name) {
      case 'quit':
      case 'q':
        return 'quit';
      case 'exit':
        this.exitCode = args[0] !== undefined && /^\d+$/.test(args[0]) ? Number(args[0]) : 0;
        return 'quit';
      case 'help':
        this.io.out(DOT_HELP);
        return 'ok';
      case 'mode': {
        const mode = args[0] === 'box' ? 'duckbox' : args[0];
        if (mode === undefined) {
          this.io.out(`current output mode: ${this.mode}\n`);
          return 'ok';
        }
        if (!(OUTPUT_MODES as readonly string[]).includes(mode)) {
          return this.fail(`.mode: unknown mode '${mode}' (one of ${OUTPUT_MODES.join(', ')})`);
        }
        this.mode = mode as OutputMode;
        return 'ok';
      }
      case 'maxrows': {
        const n = Number(args[0]);
        if (!Number.isInteger(n) || n < 1) return this.fail('.maxrows: want a positive number');
        this.maxRows = n;
        return 'ok';
      }
      case 'nullvalue':
        this.nullValue = args[0] ?? '';
        return 'ok';
      case 'timer':
        if (args[0] !== 'on' && args[0] !== 'off') return this.fail('.timer: want on or off');
        this.timer = args[0] === 'on';
        return 'ok';
      case 'tables':
        return this.tables(args[0]);
      case 'read': {
        if (!args[0]) return this.fail('.read: want a file name');
        let sql: string;
        try {
          sql = await readFile(args[0], 'utf8');
        } catch (err) {
          return this.fail(
            `.read: cannot read ${args[0]}: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        return (await this.runSql(sql)) ? 'ok' : 'error';
      }
      default:
        return this.fail(`Unknown command '.${name}'. Run '.help' for the commands.`);
    }
  }

  private fail(message: string): DotResult {
    this.io.err(`${message}\n`);
    return 'error';
  }

  /** `.tables`: table and view names in columns, qualified when outside the current schema. */
  private async tables(pattern: string | undefined): Promise<DotResult> {
    const like = pattern === undefined ? '' : ` WHERE name LIKE '${pattern.replace(/'/g, "''")}'`;
    let names: string[];
    try {
      const reader = await this.connection.runAndReadAll(
        `SELECT name FROM (SELECT CASE WHEN database_name = current_database() AND schema_name = current_schema() ` +
          `THEN table_name ELSE database_name || '.' || schema_name || '.' || table_name END AS name ` +
          `FROM duckdb_tables() WHERE NOT internal UNION ALL ` +
          `SELECT CASE WHEN database_name = current_database() AND schema_name = current_schema() ` +
          `THEN view_name ELSE database_name || '.' || schema_name || '.' || view_name END ` +
          `FROM duckdb_views() WHERE NOT internal)${like} ORDER BY name`,
      );
      names = reader.getRows().map((r) => String(r[0]));
    } catch (err) {
      return this.fail(err instanceof Error ? err.message : String(err));
    }
    if (names.length === 0) return 'ok';
    const width = Math.max(...names.map(displayWidth)) + 2;
    const perLine = Math.max(1, Math.floor((this.io.columns() ?? 80) / width));
    const lines: string[] = [];
    for (let i = 0; i < names.length; i += perLine) {
      lines.push(
        names
          .slice(i, i + perLine)
          .map((n) => n + ' '.repeat(width - displayWidth(n)))
          .join('')
          .trimEnd(),
      );
    }
    this.io.out(`${lines.join('\n')}\n`);
    return 'ok';
  }
}
