/**
 * PingRequests from our control server (tailcfg.PingRequest; Headscale's state/ping.go and
 * debug.go doPing do the same for its HEAD pings): each gets an unguessable one-time id in its
 * URL, `/machine/ping-response?id=…`, which the node calls back over Noise; the call's method
 * and body (empty for HEAD, a JSON PingResponse, or a c2n HTTP response) resolve the ping.
 */
import { randomBytes } from 'node:crypto';
import type * as http2 from 'node:http2';
import type { PingRequest } from '../tailcfg.js';

/** Where nodes answer, inside Noise. */
export const PING_RESPONSE_PATH = '/machine/ping-response';
/** Pings waiting at once, at most: a caller cannot make the server hold unbounded state. */
const MAX_PENDING = 256;
/** The largest answer kept (a c2n response can carry a body). */
const MAX_ANSWER = 1 << 20;

/** What the node sent back. */
export interface PingAnswer {
  method: string;
  body: Buffer;
  latencyMs: number;
}

/** Thrown when a ping cannot be sent (node not connected, too many waiting). */
export class PingNodeError extends Error {
  override readonly name = 'PingNodeError';
}

interface Pending {
  start: number;
  timer: NodeJS.Timeout;
  resolve(a: PingAnswer | undefined): void;
}

/**
 * The server's pings in flight.
 *
 * @example
 * const { id, answer } = pings.register(10_000);
 * session.ping({ URL: `https://ctl${PING_RESPONSE_PATH}?id=${id}`, URLIsNoise: true });
 * const a = await answer;   // undefined after 10 s without an answer
 */
export class PingTracker {
  readonly #pending = new Map<string, Pending>();

  /** A new ping id and the promise of its answer (undefined on timeout). */
  register(timeoutMs: number): { id: string; answer: Promise<PingAnswer | undefined> } {
    if (this.#pending.size >= MAX_PENDING) throw new PingNodeError(`${MAX_PENDING} pings already waiting`);
    const id = randomBytes(16).toString('hex');
    const answer = new Promise<PingAnswer | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { start: performance.now(), timer, resolve });
    });
    return { id, answer };
  }

  /**
   * Sends one PingRequest over each of a node's map `streams` (as Headscale, to every stream it
   * holds), answered at `https://<host>/machine/ping-response`; resolves with the first answer.
   */
  send(
    streams: readonly { ping(req: PingRequest): void }[],
    host: string,
    opts: { types?: string; ip?: string; payload?: Uint8Array; timeoutMs?: number },
  ): Promise<PingAnswer | undefined> {
    const { id, answer } = this.register(opts.timeoutMs ?? 10_000);
    const req: PingRequest = { URL: `https://${host}${PING_RESPONSE_PATH}?id=${id}`, URLIsNoise: true };
    if (opts.types) req.Types = opts.types;
    if (opts.ip) req.IP = opts.ip;
    if (opts.payload) req.Payload = Buffer.from(opts.payload).toString('base64');
    for (const s of streams) s.ping(req);
    return answer;
  }

  /** Forgets a ping (its promise resolves undefined). */
  cancel(id: string): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(undefined);
  }

  /**
   * Serves a node's call to {@link PING_RESPONSE_PATH} on an HTTP/2 stream inside Noise: 200
   * for a ping we wait for, 404 for any other id.
   */
  async serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    const id = new URL(headers[':path'] ?? '/', 'http://x').searchParams.get('id') ?? '';
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of stream as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_ANSWER) {
        stream.respond({ ':status': 413 }, { endStream: true });
        return;
      }
      chunks.push(c);
    }
    const p = this.#pending.get(id);
    if (!p) {
      stream.respond({ ':status': 404, 'content-type': 'text/plain' });
      stream.end('unknown or expired ping\n');
      return;
    }
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.resolve({
      method: String(headers[':method']),
      body: Buffer.concat(chunks),
      latencyMs: performance.now() - p.start,
    });
    stream.respond({ ':status': 200 }, { endStream: true });
  }

  /** Resolves every waiting ping undefined. */
  close(): void {
    for (const id of [...this.#pending.keys()]) this.cancel(id);
  }
}
