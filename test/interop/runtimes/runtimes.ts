// The runtimes of the test matrix, as scripts/fetch-runtimes.sh installed them into .cache/runtimes, and the
// command line that runs a JavaScript file in each.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const RUNTIME_NAMES = ['node22', 'node24', 'bun', 'deno'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

const ROOT = join(import.meta.dirname, '../../..');

/** name → binary, for the runtimes present at their pinned version (nothing is installed here). */
export function installedRuntimes(): Map<RuntimeName, string> {
  const out = execFileSync(join(ROOT, 'scripts/fetch-runtimes.sh'), ['--list'], { encoding: 'utf8' });
  const found = new Map<RuntimeName, string>();
  for (const line of out.trim().split('\n')) {
    const [name, , bin] = line.split(' ');
    if (name && bin && (RUNTIME_NAMES as readonly string[]).includes(name))
      found.set(name as RuntimeName, bin);
  }
  return found;
}

/** argv that runs `script` in runtime `name` (Deno with all permissions and the project's node_modules). */
export function runtimeArgv(name: RuntimeName, bin: string, script: string): [string, string[]] {
  return name === 'deno' ? [bin, ['run', '-A', '--node-modules-dir=manual', script]] : [bin, [script]];
}
