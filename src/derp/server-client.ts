/**
 * One client connection inside the DERP server (derpserver.go sclient): the login, the read
 * loop's frame handling, and the bounded send queue. Registry-wide decisions (who is active
 * for a key, PeerGone, watchers) belong to {@link DerpServer}.
 */
import { randomBytes } from 'node:crypto';
import {
  DefaultPerClientSendQueueDepth,
  FrameClientInfo,
  FrameClosePeer,
  FrameForwardPacket,
  FrameHeaderLen,
  FrameNames,
  FrameNotePreferred,
  FramePing,
  FramePong,
  FrameRecvPacket,
  FrameSendPacket,
  FrameWatchConns,
  KeyLen,
  MaxClientInfoLen,
  MaxPacketSize,
  MaxPingLen,
  PingLen,
  ProtocolVersion,
} from './constants.js';
import { DerpError, errorMessage } from './errors.js';
import { FrameReader, frameName, writeFrameHeader } from './frame.js';
import { fingerprint, NaclBox } from './keys.js';
import {
  type ClientInfo,
  decodeClientInfoFrame,
  encodePing,
  encodePong,
  encodeServerInfo,
  encodeServerKey,
  expectFrame,
  parseClientInfo,
  serverInfoJson,
} from './messages.js';
import type { DropReason } from './server-metrics.js';
import type { DerpConn } from './transport.js';

/** What a connection needs from the server that owns it. */
export interface ServerHost {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly strictFrames: boolean;
  /** Admission control after a valid ClientInfo (derper -verify-client-url); false refuses. */
  admit(c: ServerClient): boolean | Promise<boolean>;
  /** Called once admitted; returns false to refuse the client. */
  register(c: ServerClient): boolean;
  unregister(c: ServerClient): void;
  /** Routes a packet from `src` (a client, or a mesh-forwarded key) to `dst`. */
  route(from: ServerClient, srcKey: Uint8Array, dst: Uint8Array, data: Uint8Array, forwarded: boolean): void;
  noteActivity(c: ServerClient): void;
  watchConns(c: ServerClient): void;
  closePeer(c: ServerClient, target: Uint8Array): void;
  notePreferred(c: ServerClient, preferred: boolean): void;
  peerGoneWatch(watcher: ServerClient, srcKey: string): void;
  countDrop(reason: DropReason, bytes: number): void;
  countSent(bytes: number): void;
  countPing(): void;
  countUnknownFrame(): void;
  countPongDropped(): void;
  countLivenessPong(): void;
  isMeshKey(meshKey: string | undefined): boolean;
  readonly log: { debug(m: string): void; info(m: string): void };
}

/** Frames a client may send while its admission is being checked. */
const MaxFramesBeforeAdmission = 64;

/** Largest frame after login: a ForwardPacket with two keys and a full packet. */
const MaxFrameAfterLogin = 2 * KeyLen + MaxPacketSize;

/**
 * A DERP client as the server sees it. {@link DerpServer.accept} makes these; the constructor
 * sends the ServerKey greeting at once.
 *
 * @example
 * const c = new ServerClient(server, new SocketConn(socket), { queueDepth: 32, sendBufferBytes: 256 << 10 });
 */
export class ServerClient {
  key: Uint8Array = new Uint8Array(0);
  /** The key as a latin1 string: the registry's map key. */
  keyId = '';
  info: ClientInfo = { version: 0, canAckPings: false };
  canMesh = false;
  preferred = false;
  isDup = false;
  loggedIn = false;
  closed = false;
  readonly connectedAt = Date.now();
  /** When buffered output last stopped making progress (write-timeout watchdog). */
  stalledSince: number | undefined;
  lastFlushed = 0;
  nextKeepAlive = 0;
  /** Keys of peers we have delivered packets from: they get PeerGone when those leave. */
  readonly sawSrc = new Set<string>();
  private readonly queue: Uint8Array[] = [];
  private box: NaclBox | undefined;
  private readonly reader: FrameReader;
  private notHereTokens = 3;
  private notHereRefill = Date.now();
  private lastDst: Uint8Array | undefined;
  private lastDstClient: ServerClient | undefined;
  /** Set by the server: whether this connection receives the key's traffic. */
  active = false;
  /** Whether the connection was closed for malformed input (counted by the server). */
  badInput = false;
  /**
   * The liveness Ping awaiting its Pong: its payload, the output position its last byte is at,
   * and when that position was reached (the Ping left our buffers).
   */
  private livenessPing: { data: Buffer; end: number; flushedAt: number | undefined } | undefined;

