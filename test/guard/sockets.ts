// Raw TCP connections for limit and deadline tests: opened from a chosen loopback address (a
// "source"), told whether the server has closed them, and when.
import { connect, type Socket } from 'node:net';

export interface Probe {
  socket: Socket;
  /** ms after opening at which the server closed it, or undefined while open. */
  closedAfter: number | undefined;
  /** Resolves when the connection closes; rejects after `ms`. */
  closed(ms?: number): Promise<number>;
  /** Everything the server sent, as text. */
  received(): string;
}

/** Opens a connection to 127.0.0.1:`port` from `from` (any 127/8 address); resolves once connected. */
export function open(port: number, from = '127.0.0.1'): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    const chunks: Buffer[] = [];
    let onClose: ((ms: number) => void) | undefined;
    const p: Probe = {
      socket,
      closedAfter: undefined,
      closed: (ms = 5000) =>
        p.closedAfter !== undefined
          ? Promise.resolve(p.closedAfter)
          : new Promise((res, rej) => {
              const t = setTimeout(() => rej(new Error(`still open after ${ms} ms`)), ms);
              onClose = (v) => {
                clearTimeout(t);
                res(v);
              };
            }),
      received: () => Buffer.concat(chunks).toString('latin1'),
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    // A reset is one of the ways the server may close; the test looks at when, not how.
    socket.on('error', () => {});
    socket.on('close', () => {
      p.closedAfter = Date.now() - start;
      onClose?.(p.closedAfter);
    });
    socket.once('connect', () => resolve(p));
    socket.once('error', reject);
  });
}

/** Whether `p` is still open after `ms` (the server kept it). */
export async function stillOpenAfter(p: Probe, ms: number): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  return p.closedAfter === undefined;
}

/** Writes `text` one byte every `everyMs` until the connection closes. */
export function trickle(p: Probe, text: string, everyMs: number): void {
  let i = 0;
  const t = setInterval(() => {
    if (p.closedAfter !== undefined || i >= text.length) {
      clearInterval(t);
      return;
    }
    p.socket.write(text[i++]!);
  }, everyMs);
}
