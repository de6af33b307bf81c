#!/usr/bin/env node
// `npm run demo`: builds dist/ first when it is missing or older than src/ (`npm ci` does not
// build it), then runs the demo (src/demo/main.ts). The demo's own exit status is this one's.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const main = join(root, 'dist', 'demo', 'main.js');

/** The latest modification time of any file under `dir`. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (!existsSync(main) || newest(join(root, 'src')) > statSync(main).mtimeMs) {
  process.stdout.write('building dist/ (npm run build)…\n');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
}
await import(pathToFileURL(main).href);
