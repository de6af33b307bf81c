/**
 * `npm run bench -- [suite ...]`: runs the named benchmark suites (all when none named),
 * prints tables, writes JSON and an SVG chart to bench/results/, and the chart again to
 * bench/charts/<suite>.svg (the latest, which docs/INTERNALS.md shows).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Report } from './report.js';

/** Each suite is `bench/<name>.ts` exporting `run(): Promise<Report>`. */
const SUITES = [
  'wireguard',
  'tcp',
  'derp',
  'control',
  'tailnet',
  'sql',
  'tailnet-peers',
  'natlab',
  'clients',
  'routes',
  'abuse',
] as const;
const suites: Record<string, () => Promise<Report>> = Object.fromEntries(
  SUITES.map((name) => [
    name,
    async () => ((await import(`./${name}.js`)) as { run: () => Promise<Report> }).run(),
  ]),
);

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, '..', '..', 'bench', 'results');
const chartsDir = join(here, '..', '..', 'bench', 'charts');

const wanted = process.argv.slice(2);
const unknown = wanted.filter((s) => !(s in suites));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  console.log(`\n== ${name}`);
  const report = await suites[name]!();
  console.log(
    `  results: ${report.write(resultsDir, chartsDir)} (and .svg; chart in bench/charts/${name}.svg)`,
  );
}
