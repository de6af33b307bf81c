// Compiles src/ once per test file for code that must run under bare Node: the SQL layer's
// worker thread and the child DuckDB processes. Inside node_modules so that the output resolves
// @duckdb/node-api from the project, and ignored by git.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');

/** Compiles src/ into its own directory per `name` (test files run in parallel) and returns it. */
export function buildForNode(name: string): string {
  const out = join(ROOT, 'node_modules/.cache/quackscale-sql-test', name);
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', out], { cwd: ROOT, stdio: 'inherit' });
  return out;
}

/** The real httpfs extension's path, fetched once into .cache/ by the project's script. */
export function extensionPath(name: 'httpfs' | 'quack' | 'ducklake'): string {
  const out = execFileSync(join(ROOT, 'scripts/fetch-duckdb-extensions.sh'), { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith(`${name}\t`));
  if (!line) throw new Error(`fetch-duckdb-extensions printed no ${name} path:\n${out}`);
  return line.split('\t')[1] as string;
}
