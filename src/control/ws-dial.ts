/**
 * ts2021 over WebSocket, for clients that cannot take over an HTTP connection (a web page;
 * controlhttp/client_js.go): `GET /ts2021?X-Tailscale-Handshake=<base64 initiation>` upgraded
 * to a WebSocket with subprotocol `tailscale-control-protocol`, whose byte stream then carries
 * the Noise response and records exactly as the HTTP upgrade's socket would. Tailscale's
 * control server and Headscale accept it (controlhttpserver acceptWebsocket), and so does ours.
 */
import type { Duplex } from 'node:stream';
import {
  type DialOptions,
  finishNoise,
  HANDSHAKE_HEADER_NAME,
  parseKeyResponse,
  UPGRADE_HEADER_VALUE,
  UPGRADE_PATH,
} from './dial.js';
import { ServerUnreachableError, WrongProtocolError } from './errors.js';
import type { MachinePublic } from './keys.js';
import type { NoiseConn } from './noise/conn.js';
import { clientInitiation } from './noise/handshake.js';
import { type WebSocketLike, webSocketStream } from './ws-stream.js';

type WebSocketClass = new (url: string, protocols: string[]) => WebSocketLike;

/** The platform's WebSocket (web pages, Node 22+, Bun, Deno), else the `ws` package's (Node 20). */
async function webSocketClass(): Promise<WebSocketClass> {
  const global = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (global !== undefined) return global;
  return (await import('ws')).WebSocket as unknown as WebSocketClass;
}

/** The ws: or wss: URL of the upgrade, with the initiation in its query. */
export function upgradeURL(serverURL: string, initiation: Uint8Array): URL {
  const url = new URL(UPGRADE_PATH, serverURL);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WrongProtocolError(url.origin, `unsupported URL scheme '${url.protocol}' (want http or https)`);
  }
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set(HANDSHAKE_HEADER_NAME, Buffer.from(initiation).toString('base64'));
  return url;
}

/** Opens a Noise channel to the server over a WebSocket. */
export async function dialNoiseWebSocket(opts: DialOptions): Promise<NoiseConn> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const hs = clientInitiation(opts.machineKey, opts.controlKey, opts.protocolVersion);
  const url = upgradeURL(opts.serverURL, hs.initiation);
  const WebSocketImpl = await webSocketClass();
  // The stream is made inside onopen: a server's first bytes can arrive in the same turn as the open.
  const [ws, stream] = await new Promise<[WebSocketLike, Duplex]>((resolve, reject) => {
    const sock = new WebSocketImpl(url.href, [UPGRADE_HEADER_VALUE]);
    const timer = setTimeout(() => {
      sock.close();
      reject(new ServerUnreachableError(opts.serverURL, `WebSocket not open within ${timeoutMs} ms`));
    }, timeoutMs);
    const s = sock as WebSocketLike & { onopen: (() => void) | null };
    s.onopen = () => {
      clearTimeout(timer);
      resolve([sock, webSocketStream(sock)]);
    };
    // A browser tells nothing more about a failed WebSocket (no status, no reason): by design.
    sock.onerror = () => {
      clearTimeout(timer);
      reject(new ServerUnreachableError(opts.serverURL, `WebSocket to ${url.origin}${UPGRADE_PATH} failed`));
    };
  });
  if (ws.protocol !== UPGRADE_HEADER_VALUE) {
    stream.destroy();
    throw new WrongProtocolError(opts.serverURL, `server chose WebSocket subprotocol '${ws.protocol}'`);
  }
  try {
    return await finishNoise(stream, new Uint8Array(0), hs, opts.serverURL, timeoutMs);
  } catch (err) {
    stream.destroy();
    throw err;
  }
}

/**
 * `GET /key?v=N` with the platform's fetch: what a web page can do. Another origin's page needs
 * the server to send CORS headers there (ours does; Headscale v0.29 does not, so such a page
 * passes the key in, or serves /key through its own origin).
 */
export async function fetchServerKeyWeb(
  serverURL: string,
  capVersion: number,
  timeoutMs = 10_000,
): Promise<MachinePublic> {
  const url = new URL(`/key?v=${capVersion}`, serverURL);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new ServerUnreachableError(serverURL, `GET /key: ${(err as Error).message}`, { cause: err });
  }
  const body = await res.text();
  if (res.status !== 200) throw new WrongProtocolError(serverURL, `GET /key answered HTTP ${res.status}`);
  try {
    return parseKeyResponse(body);
  } catch (err) {
    throw new WrongProtocolError(serverURL, `GET /key: ${(err as Error).message}`, { cause: err });
  }
}
