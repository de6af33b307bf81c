/**
 * `quackscale sql`: a DuckDB shell with QuackScale's functions installed — the counterpart of
 * `duckdb -unsigned` followed by `LOAD quackscale`. DuckDB's own httpfs, quack and ducklake
 * extensions are loaded by path when cached by scripts/fetch-duckdb-extensions.sh (or found in
 * `--extensions DIR` / env QUACKSCALE_EXTENSIONS); otherwise `INSTALL`/`LOAD` work as usual.
 * On exit the tailnet node is taken down, so the process ends even after `tailscale_up`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { installQuackscale } from '../sql/index.js';
import { cachedVersions, defaultExtensionDir, type ExtensionName, findExtensions } from './extensions.js';
import { UsageError } from './log.js';
import { type SessionIO, SqlSession } from './sql-session.js';
import { runShell } from './sql-shell.js';

export const SQL_USAGE = `usage:
  quackscale sql [DATABASE] [-c SQL]... [--control-url URL] [--state-dir DIR] [--derp-http]
                 [--extensions DIR | --no-extensions]`;

const HELP = `${SQL_USAGE}

A DuckDB shell (DATABASE: a file, default in-memory) with QuackScale's SQL functions installed:
tailscale_up, tailscale_status, tailscale_down, quack_uri(), quack_token() and the rest of
the SQL surface. With -c, runs the SQL (several statements, or a dot command) and exits:
status 1 on the first error. Without, an interactive shell (history in ~/.quackscale_history).

  --control-url URL   control server when tailscale_up gives no control_url
  --state-dir DIR     state directory when tailscale_up gives no state_dir
  --derp-http         reach DERP relays over plain HTTP (the embedded one; env TS_DEBUG_USE_DERP_HTTP=1)
  --extensions DIR    LOAD httpfs, quack and ducklake from DIR (default: env QUACKSCALE_EXTENSIONS,
                      else the cache of scripts/fetch-duckdb-extensions.sh when present)
  --no-extensions     load none of them automatically`;

/** Loads the cached extensions into `connection`; returns the names loaded. Failures are warnings. */
async function loadExtensions(
  connection: DuckDBConnection,
  dir: string,
  io: SessionIO,
): Promise<ExtensionName[]> {
  const reader = await connection.runAndReadAll('SELECT library_version FROM pragma_version()');
  const version = String(reader.getRows()[0]?.[0] ?? '');
  const found = findExtensions(dir, version);
  if (found.size === 0) {
    const other = cachedVersions(dir);
    io.err(
      `warning: no DuckDB ${version} extensions in ${dir}${other.length ? ` (it has ${other.join(', ')})` : ''}; ` +
        'use INSTALL/LOAD as usual\n',
    );
    return [];
  }
  const loaded: ExtensionName[] = [];
  for (const [name, path] of found) {
    try {
      await connection.run(`LOAD '${path.replace(/'/g, "''")}'`);
      loaded.push(name);
    } catch (err) {
      io.err(
        `warning: LOAD ${name} from ${path} failed: ${err instanceof Error ? err.message : String(err)}\n`,
      );
    }
  }
  return loaded;
}

/** Runs `quackscale sql`; resolves with the exit status. */
export async function sqlCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      command: { type: 'string', short: 'c', multiple: true },
      'control-url': { type: 'string' },
      'state-dir': { type: 'string' },
      'derp-http': { type: 'boolean' },
      extensions: { type: 'string' },
      'no-extensions': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1)
    throw new UsageError(`one DATABASE at most, got ${positionals.join(' ')}\n${SQL_USAGE}`);
  if (values.extensions && values['no-extensions'])
    throw new UsageError('--extensions and --no-extensions conflict');
  const commands = values.command ?? [];
  const interactive = commands.length === 0 && process.stdin.isTTY === true;
  const io: SessionIO = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    columns: () => (process.stdout.isTTY ? process.stdout.columns : undefined),
  };

  const database = positionals[0] ?? ':memory:';
  const instance = await DuckDBInstance.create(database);
  const connection = await instance.connect();
  try {
    await installQuackscale(connection, {
      instance,
      controlURL: values['control-url'],
      stateDir: values['state-dir'],
      derpHttp: values['derp-http'] || undefined,
    });
    const dir = values['no-extensions'] ? undefined : (values.extensions ?? defaultExtensionDir());
    const loaded = dir ? await loadExtensions(connection, dir, io) : [];
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
      if (loaded.length) io.out(`Loaded ${loaded.join(', ')} from ${dir}\n`);
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
