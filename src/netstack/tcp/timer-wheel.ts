/**
 * A hashed timer wheel (Varghese & Lauck): every connection has at most one entry, at its
 * earliest deadline, and one Node timer drives the whole wheel. Moving an entry later is lazy
 * (it fires early, and the owner reschedules), so restarting the retransmission timer on every
 * ACK costs nothing.
 */

/** Something the wheel can fire. */
export interface WheelEntry {
  /** @internal The deadline the wheel holds for this entry (ms, performance.now()), or 0. */
  wheelAt: number;
  /** @internal The slot the entry sits in, or -1. */
  wheelSlot: number;
  /** Called at or after `wheelAt`; the entry is already unscheduled. */
  onWheel(now: number): void;
}

/** Granularity of all TCP timers. */
export const TICK_MS = 5;
const SLOTS = 512;

/** The timers of one TCP endpoint. */
export class TimerWheel {
  private readonly slots: Set<WheelEntry>[] = Array.from({ length: SLOTS }, () => new Set());
  private size = 0;
  private cursor = Math.floor(performance.now() / TICK_MS);
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  /** Makes `entry` fire at `at` unless it is already due no later. */
  schedule(entry: WheelEntry, at: number): void {
    if (entry.wheelSlot >= 0) {
      if (entry.wheelAt <= at) return;
      this.slots[entry.wheelSlot]!.delete(entry);
      this.size--;
    }
    const tick = Math.max(Math.ceil(at / TICK_MS), this.cursor + 1);
    entry.wheelAt = at;
    entry.wheelSlot = tick % SLOTS;
    this.slots[entry.wheelSlot]!.add(entry);
    this.size++;
    this.arm(tick * TICK_MS);
  }

  /** Removes `entry` if scheduled. */
  cancel(entry: WheelEntry): void {
    if (entry.wheelSlot < 0) return;
    this.slots[entry.wheelSlot]!.delete(entry);
    entry.wheelSlot = -1;
    entry.wheelAt = 0;
    this.size--;
  }

  /** Stops the driving timer; entries stay but never fire. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.run(), Math.max(0, at - performance.now()));
    // The link (a UDP socket, a test) keeps the process alive, not TCP's bookkeeping.
    this.timer.unref();
  }

  private run(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const last = Math.floor(now / TICK_MS);
    const due: WheelEntry[] = [];
    // At most one lap: beyond that every slot has been visited.
    const from = Math.max(this.cursor + 1, last - SLOTS + 1);
    for (let t = from; t <= last; t++) {
      const slot = this.slots[t % SLOTS]!;
      for (const e of slot) {
        if (e.wheelAt <= now + TICK_MS / 2) {
          slot.delete(e);
          e.wheelSlot = -1;
          e.wheelAt = 0;
          this.size--;
          due.push(e);
        }
      }
    }
    this.cursor = last;
    for (const e of due) e.onWheel(now);
    if (this.size > 0) this.arm(this.nextTick() * TICK_MS);
  }

  /** The next tick with an entry; a lap ahead at most (later entries re-check each lap). */
  private nextTick(): number {
    for (let t = this.cursor + 1; t <= this.cursor + SLOTS; t++) {
      if (this.slots[t % SLOTS]!.size > 0) return t;
    }
    return this.cursor + SLOTS;
  }
}
