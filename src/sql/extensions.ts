/**
 * DuckDB's own httpfs, quack and ducklake extensions, as `quackscale extensions fetch` (and
 * scripts/fetch-duckdb-extensions.sh in a checkout) caches them from PyPI's `duckdb-extension-*`
 * wheels: where the cache is, what it holds for the running DuckDB, loading them by path, and
 * saying what is missing (and how to get it) instead of leaving DuckDB's download error.
 * DuckDB checks their signatures, so no `allow_unsigned_extensions` is needed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DuckDBConnection } from '@duckdb/node-api';

/** In load order: quack needs httpfs loaded first (sql-surface.md). */
export const EXTENSION_NAMES = ['httpfs', 'quack', 'ducklake'] as const;
export type ExtensionName = (typeof EXTENSION_NAMES)[number];

/** The DuckDB release @duckdb/node-api is built on; the wheels carry extensions for it alone. */
export const DUCKDB_VERSION = '1.5.5';

/** The command that fills the cache, as messages name it. */
export const FETCH_COMMAND = 'npx quackscale extensions fetch';

/** The nearest directory above this module whose package.json is quackscale's. */
function findPackageRoot(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      if (
        (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name ===
        'quackscale'
      )
        return dir;
    } catch {
      // No package.json here, or not JSON: look further up.
    }
    if (dirname(dir) === dir) return undefined;
  }
}

const PACKAGE_ROOT = findPackageRoot();

/** The per-user cache: `$XDG_CACHE_HOME/quackscale/duckdb-extensions` (default `~/.cache`). */
function userCache(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'quackscale', 'duckdb-extensions');
}

/**
 * Where `quackscale extensions fetch` puts the extensions: env `QUACKSCALE_DUCKDB_EXTENSIONS`;
 * else, in a checkout, `.cache/duckdb-extensions` (shared with the fetch script); in an npm
 * install, the per-user cache (a reinstall would wipe node_modules, and it may not be writable).
 *
 * @example
 * console.log(extensionCacheDir());   // /home/me/.cache/quackscale/duckdb-extensions
 */
export function extensionCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.QUACKSCALE_DUCKDB_EXTENSIONS) return env.QUACKSCALE_DUCKDB_EXTENSIONS;
  if (PACKAGE_ROOT && !PACKAGE_ROOT.split(sep).includes('node_modules'))
    return join(PACKAGE_ROOT, '.cache', 'duckdb-extensions');
  return userCache(env);
}

/**
 * The directories searched when none is given, in order: env `QUACKSCALE_EXTENSIONS`, the fetch
 * cache ({@link extensionCacheDir}), the checkout's cache and the per-user cache.
 */
export function extensionSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [
    env.QUACKSCALE_EXTENSIONS,
    extensionCacheDir(env),
    PACKAGE_ROOT && join(PACKAGE_ROOT, '.cache', 'duckdb-extensions'),
    userCache(env),
  ];
  return [...new Set(dirs.filter((d): d is string => !!d))];
}

/** The path of one extension in the fetch cache's layout (that of the wheels). */
export function cachedExtensionPath(dir: string, name: ExtensionName, version = DUCKDB_VERSION): string {
  return join(dir, `duckdb_extension_${name}`, 'extensions', `v${version}`, `${name}.duckdb_extension`);
}

/**
 * The extensions found in `dir` for DuckDB `version` (e.g. `1.5.5`), in load order: either the
 * fetch cache's layout or plain `<name>.duckdb_extension` files.
 */
export function findExtensions(dir: string, version = DUCKDB_VERSION): Map<ExtensionName, string> {
  const found = new Map<ExtensionName, string>();
  for (const name of EXTENSION_NAMES) {
    const path = [cachedExtensionPath(dir, name, version), join(dir, `${name}.duckdb_extension`)].find((p) =>
      existsSync(p),
    );
    if (path) found.set(name, path);
  }
  return found;
}

/** Versions present in a fetch cache, to name them when none matches the running DuckDB. */
export function cachedVersions(dir: string): string[] {
  const versions = new Set<string>();
  for (const name of EXTENSION_NAMES) {
    const d = join(dir, `duckdb_extension_${name}`, 'extensions');
    if (existsSync(d)) for (const v of readdirSync(d)) versions.add(v.replace(/^v/, ''));
  }
  return [...versions].sort();
}

