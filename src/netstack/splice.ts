/**
 * Joins two byte streams both ways, as a port forwarder does: data flows in each direction
 * with backpressure (pipe), an end in one direction half-closes the other side, and an error
 * or an abort on either tears both down. Reports the byte counts once both have closed.
 */
import type { Duplex } from 'node:stream';

export interface SpliceResult {
  /** Bytes read from `a` and written to `b`. */
  aToB: number;
  /** Bytes read from `b` and written to `a`. */
  bToA: number;
  /** The first error's code or message, if either side failed. */
  error: string | undefined;
}

/** Splices `a` and `b`; returns a function that destroys both. */
export function splice(a: Duplex, b: Duplex, onDone?: (r: SpliceResult) => void): () => void {
  const r: SpliceResult = { aToB: 0, bToA: 0, error: undefined };
  // A relay forwards what it reads at once: the endpoints already chose how to segment, and
  // Nagle's algorithm on the relay's side would hold a request's tail until the peer's delayed
  // ACK (RFC 9293 §3.7.4), stalling request/response protocols for tens of milliseconds.
  noDelay(a);
  noDelay(b);
  a.on('data', (d: Buffer) => {
    r.aToB += d.length;
  });
  b.on('data', (d: Buffer) => {
    r.bToA += d.length;
  });
  a.pipe(b);
  b.pipe(a);
  const fail = (err: Error & { code?: string }) => {
    r.error ||= err.code ?? err.message;
    a.destroy();
    b.destroy();
  };
  a.on('error', fail);
  b.on('error', fail);
  let closed = 0;
  // A side closed without reading to its end was aborted (destroyed, or reset with no error
  // event): pipe() only passes on an end, so the other side is torn down here. A side that
  // closed cleanly leaves the other to finish its writes; what the other still reads has
  // nowhere to go, and it must keep flowing for its end to arrive (Deno's unpipe pauses it).
  const onClose = (from: Duplex, other: Duplex) => () => {
    if (!from.readableEnded) other.destroy();
    else if (!other.readableEnded) other.resume();
    if (++closed === 2) onDone?.(r);
  };
  a.on('close', onClose(a, b));
  b.on('close', onClose(b, a));
  return () => {
    a.destroy();
    b.destroy();
  };
}

/** Turns off Nagle's algorithm on a TCP socket (node:net or ours); other streams are left alone. */
export function noDelay(s: Duplex): void {
  (s as Duplex & { setNoDelay?: (on: boolean) => unknown }).setNoDelay?.(true);
}
