/**
 * The `quackscale/sql` entry: the SQL functions of index.ts, behind a check that the optional
 * peer @duckdb/node-api is installed. index.ts imports DuckDB statically, and a static import
 * that cannot be resolved fails in the module loader before any code could explain it, so
 * index.ts is loaded only once the check has passed. test/sql/entry.test.ts keeps the names
 * below equal to index.ts's.
 */
import { requireDuckDB } from './duckdb-peer.js';

await requireDuckDB('quackscale/sql');
const sql = await import('./index.js');

export const {
  EXTENSION_NAMES,
  ExtensionFetchError,
  NodeTimeoutError,
  defaultStateDir,
  extensionCacheDir,
  fetchDuckdbExtensions,
  installQuackscale,
  loadExtensions,
  missingExtensionHint,
} = sql;
export { DUCKDB_NODE_API_VERSION, DuckDBMissingError } from './duckdb-peer.js';
export type * from './index.js';
