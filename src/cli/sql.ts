/**
 * `quackscale sql`: a DuckDB shell with QuackScale's functions installed — the counterpart of
 * `duckdb -unsigned` followed by `LOAD quackscale`. DuckDB's own httpfs, quack and ducklake
 * extensions are loaded by path from the cache of `quackscale extensions fetch` (or
 * `--extensions DIR` / env QUACKSCALE_EXTENSIONS); without them it says so and names that
 * command, and `INSTALL`/`LOAD` work as usual.
 * On exit the tailnet node is taken down, so the process ends even after `tailscale_up`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { requireDuckDB } from '../sql/duckdb-peer.js';
import { parseCommand } from './command.js';
import { UsageError } from './log.js';
import { SQL } from './spec/sql.js';
import type { SessionIO } from './sql-session.js';

/** Runs `quackscale sql`; resolves with the exit status. */
export async function sqlCommand(argv: string[]): Promise<number> {
  const args = parseCommand(SQL, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length > 1) throw new UsageError(`one DATABASE at most, got ${positionals.join(' ')}`);
  if (values.extensions && values['no-extensions'])
    throw new UsageError('--extensions and --no-extensions conflict');
  const commands = values.command ?? [];
  const interactive = commands.length === 0 && process.stdin.isTTY === true;
  const io: SessionIO = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    columns: () => (process.stdout.isTTY ? process.stdout.columns : undefined),
  };

  // Loaded here, not at the top: DuckDB's native module is large (and an optional peer), and
  // --help needs none of it. Without it the command says how to install it.
  const { DuckDBInstance } = await requireDuckDB('quackscale sql');
  const [{ installQuackscale }, { SqlSession }, { runShell }] = await Promise.all([
    import('../sql/index.js'),
    import('./sql-session.js'),
    import('./sql-shell.js'),
  ]);
  const database = positionals[0] ?? ':memory:';
  const instance = await DuckDBInstance.create(database);
  const connection = await instance.connect();
  try {
    const { loaded } = await installQuackscale(connection, {
      instance,
      controlURL: values['control-url'],
      stateDir: values['state-dir'],
      derpHttp: values['derp-http'] || undefined,
      extensions: values['no-extensions'] ? false : (values.extensions ?? true),
      onWarning: (m) => io.err(`warning: ${m}\n`),
    });
    const session = new SqlSession(connection, io);
    if (commands.length > 0) {
      for (const sql of commands) {
        const ok = sql.trim().startsWith('.')
          ? await session.dotCommand(sql).then((r) => r !== 'error')
          : await session.runSql(sql);
        if (!ok) return 1;
      }
      return session.exitCode;
    }
    if (interactive) {
      const version = (
        await connection.runAndReadAll('SELECT library_version FROM pragma_version()')
      ).getRows()[0]?.[0];
      io.out(
        `quackscale sql — DuckDB ${String(version)} with QuackScale's functions (tailscale_up, quack_uri(), …)\n`,
      );
      if (loaded.length) io.out(`Loaded ${loaded.join(', ')}\n`);
      io.out(`Enter ".help" for usage hints, ".quit" or Ctrl-D to leave.\n`);
      io.out(
        database === ':memory:' ? 'Connected to a transient in-memory database.\n' : `Opened ${database}.\n`,
      );
    }
    return await runShell(session, {
      input: process.stdin,
      output: process.stdout,
      interactive,
      historyFile: join(homedir(), '.quackscale_history'),
    });
  } finally {
    // A node left up keeps sockets (and the process) alive: take it down before closing DuckDB.
    try {
      await connection.run('CALL tailscale_down()');
    } catch (err) {
      io.err(`warning: tailscale_down failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    connection.closeSync();
    instance.closeSync();
  }
}
