/** What `quackscale extensions …` accepts. */
import { defineCommand } from '../command.js';

export const EXTENSIONS_FETCH = defineCommand({
  name: 'extensions fetch',
  summary: "fetch DuckDB's httpfs, quack and ducklake extensions once, for use offline",
  usage: '[--dir DIR]',
  description:
    "Downloads DuckDB's own signed builds of the three extensions for the DuckDB version quackscale " +
    "runs (from PyPI's duckdb-extension-* wheels, checked against the index's sha256; PIP_INDEX_URL " +
    'if set) and unpacks them into a cache. `quackscale sql` loads them from there at start, and so ' +
    'does `installQuackscale(connection, { extensions: true })`. A no-op once they are there. Prints ' +
    'one `name<TAB>path` line per extension.',
  options: {
    dir: {
      type: 'string',
      value: 'DIR',
      help: 'the cache to fill',
      default:
        'env QUACKSCALE_DUCKDB_EXTENSIONS, else .cache/duckdb-extensions in a checkout, else ' +
        '~/.cache/quackscale/duckdb-extensions',
    },
  },
  examples: ['quackscale extensions fetch', 'quackscale extensions fetch --dir /opt/duckdb-extensions'],
});
