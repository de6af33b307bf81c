/**
 * Crypto worker threads for the transport path: sealing and opening (ChaCha20-Poly1305, the
 * wasm engine) move off the main thread, a whole vector at a time, while the main thread runs
 * the stack, the sockets and the next vector. Nothing is copied on the way: each lane is a wasm
 * memory shared with one worker, in which the main thread lays out its vectors exactly as it does
 * for its own instance (wasm-vector.ts), and the worker runs `seal_batch`/`open_batch` on it.
 *
 * Control words (one SharedArrayBuffer of Int32):
 *   [0]                          stop: set, every worker returns
 *   [1 + w]                      doorbell of worker w: bumped and notified after a submit
 *   [SLOT_BASE + s·STRIDE]       state of slot s (idle, submitted, running, done); +1: its message count
 * Slot 2·l seals lane l's seal vector, slot 2·l + 1 opens its open vector. Slots sit a cache
 * line apart, so the two threads do not share one.
 */
import { Worker } from 'node:worker_threads';
import { BATCH_REGIONS, type ChaCha20Poly1305Exports } from '../wasm/chacha20poly1305.js';
import { CHACHA20POLY1305_SHARED_WASM_BASE64 } from '../wasm/chacha20poly1305.wasm.js';
import { WasmOpenVector, WasmSealVector } from '../wasm/wasm-vector.js';
import {
  CONTROL_STOP,
  type CryptoWorkerData,
  cryptoWorkerMain,
  SLOT_DONE,
  SLOT_IDLE,
  SLOT_RUNNING,
  SLOT_SUBMITTED,
} from './crypto-worker.js';

/** Lanes per worker: one being filled by the main thread while the worker runs the other. */
const LANES_PER_WORKER = 2;
const SLOT_STRIDE = 16;
/** A worker that has not finished a vector in this long is taken for dead (a vector takes < 1 ms). */
const STALL_MS = 10_000;

/** Thrown when a crypto worker cannot be started or stops answering. */
export class CryptoPoolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CryptoPoolError';
  }
}

/** One shared memory: a seal and an open vector, run by one worker. */
export interface Lane {
  readonly seal: WasmSealVector;
  readonly open: WasmOpenVector;
  /** Control word index of slot `op` (0 seal, 1 open). */
  readonly words: readonly [number, number];
}

// The WebAssembly global, typed here because lib.dom is not in this project's libs.
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
  Memory: new (d: {
    initial: number;
    maximum: number;
    shared: boolean;
  }) => { readonly buffer: ArrayBufferLike };
}

/** Atomics.waitAsync (ES2024), which this project's lib (ES2022) does not declare. */
type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/**
 * A pool of crypto worker threads and their lanes. Create with {@link CryptoPool.create}; give its
 * queues (pooled-queue.ts) to a transport path; {@link close} stops the workers.
 */
export class CryptoPool {
  readonly lanes: readonly Lane[];
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private closed = false;
  /** The first worker failure, if any: the main thread then runs that worker's vectors itself. */
  failure: Error | undefined;
  /** Which workers have failed (by index). */
  private readonly dead: boolean[] = [];

  private constructor(
    readonly workerCount: number,
    private readonly onError: (err: Error) => void,
  ) {
    const api = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const wasm = Buffer.from(CHACHA20POLY1305_SHARED_WASM_BASE64, 'base64');
    const module = new api.Module(wasm);
    const laneCount = workerCount * LANES_PER_WORKER;
    const slotBase = SLOT_STRIDE * Math.ceil((1 + workerCount) / SLOT_STRIDE);
    this.control = new Int32Array(new SharedArrayBuffer(4 * (slotBase + 2 * laneCount * SLOT_STRIDE)));
    const memories: object[] = [];
    const lanes: Lane[] = [];
    for (let l = 0; l < laneCount; l++) {
      const memory = new api.Memory({ initial: 12, maximum: 12, shared: true });
      // This thread's own instance on the lane: the vectors are complete without the worker.
      const exports = new api.Instance(module, { env: { memory } }).exports as ChaCha20Poly1305Exports;
      const mem = new Uint8Array(memory.buffer);
      const words = new Int32Array(memory.buffer);
      const slot = (op: number) => slotBase + (2 * l + op) * SLOT_STRIDE;
      lanes.push({
        seal: new WasmSealVector(exports, mem, words),
        open: new WasmOpenVector(exports, mem, words),
        words: [slot(0), slot(1)],
      });
      memories.push(memory);
    }
    this.lanes = lanes;
    for (let w = 0; w < workerCount; w++) {
      const own = lanes.map((_, l) => l).filter((l) => l % workerCount === w);
      const workerData: CryptoWorkerData = {
        wasm,
        memories: own.map((l) => memories[l]!),
        lanes: own,
        control: this.control.buffer as SharedArrayBuffer,
        bell: 1 + w,
        slotBase,
        slotStride: SLOT_STRIDE,
        sealDescriptors: BATCH_REGIONS.seal.descriptors,
        openDescriptors: BATCH_REGIONS.open.descriptors,
      };
      const worker = new Worker(`(${cryptoWorkerMain.toString()})(require('node:worker_threads'))`, {
        eval: true,
        workerData,
      });
      // The node's sockets keep the process alive, not its crypto threads.
      worker.unref();
      const fail = (why: string) => {
        if (this.closed || this.dead[w]) return;
        this.dead[w] = true;
        const err = new CryptoPoolError(
          `crypto worker ${w} ${why}; the main thread does its work from now on`,
        );
        this.failure ??= err;
        onError(err);
        // Wakes this thread's waiters, which then run the stranded vectors themselves.
        for (const lane of lanes) for (const word of lane.words) Atomics.notify(this.control, word);
      };
      worker.on('error', (err: Error) => fail(`failed: ${err.message}`));
      worker.on('exit', (code: number) => fail(`exited (code ${code})`));
      this.workers.push(worker);
    }
  }

