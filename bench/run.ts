/**
 * `npm run bench -- [--runtime NAME] [suite ...]`: runs the named benchmark suites (all when none
 * named), prints tables, writes JSON and an SVG chart to bench/results/, and the chart again to
 * bench/charts/<suite>.svg (the latest, which docs/INTERNALS.md shows).
 *
 * `--runtime bun` (or another name scripts/fetch-runtimes.sh lists) runs the suites, and so our
 * nodes, in that runtime: this process starts it on this file and waits; the processes the suites
 * fork inherit it. The reference peers (wireguard-go, iperf3) are unchanged, so the ratios compare
 * the runtimes. Only a Node run writes bench/charts/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtime } from '../src/platform/runtime.js';
import type { Report } from './report.js';

/** Each suite is `bench/<name>.ts` exporting `run(): Promise<Report>`. */
const SUITES = [
  'wireguard',
  'tcp',
  'udp',
  'derp',
  'control',
  'tailnet',
  'sql',
  'tailnet-peers',
  'natlab',
  'clients',
  'routes',
  'lan',
  'abuse',
] as const;
const suites: Record<string, () => Promise<Report>> = Object.fromEntries(
  SUITES.map((name) => [
    name,
    async () => ((await import(`./${name}.js`)) as { run: () => Promise<Report> }).run(),
  ]),
);

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const resultsDir = join(root, 'bench', 'results');
const chartsDir = join(root, 'bench', 'charts');

const args = process.argv.slice(2);
const at = args.indexOf('--runtime');
if (at >= 0) {
  const name = args[at + 1];
  args.splice(at, 2);
  if (name === undefined) {
    console.error('--runtime needs a name, e.g. --runtime bun');
    process.exit(2);
  }
  if (runtime.name !== name.replace(/[0-9]+$/, '')) process.exit(reexec(name, args));
}

/** Runs this file with `args` under the runtime scripts/fetch-runtimes.sh lists as `name`; its exit code. */
function reexec(name: string, rest: string[]): number {
  const list = execFileSync(join(root, 'scripts', 'fetch-runtimes.sh'), ['--list'], { encoding: 'utf8' });
  const line = list.split('\n').find((l) => l.split(' ')[0] === name);
  if (line === undefined) {
    console.error(`runtime ${name} is not in the cache: run scripts/fetch-runtimes.sh`);
    return 2;
  }
  const bin = line.split(' ')[2]!;
  const argv = name === 'deno' ? ['run', '-A', '--node-modules-dir=manual'] : [];
  console.log(`(suites run under ${name}: ${bin})`);
  const res = spawnSync(bin, [...argv, fileURLToPath(import.meta.url), ...rest], { stdio: 'inherit' });
  return res.status ?? 1;
}

const wanted = args;
const unknown = wanted.filter((s) => !(s in suites));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  console.log(`\n== ${name}`);
  console.log(`  (runtime: ${runtime.name} ${runtime.version})`);
  const report = await suites[name]!();
  if (runtime.name === 'node') {
    console.log(
      `  results: ${report.write(resultsDir, chartsDir)} (and .svg; chart in bench/charts/${name}.svg)`,
    );
  } else {
    console.log(`  results: ${report.write(resultsDir)} (and .svg)`);
  }
}
