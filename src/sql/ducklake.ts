// attach_ducklake (sql-surface.md, "Quack helpers"): a local schema of views over the tables of
// a DuckLake catalog that a remote Quack server has attached, each view reading through the
// quack extension's quack_query. The original (quackscale's src/attach_ducklake.cpp) lists the
// remote tables with quack_query over duckdb_tables() and creates one view per table; so do we,
// with three differences: the token goes into a temporary quack SECRET (scoped to the URI)
// rather than into the views' SQL, where duckdb_views() would show it; remote table names are
// quoted, not trusted, since the server sends them; and only the catalog's main schema is
// mapped, since a local `alias.table` has no room for a remote schema.
import { createHash } from 'node:crypto';
import {
  BOOLEAN,
  type DuckDBConnection,
  DuckDBTableFunction,
  type DuckDBTableFunctionBindInfo,
  VARCHAR,
} from '@duckdb/node-api';
import { type BlockingSql, BlockingSqlError, type JsonRow } from './blocking-sql.js';
import { redact } from './protocol.js';
import { ident, literal } from './settings.js';

/** The identifiers the original accepts for `remote_catalog` and `alias`. */
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const IDENT_TEXT = '[A-Za-z_][A-Za-z0-9_]*';

/** What went wrong, in the text the SQL caller sees (never holding the token). */
export class AttachDucklakeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttachDucklakeError';
  }
}

/** attach_ducklake's arguments, checked. */
export interface AttachDucklakeArgs {
  uri: string;
  remoteCatalog: string;
  alias: string;
  token: string | undefined;
  disableSsl: boolean;
}

/** One result row: a view created over a remote table. */
export interface CreatedView {
  local_view: string;
  remote_table: string;
  status: 'created';
}

function fail(message: string): never {
  throw new AttachDucklakeError(`attach_ducklake: ${message}`);
}

/** Reads and checks the arguments; errors name the offending parameter. */
export function parseArgs(bind: Pick<DuckDBTableFunctionBindInfo, 'getParameter' | 'getNamedParameter'>) {
  const text = (name: string): string | undefined => {
    const v = bind.getNamedParameter(name);
    return v === null ? undefined : String(v);
  };
  const first = bind.getParameter(0);
  const uri = first === null ? '' : String(first);
  if (!uri) fail('the Quack URI (first argument, e.g. quack:100.64.0.1:9494) is required');
  const remoteCatalog = text('remote_catalog') ?? 'lake';
  const alias = text('alias') ?? remoteCatalog;
  for (const [name, value] of [
    ['remote_catalog', remoteCatalog],
    ['alias', alias],
  ] as const) {
    if (!IDENT.test(value)) fail(`${name} must match ${IDENT_TEXT} (got ${JSON.stringify(value)})`);
  }
  const disableSsl = bind.getNamedParameter('disable_ssl');
  return {
    uri,
    remoteCatalog,
    alias,
    token: text('token') || undefined,
    disableSsl: disableSsl === null ? true : disableSsl === true,
  } satisfies AttachDucklakeArgs;
}

/** `FROM quack_query(…)` reading `remoteSql` on the server (the token, if any, given inline). */
function quackQuery(args: AttachDucklakeArgs, remoteSql: string, token: string | undefined): string {
  const tokenArg = token ? `, token => ${literal(token)}` : '';
  return `FROM quack_query(${literal(args.uri)}, ${literal(remoteSql)}${tokenArg}, disable_ssl => ${args.disableSsl})`;
}

/** The local state attach_ducklake depends on, read in one query. */
interface LocalState {
  quackLoaded: boolean;
  database: string;
  readonly: boolean;
  /** Lower-cased names of the tables (not views) already in the schema `alias`. */
  tablesInAlias: Set<string>;
}

function localState(sql: BlockingSql, alias: string, timeoutMs: number): LocalState {
  const [row] = sql.select(
    'SELECT ' +
      "(SELECT count(*) FROM duckdb_functions() WHERE function_name = 'quack_query') AS quack, " +
      'current_database() AS db, ' +
      '(SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()) AS readonly, ' +
      '(SELECT list(lower(table_name)) FROM duckdb_tables() WHERE database_name = current_database() ' +
      `AND lower(schema_name) = lower(${literal(alias)})) AS tables`,
    timeoutMs,
  );
  const r = row as JsonRow;
  return {
    quackLoaded: Number(r.quack) > 0,
    database: String(r.db),
    readonly: r.readonly === true,
    tablesInAlias: new Set(Array.isArray(r.tables) ? r.tables.map(String) : []),
  };
}

/** The remote catalog's tables, by schema, as the server lists them. */
function remoteTables(sql: BlockingSql, args: AttachDucklakeArgs, timeoutMs: number): JsonRow[] {
  const list =
    'SELECT schema_name, table_name FROM duckdb_tables() ' +
    `WHERE database_name = ${literal(args.remoteCatalog)} ORDER BY schema_name, table_name`;
  try {
    return sql.select(`SELECT schema_name, table_name ${quackQuery(args, list, args.token)}`, timeoutMs);
  } catch (err) {
    if (!(err instanceof BlockingSqlError)) throw err;
    return fail(
      `could not list the tables of remote catalog '${args.remoteCatalog}' at ${args.uri}: ${err.message}`,
    );
  }
}