  /**
   * A pool of `workers` threads, or undefined where this runtime lacks what it needs
   * (SharedArrayBuffer, Atomics.waitAsync, shared WebAssembly memory with SIMD). `onError` hears
   * of a worker that failed, and of what a queue's `done` threw.
   */
  static create(workers: number, onError: (err: Error) => void = () => {}): CryptoPool | undefined {
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new RangeError(`crypto workers must be an integer from 1 to 64, not ${workers}`);
    }
    if (typeof SharedArrayBuffer !== 'function' || !waitAsync) return undefined;
    try {
      return new CryptoPool(workers, onError);
    } catch (err) {
      if (err instanceof Error && /memory|shared|SIMD|WebAssembly/i.test(`${err.name} ${err.message}`)) {
        return undefined;
      }
      throw err;
    }
  }

  /** Passes on what a queue's `done` threw for a vector finished here (pooled-queue.ts). */
  report(err: unknown): void {
    this.onError(err instanceof Error ? err : new Error(String(err)));
  }

  /** Hands lane `lane`'s slot `word` (a vector of `count` messages) to the lane's worker. */
  submit(lane: number, word: number, count: number): void {
    const c = this.control;
    c[word + 1] = count;
    Atomics.store(c, word, SLOT_SUBMITTED);
    const bell = 1 + (lane % this.workerCount);
    Atomics.add(c, bell, 1);
    Atomics.notify(c, bell);
  }

  /**
   * Whether lane `lane`'s slot `word` is done (and then idle again). Where the lane's worker
   * failed, its vector is run here by `runHere` instead: that worker can no longer touch it.
   */
  finished(lane: number, word: number, runHere: () => void): boolean {
    const c = this.control;
    let state = Atomics.load(c, word);
    if (
      state === SLOT_SUBMITTED &&
      this.dead[lane % this.workerCount] &&
      Atomics.compareExchange(c, word, SLOT_SUBMITTED, SLOT_RUNNING) === SLOT_SUBMITTED
    ) {
      runHere();
      state = SLOT_DONE;
    }
    if (state !== SLOT_DONE) return false;
    Atomics.store(c, word, SLOT_IDLE);
    return true;
  }

  /** Blocks this thread until lane `lane`'s slot `word` is done; throws if its worker stalls. */
  waitFor(lane: number, word: number, runHere: () => void): void {
    const deadline = Date.now() + STALL_MS;
    while (!this.finished(lane, word, runHere)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new CryptoPoolError(`a crypto worker has not answered in ${STALL_MS} ms`);
      const state = Atomics.load(this.control, word);
      if (state !== SLOT_DONE) Atomics.wait(this.control, word, state, Math.min(left, 100));
    }
  }

  /** Resolves when lane `lane`'s slot `word` may be finished; undefined when it may be now. */
  whenDone(lane: number, word: number): Promise<unknown> | undefined {
    const state = Atomics.load(this.control, word);
    if (state === SLOT_DONE || (state === SLOT_SUBMITTED && this.dead[lane % this.workerCount]))
      return undefined;
    const r = waitAsync!(this.control, word, state);
    return r.async ? r.value : undefined;
  }

  /** Stops every worker; vectors in flight are abandoned. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const c = this.control;
    Atomics.store(c, CONTROL_STOP, 1);
    for (let w = 0; w < this.workerCount; w++) {
      Atomics.add(c, 1 + w, 1);
      Atomics.notify(c, 1 + w);
    }
    // Settles this thread's pending waitAsync promises, which would otherwise wait forever.
    for (const lane of this.lanes) for (const word of lane.words) Atomics.notify(c, word);
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const lane of this.lanes) {
      lane.seal.clear();
      lane.open.clear();
    }
  }
}
