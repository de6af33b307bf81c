// How many inputs each fuzz property runs: a few thousand inside `npm test` (a smoke test), and
// FUZZ_RUNS under `npm run fuzz` (scripts/fuzz.mjs), which also collects how many ran (FUZZ_LOG).
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';

const DEEP = Number(process.env.FUZZ_RUNS ?? 0);

/**
 * `smoke` inputs in an ordinary test run; under `npm run fuzz`, FUZZ_RUNS × `scale` (never fewer
 * than `smoke`). A property that costs a connection or a handshake per input takes a scale < 1.
 */
export function fuzzRuns(smoke: number, scale = 1): number {
  return DEEP > 0 ? Math.max(smoke, Math.round(DEEP * scale)) : smoke;
}

function record(runs: number): void {
  const log = process.env.FUZZ_LOG;
  if (!log) return;
  const { currentTestName, testPath } = expect.getState();
  const file = testPath ? relative(process.cwd(), testPath) : '?';
  appendFileSync(log, `${JSON.stringify({ file, test: currentTestName, runs })}\n`);
}

function settle<Ts>(details: fc.RunDetails<Ts>): void {
  if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'property failed');
  record(details.numRuns);
}

/** fc.assert, recording how many inputs ran for `npm run fuzz` to report. */
export function assertFuzz<Ts>(property: fc.IProperty<Ts>, params?: fc.Parameters<Ts>): void;
export function assertFuzz<Ts>(property: fc.IAsyncProperty<Ts>, params?: fc.Parameters<Ts>): Promise<void>;
export function assertFuzz<Ts>(
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  params?: fc.Parameters<Ts>,
): void | Promise<void> {
  if (property.isAsync()) return fc.check(property as fc.IAsyncProperty<Ts>, params).then((d) => settle(d));
  settle(fc.check(property as fc.IProperty<Ts>, params));
}
