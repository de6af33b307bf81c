/**
 * A WebSocket as a byte stream (Tailscale's net/wsconn): binary messages carry the stream and
 * their boundaries mean nothing. It uses only the WHATWG WebSocket surface, which a web page's
 * WebSocket, the global one of Node 22+/Bun/Deno and the `ws` package all have, so the control
 * client and server share it.
 */
import { Duplex } from 'node:stream';

/** The WHATWG WebSocket members used here. */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/**
 * Messages are cut to at most this: Tailscale's servers read WebSockets with coder/websocket,
 * whose default limit is 32 KiB per message.
 */
const MAX_MESSAGE = 16 << 10;
const OPEN = 1;

/** The stream over an open WebSocket; ending or destroying it closes the socket. */
export function webSocketStream(ws: WebSocketLike): Duplex {
  ws.binaryType = 'arraybuffer';
  const stream = new Duplex({
    // A WebSocket cannot be paused: what arrives is pushed, and the reader's buffer absorbs it.
    read() {},
    write(chunk: Uint8Array, _enc, cb) {
      if (ws.readyState !== OPEN) return cb(new Error('WebSocket is closed'));
      for (let off = 0; off < chunk.length; off += MAX_MESSAGE)
        ws.send(chunk.subarray(off, off + MAX_MESSAGE));
      cb();
    },
    final(cb) {
      ws.close(1000, 'done');
      cb();
    },
    destroy(err, cb) {
      if (ws.readyState === OPEN) ws.close(1000, 'done');
      cb(err);
    },
  });
  ws.onmessage = (ev) => {
    const d = ev.data;
    if (d instanceof ArrayBuffer) stream.push(Buffer.from(d));
    else if (ArrayBuffer.isView(d)) stream.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    else stream.destroy(new Error('text message on a binary WebSocket stream'));
  };
  ws.onclose = () => stream.push(null);
  ws.onerror = () => stream.destroy(new Error('WebSocket failed'));
  return stream;
}
