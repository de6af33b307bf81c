/**
 * The byte pipe under a DERP connection, on either end: a TCP or TLS socket after the HTTP
 * upgrade, or a WebSocket whose binary messages carry the same byte stream (Tailscale's
 * net/wsconn). Writes made in one event-loop turn leave as one writev (or one WebSocket
 * message), which is where the relay's throughput comes from.
 */
import type { Socket } from 'node:net';
import { MessageConn } from './message-conn.js';

/** A duplex byte stream with batching and backpressure information. */
export interface DerpConn {
  /** Queues bytes; everything written in this turn goes out together at its end. */
  write(chunk: Uint8Array): void;
  /** Bytes accepted but not yet handed to the kernel. */
  readonly bufferedBytes: number;
  /** Bytes handed to the kernel so far: the write-timeout watchdog's progress measure. */
  readonly flushedBytes: number;
  /** `ip:port` of the other end, for logs and PeerPresent. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  onData(handler: (chunk: Buffer) => void): void;
  /** Called when buffered bytes have been written out after having piled up. */
  onDrain(handler: () => void): void;
  /** Called once when the stream ends, with the error if it failed. */
  onClose(handler: (err?: Error) => void): void;
  /** Closes after flushing what is queued. */
  end(): void;
  /** Closes at once, dropping queued bytes. */
  destroy(): void;
}

/**
 * A {@link DerpConn} over a net.Socket or tls.TLSSocket.
 *
 * @example
 * const conn = new SocketConn(socket);
 * conn.onData((b) => reader.push(b));
 */
export class SocketConn implements DerpConn {
  private corked = false;
  private closed = false;
  private closeHandler: (err?: Error) => void = () => {};
  private failure: Error | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(private readonly socket: Socket) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.failure = err;
    });
    // node:http server sockets allow half-open; DERP has no half-close, so the peer's FIN ends it.
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.closeHandler(this.failure);
    });
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  write(chunk: Uint8Array): void {
    if (this.closed || this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(chunk);
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  get flushedBytes(): number {
    // net.Socket.bytesWritten counts queued bytes too.
    return this.socket.bytesWritten - this.socket.writableLength;
  }

  onData(handler: (chunk: Buffer) => void): void {
    this.socket.on('data', handler);
    // The dialer pauses the socket between the HTTP response and the DERP login.
    this.socket.resume();
  }

  onDrain(handler: () => void): void {
    this.socket.on('drain', handler);
  }

  onClose(handler: (err?: Error) => void): void {
    this.closeHandler = handler;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * What {@link WebSocketConn} uses of a `ws` WebSocket, structurally: the published types then
 * need no `@types/ws` in a user's project.
 */
export interface NodeWebSocket {
  binaryType: string;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[]) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  send(data: Uint8Array, options: { binary: boolean }, cb: (err?: Error) => void): void;
  terminate(): void;
  close(code?: number, reason?: string): void;
}

/**
 * A {@link DerpConn} over a `ws` WebSocket: writes of one turn become one binary message,
 * and received messages are concatenated into the byte stream (message boundaries carry no
 * meaning, as with Tailscale's wsconn).
 *
 * @example
 * const conn = new WebSocketConn(ws, '127.0.0.1', 50000);
 */
export class WebSocketConn extends MessageConn {
  private inFlight = 0;
  private sent = 0;
  private failure: Error | undefined;

  constructor(
    private readonly ws: NodeWebSocket,
    remoteAddress: string,
    remotePort: number,
  ) {
    super(remoteAddress, remotePort);
    ws.binaryType = 'nodebuffer';
    // Listen from the start: the server's first frame may come before onData is called.
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const chunks = Array.isArray(data) ? data : [Buffer.isBuffer(data) ? data : Buffer.from(data)];
      for (const c of chunks) this.received(c);
    });
    ws.on('error', (err: Error) => {
      this.failure = err;
    });
    ws.on('close', () => this.gone(this.failure));
  }

  protected send(message: Uint8Array): void {
    const size = message.length;
    this.inFlight += size;
    this.ws.send(message, { binary: true }, (err?: Error) => {
      this.inFlight -= size;
      this.sent += size;
      if (err) this.failure ??= err;
      else if (this.inFlight === 0) this.drainHandler();
    });
  }

  protected defer(flush: () => void): void {
    process.nextTick(flush);
  }

  protected close(now: boolean): void {
    if (now) this.ws.terminate();
    else this.ws.close(1000, 'closing');
  }

  get bufferedBytes(): number {
    return this.queuedBytes + this.inFlight;
  }

  get flushedBytes(): number {
    return this.sent;
  }
}
