// The SQL thread's side of the worker: a synchronous call that posts a request and blocks with
// Atomics.wait until the worker answers or the timeout passes. DuckDB invokes table functions
// synchronously and waits for them, so a promise could never resolve there; a bounded wait
// turns a stuck node into an SQL error instead of a hung DuckDB.
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { type Envelope, type Reply, type Request, SIGNAL_SLOT } from './protocol.js';

/** Thrown when the worker does not answer in time; the node may still be working on it. */
export class NodeTimeoutError extends Error {
  constructor(op: string, ms: number) {
    super(`the tailnet node did not answer ${op} within ${ms} ms`);
    this.name = 'NodeTimeoutError';
  }
}

/** What else the SQL thread does while it waits: the coordinator's SQL (coordinator/sql-channel.ts). */
export interface BridgeExtras {
  /** Handed to the worker as `workerData.sqlPort`. */
  sqlPort?: MessagePort;
  /** Called on every wake-up of a wait; true asks to be called again within a few ms. */
  pump?: () => boolean;
}

export class NodeBridge {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;
  private stopped = false;

  /**
   * @param workerUrl the compiled worker module (worker.js beside this file unless overridden)
   * @param extras the coordinator's SQL port and the pump that serves it while this thread waits
   */
  constructor(
    workerUrl: URL,
    private readonly extras: BridgeExtras = {},
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const sqlPort = extras.sqlPort;
    this.worker = new Worker(workerUrl, {
      workerData: { port: port2, signal: this.flag.buffer, sqlPort },
      transferList: sqlPort ? [port2, sqlPort] : [port2],
    });
    // Neither the worker nor the port may keep a one-shot script alive: the node's own
    // sockets do that while it is up, and tailscale_down closes them.
    this.worker.unref();
    this.port.unref();
    this.worker.on('error', () => {
      this.stopped = true;
    });
  }

  /** Sends one request and blocks this thread until its reply arrives or `timeoutMs` passes. */
  call(body: Request, timeoutMs: number): Reply {
    if (this.stopped) return { ok: false, error: 'the tailnet worker has stopped' };
    const id = this.nextId++;
    let seen = Atomics.load(this.flag, SIGNAL_SLOT);
    this.port.postMessage({ id, body } satisfies Envelope<Request>);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Drain everything queued: replies to earlier, timed-out calls are dropped here.
      for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
        const reply = m.message as Envelope<Reply>;
        if (reply.id === id) return reply.body;
      }
      // The worker may be waiting on SQL that only this thread can run.
      const busy = this.extras.pump?.() ?? false;
      const left = deadline - Date.now();
      if (left <= 0) throw new NodeTimeoutError(body.op, timeoutMs);
      Atomics.wait(this.flag, SIGNAL_SLOT, seen, busy ? Math.min(left, 2) : left);
      seen = Atomics.load(this.flag, SIGNAL_SLOT);
    }
  }

  /** Whether the worker keeps the process alive: yes while a node is up, as with the library API. */
  keepAlive(on: boolean): void {
    if (on) this.worker.ref();
    else this.worker.unref();
  }

  /** Ends the worker thread (after `down`, so the node has closed its sockets cleanly). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.port.close();
    void this.worker.terminate();
  }
}
