/**
 * Benchmark results: a table on stdout and a JSON file under bench/results/. Figures are
 * reported next to a reference measured in the same run, since these machines are shared.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

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

  write(dir: string): string {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${this.suite}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const rows = this.rows.map((r) => {
      const ref = r.ratioTo ? this.rows.find((x) => x.name === r.ratioTo) : undefined;
      return ref ? { ...r, ratio: r.value / ref.value } : r;
    });
    const meta = {
      suite: this.suite,
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model,
    };
    writeFileSync(file, `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
    return file;
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
