/**
 * Benchmark results: a table on stdout, and a JSON file and an SVG chart (bench/chart.ts) under
 * bench/results/. Figures are reported next to a reference measured in the same run, since these
 * machines are shared.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { runtime } from '../src/platform/runtime.js';
import { renderChart } from './chart.js';

export interface Row {
  name: string;
  value: number;
  unit: string;
  /** Ratio against the named reference row of the same suite, if any. */
  ratioTo?: string;
  note?: string;
}

export class Report {
  readonly rows: Row[] = [];
  constructor(readonly suite: string) {}

  add(row: Row): void {
    this.rows.push(row);
    const ref = row.ratioTo ? this.rows.find((r) => r.name === row.ratioTo) : undefined;
    const ratio = ref ? `  (${(row.value / ref.value).toFixed(2)}× ${ref.name})` : '';
    console.log(
      `  ${row.name.padEnd(48)} ${fmt(row.value).padStart(12)} ${row.unit}${ratio}${row.note ? `  ${row.note}` : ''}`,
    );
  }

  ratio(name: string, ref: string): number | undefined {
    const a = this.rows.find((r) => r.name === name);
    const b = this.rows.find((r) => r.name === ref);
    return a && b ? a.value / b.value : undefined;
  }

  /**
   * Writes `<suite>-<date>.json` and `.svg` into `dir`, and the chart again as `<suite>.svg` into
   * `latestDir` when given (the copy docs/INTERNALS.md shows); returns the JSON file's path.
   */
  write(dir: string, latestDir?: string): string {
    mkdirSync(dir, { recursive: true });
    const base = join(dir, `${this.suite}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const rows = this.rows.map((r) => {
      const ref = r.ratioTo ? this.rows.find((x) => x.name === r.ratioTo) : undefined;
      return ref ? { ...r, ratio: r.value / ref.value } : r;
    });
    const meta = {
      suite: this.suite,
      date: new Date().toISOString(),
      node: process.version,
      runtime: `${runtime.name} ${runtime.version}`,
      cpu: cpus()[0]?.model,
    };
    writeFileSync(`${base}.json`, `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
    const svg = renderChart({ suite: this.suite, date: meta.date, rows: this.rows });
    writeFileSync(`${base}.svg`, svg);
    if (latestDir) {
      mkdirSync(latestDir, { recursive: true });
      writeFileSync(join(latestDir, `${this.suite}.svg`), svg);
    }
    return `${base}.json`;
  }
}

function fmt(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(2);
}

/** Runs `fn` repeatedly for about `ms` milliseconds; returns iterations per second. */
export function rate(fn: () => void, ms = 1500): number {
  for (let i = 0; i < 50; i++) fn(); // warm up the JIT
  const start = performance.now();
  let n = 0;
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}
