/**
 * What a DERP connection over WebSocket messages does whichever WebSocket carries it (`ws` in
 * Node, the platform's in a page): writes of one turn are joined and cut into binary messages,
 * and received messages are one byte stream, kept until onData is set (message boundaries carry
 * no meaning, as with Tailscale's net/wsconn).
 */
import type { DerpConn } from './transport.js';

/**
 * derper reads WebSockets with coder/websocket's default 32 KiB message limit (net/wsconn sets
 * none) and closes on a larger message, so the stream is cut into messages of at most this.
 */
export const MAX_WS_MESSAGE = 16 << 10;

/** A {@link DerpConn} over WebSocket messages; subclasses send, schedule and close. */
export abstract class MessageConn implements DerpConn {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private closed = false;
  private closeHandler: (err?: Error) => void = () => {};
  private dataHandler: ((chunk: Buffer) => void) | undefined;
  private early: Buffer[] = [];
  protected drainHandler: () => void = () => {};

  constructor(
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  /** Sends one binary message of at most {@link MAX_WS_MESSAGE} bytes. */
  protected abstract send(message: Uint8Array): void;
  /** Runs `flush` once this turn's writes are queued. */
  protected abstract defer(flush: () => void): void;
  /** Closes the WebSocket (status 1000); with `now`, without waiting for queued messages. */
  protected abstract close(now: boolean): void;
  /** Called after a flush has handed its messages to the WebSocket. */
  protected afterFlush(): void {}

  abstract get bufferedBytes(): number;
  abstract get flushedBytes(): number;

  /** Bytes written and not yet handed to the WebSocket. */
  protected get queuedBytes(): number {
    return this.pendingBytes;
  }

  /** A message arrived. */
  protected received(chunk: Buffer): void {
    if (this.dataHandler) this.dataHandler(chunk);
    else this.early.push(chunk);
  }

  /** The WebSocket closed or failed: reported once. */
  protected gone(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeHandler(err);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    for (let off = 0; off < all.length; off += MAX_WS_MESSAGE)
      this.send(all.subarray(off, off + MAX_WS_MESSAGE));
    this.afterFlush();
  };

  write(chunk: Uint8Array): void {
    if (this.closed) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.flush);
    }
  }

  onData(handler: (chunk: Buffer) => void): void {
    this.dataHandler = handler;
    for (const c of this.early.splice(0)) handler(c);
  }

  onDrain(handler: () => void): void {
    this.drainHandler = handler;
  }

  onClose(handler: (err?: Error) => void): void {
    this.closeHandler = handler;
  }

  end(): void {
    this.flush();
    this.close(false);
  }

  destroy(): void {
    this.close(true);
  }
}