/** What {@link loadExtensions} did. */
export interface ExtensionReport {
  /** Loaded by this call or before it. */
  loaded: ExtensionName[];
  /** Neither loaded nor installed in DuckDB's own extension directory: using them would need a download. */
  missing: ExtensionName[];
  /** The directory loaded from, if any. */
  dir?: string;
  /** Problems loading (a file DuckDB refused), as text. */
  problems: string[];
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * LOADs httpfs, quack and ducklake by path from `dir` (default: the first of
 * {@link extensionSearchDirs} that has them), and reports which of the three are still missing.
 *
 * @example
 * const r = await loadExtensions(connection);
 * if (r.missing.length) console.warn(missingExtensionsMessage(r.missing));
 */
export async function loadExtensions(connection: DuckDBConnection, dir?: string): Promise<ExtensionReport> {
  const version = String(
    (await connection.runAndReadAll('SELECT library_version FROM pragma_version()')).getRows()[0]?.[0] ?? '',
  ).replace(/^v/, '');
  const dirs = dir ? [dir] : extensionSearchDirs();
  const from = dirs.find((d) => findExtensions(d, version).size > 0);
  const problems: string[] = [];
  if (dir && !from) {
    const other = cachedVersions(dir);
    problems.push(
      `no DuckDB ${version} extensions in ${dir}${other.length ? ` (it has ${other.join(', ')})` : ''}`,
    );
  }
  for (const [name, path] of from ? findExtensions(from, version) : []) {
    try {
      await connection.run(`LOAD ${sqlString(path)}`);
    } catch (err) {
      problems.push(`LOAD ${name} from ${path} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { ...(await extensionState(connection)), ...(from ? { dir: from } : {}), problems };
}

/**
 * Which of httpfs, quack and ducklake are loaded, and which are missing: neither loaded nor
 * installed in DuckDB's own extension directory, so that using them needs a download.
 *
 * @example
 * const { missing } = await extensionState(connection);
 */
export async function extensionState(
  connection: DuckDBConnection,
): Promise<{ loaded: ExtensionName[]; missing: ExtensionName[] }> {
  const rows = (
    await connection.runAndReadAll(
      `SELECT extension_name, loaded, installed FROM duckdb_extensions() WHERE extension_name IN (${EXTENSION_NAMES.map(sqlString).join(', ')})`,
    )
  ).getRows();
  const state = new Map(rows.map((r) => [String(r[0]), { loaded: r[1] === true, installed: r[2] === true }]));
  return {
    loaded: EXTENSION_NAMES.filter((n) => state.get(n)?.loaded),
    missing: EXTENSION_NAMES.filter((n) => !state.get(n)?.loaded && !state.get(n)?.installed),
  };
}

/** What to tell a user when extensions are missing: what fails without them, and the command that fetches them. */
export function missingExtensionsMessage(missing: readonly ExtensionName[]): string {
  return (
    `DuckDB's ${missing.join(', ')} extension${missing.length > 1 ? 's are' : ' is'} not installed here, so ` +
    "read_csv('http://…'), ATTACH 'quack:…' and DuckLake would need DuckDB to download them. " +
    `Run '${FETCH_COMMAND}' once to cache them; quackscale sql then loads them, and so does ` +
    'installQuackscale with { extensions: true }.'
  );
}

/**
 * DuckDB's words for a known extension it could not download or find (every such error says it is
 * "an existing extension"), or, with autoloading off, one a statement needs.
 */
const MISSING_EXTENSION =
  /Extension "(httpfs|quack|ducklake)" is an existing extension|requires the extension (httpfs|quack|ducklake) to be loaded/;

/**
 * For one of DuckDB's "Failed to download extension" / "not found … Install it first" errors about
 * httpfs, quack or ducklake: a line naming the command that fetches them. Undefined for any other error.
 *
 * @example
 * catch (err) { console.error(err.message); const hint = missingExtensionHint(err.message); if (hint) console.error(hint); }
 */
export function missingExtensionHint(message: string): string | undefined {
  const m = MISSING_EXTENSION.exec(message);
  const name = m?.[1] ?? m?.[2];
  return name ? `${name} is not installed here: run '${FETCH_COMMAND}' once to cache it.` : undefined;
}
