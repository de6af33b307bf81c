/**
 * Vectors sealed or opened in the order they were submitted: at once on this thread
 * ({@link InlineQueue}), or by crypto worker threads (pool/pooled-queue.ts) while this thread
 * fills the next vector. The transport path (transport.ts) fills `current`, submits it, and is
 * called back with each vector once it is sealed or opened; wireguard-go's per-peer queues in
 * `device/send.go` keep packet order the same way, by handing results back in submission order.
 */
import type { OpenVector, SealVector } from './vector.js';

/** What a queue calls with each finished vector and its index, in submission order; the vector is cleared after it returns. */
export type VectorDone<V> = (vector: V, index: number) => void;

export interface VectorQueue<V extends SealVector | OpenVector> {
  /** The vector being filled. */
  readonly current: V;
  /** The index of {@link current} among the queue's vectors, for notes kept beside its messages. */
  readonly currentIndex: number;
  /** How many vectors the queue has (indexes run from 0). */
  readonly size: number;
  /** Seals or opens {@link current}; it is handed to `done` when finished, after those submitted before it. */
  submit(): void;
  /** Drops every vector, finished or not; `done` is not called again. */
  close(): void;
}

/** A queue of one vector, sealed or opened within {@link submit}. */
export class InlineQueue<V extends SealVector | OpenVector> implements VectorQueue<V> {
  readonly currentIndex = 0;
  readonly size = 1;
  private closed = false;

  constructor(
    readonly current: V,
    private readonly done: VectorDone<V>,
  ) {}

  submit(): void {
    const v = this.current;
    if (v.count === 0 || this.closed) return;
    if ('seal' in v) v.seal();
    else v.open();
    try {
      this.done(v, 0);
    } finally {
      v.clear();
    }
  }

  close(): void {
    this.closed = true;
    this.current.clear();
  }
}
