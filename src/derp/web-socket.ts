/**
 * DERP over the platform's WebSocket (a web page's, which has no TCP): the same byte stream as
 * derphttp's WebSocket transport, in binary messages, dialled with subprotocol `derp`. A page
 * cannot set headers or pin certificates; the browser's own TLS checks apply to wss:.
 */
import { DerpError } from './errors.js';
import { MessageConn } from './message-conn.js';
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

/** How often a backed-up socket is checked for drain: the WHATWG API has no drain event. */
const DRAIN_POLL_MS = 10;

/** A {@link DerpConn} over a WHATWG WebSocket: writes of one turn go out together. */
export class PlatformWebSocketConn extends MessageConn {
  private sent = 0;
  private draining: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly ws: PlatformWebSocket,
    remoteAddress: string,
    remotePort: number,
  ) {
    super(remoteAddress, remotePort);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) this.received(Buffer.from(ev.data));
    };
    const onGone = () => {
      clearInterval(this.draining);
      this.gone();
    };
    ws.onclose = onGone;
    ws.onerror = onGone;
  }

  protected send(message: Uint8Array): void {
    this.ws.send(message);
    this.sent += message.length;
  }

  protected defer(flush: () => void): void {
    queueMicrotask(flush);
  }

  protected override afterFlush(): void {
    if (this.ws.bufferedAmount === 0 || this.draining !== undefined) return;
    this.draining = setInterval(() => {
      if (this.ws.bufferedAmount > 0) return;
      clearInterval(this.draining);
      this.draining = undefined;
      this.drainHandler();
    }, DRAIN_POLL_MS);
  }

  protected close(): void {
    this.ws.close(1000, 'closing');
  }

  get bufferedBytes(): number {
    return this.queuedBytes + this.ws.bufferedAmount;
  }

  get flushedBytes(): number {
    return this.sent - this.ws.bufferedAmount;
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
