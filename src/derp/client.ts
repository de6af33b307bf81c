/**
 * One DERP client connection (derp/derp_client.go + the connect half of
 * derphttp_client.go): dial, log in (ServerKey → ClientInfo → ServerInfo), then send packets
 * by node key and receive frames. It does not reconnect; {@link DerpClientManager} does.
 */
import { randomBytes } from 'node:crypto';
import {
  FrameSendPacket,
  FrameServerInfo,
  FrameServerKey,
  KeyLen,
  MaxClientFrameLen,
  MaxPacketSize,
  PingLen,
  ProtocolVersion,
} from './constants.js';
import { type DialOptions, dialDerp } from './dial.js';
import { DerpError, errorMessage } from './errors.js';
import { FrameReader, writeFrameHeader } from './frame.js';
import { fingerprint, NaclBox, nodePublicKey } from './keys.js';
import { type DerpLogger, silentDerpLogger } from './logger.js';
import {
  type ClientInfo,
  clientInfoJson,
  decodeServerFrame,
  decodeServerKey,
  encodeClientInfo,
  encodeClosePeer,
  encodeForwardPacket,
  encodeNotePreferred,
  encodePing,
  encodePong,
  encodeWatchConns,
  expectFrame,
  parseServerInfo,
  type ServerInfo,
  type ServerMessage,
} from './messages.js';
import type { DerpConn } from './transport.js';

export interface DerpClientOptions extends DialOptions {
  /** Our node private key (32 bytes); its public key is our DERP address. */
  privateKey: Uint8Array;
  /** Answer the server's pings (ClientInfo.CanAckPings; default true). */
  canAckPings?: boolean;
  isProber?: boolean;
  appName?: string;
  /** 64 hex digits: makes us a trusted mesh peer on a server with the same key. */
  meshKey?: string;
  logger?: DerpLogger;
  /** Close when nothing arrives for this long (derp_client.go Recv: 120 s). */
  readTimeoutMs?: number;
  /**
   * A byte stream already at the DERP protocol (after the HTTP upgrade), instead of dialling
   * `url`: an in-memory relay (quackscale/testing).
   */
  conn?: () => Promise<DerpConn>;
}

type PacketHandler = (source: Uint8Array, data: Uint8Array) => void;

/**
 * A logged-in DERP connection.
 *
 * @example
 * const c = await DerpClient.connect({ url: 'http://127.0.0.1:3340/derp', privateKey });
 * c.onPacket((src, data) => console.log(data.length));
 * c.send(peerPublicKey, new Uint8Array([1, 2, 3]));
 * console.log(await c.ping());
 * c.close();
 */
export class DerpClient {
  readonly publicKey: Uint8Array;
  private packetHandler: PacketHandler = () => {};
  private messageHandler: (m: ServerMessage) => void = () => {};
  private closeHandlers: Array<(err?: DerpError) => void> = [];
  private readonly pings = new Map<string, () => void>();
  private lastRead = Date.now();
  private watchdog: NodeJS.Timeout | undefined;
  private closedWith: DerpError | null | undefined;
  serverPublicKey: Uint8Array = new Uint8Array(KeyLen);
  serverInfo: ServerInfo = { version: 0 };
  private box: NaclBox | undefined;

  private constructor(
    private readonly conn: DerpConn,
    private readonly opts: DerpClientOptions,
    private readonly log: DerpLogger,
  ) {
    this.publicKey = nodePublicKey(opts.privateKey);
  }

  /** Dials, logs in, and resolves once the server's ServerInfo has been opened. */
  static async connect(opts: DerpClientOptions): Promise<DerpClient> {
    const log = opts.logger ?? silentDerpLogger;
    const { conn, leftover } = opts.conn
      ? { conn: await opts.conn(), leftover: Buffer.alloc(0) }
      : await dialDerp(opts);
    const client = new DerpClient(conn, opts, log);
    await client.login(leftover, opts.timeoutMs ?? 10_000);
    return client;
  }

