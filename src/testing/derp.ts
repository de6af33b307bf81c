/**
 * A DERP relay in memory: our DERP server core (derp/server.ts) with each client joined to it by
 * a pair of in-memory byte streams, past the HTTP upgrade, as a socket after it would be. Nodes
 * get it through magicsock's `derp.connect` option, and skip the latency probes (one region).
 */
import { DerpClient, type DerpClientOptions } from '../derp/client.js';
import { DerpServer } from '../derp/server.js';
import type { DerpConn } from '../derp/transport.js';

/** One end of an in-memory stream: what is written in a turn reaches the other end at its close. */
class MemoryConn implements DerpConn {
  peer: MemoryConn | undefined;
  bufferedBytes = 0;
  flushedBytes = 0;
  readonly remotePort = 0;
  private queue: Buffer[] = [];
  private dataHandler: ((chunk: Buffer) => void) | undefined;
  /** What arrived before anyone listened (the relay greets before the client has its handler). */
  private early: Buffer[] = [];
  private closeHandlers: Array<(err?: Error) => void> = [];
  /** A writer that saw `bufferedBytes` pile up within a turn waits for this, after the flush. */
  private drainHandlers: Array<() => void> = [];
  private closed = false;

  constructor(readonly remoteAddress: string) {}

  write(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.queue.length === 0) queueMicrotask(() => this.flush());
    this.queue.push(Buffer.from(chunk));
    this.bufferedBytes += chunk.length;
  }

  onData(handler: (chunk: Buffer) => void): void {
    this.dataHandler = handler;
    for (const b of this.early.splice(0)) handler(b);
  }

  onDrain(handler: () => void): void {
    this.drainHandlers.push(handler);
  }

  onClose(handler: (err?: Error) => void): void {
    this.closeHandlers.push(handler);
  }

  end(): void {
    this.flush();
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    for (const h of this.closeHandlers) h();
    this.peer?.destroy();
  }

  private flush(): void {
    if (this.queue.length === 0 || this.closed) return;
    const data = Buffer.concat(this.queue);
    this.queue = [];
    this.flushedBytes += data.length;
    this.bufferedBytes = 0;
    this.peer?.take(data);
    for (const h of this.drainHandlers) h();
  }

  private take(data: Buffer): void {
    if (this.closed) return;
    if (this.dataHandler) this.dataHandler(data);
    else this.early.push(data);
  }
}

/** Two joined ends. */
export function memoryConnPair(): [DerpConn, DerpConn] {
  const a = new MemoryConn('memory:client');
  const b = new MemoryConn('memory:relay');
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/**
 * An in-memory relay and what a node passes as magicsock's `derp` option to use it.
 *
 * @example
 * const relay = new MemoryDerp();
 * const ms = await Magicsock.open({ …, derp: relay.options(900) });
 * relay.close();
 */
export class MemoryDerp {
  readonly server = new DerpServer();

  /** magicsock's `derp` option: connect here, and call region `home` the nearest (the only one). */
  options(home: number): {
    connect: (opts: DerpClientOptions) => Promise<DerpClient>;
    measure: () => Promise<Map<number, number>>;
  } {
    return {
      connect: (opts) =>
        DerpClient.connect({
          ...opts,
          conn: async () => {
            const [client, relay] = memoryConnPair();
            this.server.accept(relay);
            return client;
          },
        }),
      measure: async () => new Map([[home, 1]]),
    };
  }

  close(): void {
    this.server.close();
  }
}
