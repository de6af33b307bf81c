/**
 * A {@link VectorQueue} whose vectors are sealed or opened by crypto workers (crypto-pool.ts).
 * Submitting hands the current vector to its lane's worker and takes the next free lane's, so
 * the main thread fills one vector while workers run others. Vectors come back to `done` in
 * the order they were submitted, whichever worker finishes first: packet order is kept for
 * every peer, as the transport path (and TCP above it) expects.
 *
 * When every lane is in flight, the next vector has to wait for the oldest: the main thread
 * blocks on it (it takes well under a millisecond), which is the pool's backpressure.
 */

import type { VectorDone, VectorQueue } from '../vector-queue.js';
import type { WasmOpenVector, WasmSealVector } from '../wasm/wasm-vector.js';
import type { CryptoPool, Lane } from './crypto-pool.js';

type Op = 'seal' | 'open';
type VectorOf<O extends Op> = O extends 'seal' ? WasmSealVector : WasmOpenVector;

export class PooledQueue<O extends Op> implements VectorQueue<VectorOf<O>> {
  readonly size: number;
  private readonly slot: 0 | 1;
  /** Lanes free to fill, in the order they will be used (round robin over the workers). */
  private readonly free: number[];
  /** Lanes submitted and not yet handed to `done`, oldest first. */
  private readonly inflight: number[] = [];
  private cur = -1;
  private armed = false;
  private closed = false;
  private readonly wake = (): void => {
    this.armed = false;
    if (this.closed) return;
    this.reap();
    this.arm();
  };

  constructor(
    private readonly pool: CryptoPool,
    private readonly op: O,
    private readonly done: VectorDone<VectorOf<O>>,
  ) {
    this.size = pool.lanes.length;
    this.slot = op === 'seal' ? 0 : 1;
    this.free = pool.lanes.map((_, l) => l);
  }

  get currentIndex(): number {
    while (this.cur < 0) {
      const next = this.free.shift();
      if (next !== undefined) this.cur = next;
      else this.finishOldest(true);
    }
    return this.cur;
  }

  get current(): VectorOf<O> {
    return this.vector(this.currentIndex);
  }

  submit(): void {
    const l = this.cur;
    if (l < 0 || this.closed) return;
    const v = this.vector(l);
    if (v.count === 0) return;
    this.cur = -1;
    this.inflight.push(l);
    this.pool.submit(l, this.word(l), v.count);
    this.reap();
    this.arm();
  }

  close(): void {
    this.closed = true;
    for (const l of [...this.inflight, this.cur]) if (l >= 0) this.vector(l).clear();
    this.inflight.length = 0;
    this.cur = -1;
    // Every lane free again, so that a late `current` (of a closed path) cannot wait forever.
    this.free.splice(0, this.free.length, ...this.pool.lanes.map((_, l) => l));
  }

  private vector(l: number): VectorOf<O> {
    const lane: Lane = this.pool.lanes[l]!;
    return (this.op === 'seal' ? lane.seal : lane.open) as VectorOf<O>;
  }

  private word(l: number): number {
    return this.pool.lanes[l]!.words[this.slot];
  }

  /** Hands every finished vector at the head of the queue to `done`. */
  private reap(): void {
    while (this.inflight.length > 0 && !this.closed && this.finishOldest(false));
  }

  /** Finishes the oldest vector (waiting for it if `block`); false if it was not done. */
  private finishOldest(block: boolean): boolean {
    const l = this.inflight[0]!;
    const v = this.vector(l);
    const runHere = () => ('seal' in v ? v.seal() : v.open());
    if (block) this.pool.waitFor(l, this.word(l), runHere);
    else if (!this.pool.finished(l, this.word(l), runHere)) return false;
    this.inflight.shift();
    try {
      if ('sealedElsewhere' in v) v.sealedElsewhere();
      else v.openedElsewhere();
      this.done(v, l);
    } catch (err) {
      // Not the caller's error (it may be submitting another vector, or be the event loop): a
      // bind that failed to send, say. The pool's owner hears of it; the next vector goes on.
      this.pool.report(err);
    } finally {
      v.clear();
      this.free.push(l);
    }
    return true;
  }

  /** Wakes up when the oldest vector is done (Atomics.waitAsync on its slot). */
  private arm(): void {
    if (this.armed || this.closed || this.inflight.length === 0) return;
    this.armed = true;
    const head = this.inflight[0]!;
    const p = this.pool.whenDone(head, this.word(head));
    if (p) p.then(this.wake);
    else queueMicrotask(this.wake);
  }
}
