// Runs a JavaScript file in the runtime running the tests (Node, Bun or Deno), for tests that need a child
// process of their own kind: Deno's command line differs from the other two.
import { runtime } from '../../src/platform/runtime.js';

/** [command, args] that run `file` (an .mjs path) with `args` in this runtime. */
export function scriptArgv(file: string, args: readonly string[] = []): [string, string[]] {
  if (runtime.name === 'deno')
    return [process.execPath, ['run', '-A', '--node-modules-dir=manual', file, ...args]];
  return [process.execPath, [file, ...args]];
}
