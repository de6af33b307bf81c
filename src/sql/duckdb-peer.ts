/**
 * @duckdb/node-api is an optional peer dependency: a Node server that wants only the tailnet
 * installs no native code. Whatever needs DuckDB (the `quackscale/sql` entry, `quackscale sql`)
 * checks for it first and, when it is missing, says how to add it.
 */

/** The @duckdb/node-api release whose DuckDB (1.5.5) loads the extensions the SQL layer uses. */
export const DUCKDB_NODE_API_VERSION = '1.5.5-r.5';

/** @duckdb/node-api is not installed. */
export class DuckDBMissingError extends Error {
  override readonly name = 'DuckDBMissingError';
  readonly code = 'QUACKSCALE_DUCKDB_MISSING';
  constructor(what: string) {
    super(
      `${what} needs DuckDB's Node API, an optional peer dependency of quackscale that is not installed: ` +
        `npm install @duckdb/node-api@${DUCKDB_NODE_API_VERSION}`,
    );
  }
}

/** Loads @duckdb/node-api, or throws a {@link DuckDBMissingError} naming `what` needs it. */
export async function requireDuckDB(what: string): Promise<typeof import('@duckdb/node-api')> {
  try {
    return await import('@duckdb/node-api');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes('@duckdb/node-api'))
      throw new DuckDBMissingError(what);
    throw err;
  }
}
