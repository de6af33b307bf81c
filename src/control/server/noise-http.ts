/**
 * HTTP/2 inside one accepted ts2021 Noise connection, under the limits a peer that has only
 * done a Noise handshake (anyone can: the server accepts every machine key) may not exceed:
 * - the first request must come within `noiseTimeoutMs` of the upgrade (Headscale gets 10 s
 *   from golang.org/x/net/http2's prefaceTimeout);
 * - a connection with no request open is closed after `noiseIdleTimeoutMs` (a node keeps its
 *   map stream open; Headscale has no such bound and keeps an idle Noise connection forever);
 * - at most `maxStreams` requests at once (x/net/http2 advertises 250; Node none);
 * - request bodies are refused by their declared length, and cut at `maxBodyBytes` as they
 *   arrive (Headscale's noiseBodyLimit, hscontrol/noise.go: 1 MiB).
 */
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { ConnectionGuard } from '../../guard/guard.js';
import { ProtocolError } from '../errors.js';
import type { ControlLogger } from '../logger.js';
import type { NoiseConn } from '../noise/conn.js';

/** The limits of the HTTP/2 layer inside Noise (ControlServerOptions carries them). */
export interface NoiseHttpLimits {
  noiseTimeoutMs: number;
  noiseIdleTimeoutMs: number;
  maxStreams: number;
  maxBodyBytes: number;
}

/** The defaults; docs/server-limits.md gives their origins. */
export const DEFAULT_NOISE_LIMITS: Readonly<NoiseHttpLimits> = {
  noiseTimeoutMs: 10_000,
  noiseIdleTimeoutMs: 60_000,
  maxStreams: 100,
  maxBodyBytes: 1 << 20,
};

/**
 * `partial` over {@link DEFAULT_NOISE_LIMITS} (fields left undefined keep their default).
 *
 * @example
 * resolveNoiseLimits({ maxBodyBytes: 4096 });
 */
export function resolveNoiseLimits(partial: Partial<NoiseHttpLimits> = {}): NoiseHttpLimits {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_NOISE_LIMITS, ...given };
}

/** A request body declared or found larger than the limit: answered 413. */
export class BodyTooLargeError extends ProtocolError {}

/** What serveNoiseHttp needs besides the connection. */
export interface NoiseHttpContext {
  /** The TCP socket under the Noise connection: the guard's deadlines are armed on it. */
  socket: Socket;
  guard: ConnectionGuard;
  limits: NoiseHttpLimits;
  log: ControlLogger;
}

/**
 * Runs an HTTP/2 server over `conn` and hands each request stream to `onStream`. The first
 * request's deadline starts now.
 *
 * @example
 * serveNoiseHttp(accepted.conn, { socket, guard, limits, log }, (stream, headers) => route(stream, headers));
 */
export function serveNoiseHttp(
  conn: NoiseConn,
  ctx: NoiseHttpContext,
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): void {
  const { socket, guard, limits } = ctx;
  guard.arm(socket, 'noise', limits.noiseTimeoutMs);
  let open = 0;
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.maxStreams } });
  h2.on('stream', (stream, headers) => {
    open++;
    guard.disarm(socket);
    stream.once('close', () => {
      if (--open === 0) guard.arm(socket, 'noise_idle', limits.noiseIdleTimeoutMs);
    });
    onStream(stream, headers);
  });
  h2.on('sessionError', (err) => ctx.log.debug(`h2 session: ${err.message}`));
  // An HTTP/2 session costs ~0.8 ms of CPU to set up: one that never gets a byte (a peer that only
  // wanted our side of the handshake, over and over) is not set up at all.
  conn.once('readable', () => h2.emit('connection', conn));
}

/**
 * The request body as text: refused before reading when its declared length is over `limit`,
 * and cut off (the stream reset) as soon as more than `limit` bytes have come.
 *
 * @example
 * const body = await readBody(stream, headers, 1 << 20);
 */
export function readBody(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  limit: number,
): Promise<string> {
  const declared = Number(headers['content-length'] ?? 0);
  if (declared > limit) {
    return Promise.reject(new BodyTooLargeError(`request body of ${declared} bytes is over ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) {
        chunks.push(c);
        return;
      }
      chunks.length = 0;
      stream.pause();
      reject(new BodyTooLargeError(`request body over ${limit} bytes`));
    });
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
  });
}

/**
 * Answers a failed request with `status` and `message`. A request still sending its body is
 * then reset with NO_ERROR, as RFC 9113 §8.1 lets a server that has answered early do: its
 * sender stops, and the stream stops counting toward the connection's limit.
 *
 * @example
 * answerError(stream, 413, 'request body over 1048576 bytes');
 */
export function answerError(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed) return;
  if (!stream.headersSent) stream.respond({ ':status': status });
  stream.end(`${message}\n`);
  if (!stream.readableEnded) stream.once('finish', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
}
