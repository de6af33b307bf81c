#!/usr/bin/env node
// `npm run fuzz -- [RUNS]`: every fuzz property (test/**/fuzz.test.ts) with RUNS inputs each
// (default 100,000; properties that cost a connection or a handshake per input run a stated
// fraction), then a table of how many inputs each property ran. `npm test` runs the same
// properties with a few thousand inputs.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const runs = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`usage: npm run fuzz -- [RUNS]   (RUNS a positive integer, default 100000; got ${process.argv[2]})`);
  process.exit(2);
}
const log = join(tmpdir(), `quackscale-fuzz-${process.pid}.jsonl`);
const started = performance.now();
const r = spawnSync('npx', ['vitest', 'run', '--project', 'fuzz', ...process.argv.slice(3)], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_LOG: log },
});
let lines = [];
try {
  lines = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch {
  // No property ran to completion: vitest has said why.
}
rmSync(log, { force: true });
console.log(`\nfuzz: ${lines.length} properties, FUZZ_RUNS=${runs}, ${((performance.now() - started) / 1000).toFixed(0)} s`);
let file = '';
for (const l of lines) {
  if (l.file !== file) console.log((file = l.file));
  console.log(`  ${l.runs.toLocaleString('en-US').padStart(9)}  ${l.test}`);
}
process.exit(r.status ?? 1);
