/**
 * Reaching a ts2021 server: `GET /key?v=N` for its Noise public key (tailcfg
 * OverTLSPublicKeyResponse; control/controlclient/direct.go loadServerPubKeys), then
 * `POST /ts2021` with `Upgrade: tailscale-control-protocol` and the Noise initiation in
 * `X-Tailscale-Handshake` (control/controlhttp/client.go tryURLUpgrade). After the 101 the
 * raw socket carries the Noise response and then records.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import { ProtocolError, ServerUnreachableError, WrongProtocolError } from './errors.js';
import { type MachinePrivate, type MachinePublic, PublicKey } from './keys.js';
import { NoiseConn } from './noise/conn.js';
import { HEADER_LEN, MAX_MESSAGE_SIZE, MSG_ERROR, MSG_RESPONSE } from './noise/frames.js';
import { type ClientHandshake, clientInitiation } from './noise/handshake.js';

/** controlhttpcommon.UpgradeHeaderValue. */
export const UPGRADE_HEADER_VALUE = 'tailscale-control-protocol';
/** controlhttpcommon.HandshakeHeaderName: the base64 Noise initiation rides in this header. */
export const HANDSHAKE_HEADER_NAME = 'X-Tailscale-Handshake';
/** controlhttp serverUpgradePath. */
export const UPGRADE_PATH = '/ts2021';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
]);

function requester(url: URL): typeof http.request {
  if (url.protocol === 'http:') return http.request;
  if (url.protocol === 'https:') return https.request as typeof http.request;
  throw new WrongProtocolError(url.origin, `unsupported URL scheme '${url.protocol}' (want http or https)`);
}

function networkError(serverURL: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return new ServerUnreachableError(serverURL, `${code} (${(err as Error).message})`, { cause: err });
  }
  if (err instanceof ServerUnreachableError || err instanceof WrongProtocolError) return err;
  return new ServerUnreachableError(serverURL, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

/** Fetches the server's Noise key; ServerUnreachableError or WrongProtocolError on failure. */
export function fetchServerKey(
  serverURL: string,
  capVersion: number,
  timeoutMs = 10_000,
): Promise<MachinePublic> {
  const url = new URL(`/key?v=${capVersion}`, serverURL);
  return new Promise((resolve, reject) => {
    const req = requester(url)(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 64 << 10)
          req.destroy(new WrongProtocolError(serverURL, '/key response larger than 64 KiB'));
        else chunks.push(c);
      });
      res.on('error', (err) => reject(networkError(serverURL, err)));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(new WrongProtocolError(serverURL, `GET /key answered HTTP ${res.statusCode}`));
          return;
        }
        try {
          resolve(parseKeyResponse(body));
        } catch (err) {
          reject(new WrongProtocolError(serverURL, `GET /key: ${(err as Error).message}`, { cause: err }));
        }
      });
    });
    req.on('timeout', () =>
      req.destroy(new ServerUnreachableError(serverURL, `no answer within ${timeoutMs} ms`)),
    );
    req.on('error', (err) => reject(networkError(serverURL, err)));
    req.end();
  });
}

/** Parses /key's body: JSON {publicKey: "mkey:…"}, or (very old servers) a bare key. */
export function parseKeyResponse(body: string): MachinePublic {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    // Go falls back to the pre-JSON format, a bare legacy key, which cannot be used for Noise.
    throw new ProtocolError('body is not JSON; the server has no Noise key', { cause: err });
  }
  const pk = (parsed as { publicKey?: unknown } | null)?.publicKey;
  if (typeof pk !== 'string') throw new ProtocolError('no "publicKey" field');
  const key = PublicKey.parse('machine', pk);
  if (key.isZero()) throw new ProtocolError('the server has no Noise key (zero publicKey)');
  return key;
}

export interface DialOptions {
  serverURL: string;
  machineKey: MachinePrivate;
  controlKey: MachinePublic;
  protocolVersion: number;
  timeoutMs?: number;
}

