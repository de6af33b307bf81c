/** Exponential backoff with jitter, for reconnecting to an unreachable control server. */

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

/** Delays of initial·2^n (capped), each scaled by a random factor in [0.5, 1). */
export class Backoff {
  #attempt = 0;
  readonly initialMs: number;
  readonly maxMs: number;
  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 250;
    this.maxMs = opts.maxMs ?? 30_000;
  }

  /** The next delay, growing with each call until reset. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(base * (0.5 + Math.random() / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}

/** Waits `ms`; resolves true when the time passed, false as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
