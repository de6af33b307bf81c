/**
 * The soak's traffic: a flow sends random chunks over one long-lived TCP connection to an echo
 * service, at a steady rate with a bounded window, and compares every byte that comes back with
 * what it sent. A flow that loses, reorders or corrupts a byte, sees its connection end, or makes
 * no progress for a while, says so.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** An echo service on one connection: writes back what it reads, ends when the client ends. */
export function echo(sock: Duplex): void {
  sock.on('error', () => sock.destroy());
  sock.pipe(sock);
}

/** A flow's counters, as the soak reports them. */
export interface FlowReport {
  name: string;
  sentBytes: number;
  verifiedBytes: number;
  /** Bytes that came back different from what was sent (0, or the flow is broken). */
  corruptBytes: number;
  /** Longest time with bytes outstanding and none coming back, in ms. */
  longestStallMs: number;
  /** Why the flow ended early, if it did. */
  failure?: string;
}

export interface FlowOptions {
  /** Target send rate, bytes per second. */
  rate: number;
  /** Most bytes sent and not yet echoed. */
  window: number;
  /** Chunks are 1 byte to this many. */
  maxChunk?: number;
}

/**
 * One flow over `sock` (already connected to an echo service).
 *
 * @example
 * const flow = new EchoFlow('a→b', await tn.dial('b', 5001), { rate: 1 << 20, window: 1 << 20 });
 * flow.start(); … await flow.stop(); console.log(flow.report());
 */
export class EchoFlow {
  private sent = 0;
  private verified = 0;
  private corrupt = 0;
  private failure: string | undefined;
  /** Sent and not yet echoed, oldest first; the head is consumed from `headOffset`. */
  private readonly outstanding: Buffer[] = [];
  private headOffset = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastProgress = performance.now();
  private longestStall = 0;
  private stopping = false;
  private readonly closed: Promise<void>;

  constructor(
    readonly name: string,
    private readonly sock: Duplex,
    private readonly opts: FlowOptions,
  ) {
    sock.on('data', (d: Buffer) => this.check(d));
    this.closed = new Promise((resolve) => {
      sock.once('close', () => {
        if (!this.stopping) this.fail('connection closed');
        resolve();
      });
    });
    sock.on('error', (err: Error) => this.fail(`connection error: ${err.message}`));
  }

  /** Starts sending: a chunk every 20 ms, sized for the rate, while the window has room. */
  start(): void {
    const perTick = Math.max(1, Math.round(this.opts.rate / 50));
    const maxChunk = this.opts.maxChunk ?? 16 * 1024;
    this.timer = setInterval(() => {
      const now = performance.now();
      if (this.outstandingBytes() === 0) this.lastProgress = now;
      this.longestStall = Math.max(this.longestStall, now - this.lastProgress);
      let budget = perTick;
      while (budget > 0 && this.outstandingBytes() < this.opts.window && !this.failure) {
        const n = 1 + Math.floor(Math.random() * Math.min(maxChunk, budget));
        const chunk = randomBytes(n);
        this.outstanding.push(chunk);
        this.sent += n;
        budget -= n;
        this.sock.write(chunk);
      }
    }, 20);
  }

  private outstandingBytes(): number {
    return this.sent - this.verified - this.corrupt;
  }

  private check(d: Buffer): void {
    this.lastProgress = performance.now();
    let off = 0;
    while (off < d.length) {
      const head = this.outstanding[0];
      if (!head) {
        this.corrupt += d.length - off;
        this.fail(`${d.length - off} bytes came back that were never sent`);
        return;
      }
      const n = Math.min(head.length - this.headOffset, d.length - off);
      if (head.compare(d, off, off + n, this.headOffset, this.headOffset + n) === 0) this.verified += n;
      else {
        this.corrupt += n;
        this.fail(`bytes ${this.verified}..${this.verified + n} came back changed`);
      }
      off += n;
      this.headOffset += n;
      if (this.headOffset === head.length) {
        this.outstanding.shift();
        this.headOffset = 0;
      }
    }
  }

  private fail(why: string): void {
    this.failure ??= why;
  }

  /**
   * Stops sending, waits (up to `graceMs`) for the last bytes to come back, and closes. The
   * default outlasts TCP's largest retransmission timeout (120 s, as Linux): after an outage
   * the backed-off timer may leave a connection quiet that long and still be sound.
   */
  async stop(graceMs = 150_000): Promise<void> {
    clearInterval(this.timer);
    const deadline = performance.now() + graceMs;
    while (this.outstandingBytes() > 0 && !this.failure && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    if (this.outstandingBytes() > 0) this.fail(`${this.outstandingBytes()} bytes never came back`);
    this.stopping = true;
    this.sock.end();
    const forced = setTimeout(() => this.sock.destroy(), 5000);
    await this.closed;
    clearTimeout(forced);
  }

  report(): FlowReport {
    return {
      name: this.name,
      sentBytes: this.sent,
      verifiedBytes: this.verified,
      corruptBytes: this.corrupt,
      longestStallMs: Math.round(this.longestStall),
      ...(this.failure ? { failure: this.failure } : {}),
    };
  }
}
