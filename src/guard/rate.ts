/**
 * Token buckets: one for a whole listener (derper's --accept-connection-limit and
 * --accept-connection-burst, golang.org/x/time/rate semantics: `perSecond` tokens a second, at
 * most `burst` saved up), and a table of them keyed by source for handshakes, in the manner of
 * WireGuard's per-source handshake limiter (wireguard-go ratelimiter/ratelimiter.go), so that
 * one address cannot spend the server's X25519 operations.
 */

/**
 * A token bucket. `perSecond` may be Infinity (no limit); it starts full.
 *
 * @example
 * const b = new TokenBucket(100, 200);
 * if (!b.take()) refuse();
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    now = Date.now(),
  ) {
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes one token if there is one; false means over the limit. */
  take(now = Date.now()): boolean {
    if (this.perSecond === Number.POSITIVE_INFINITY) return true;
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whether the bucket has refilled completely: it is then no different from a new one. */
  isFull(now = Date.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.burst;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(
      this.burst,
      this.#tokens + (Math.max(0, now - this.#last) * this.perSecond) / 1000,
    );
    this.#last = now;
  }
}

/** How a {@link SourceRateLimiter} is set. */
export interface SourceRate {
  perSecond: number;
  burst: number;
  /** Sources tracked at once; a new source beyond them is refused (default 65 536, as wireguard-go). */
  maxSources?: number;
}

/**
 * One {@link TokenBucket} per source key (see sourceKey). Buckets that have refilled are
 * forgotten at most once a second, so the table holds only sources that were recently busy.
 *
 * @example
 * const lim = new SourceRateLimiter({ perSecond: 20, burst: 40 });
 * if (!lim.allow(sourceKey(socket.remoteAddress))) refuse();
 */
export class SourceRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #max: number;
  #lastSweep = 0;

  constructor(readonly rate: SourceRate) {
    this.#max = rate.maxSources ?? 65_536;
  }

  /** Takes a token for `source`; false when it is over its rate (or the table is full). */
  allow(source: string, now = Date.now()): boolean {
    if (this.rate.perSecond === Number.POSITIVE_INFINITY) return true;
    if (now - this.#lastSweep >= 1000) this.#sweep(now);
    let b = this.#buckets.get(source);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) return false;
      b = new TokenBucket(this.rate.perSecond, this.rate.burst, now);
      this.#buckets.set(source, b);
    }
    return b.take(now);
  }

  /** Sources currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const [k, b] of this.#buckets) if (b.isFull(now)) this.#buckets.delete(k);
  }
}
