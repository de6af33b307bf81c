/**
 * DuckDB's own httpfs, quack and ducklake extensions as `scripts/fetch-duckdb-extensions.sh`
 * caches them (unpacked from PyPI's `duckdb-extension-*` wheels), for `quackscale sql` and the
 * demo to `LOAD` by path. DuckDB checks their signatures, so no `-unsigned` is needed.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** In load order: quack needs httpfs loaded first (sql-surface.md). */
export const EXTENSION_NAMES = ['httpfs', 'quack', 'ducklake'] as const;
export type ExtensionName = (typeof EXTENSION_NAMES)[number];

const FETCH_SCRIPT = join('scripts', 'fetch-duckdb-extensions.sh');

/**
 * The project's root: the nearest directory above this module with package.json and the fetch
 * script (dist/cli/ and src/cli/ are two levels below it; test builds sit deeper).
 */
function findRoot(): string {
  const start = fileURLToPath(new URL('.', import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, FETCH_SCRIPT))) return dir;
    if (dirname(dir) === dir) return fileURLToPath(new URL('../../', import.meta.url));
  }
}

export const PACKAGE_ROOT = findRoot();

/**
 * The extension directory to use when none is given: env `QUACKSCALE_EXTENSIONS`, else the
 * fetch script's own cache (`QUACKSCALE_DUCKDB_EXTENSIONS`, else .cache/duckdb-extensions in the
 * package) if it exists.
 */
export function defaultExtensionDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.QUACKSCALE_EXTENSIONS) return env.QUACKSCALE_EXTENSIONS;
  const cache = env.QUACKSCALE_DUCKDB_EXTENSIONS || join(PACKAGE_ROOT, '.cache', 'duckdb-extensions');
  return existsSync(cache) ? cache : undefined;
}

/**
 * The extensions found in `dir` for DuckDB `version` (e.g. `v1.5.5`), in load order: either the
 * fetch script's layout (`duckdb_extension_<name>/extensions/<version>/<name>.duckdb_extension`)
 * or plain `<name>.duckdb_extension` files.
 */
export function findExtensions(dir: string, version: string): Map<ExtensionName, string> {
  const found = new Map<ExtensionName, string>();
  for (const name of EXTENSION_NAMES) {
    const candidates = [
      join(dir, `duckdb_extension_${name}`, 'extensions', version, `${name}.duckdb_extension`),
      join(dir, `${name}.duckdb_extension`),
    ];
    const path = candidates.find((p) => existsSync(p));
    if (path) found.set(name, path);
  }
  return found;
}

/** Versions present in a fetch-script cache, to name them when none matches the running DuckDB. */
export function cachedVersions(dir: string): string[] {
  const versions = new Set<string>();
  for (const name of EXTENSION_NAMES) {
    const d = join(dir, `duckdb_extension_${name}`, 'extensions');
    if (existsSync(d)) for (const v of readdirSync(d)) versions.add(v);
  }
  return [...versions].sort();
}

/** Thrown when the fetch script fails (no python3/pip, no route to PyPI…), with its stderr. */
export class ExtensionFetchError extends Error {
  override readonly name = 'ExtensionFetchError';
}

/**
 * Runs scripts/fetch-duckdb-extensions.sh (a no-op once cached) and returns the paths it prints.
 * `onStart` is called if the cache is incomplete, i.e. a download from PyPI is about to happen.
 */
export async function fetchExtensions(onStart?: () => void): Promise<Map<ExtensionName, string>> {
  const dir = defaultExtensionDir({ ...process.env, QUACKSCALE_EXTENSIONS: '' });
  if (!dir || cachedVersions(dir).length === 0) onStart?.();
  const script = join(PACKAGE_ROOT, FETCH_SCRIPT);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(script, { encoding: 'utf8', timeout: 600_000 }, (err, out, stderr) => {
      if (err)
        reject(
          new ExtensionFetchError(`fetching DuckDB's extensions failed: ${stderr.trim() || err.message}`),
        );
      else resolve(out);
    });
  });
  const paths = new Map<ExtensionName, string>();
  for (const line of stdout.split('\n')) {
    const [name, path] = line.split('\t');
    if (path && (EXTENSION_NAMES as readonly string[]).includes(name as string))
      paths.set(name as ExtensionName, path);
  }
  for (const name of EXTENSION_NAMES) {
    if (!paths.has(name))
      throw new ExtensionFetchError(`fetch-duckdb-extensions.sh printed no path for ${name}`);
  }
  return paths;
}
