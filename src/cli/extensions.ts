/**
 * `quackscale extensions fetch`: DuckDB's own httpfs, quack and ducklake extensions from PyPI's
 * wheels into the cache that `quackscale sql` and `installQuackscale(…, { extensions: true })`
 * load them from. Prints `name<TAB>path` per extension (for scripts); progress goes to stderr.
 */
import { fetchDuckdbExtensions } from '../sql/extension-fetch.js';
import { extensionCacheDir } from '../sql/extensions.js';
import { parseCommand } from './command.js';
import { EXTENSIONS_FETCH } from './spec/extensions.js';

/** Runs `quackscale extensions fetch`; resolves with the exit status. */
export async function extensionsFetch(argv: string[]): Promise<number> {
  const args = parseCommand(EXTENSIONS_FETCH, argv);
  if (!args) return 0;
  const dir = args.values.dir ?? extensionCacheDir();
  const paths = await fetchDuckdbExtensions({
    dir,
    onDownload: (wheel) => process.stderr.write(`downloading ${wheel} from PyPI…\n`),
  });
  for (const [name, path] of paths) console.log(`${name}\t${path}`);
  return 0;
}