/** Opens a Noise channel to the server; the result parses Headscale's early payload. */
export function dialNoise(opts: DialOptions): Promise<NoiseConn> {
  const url = new URL(UPGRADE_PATH, opts.serverURL);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const hs = clientInitiation(opts.machineKey, opts.controlKey, opts.protocolVersion);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error, socket?: Duplex): void => {
      socket?.destroy();
      if (!settled) {
        settled = true;
        reject(err);
      }
    };
    const timer = setTimeout(() => {
      req.destroy(
        new ServerUnreachableError(opts.serverURL, `Noise upgrade not finished within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const req = requester(url)(url, {
      method: 'POST',
      agent: false,
      headers: {
        Upgrade: UPGRADE_HEADER_VALUE,
        Connection: 'upgrade',
        [HANDSHAKE_HEADER_NAME]: hs.initiation.toString('base64'),
      },
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      fail(networkError(opts.serverURL, err));
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      res.resume();
      fail(
        new WrongProtocolError(
          opts.serverURL,
          `POST ${UPGRADE_PATH} answered HTTP ${res.statusCode}, not 101`,
        ),
      );
    });
    req.on('upgrade', (res, socket, head) => {
      clearTimeout(timer);
      const next = String(res.headers.upgrade ?? '').toLowerCase();
      if (next !== UPGRADE_HEADER_VALUE) {
        fail(
          new WrongProtocolError(opts.serverURL, `server switched to unexpected protocol '${next}'`),
          socket,
        );
        return;
      }
      // Records are small and interactive (HTTP/2 frames); Nagle would only add latency.
      (socket as Duplex & { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
      finishNoise(socket, head, hs, opts.serverURL, timeoutMs).then(
        (conn) => {
          settled = true;
          resolve(conn);
        },
        (err: Error) => fail(err, socket),
      );
    });
    req.end();
  });
}

/**
 * Reads the server's Noise response (or error frame) from `socket`, whose first bytes may
 * already be in `head`, and completes the handshake: the HTTP upgrade and the WebSocket dial
 * (ws-dial.ts) both end here.
 */
export function finishNoise(
  socket: Duplex,
  head: Uint8Array,
  hs: ClientHandshake,
  serverURL: string,
  timeoutMs: number,
): Promise<NoiseConn> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
    const timer = setTimeout(
      () =>
        done(new ServerUnreachableError(serverURL, `Noise handshake not finished within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (err: Error | undefined, conn?: NoiseConn): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onErr);
      if (err) reject(err);
      else resolve(conn!);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      tryFinish();
    };
    const onEnd = (): void =>
      done(new WrongProtocolError(serverURL, 'connection closed during the Noise handshake'));
    const onErr = (err: Error): void => done(networkError(serverURL, err));
    const tryFinish = (): void => {
      if (buf.length < HEADER_LEN) return;
      const type = buf[0]!;
      const len = buf.readUInt16BE(1);
      if (type !== MSG_RESPONSE && type !== MSG_ERROR) {
        done(new WrongProtocolError(serverURL, `unexpected Noise response message type ${type}`));
        return;
      }
      if (HEADER_LEN + len > MAX_MESSAGE_SIZE) {
        done(new WrongProtocolError(serverURL, 'oversized Noise handshake response'));
        return;
      }
      if (buf.length < HEADER_LEN + len) return;
      socket.pause();
      const frame = buf.subarray(0, HEADER_LEN + len);
      const rest = buf.subarray(HEADER_LEN + len);
      if (type === MSG_ERROR) {
        const text = frame.subarray(HEADER_LEN).toString('utf8').slice(0, 200);
        done(
          new WrongProtocolError(serverURL, `server refused the Noise handshake: ${JSON.stringify(text)}`),
        );
        return;
      }
      try {
        const keys = hs.finish(frame);
        done(undefined, new NoiseConn(socket, keys, { initial: rest, parseEarlyPayload: true }));
      } catch (err) {
        done(new WrongProtocolError(serverURL, (err as Error).message, { cause: err }));
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onErr);
    tryFinish();
  });
}