  private login(leftover: Buffer, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let stage: 'key' | 'info' | 'up' = 'key';
      const timer = setTimeout(
        () => fail(new DerpError('TIMEOUT', `DERP login: no ServerInfo within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const fail = (err: DerpError): void => {
        clearTimeout(timer);
        if (stage !== 'up') {
          stage = 'up';
          this.shutdown(err);
          reject(err);
        } else {
          this.shutdown(err);
        }
      };
      // derp_client.go recvServerKey reads the greeting with a 1 KiB limit.
      const reader = new FrameReader((type, payload) => {
        if (stage === 'up') {
          this.onFrame(type, payload);
          return;
        }
        if (stage === 'key') {
          expectFrame(type, FrameServerKey);
          this.serverPublicKey = decodeServerKey(payload);
          this.box = NaclBox.between(this.opts.privateKey, this.serverPublicKey);
          const info: ClientInfo = { version: ProtocolVersion, canAckPings: this.opts.canAckPings ?? true };
          if (this.opts.isProber) info.isProber = true;
          if (this.opts.appName) info.appName = this.opts.appName;
          if (this.opts.meshKey) info.meshKey = this.opts.meshKey;
          this.conn.write(encodeClientInfo(this.publicKey, this.box.seal(clientInfoJson(info))));
          stage = 'info';
          reader.maxFrameLen = MaxClientFrameLen;
          return;
        }
        if (type !== FrameServerInfo) {
          this.onFrame(type, payload);
          return;
        }
        this.serverInfo = parseServerInfo(this.box!.open(payload));
        stage = 'up';
        clearTimeout(timer);
        this.startWatchdog();
        this.log.debug(`derp: logged in to ${this.where()} as ${fingerprint(this.publicKey)}`);
        resolve();
      }, 1 << 10);
      const push = (chunk: Buffer): void => {
        this.lastRead = Date.now();
        try {
          reader.push(chunk);
        } catch (err) {
          fail(
            err instanceof DerpError ? err : new DerpError('BAD_FRAME', errorMessage(err), { cause: err }),
          );
        }
      };
      this.conn.onClose((err) => {
        const why = reader.midFrame ? 'stream ended inside a frame' : 'connection closed';
        fail(
          new DerpError(
            reader.midFrame ? 'TRUNCATED' : 'CLOSED',
            `DERP ${this.where()}: ${why}${err ? `: ${err.message}` : ''}`,
            { cause: err },
          ),
        );
      });
      this.conn.onData(push);
      if (leftover.length > 0) push(leftover);
    });
  }

  private where(): string {
    return new URL(this.opts.url).host;
  }

  private startWatchdog(): void {
    const limit = this.opts.readTimeoutMs ?? 120_000;
    this.watchdog = setInterval(
      () => {
        if (Date.now() - this.lastRead > limit) {
          this.shutdown(new DerpError('TIMEOUT', `DERP ${this.where()}: nothing received for ${limit} ms`));
        }
      },
      Math.min(limit / 4, 15_000),
    );
    this.watchdog.unref();
  }

  private onFrame(type: number, payload: Buffer): void {
    const m = decodeServerFrame(type, payload);
    if (m === undefined) return;
    if (m.type === 'packet') {
      this.packetHandler(m.source, m.data);
      return;
    }
    if (m.type === 'ping' && (this.opts.canAckPings ?? true)) this.conn.write(encodePong(m.data));
    if (m.type === 'pong') {
      const key = Buffer.from(m.data).toString('hex');
      this.pings.get(key)?.();
    }
    this.messageHandler(m);
  }

  /** Receives relayed packets; `data` belongs to the handler. A later call replaces it. */
  onPacket(handler: PacketHandler): void {
    this.packetHandler = handler;
  }

  /** Receives every other server message (PeerGone, keepalives, pongs, health …). */
  onMessage(handler: (m: ServerMessage) => void): void {
    this.messageHandler = handler;
  }

  /** Called once when the connection ends; `err` is undefined after our own close(). */
  onClose(handler: (err?: DerpError) => void): void {
    if (this.closedWith !== undefined) handler(this.closedWith ?? undefined);
    else this.closeHandlers.push(handler);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Bytes queued towards the server and not yet written to the kernel. */
  get bufferedBytes(): number {
    return this.conn.bufferedBytes;
  }

  /**
   * Sends one packet to the node with public key `dst`. Returns false when closed. Throws
   * for a packet over MaxPacketSize (derp_client.go send).
   */
  send(dst: Uint8Array, data: Uint8Array): boolean {
    if (this.closedWith !== undefined) return false;
    if (data.length > MaxPacketSize) {
      throw new DerpError(
        'FRAME_TOO_LARGE',
        `packet of ${data.length} bytes exceeds MaxPacketSize ${MaxPacketSize}`,
      );
    }
    if (dst.length !== KeyLen) throw new DerpError('BAD_KEY', `destination key must be ${KeyLen} bytes`);
    // One buffer per frame: a stream write costs more than copying a packet, and the writes of
    // one turn still leave together (transport.ts). The caller may reuse `data` afterwards.
    const frame = Buffer.allocUnsafe(5 + KeyLen + data.length);
    writeFrameHeader(frame, 0, FrameSendPacket, KeyLen + data.length);
    frame.set(dst, 5);
    frame.set(data, 5 + KeyLen);
    this.conn.write(frame);
    return true;
  }

  /** Tells the server whether this is our home region (stats only on derper). */
  notePreferred(preferred: boolean): void {
    if (!this.closed) this.conn.write(encodeNotePreferred(preferred));
  }

  /** Sends a Ping and resolves with the round-trip time in ms when its Pong returns. */
  ping(timeoutMs = 5000): Promise<number> {
    const data = randomBytes(PingLen);
    const key = data.toString('hex');
    const start = performance.now();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(key);
        reject(new DerpError('TIMEOUT', `DERP ping to ${this.where()}: no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(key, () => {
        clearTimeout(timer);
        this.pings.delete(key);
        resolve(performance.now() - start);
      });
      this.conn.write(encodePing(data));
    });
  }

  /** Mesh only: subscribe to PeerPresent/PeerGone for every client of the server. */
  watchConnectionChanges(): void {
    this.conn.write(encodeWatchConns());
  }

  /** Mesh only: ask the server to close `peer`'s connection. */
  closePeer(peer: Uint8Array): void {
    this.conn.write(encodeClosePeer(peer));
  }

  /** Mesh only: deliver `data` to `dst` as if sent by `src`. */
  forwardPacket(src: Uint8Array, dst: Uint8Array, data: Uint8Array): void {
    this.conn.write(encodeForwardPacket(src, dst, data));
  }

  private shutdown(err: DerpError | null): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err;
    clearInterval(this.watchdog);
    if (err) {
      this.log.debug(`derp: ${this.where()} closed: ${err.message}`);
      this.conn.destroy();
    } else {
      this.conn.end();
    }
    for (const h of this.closeHandlers.splice(0)) h(err ?? undefined);
  }

  /** Closes the connection (flushing queued frames). */
  close(): void {
    this.shutdown(null);
  }
}
