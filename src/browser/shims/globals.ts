/**
 * Globals Node has and a page lacks, injected into the browser bundle (esbuild `inject`: free
 * uses of these names bind to the exports here): Buffer (the `buffer` package, Node's API for
 * browsers), a `process` with what the layers read, setImmediate on a MessageChannel (a task,
 * as in Node, without setTimeout's 4 ms clamp), and timers that are objects with Node's
 * `unref`/`ref`/`refresh` (no-ops but refresh: a page has no event loop to keep alive).
 */
import { Buffer } from 'buffer';

type Task = () => void;
const queue = new Map<number, Task>();
let next = 1;
let channel: InstanceType<typeof MessageChannel> | undefined;

function setImmediate(fn: (...args: unknown[]) => void, ...args: unknown[]): number {
  if (!channel) {
    channel = new MessageChannel();
    (channel.port1 as unknown as { onmessage: (ev: { data: number }) => void }).onmessage = (ev) => {
      const task = queue.get(ev.data);
      queue.delete(ev.data);
      task?.();
    };
  }
  const id = next++;
  queue.set(id, () => fn(...args));
  channel.port2.postMessage(id);
  return id;
}

function clearImmediate(id: number): void {
  queue.delete(id);
}

const process = {
  env: {} as Record<string, string | undefined>,
  versions: {} as Record<string, string | undefined>,
  platform: 'js',
  pid: 1,
  nextTick: (fn: (...a: unknown[]) => void, ...args: unknown[]) => queueMicrotask(() => fn(...args)),
  emitWarning: () => {},
  cwd: () => '/',
};

type Callback = (...args: unknown[]) => void;

/** A Node-shaped timer over the page's timer id. */
class Timer {
  constructor(
    public id: number,
    private readonly start: () => number,
  ) {}
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  hasRef(): boolean {
    return true;
  }
  refresh(): this {
    globalThis.clearTimeout(this.id);
    this.id = this.start();
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

function setTimeout(fn: Callback, ms?: number, ...args: unknown[]): Timer {
  const start = () => globalThis.setTimeout(() => fn(...args), ms) as unknown as number;
  return new Timer(start(), start);
}

function setInterval(fn: Callback, ms?: number, ...args: unknown[]): Timer {
  const start = () => globalThis.setInterval(() => fn(...args), ms) as unknown as number;
  return new Timer(start(), start);
}

const idOf = (t: Timer | number | undefined) => (t instanceof Timer ? t.id : t);
function clearTimeout(t: Timer | number | undefined): void {
  globalThis.clearTimeout(idOf(t));
}
function clearInterval(t: Timer | number | undefined): void {
  globalThis.clearInterval(idOf(t));
}

export {
  Buffer,
  clearImmediate,
  clearInterval,
  clearTimeout,
  process,
  setImmediate,
  setInterval,
  setTimeout,
};
