/**
 * Per-source token bucket for handshake messages that carry a valid MAC2 while the device
 * is under load (wireguard-go `ratelimiter/ratelimiter.go`: 20 per second, burst 5). A
 * source that proved its address can still not monopolise handshake processing.
 */
import type { Clock } from './clock.js';

const PACKETS_PER_SECOND = 20;
const PACKETS_BURSTABLE = 5;
const PACKET_COST_MS = 1000 / PACKETS_PER_SECOND;
const MAX_TOKENS_MS = PACKET_COST_MS * PACKETS_BURSTABLE;
/** Entries idle this long are forgotten, so the table stays bounded by recent sources. */
const GARBAGE_COLLECT_AFTER_MS = 1000;
const MAX_ENTRIES = 65_536;

interface Bucket {
  lastTime: number;
  tokens: number;
}

export class RateLimiter {
  private readonly table = new Map<string, Bucket>();
  private lastSweep: number;

  constructor(private readonly clock: Clock) {
    this.lastSweep = clock.now();
  }

  /** True if a handshake message from `source` may be processed now. */
  allow(source: string): boolean {
    const now = this.clock.now();
    if (now - this.lastSweep > GARBAGE_COLLECT_AFTER_MS) this.sweep(now);
    const b = this.table.get(source);
    if (!b) {
      if (this.table.size >= MAX_ENTRIES) return false;
      this.table.set(source, { lastTime: now, tokens: MAX_TOKENS_MS - PACKET_COST_MS });
      return true;
    }
    b.tokens = Math.min(MAX_TOKENS_MS, b.tokens + (now - b.lastTime));
    b.lastTime = now;
    if (b.tokens >= PACKET_COST_MS) {
      b.tokens -= PACKET_COST_MS;
      return true;
    }
    return false;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, b] of this.table) {
      if (now - b.lastTime > GARBAGE_COLLECT_AFTER_MS) this.table.delete(k);
    }
  }
}
