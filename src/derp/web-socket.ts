/**
 * DERP over the platform's WebSocket (a web page's, which has no TCP): the same byte stream as
 * derphttp's WebSocket transport, in binary messages, dialled with subprotocol `derp`. A page
 * cannot set headers or pin certificates; the browser's own TLS checks apply to wss:.
 */
import { DerpError } from './errors.js';
import type { DerpConn } from './transport.js';

/** The WHATWG WebSocket members used here. */
interface PlatformWebSocket {
  binaryType: string;
  readonly protocol: string;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: (() => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: (() => void) | null;
  onerror: (() => void) | null;
}
type PlatformWebSocketClass = new (url: string, protocols: string[]) => PlatformWebSocket;

/** derper reads at most 32 KiB per message (coder/websocket's default): the stream is cut below that. */
const MAX_MESSAGE = 16 << 10;
/** How often a backed-up socket is checked for drain: the WHATWG API has no drain event. */
const DRAIN_POLL_MS = 10;

/** A {@link DerpConn} over a WHATWG WebSocket: writes of one turn go out together. */
export class PlatformWebSocketConn implements DerpConn {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private sent = 0;
  private scheduled = false;
  private closed = false;
  private draining: ReturnType<typeof setInterval> | undefined;
  private drainHandler: () => void = () => {};
  private closeHandler: (err?: Error) => void = () => {};
  private dataHandler: ((chunk: Buffer) => void) | undefined;
  private early: Buffer[] = [];

  constructor(
    private readonly ws: PlatformWebSocket,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      const chunk = Buffer.from(ev.data);
      if (this.dataHandler) this.dataHandler(chunk);
      else this.early.push(chunk);
    };
    const onGone = () => {
      if (this.closed) return;
      this.closed = true;
      clearInterval(this.draining);
      this.closeHandler();
    };
    ws.onclose = onGone;
    ws.onerror = onGone;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    for (let off = 0; off < all.length; off += MAX_MESSAGE)
      this.ws.send(all.subarray(off, off + MAX_MESSAGE));
    this.sent += all.length;
    if (this.ws.bufferedAmount > 0 && this.draining === undefined) {
      this.draining = setInterval(() => {
        if (this.ws.bufferedAmount > 0) return;
        clearInterval(this.draining);
        this.draining = undefined;
        this.drainHandler();
      }, DRAIN_POLL_MS);
    }
  };

  write(chunk: Uint8Array): void {
    if (this.closed) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  get bufferedBytes(): number {
    return this.pendingBytes + this.ws.bufferedAmount;
  }

  get flushedBytes(): number {
    return this.sent - this.ws.bufferedAmount;
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
    this.ws.close(1000, 'closing');
  }

  destroy(): void {
    this.ws.close(1000, 'closing');
  }
}

/** Opens `url` (ws: or wss:) with subprotocol `derp` on the platform's WebSocket. */
export function dialPlatformWebSocket(url: URL, timeoutMs: number): Promise<PlatformWebSocketConn> {
  const WebSocketImpl = (globalThis as { WebSocket?: PlatformWebSocketClass }).WebSocket;
  if (WebSocketImpl === undefined) throw new DerpError('CONNECT', 'this runtime has no WebSocket');
  return new Promise((resolve, reject) => {
    const ws = new WebSocketImpl(url.href, ['derp']);
    const fail = (why: string) => {
      clearTimeout(timer);
      ws.onopen = ws.onerror = null;
      ws.close();
      reject(new DerpError('CONNECT', `DERP WebSocket dial ${url.protocol}//${url.host}: ${why}`));
    };
    const timer = setTimeout(() => fail(`not open within ${timeoutMs} ms`), timeoutMs);
    ws.onerror = () => fail('failed');
    ws.onopen = () => {
      clearTimeout(timer);
      if (ws.protocol !== 'derp') return fail(`server chose subprotocol "${ws.protocol}", not "derp"`);
      // Made here, in the open event's turn, so that no early message is missed.
      resolve(
        new PlatformWebSocketConn(ws, url.hostname, Number(url.port) || (url.protocol === 'wss:' ? 443 : 80)),
      );
    };
  });
}
