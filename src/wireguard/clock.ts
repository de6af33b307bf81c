/**
 * Time as the protocol's timers see it. Injected so that tests can drive REKEY_AFTER_TIME,
 * REJECT_AFTER_TIME and friends without waiting (wireguard-go `device/timers.go`).
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (for TAI64N timestamps). */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

/** The real clock. Timers are unref'd so an idle device never keeps the process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/**
 * The real clock run `factor` times faster, for soak tests: with 12, REKEY_AFTER_TIME (120 s)
 * passes every 10 real seconds, so a long run sees many rekeys against real peers. Every
 * protocol timer speeds up alike; the wall clock (TAI64N timestamps) stays monotonic.
 *
 * @example
 * new Device({ privateKey, bind, clock: scaledClock(12) });
 */
export function scaledClock(factor: number): Clock {
  if (!(factor >= 1)) throw new RangeError(`clock factor must be ≥ 1, got ${factor}`);
  const t0 = performance.now();
  const wall0 = Date.now();
  const now = () => t0 + (performance.now() - t0) * factor;
  return {
    now,
    wallNow: () => wall0 + (now() - t0),
    setTimeout: (fn, ms) => systemClock.setTimeout(fn, ms / factor),
    clearTimeout: (handle) => systemClock.clearTimeout(handle),
  };
}

/** A clock that only moves when told to; timers fire in order during {@link advance}. */
export class FakeClock implements Clock {
  private t = 0;
  private wall: number;
  private nextId = 1;
  private timers = new Map<number, { at: number; fn: () => void }>();

  constructor(wallStart = Date.UTC(2026, 0, 1)) {
    this.wall = wallStart;
  }

  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wall + this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id };
  }
  clearTimeout(handle: TimerHandle): void {
    if (handle && typeof handle === 'object' && 'id' in handle) this.timers.delete(handle.id as number);
  }
  /** Number of pending timers (tests use it to prove nothing is left scheduled). */
  get pending(): number {
    return this.timers.size;
  }
  /** Move time forward by `ms`, firing due timers in deadline order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Number.POSITIVE_INFINITY;
      for (const [id, tm] of this.timers) {
        if (tm.at <= end && tm.at < nextAt) {
          nextAt = tm.at;
          nextId = id;
        }
      }
      if (nextId < 0) break;
      const tm = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.t = Math.max(this.t, tm.at);
      tm.fn();
    }
    this.t = end;
  }
}
