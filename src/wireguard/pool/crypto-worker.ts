/**
 * The body of a crypto worker thread (crypto-pool.ts). The pool starts it from its source text
 * (`eval: true`), which works the same from tsc's output, from vitest's transformed sources and
 * under Bun and Deno; so it uses nothing from outside itself but its argument and `workerData`.
 *
 * The worker owns some lanes: wasm memories shared with the main thread, each with a seal and an
 * open vector laid out by wasm-vector.ts. It sleeps on its doorbell word; when rung, it runs every
 * slot of its lanes marked submitted (`seal_batch` or `open_batch` over the slot's descriptors),
 * marks it done and wakes the main thread, which waits on the slot's state word.
 */
import type * as WorkerThreads from 'node:worker_threads';

/** What the pool hands a worker (its `workerData`). */
export interface CryptoWorkerData {
  /** The shared-memory build of chacha20poly1305.wat. */
  wasm: Uint8Array;
  /** The shared memories of this worker's lanes, and each lane's index in the pool. */
  memories: object[];
  lanes: number[];
  /** The pool's control words (see crypto-pool.ts for the layout). */
  control: SharedArrayBuffer;
  bell: number;
  slotBase: number;
  slotStride: number;
  /** Descriptor offsets of the seal and open regions (chacha20poly1305.ts, BATCH_REGIONS). */
  sealDescriptors: number;
  openDescriptors: number;
}

/** Slot states in a slot's first word. */
export const SLOT_IDLE = 0;
export const SLOT_SUBMITTED = 1;
export const SLOT_DONE = 2;
/** Claimed (by compare-and-swap from submitted) by the worker, or by the main thread once that worker failed. */
export const SLOT_RUNNING = 3;
/** The control word that, set, tells every worker to return. */
export const CONTROL_STOP = 0;

interface BatchExports {
  seal_batch(d: number, n: number): void;
  open_batch(d: number, n: number): void;
}

/** Runs in the worker: see the file comment. Self-contained (serialized with toString). */
export function cryptoWorkerMain(wt: typeof WorkerThreads): void {
  const data = wt.workerData as CryptoWorkerData;
  // Constants repeated here because this function is serialized alone.
  const STOP = 0;
  const SUBMITTED = 1;
  const DONE = 2;
  const RUNNING = 3;
  const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyRuntime }).WebAssembly;
  const module = new wasm.Module(data.wasm);
  const control = new Int32Array(data.control);
  const owned: Array<{ words: [number, number]; run: BatchExports }> = [];
  for (let i = 0; i < data.lanes.length; i++) {
    const run = new wasm.Instance(module, { env: { memory: data.memories[i] } }).exports as BatchExports;
    const lane = data.lanes[i]!;
    // Slot 2·lane seals, slot 2·lane + 1 opens.
    owned.push({ words: [slotWord(2 * lane), slotWord(2 * lane + 1)], run });
  }
  function slotWord(slot: number): number {
    return data.slotBase + slot * data.slotStride;
  }
  for (;;) {
    const rung = Atomics.load(control, data.bell);
    if (Atomics.load(control, STOP) !== 0) return;
    let ran = false;
    for (const lane of owned) {
      for (let op = 0; op < 2; op++) {
        const w = lane.words[op]!;
        // Claimed, not just read: a worker told to stop may still wake (Deno lets a terminated
        // worker's Atomics.wait return), and the main thread may have taken the slot over.
        if (Atomics.compareExchange(control, w, SUBMITTED, RUNNING) !== SUBMITTED) continue;
        const count = control[w + 1]!;
        if (op === 0) lane.run.seal_batch(data.sealDescriptors, count);
        else lane.run.open_batch(data.openDescriptors, count);
        Atomics.store(control, w, DONE);
        Atomics.notify(control, w);
        ran = true;
      }
    }
    if (!ran) Atomics.wait(control, data.bell, rung);
  }
}

// The WebAssembly global, typed here because lib.dom is not in this project's libs.
interface WebAssemblyRuntime {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}
