import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayWindow, WINDOW_SIZE } from '../../src/wireguard/replay.js';

const LIMIT = Number.MAX_SAFE_INTEGER;

describe('ReplayWindow', () => {
  it('holds at least 2048 packets', () => {
    expect(WINDOW_SIZE).toBeGreaterThanOrEqual(2048);
  });

  it('accepts each counter once, in order or not', () => {
    const w = new ReplayWindow();
    expect(w.accept(0, LIMIT)).toBe(true);
    expect(w.accept(0, LIMIT)).toBe(false);
    expect(w.accept(5, LIMIT)).toBe(true);
    expect(w.accept(3, LIMIT)).toBe(true);
    expect(w.accept(3, LIMIT)).toBe(false);
    expect(w.accept(4, LIMIT)).toBe(true);
    expect(w.accept(5, LIMIT)).toBe(false);
  });

  it('rejects counters that fell out of the window, and accepts the oldest still inside', () => {
    const w = new ReplayWindow();
    const top = 100_000;
    expect(w.accept(top, LIMIT)).toBe(true);
    expect(w.accept(top - WINDOW_SIZE, LIMIT)).toBe(true);
    expect(w.accept(top - WINDOW_SIZE - 1, LIMIT)).toBe(false);
    expect(w.accept(top - 1, LIMIT)).toBe(true);
  });

  it('forgets old bits after a jump larger than the ring', () => {
    const w = new ReplayWindow();
    for (let i = 0; i < 100; i++) w.accept(i, LIMIT);
    expect(w.accept(1_000_000, LIMIT)).toBe(true);
    expect(w.accept(1_000_000 - 10, LIMIT)).toBe(true);
    expect(w.accept(50, LIMIT)).toBe(false);
  });

  it('rejects the limit, NaN and negatives', () => {
    const w = new ReplayWindow();
    expect(w.accept(10, 10)).toBe(false);
    expect(w.accept(Number.NaN, LIMIT)).toBe(false);
    expect(w.accept(-1, LIMIT)).toBe(false);
  });

  it('agrees with a naive set-based model', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40_000 }), { maxLength: 400 }), (counters) => {
        const w = new ReplayWindow();
        const seen = new Set<number>();
        let max = -1;
        for (const c of counters) {
          const expected = !seen.has(c) && (c > max || max - c <= WINDOW_SIZE);
          expect(w.accept(c, LIMIT)).toBe(expected);
          if (expected) {
            seen.add(c);
            max = Math.max(max, c);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
