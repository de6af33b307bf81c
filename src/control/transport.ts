/**
 * HTTP/2 over the Noise channel (control/ts2021/client.go): one h2 session per Noise
 * connection, made with node:http2's `connect` and a `createConnection` that returns the
 * Noise Duplex; requests share it, and a dead session is replaced on the next request.
 */
import * as http2 from 'node:http2';
import { dialNoise, fetchServerKey } from './dial.js';
import { ClosedError, ProtocolError, ServerUnreachableError } from './errors.js';
import type { MachinePrivate, MachinePublic } from './keys.js';
import type { EarlyNoise } from './noise/early.js';
import { dialNoiseWebSocket, fetchServerKeyWeb } from './ws-dial.js';

export interface TransportOptions {
  serverURL: string;
  machineKey: MachinePrivate;
  /** Capability version: the Noise protocol version and /key?v=. */
  capVersion: number;
  /** The server's Noise key if already known (otherwise fetched from /key). */
  controlKey?: MachinePublic;
  timeoutMs?: number;
  /** Dial ts2021 over a WebSocket (ws-dial.ts), as a web page must, instead of the HTTP upgrade. */
  websocket?: boolean;
}

/** A response whose body is still streaming. */
export interface StreamResponse {
  status: number;
  stream: http2.ClientHttp2Stream;
}

const MAX_JSON_BODY = 4 << 20;

/** The ts2021 client transport: request/response over HTTP/2 inside Noise. */
export class Ts2021Transport {
  #session: http2.ClientHttp2Session | undefined;
  #connecting: Promise<http2.ClientHttp2Session> | undefined;
  #controlKey: MachinePublic | undefined;
  #closed = false;
  /** The early payload of the latest connection, if the server sent one. */
  earlyPayload: EarlyNoise | undefined;

  constructor(readonly opts: TransportOptions) {
    this.#controlKey = opts.controlKey;
  }

  /** The server's Noise key (fetched once from /key). */
  async controlKey(): Promise<MachinePublic> {
    const fetchKey = this.opts.websocket ? fetchServerKeyWeb : fetchServerKey;
    this.#controlKey ??= await fetchKey(this.opts.serverURL, this.opts.capVersion, this.opts.timeoutMs);
    return this.#controlKey;
  }

  async #sessionFor(): Promise<http2.ClientHttp2Session> {
    if (this.#closed) throw new ClosedError('control transport');
    const s = this.#session;
    if (s && !s.closed && !s.destroyed) return s;
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<http2.ClientHttp2Session> {
    const controlKey = await this.controlKey();
    const conn = await (this.opts.websocket ? dialNoiseWebSocket : dialNoise)({
      serverURL: this.opts.serverURL,
      machineKey: this.opts.machineKey,
      controlKey,
      protocolVersion: this.opts.capVersion,
      timeoutMs: this.opts.timeoutMs,
    });
    conn.on('early', (p: EarlyNoise) => {
      this.earlyPayload = p;
    });
    const url = new URL(this.opts.serverURL);
    const session = http2.connect(`http://${url.host}`, { createConnection: () => conn });
    session.on('error', () => {
      // Surfaced to each in-flight request through its stream's error; the session is replaced.
      if (this.#session === session) this.#session = undefined;
    });
    session.on('close', () => {
      if (this.#session === session) this.#session = undefined;
    });
    if (this.#closed) {
      session.destroy();
      throw new ClosedError('control transport');
    }
    this.#session = session;
    return session;
  }

  /**
   * Sends a request with a JSON body (bytes go as they are); resolves when the response headers
   * arrive.
   */
  async request(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<StreamResponse> {
    const session = await this.#sessionFor();
    const raw = body instanceof Uint8Array;
    const payload =
      body === undefined ? undefined : raw ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
      if (payload && !raw) headers['content-type'] = 'application/json';
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers, { endStream: payload === undefined, signal });
        // Hold the body until the caller reads it: a short reply can arrive, end and close
        // before the caller's listeners exist.
        stream.pause();
      } catch (err) {
        reject(
          new ServerUnreachableError(
            this.opts.serverURL,
            `HTTP/2 request failed: ${(err as Error).message}`,
            { cause: err },
          ),
        );
        return;
      }
      const onError = (err: Error): void => {
        if (err.name === 'AbortError') reject(err);
        else
          reject(
            new ServerUnreachableError(this.opts.serverURL, `${method} ${path}: ${err.message}`, {
              cause: err,
            }),
          );
      };
      stream.once('error', onError);
      stream.once('close', () =>
        reject(
          new ServerUnreachableError(
            this.opts.serverURL,
            `${method} ${path}: stream closed before a response`,
          ),
        ),
      );
      stream.once('response', (h) => {
        stream.off('error', onError);
        resolve({ status: Number(h[':status']), stream });
      });
      if (payload) stream.end(payload);
    });
  }

  /** POSTs JSON and reads the whole reply; non-200 replies become ProtocolError with the status. */
  async postJSON(
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; text: string }> {
    const res = await this.request('POST', path, body, signal);
    const text = await readBody(res.stream, MAX_JSON_BODY);
    return { status: res.status, text };
  }

  /**
   * Drops the current connection (its requests fail) so that the next request dials anew: after
   * the host's address changed, the old TCP connection is dead without knowing it.
   */
  reset(): void {
    this.#session?.destroy();
    this.#session = undefined;
  }

  /** Closes the session and its Noise connection. */
  close(): void {
    this.#closed = true;
    this.#session?.destroy();
    this.#session = undefined;
  }
}

/** Reads a whole response body, up to `limit` bytes. */
export function readBody(stream: http2.ClientHttp2Stream, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) stream.destroy(new ProtocolError(`response body larger than ${limit} bytes`));
      else chunks.push(c);
    });
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
    if (stream.readableEnded) resolve('');
    else stream.resume();
  });
}
