// What the abuse interop tests expect of derper, Headscale and ours alike: the silent and trickling
// connections of bench/abuse-attacks.ts all closed by the server at its 30 s request deadline.
import { expect } from 'vitest';
import type { Outcome } from '../../bench/abuse-attacks.js';

/** Each outcome: all `n` connections closed by the server between 29 and 40 s, none refused or left open. */
export function expectShedAt30s(outcomes: readonly Outcome[], n: number): void {
  for (const o of outcomes) {
    expect([o.refused, o.stillOpen, o.shedAtMs.length]).toEqual([0, 0, n]);
    expect(Math.min(...o.shedAtMs)).toBeGreaterThanOrEqual(29_000);
    expect(Math.max(...o.shedAtMs)).toBeLessThan(40_000);
  }
}