/** The name of the temporary secret holding the token for `uri`: one per server. */
export function secretName(uri: string): string {
  return `quackscale_ducklake_${createHash('sha256').update(uri).digest('hex').slice(0, 16)}`;
}

/**
 * Does what attach_ducklake does, blocking the calling thread; `sql` runs on a second
 * connection of the caller's database. Errors are AttachDucklakeError, without the token.
 */
export function attachDucklake(sql: BlockingSql, args: AttachDucklakeArgs, timeoutMs: number): CreatedView[] {
  try {
    return attach(sql, args, timeoutMs);
  } catch (err) {
    // DuckDB's texts may echo a literal of the listing query, which holds the token.
    const text = redact(err, [args.token]);
    throw new AttachDucklakeError(err instanceof AttachDucklakeError ? text : `attach_ducklake: ${text}`);
  }
}

function attach(sql: BlockingSql, args: AttachDucklakeArgs, timeoutMs: number): CreatedView[] {
  const local = localState(sql, args.alias, timeoutMs);
  // The original's text (checked the same way: is quack_query registered?).
  if (!local.quackLoaded) throw new AttachDucklakeError('attach_ducklake requires LOAD quack');
  if (local.readonly) fail(`database '${local.database}' is read-only; the views need a writable one`);

  const rows = remoteTables(sql, args, timeoutMs);
  const names = rows.filter((r) => r.schema_name === 'main').map((r) => String(r.table_name));
  if (names.length === 0) {
    const others = [...new Set(rows.map((r) => String(r.schema_name)))];
    fail(
      `no tables found in remote catalog '${args.remoteCatalog}' (is DuckLake attached on the server?)` +
        (others.length ? `; only its main schema is mapped, and it has tables in: ${others.join(', ')}` : ''),
    );
  }
  for (const name of names) {
    // Any name is quoted safely, but a NUL or line break in one is a server to distrust.
    if ([...name].some((ch) => ch.charCodeAt(0) < 0x20))
      fail(`remote table name ${JSON.stringify(name)} has control characters`);
    // CREATE OR REPLACE VIEW cannot replace a table; say so rather than fail in exec(), where
    // DuckDB's error cannot be read.
    if (local.tablesInAlias.has(name.toLowerCase())) {
      fail(`${args.alias}.${name} is a table, not a view; drop it or choose another alias`);
    }
  }

  const schema = `${ident(local.database)}.${ident(args.alias)}`;
  const statements: string[] = [];
  if (args.token) {
    // TEMPORARY: the token stays in memory, whatever default_secret_storage says.
    statements.push(
      `CREATE OR REPLACE TEMPORARY SECRET ${ident(secretName(args.uri))} ` +
        `(TYPE quack, TOKEN ${literal(args.token)}, SCOPE ${literal(args.uri)})`,
    );
  }
  statements.push(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  for (const name of names) {
    const remote = `SELECT * FROM ${ident(args.remoteCatalog)}.main.${ident(name)}`;
    statements.push(
      `CREATE OR REPLACE VIEW ${schema}.${ident(name)} AS ${quackQuery(args, remote, undefined)}`,
    );
  }
  try {
    sql.exec(statements.join(';\n'), timeoutMs);
  } catch (err) {
    if (!(err instanceof BlockingSqlError)) throw err;
    fail(`creating the views in schema ${args.alias} failed: ${err.message}`);
  }
  return names.map((name) => ({
    local_view: `${args.alias}.${name}`,
    remote_table: `${args.remoteCatalog}.${name}`,
    status: 'created',
  }));
}

/** DuckDB's vector size: the most rows one call of a table function's main may emit. */
const CHUNK = 2048;

/**
 * Registers `attach_ducklake` on `connection`. `sql` runs on a second connection of the same
 * database (a table function cannot run SQL on its own connection); without one the function
 * reports how to provide it.
 */
export async function registerDucklake(
  connection: DuckDBConnection,
  sql: BlockingSql | undefined,
  timeoutMs: number,
): Promise<void> {
  const columns = ['local_view', 'remote_table', 'status'] as const;
  connection.registerTableFunction(
    DuckDBTableFunction.create({
      name: 'attach_ducklake',
      parameterTypes: [VARCHAR],
      namedParameterTypes: { remote_catalog: VARCHAR, alias: VARCHAR, token: VARCHAR, disable_ssl: BOOLEAN },
      bindFunction: (bind) => {
        try {
          const args = parseArgs(bind);
          if (!sql) fail('needs the DuckDB instance: installQuackscale(connection, { instance })');
          const rows = attachDucklake(sql, args, timeoutMs);
          for (const c of columns) bind.addResultColumn(c, VARCHAR);
          bind.setBindData({ rows });
        } catch (err) {
          bind.setError(err instanceof Error ? err.message : String(err));
        }
      },
      initFunction: (init) => init.setInitData({ next: 0 }),
      mainFunction: (info, out) => {
        const scan = info.initData as { next: number };
        const { rows } = info.bindData as { rows: CreatedView[] };
        const part = rows.slice(scan.next, scan.next + CHUNK);
        scan.next += part.length;
        out.rowCount = part.length;
        if (part.length === 0) return;
        for (const [i, c] of columns.entries())
          out.setColumnValues(
            i,
            part.map((r) => r[c]),
          );
      },
    }),
  );
}
