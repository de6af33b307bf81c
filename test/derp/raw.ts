// A hand-driven DERP connection for tests that need to send what no well-behaved client sends: arbitrary
// bytes after the HTTP upgrade, a login with a chosen ClientInfo, and a socket that can stop reading.
import { connect, type Socket } from 'node:net';
import { FrameServerKey, ProtocolVersion } from '../../src/derp/constants.js';
import { FrameReader } from '../../src/derp/frame.js';
import { generateNodeKeyPair, NaclBox } from '../../src/derp/keys.js';
import {
  type ClientInfo,
  clientInfoJson,
  decodeServerKey,
  encodeClientInfo,
} from '../../src/derp/messages.js';

export class RawConn {
  readonly frames: Array<{ type: number; payload: Buffer }> = [];
  closed = false;
  private readonly reader = new FrameReader(
    (type, payload) => this.frames.push({ type, payload: Buffer.from(payload) }),
    1 << 20,
  );
  serverKey: Uint8Array | undefined;
  readonly keys = generateNodeKeyPair();

  private constructor(readonly socket: Socket) {
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {
      this.closed = true;
    });
  }

  /** Connects and completes the HTTP upgrade; resolves with the greeting (ServerKey) read. */
  static open(port: number, headers = 'Upgrade: DERP\r\nConnection: Upgrade\r\n'): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      const raw = new RawConn(socket);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        if (head === undefined) return;
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        if (!head.subarray(0, 12).toString().includes('101')) {
          reject(new Error(head.toString()));
          return;
        }
        socket.on('data', (c: Buffer) => raw.reader.push(c));
        raw.reader.push(head.subarray(end + 4));
        resolve(raw);
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.write(`GET /derp HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
    });
  }

  async next(type?: number, timeoutMs = 3000): Promise<{ type: number; payload: Buffer }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => type === undefined || f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (Date.now() > deadline)
        throw new Error(`no frame${type === undefined ? '' : ` of type ${type}`} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Sends a valid ClientInfo (or `info`) sealed to the server key. */
  async login(info: Partial<ClientInfo> = {}): Promise<void> {
    const greet = await this.next(FrameServerKey);
    this.serverKey = decodeServerKey(greet.payload);
    const box = NaclBox.between(this.keys.privateKey, this.serverKey);
    const sealed = box.seal(clientInfoJson({ version: ProtocolVersion, canAckPings: true, ...info }));
    this.write(encodeClientInfo(this.keys.publicKey, sealed));
  }

  write(b: Uint8Array): void {
    this.socket.write(b);
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
