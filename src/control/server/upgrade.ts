/**
 * The server side of the ts2021 upgrade (controlhttp/controlhttpserver AcceptHTTP): check
 * `Upgrade: tailscale-control-protocol` and the base64 initiation in X-Tailscale-Handshake,
 * answer 101, then the Noise response; a refused initiation gets a Noise error frame (type 3)
 * with a reason, as controlbase.Server's sendErr does. A WebSocket upgrade of the same path
 * (what a web page can make) carries the same byte stream.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { ConnectionGuard } from '../../guard/guard.js';
import { HANDSHAKE_HEADER_NAME, UPGRADE_HEADER_VALUE } from '../dial.js';
import type { MachinePrivate, MachinePublic } from '../keys.js';
import { NoiseConn } from '../noise/conn.js';
import { encodeFrame, MSG_ERROR } from '../noise/frames.js';
import { initiationVersion, serverAccept } from '../noise/handshake.js';
import { type WebSocketLike, webSocketStream } from '../ws-stream.js';

export interface AcceptedNoise {
  conn: NoiseConn;
  machineKey: MachinePublic;
  protocolVersion: number;
}

function refuseHTTP(socket: Duplex, status: number, text: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${text.length + 1}\r\nConnection: close\r\n\r\n${text}\n`,
  );
}

/**
 * Accepts an upgrade; returns undefined (having answered and closed the socket) when the
 * request is not a valid ts2021 upgrade or the version is below `minVersion`.
 */
export function acceptNoise(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  noiseKey: MachinePrivate,
  minVersion: number,
): AcceptedNoise | undefined {
  const next = String(req.headers.upgrade ?? '').toLowerCase();
  if (next !== UPGRADE_HEADER_VALUE) {
    refuseHTTP(socket, 400, next === '' ? 'missing next protocol' : 'unknown next protocol');
    return undefined;
  }
  const initB64 = req.headers[HANDSHAKE_HEADER_NAME.toLowerCase()];
  if (typeof initB64 !== 'string' || initB64 === '') {
    refuseHTTP(socket, 400, 'missing Tailscale handshake header');
    return undefined;
  }
  const init = Buffer.from(initB64, 'base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${UPGRADE_HEADER_VALUE}\r\nConnection: upgrade\r\n\r\n`,
  );
  const sendErr = (msg: string): undefined => {
    socket.end(encodeFrame(MSG_ERROR, Buffer.from(msg)));
    return undefined;
  };
  let hs: ReturnType<typeof serverAccept>;
  try {
    hs = serverAccept(noiseKey, init);
  } catch (err) {
    return sendErr((err as Error).message);
  }
  if (initiationVersion(init) < minVersion) return sendErr(`unsupported client version ${hs.clientVersion}`);
  (socket as Duplex & { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  socket.write(hs.response);
  const conn = new NoiseConn(socket, hs.keys, { initial: head });
  return { conn, machineKey: hs.clientMachineKey, protocolVersion: hs.clientVersion };
}

/**
 * Accepts ts2021 over a WebSocket (controlhttpserver acceptWebsocket): the initiation comes in
 * the URL's query, and no early payload is sent. A bad initiation closes the socket with
 * 1008 (policy violation), as Tailscale's server does.
 */
export function acceptNoiseWebSocket(
  ws: WebSocketLike,
  requestURL: URL,
  noiseKey: MachinePrivate,
  minVersion: number,
): AcceptedNoise | undefined {
  const refuse = (why: string): undefined => {
    ws.close(1008, why);
    return undefined;
  };
  if (ws.protocol !== UPGRADE_HEADER_VALUE) return refuse('client must speak the control subprotocol');
  const initB64 = requestURL.searchParams.get(HANDSHAKE_HEADER_NAME);
  if (!initB64) return refuse('missing Tailscale handshake parameter');
  const init = Buffer.from(initB64, 'base64');
  let hs: ReturnType<typeof serverAccept>;
  try {
    hs = serverAccept(noiseKey, init);
  } catch (err) {
    return refuse(`noise handshake failed: ${(err as Error).message}`.slice(0, 120));
  }
  if (initiationVersion(init) < minVersion) return refuse(`unsupported client version ${hs.clientVersion}`);
  const stream = webSocketStream(ws);
  stream.write(hs.response);
  const conn = new NoiseConn(stream, hs.keys);
  return { conn, machineKey: hs.clientMachineKey, protocolVersion: hs.clientVersion };
}

/** What {@link routeUpgrade} needs of the server. */
export interface UpgradeContext {
  guard: Pick<ConnectionGuard, 'disarm' | 'allowHandshake'>;
  wss: WebSocketServer;
  noiseKey: MachinePrivate;
  minVersion: number;
  /** Called with each accepted Noise connection. */
  serve(accepted: AcceptedNoise): void;
}

/**
 * An HTTP upgrade request to the control server: `/ts2021` as a ts2021 upgrade or a WebSocket,
 * anything else 404. Each source may start only so many Noise handshakes (each costs X25519s).
 */
export function routeUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, ctx: UpgradeContext): void {
  ctx.guard.disarm(socket);
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== '/ts2021') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    return;
  }
  if (!ctx.guard.allowHandshake(socket.remoteAddress)) {
    socket.end('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nConnection: close\r\n\r\n');
    return;
  }
  if (String(req.headers.upgrade).toLowerCase() === 'websocket') {
    // Any origin, as Tailscale's server allows: the Noise handshake, not the page, is what authenticates.
    ctx.wss.handleUpgrade(req, socket, head, (ws) => {
      const accepted = acceptNoiseWebSocket(
        ws as unknown as WebSocketLike,
        url,
        ctx.noiseKey,
        ctx.minVersion,
      );
      if (accepted) ctx.serve(accepted);
    });
    return;
  }
  const accepted = acceptNoise(req, socket, head, ctx.noiseKey, ctx.minVersion);
  if (accepted) ctx.serve(accepted);
}
