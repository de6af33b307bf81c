/**
 * Reconnect delays as Tailscale's util/backoff: n² × 10 ms after the n-th consecutive failure,
 * capped (magicsock uses 5 s for DERP), then multiplied by a random factor in [0.5, 1.5) so a
 * fleet of clients does not reconnect in lockstep after a relay restarts.
 */

/**
 * Tracks consecutive failures and yields the next delay.
 *
 * @example
 * const b = new Backoff(5000);
 * setTimeout(retry, b.next());   // after a failure
 * b.reset();                      // after a success
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt, counting one more failure. */
  next(): number {
    this.failures++;
    const base = Math.min(this.failures * this.failures * 10, this.maxMs);
    return base * (this.random() + 0.5);
  }

  reset(): void {
    this.failures = 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