  constructor(
    private readonly host: ServerHost,
    readonly conn: DerpConn,
    private readonly limits: { queueDepth: number; sendBufferBytes: number },
  ) {
    this.reader = new FrameReader((t, p) => this.onFrame(t, p), MaxClientInfoLen);
    conn.onData((chunk) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        this.fail(err);
      }
    });
    conn.onDrain(() => this.flushQueue());
    conn.onClose((err) => {
      if (this.reader.midFrame && !this.closed) {
        this.host.log.info(`derp: ${this.who()}: stream ended inside a frame`);
      } else if (err) this.host.log.debug(`derp: ${this.who()}: ${err.message}`);
      this.teardown();
    });
    conn.write(encodeServerKey(host.publicKey));
  }

  /** `1.2.3.4:5 [abcde]` for logs. */
  who(): string {
    const fp = this.keyId ? ` ${fingerprint(this.key)}` : '';
    return `${this.conn.remoteAddress}:${this.conn.remotePort}${fp}`;
  }

  /** Closes for bad input with a logged reason; other clients are untouched. */
  fail(err: unknown): void {
    if (this.closed) return;
    this.host.log.info(`derp: closing ${this.who()}: ${errorMessage(err)}`);
    this.badInput = true;
    this.conn.destroy();
    this.teardown();
  }

  /**
   * The active client for `dst` if it is the same destination as last time: a sender usually
   * talks to one peer, and this skips the key-to-string conversion of the registry lookup.
   */
  cacheTarget(dst: Uint8Array): ServerClient | undefined {
    const last = this.lastDst;
    const hit = this.lastDstClient;
    if (last === undefined || hit === undefined || hit.closed || !hit.active) return undefined;
    for (let i = 0; i < KeyLen; i++) if (last[i] !== dst[i]) return undefined;
    return hit;
  }

  /** Remembers the active client found for `dst`. */
  setCacheTarget(dst: Uint8Array, c: ServerClient): void {
    this.lastDst = dst.slice(0, KeyLen);
    this.lastDstClient = c;
  }

  /** Closes the connection (server shutdown, ClosePeer, write timeout). */
  close(): void {
    if (this.closed) return;
    this.conn.destroy();
    this.teardown();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.stop();
    for (let i = 1; i < this.queue.length; i += 2)
      this.host.countDrop('gone_disconnected', this.queue[i]!.length);
    this.queue.length = 0;
    this.host.unregister(this);
  }

  private onFrame(type: number, p: Buffer): void {
    if (this.admitting !== undefined) {
      // Go clients send right after ClientInfo without waiting for ServerInfo: hold those frames.
      if (this.admitting.length >= MaxFramesBeforeAdmission) {
        throw new DerpError('BAD_FRAME', `more than ${MaxFramesBeforeAdmission} frames before admission`);
      }
      this.admitting.push([type, Buffer.from(p)]);
      return;
    }
    if (!this.loggedIn) {
      this.login(type, p);
      return;
    }
    if (this.isDup) this.host.noteActivity(this);
    switch (type) {
      case FrameSendPacket:
        if (p.length < KeyLen) throw new DerpError('TRUNCATED', 'short SendPacket frame');
        if (p.length - KeyLen > MaxPacketSize) {
          throw new DerpError(
            'FRAME_TOO_LARGE',
            `packet of ${p.length - KeyLen} bytes exceeds ${MaxPacketSize}`,
          );
        }
        this.host.route(this, this.key, p.subarray(0, KeyLen), p.subarray(KeyLen), false);
        return;
      case FramePing:
        if (p.length < PingLen) throw new DerpError('TRUNCATED', `short ping (${p.length} bytes)`);
        if (p.length > MaxPingLen)
          throw new DerpError('FRAME_TOO_LARGE', `ping body too large (${p.length} bytes)`);
        this.host.countPing();
        // A client that pings but does not read would otherwise grow our buffer without bound;
        // derper keeps one pong pending and drops the rest (derpserver.go handleFramePing).
        if (this.conn.bufferedBytes >= this.limits.sendBufferBytes) this.host.countPongDropped();
        else this.conn.write(encodePong(p.subarray(0, PingLen)));
        return;
      case FramePong:
        // The answer to our liveness Ping; any other Pong is skipped, as derper skips all.
        if (this.livenessPing?.data.equals(p.subarray(0, PingLen))) {
          this.livenessPing = undefined;
          this.host.countLivenessPong();
        }
        return;
      case FrameNotePreferred:
        if (p.length !== 1) throw new DerpError('BAD_FRAME', 'NotePreferred frame of the wrong size');
        this.host.notePreferred(this, p[0] !== 0);
        return;
      case FrameForwardPacket:
        this.requireMesh(type);
        if (p.length < 2 * KeyLen) throw new DerpError('TRUNCATED', 'short ForwardPacket frame');
        this.host.route(
          this,
          p.subarray(0, KeyLen),
          p.subarray(KeyLen, 2 * KeyLen),
          p.subarray(2 * KeyLen),
          true,
        );
        return;
      case FrameWatchConns:
        if (p.length !== 0) throw new DerpError('BAD_FRAME', 'WatchConns frame of the wrong size');
        this.requireMesh(type);
        this.host.watchConns(this);
        return;
      case FrameClosePeer:
        if (p.length !== KeyLen) throw new DerpError('BAD_FRAME', 'ClosePeer frame of the wrong size');
        this.requireMesh(type);
        this.host.closePeer(this, p);
        return;
      default:
        // derpserver.go handleUnknownFrame skips unknown frames so newer clients keep working.
        if (this.host.strictFrames || type in FrameNames) {
          throw new DerpError('UNEXPECTED_FRAME', `client sent frame ${frameName(type)}`);
        }
        this.host.countUnknownFrame();
    }
  }

  private requireMesh(type: number): void {
    if (!this.canMesh) throw new DerpError('UNEXPECTED_FRAME', `${frameName(type)} without mesh permission`);
  }

  private login(type: number, p: Buffer): void {
    expectFrame(type, FrameClientInfo);
    const { key, sealed } = decodeClientInfoFrame(p);
    this.box = NaclBox.between(this.host.privateKey, key);
    this.info = parseClientInfo(this.box.open(sealed));
    this.key = key;
    this.keyId = Buffer.from(key).toString('latin1');
    this.canMesh = this.host.isMeshKey(this.info.meshKey);
    this.reader.maxFrameLen = MaxFrameAfterLogin;
    const verdict = this.host.admit(this);
    if (typeof verdict === 'boolean') {
      this.admitted(verdict);
      return;
    }
    this.admitting = [];
    verdict.then(
      (ok) => this.admitted(ok),
      (err: unknown) => this.fail(new DerpError('CONNECT', `admission check failed: ${errorMessage(err)}`)),
    );
  }

  /** Frames held while an asynchronous admission check runs. */
  private admitting: Array<[number, Buffer]> | undefined;

  private admitted(ok: boolean): void {
    const held = this.admitting ?? [];
    this.admitting = undefined;
    if (this.closed) return;
    if (!ok) {
      this.host.log.info(`derp: refusing ${this.who()}: not admitted`);
      this.close();
      return;
    }
    this.loggedIn = true;
    if (!this.host.register(this)) {
      this.close();
      return;
    }
    this.conn.write(encodeServerInfo(this.box!.seal(serverInfoJson({ version: ProtocolVersion }))));
    try {
      for (const [type, p] of held) this.onFrame(type, p);
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * Queues a RecvPacket from `src`. Writes go straight to the socket while its buffer is
   * below the limit; beyond that up to `queueDepth` packets wait, dropping the oldest
   * (derpserver.go sendPkt drops from the queue head to favour fresh packets).
   */
  sendPacket(srcKey: Uint8Array, srcId: string, data: Uint8Array): void {
    if (this.closed) {
      this.host.countDrop('gone_disconnected', data.length);
      return;
    }
    if (!this.sawSrc.has(srcId)) {
      this.sawSrc.add(srcId);
      this.host.peerGoneWatch(this, srcId);
    }
    const head = Buffer.allocUnsafe(FrameHeaderLen + KeyLen);
    writeFrameHeader(head, 0, FrameRecvPacket, KeyLen + data.length);
    head.set(srcKey, FrameHeaderLen);
    if (this.queue.length === 0 && this.conn.bufferedBytes < this.limits.sendBufferBytes) {
      this.conn.write(head);
      this.conn.write(data);
      this.host.countSent(data.length);
      return;
    }
    this.queue.push(head, data);
    if (this.queue.length > 2 * (this.limits.queueDepth || DefaultPerClientSendQueueDepth)) {
      this.queue.shift();
      this.host.countDrop('queue_head', this.queue.shift()!.length);
    }
  }

  /** Sends a Ping the client must answer (it said it can: ClientInfo.CanAckPings), unless one is out. */
  sendLivenessPing(): void {
    if (this.closed || this.livenessPing !== undefined) return;
    const data = randomBytes(PingLen);
    this.conn.write(encodePing(data));
    this.livenessPing = {
      data,
      end: this.conn.flushedBytes + this.conn.bufferedBytes,
      flushedAt: undefined,
    };
  }

  /**
   * Whether the liveness Ping has waited over `timeoutMs` for its Pong since it left our buffers
   * (while it still waits in them, the write timeout is what watches the connection).
   */
  pongOverdue(now: number, timeoutMs: number): boolean {
    const ping = this.livenessPing;
    if (ping === undefined) return false;
    if (ping.flushedAt === undefined) {
      if (this.conn.flushedBytes >= ping.end) ping.flushedAt = now;
      return false;
    }
    return now - ping.flushedAt > timeoutMs;
  }

  /** Writes a control frame (PeerGone, PeerPresent, KeepAlive) regardless of the queue. */
  writeControl(frame: Uint8Array): void {
    if (!this.closed) this.conn.write(frame);
  }

  private flushQueue(): void {
    this.stalledSince = undefined;
    while (this.queue.length > 0 && this.conn.bufferedBytes < this.limits.sendBufferBytes) {
      const head = this.queue.shift()!;
      const data = this.queue.shift()!;
      this.conn.write(head);
      this.conn.write(data);
      this.host.countSent(data.length);
    }
  }

  /** Token bucket for PeerGone(NotHere): burst 3, one per second (derpserver.go peerGoneLim). */
  allowNotHere(): boolean {
    const now = Date.now();
    this.notHereTokens = Math.min(3, this.notHereTokens + (now - this.notHereRefill) / 1000);
    this.notHereRefill = now;
    if (this.notHereTokens < 1) return false;
    this.notHereTokens -= 1;
    return true;
  }

  get queuedPackets(): number {
    return this.queue.length / 2;
  }
}
