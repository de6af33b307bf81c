/**
 * The per-peer protocol timers (WireGuard paper §6.2–§6.5; wireguard-go `device/timers.go`).
 * Each timer is a deadline, not a scheduled callback: the hot path only writes numbers,
 * and one {@link TimerScheduler} per device keeps a single real timer armed at the earliest
 * deadline. That keeps per-packet cost to a few assignments (no setTimeout per packet).
 */
import type { Clock, TimerHandle } from './clock.js';

/** The five timers of §6, as indices into {@link PeerTimers.deadlines}. */
export const PeerTimer = {
  RetransmitHandshake: 0,
  SendKeepalive: 1,
  NewHandshake: 2,
  ZeroKeyMaterial: 3,
  PersistentKeepalive: 4,
} as const;
export type PeerTimer = (typeof PeerTimer)[keyof typeof PeerTimer];
const TIMER_COUNT = 5;

/** Deadlines of one peer; 0 means not pending. */
export class PeerTimers {
  readonly deadlines = new Float64Array(TIMER_COUNT);

  constructor(private readonly scheduler: TimerScheduler) {}

  /** Arms (or re-arms) `t` to fire `ms` from now (wireguard-go Timer.Mod). */
  mod(t: PeerTimer, ms: number): void {
    const at = this.scheduler.clock.now() + ms;
    this.deadlines[t] = at === 0 ? 1e-9 : at;
    this.scheduler.wake(at);
  }

  del(t: PeerTimer): void {
    this.deadlines[t] = 0;
  }

  isPending(t: PeerTimer): boolean {
    return this.deadlines[t] !== 0;
  }

  /** Clears and returns the timers due at `now`, in a fixed order. */
  takeDue(now: number): PeerTimer[] {
    const due: PeerTimer[] = [];
    for (let t = 0; t < TIMER_COUNT; t++) {
      const d = this.deadlines[t]!;
      if (d !== 0 && d <= now) {
        this.deadlines[t] = 0;
        due.push(t as PeerTimer);
      }
    }
    return due;
  }

  /** Earliest pending deadline, or Infinity. */
  earliest(): number {
    let min = Number.POSITIVE_INFINITY;
    for (let t = 0; t < TIMER_COUNT; t++) {
      const d = this.deadlines[t]!;
      if (d !== 0 && d < min) min = d;
    }
    return min;
  }

  clear(): void {
    this.deadlines.fill(0);
  }
}

/** One real timer for a whole device, armed at the earliest deadline any peer has. */
export class TimerScheduler {
  private handle: TimerHandle | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(
    readonly clock: Clock,
    /** Runs due timers and returns the next deadline across all peers. */
    private readonly fire: (now: number) => number,
  ) {}

  wake(at: number): void {
    if (this.closed || at >= this.armedAt) return;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.armedAt = at;
    this.handle = this.clock.setTimeout(() => this.run(), Math.max(0, at - this.clock.now()));
  }

  private run(): void {
    this.handle = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    const next = this.fire(this.clock.now());
    if (next !== Number.POSITIVE_INFINITY) this.wake(next);
  }

  close(): void {
    this.closed = true;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = undefined;
  }
}
