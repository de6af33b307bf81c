/**
 * WHATWG `fetch` as an HTTP/1.1 client (RFC 9112) over a connection the caller dials: one request
 * per connection (`Connection: close`), bodies with Content-Length or chunked, redirects followed
 * as fetch does. It needs no Node built-in, only the web platform's Request, Response, Headers
 * and streams, so it serves where undici cannot: in a web page, and on Bun, whose `undici` is a
 * built-in stand-in that ignores a dispatcher.
 *
 * @example
 * const res = await http1Fetch((host, port) => tn.dial(host, port), 'http://db:8000/sales.csv');
 * console.log(await res.text());
 */

/** The part of a socket this client uses: what a TcpSocket (or net.Socket) offers. */
export interface FetchSocket {
  write(chunk: Uint8Array): boolean;
  destroy(err?: Error): unknown;
  pause(): unknown;
  resume(): unknown;
  on(event: 'data', handler: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'close' | 'drain', handler: () => void): unknown;
  on(event: 'error', handler: (err: Error) => void): unknown;
  once(event: 'drain', handler: () => void): unknown;
}

export type FetchDial = (host: string, port: number) => Promise<FetchSocket>;

/** An HTTP exchange that went wrong below the HTTP semantics (a bad response, a lost connection). */
export class HttpFetchError extends TypeError {
  constructor(
    message: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(`fetch ${url}: ${message}`, options);
    this.name = 'HttpFetchError';
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);
const MAX_REDIRECTS = 20; // the Fetch standard's limit
const MAX_HEADER_BYTES = 64 * 1024;
const CRLF = '\r\n';
const encoder = new TextEncoder();

/** fetch(input, init) over connections from `dial`: http: only (TLS over the tailnet is not done here). */
export async function http1Fetch(
  dial: FetchDial,
  input: string | URL,
  init: RequestInit = {},
): Promise<Response> {
  let url = new URL(String(input));
  let method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  let [body, type] = await requestBody(init.body ?? null);
  if (type && !headers.has('content-type')) headers.set('content-type', type);
  for (let hops = 0; ; hops++) {
    const res = await exchange(dial, url, method, headers, body, init.signal ?? undefined);
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || location === null || init.redirect === 'manual') return res;
    await res.body?.cancel();
    if (init.redirect === 'error')
      throw new HttpFetchError(`redirected (${res.status}) with redirect: 'error'`, url.href);
    if (hops === MAX_REDIRECTS) throw new HttpFetchError('too many redirects', url.href);
    // Fetch standard §4.4 HTTP-redirect fetch, step 12: 303, or 301/302 after POST, become a GET without a body.
    if (
      res.status === 303 ? method !== 'HEAD' : (res.status === 301 || res.status === 302) && method === 'POST'
    ) {
      method = 'GET';
      body = undefined;
      for (const h of [
        'content-type',
        'content-length',
        'content-encoding',
        'content-language',
        'content-location',
      ])
        headers.delete(h);
    }
    const next = new URL(location, url);
    if (next.origin !== url.origin) headers.delete('authorization');
    url = next;
  }
}

type Body = Uint8Array | ReadableStream<Uint8Array> | undefined;

/**
 * The body as bytes (or a stream, sent chunked) and the Content-Type fetch gives it when the caller
 * sets none (Fetch standard, "extract a body"): the platform's own Response serialises the rest.
 */
async function requestBody(body: RequestInit['body']): Promise<[Body, string | undefined]> {
  if (body === null || body === undefined) return [undefined, undefined];
  if (body instanceof ReadableStream) return [body as ReadableStream<Uint8Array>, undefined];
  if (body instanceof Uint8Array) return [body, undefined];
  if (ArrayBuffer.isView(body))
    return [new Uint8Array(body.buffer, body.byteOffset, body.byteLength), undefined];
  if (body instanceof ArrayBuffer) return [new Uint8Array(body), undefined];
  if (typeof body === 'string') return [encoder.encode(body), 'text/plain;charset=UTF-8'];
  const r = new Response(body); // Blob, FormData, URLSearchParams
  return [new Uint8Array(await r.arrayBuffer()), r.headers.get('content-type') ?? undefined];
}

async function exchange(
  dial: FetchDial,
  url: URL,
  method: string,
  headers: Headers,
  body: Body,
  signal: AbortSignal | undefined,
): Promise<Response> {
  if (url.protocol !== 'http:')
    throw new HttpFetchError(`${url.protocol} is not supported (http: only)`, url.href);
  signal?.throwIfAborted();
  const sock = await dial(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port) || 80);
  const head = requestHead(url, method, headers, body);
  const parsed = readResponse(sock, url, method, signal);
  sock.write(encoder.encode(head));
  if (body instanceof Uint8Array) {
    if (body.length > 0) sock.write(body);
  } else if (body) {
    await writeChunked(sock, body);
  }
  return parsed;
}

function requestHead(url: URL, method: string, headers: Headers, body: Body): string {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  const out = new Headers(headers);
  out.set('connection', 'close');
  if (!out.has('accept')) out.set('accept', '*/*');
  if (body instanceof Uint8Array) out.set('content-length', String(body.length));
  else if (body) out.set('transfer-encoding', 'chunked');
  else if (method === 'POST' || method === 'PUT') out.set('content-length', '0');
  out.forEach((value, name) => {
    if (name !== 'host') lines.push(`${name}: ${value}`);
  });
  return lines.join(CRLF) + CRLF + CRLF;
}

async function writeChunked(sock: FetchSocket, body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value.length === 0) continue;
    sock.write(encoder.encode(`${value.length.toString(16)}${CRLF}`));
    const more = sock.write(value);
    sock.write(encoder.encode(CRLF));
    if (!more) await new Promise<void>((r) => sock.once('drain', r));
  }
  sock.write(encoder.encode(`0${CRLF}${CRLF}`));
}

interface Head {
  status: number;
  statusText: string;
  headers: Headers;
}

/** Reads one response: the head (skipping 1xx), then a body stream framed per RFC 9112 §6.3. */
function readResponse(sock: FetchSocket, url: URL, method: string, signal?: AbortSignal): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    // The signal aborts the body too, so it is watched until the last byte, not just the head.
    const onAbort = () =>
      sock.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('close', () => signal?.removeEventListener('abort', onAbort));
    let buf: Uint8Array = new Uint8Array(0);
    let head: Head | undefined;
    let framing: BodyFraming | undefined;
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    let settled = false; // the promise: resolved with the Response, or rejected
    let complete = false; // the body: all of it delivered
    const fail = (err: Error) => {
      if (!settled) {
        settled = true;
        reject(err);
      } else if (controller && !complete) {
        complete = true;
        controller.error(err);
      }
    };
    const deliver = (chunk: Uint8Array) => {
      if (chunk.length === 0 || !controller) return;
      controller.enqueue(chunk);
      if ((controller.desiredSize ?? 1) <= 0) sock.pause();
    };
    const finish = () => {
      if (complete) return;
      complete = true;
      controller?.close();
      sock.destroy();
    };
    const onBody = (chunk: Uint8Array) => {
      const f = framing!;
      try {
        for (const piece of f.push(chunk)) deliver(piece);
      } catch (err) {
        sock.destroy();
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (f.done) finish();
    };
    sock.on('data', (chunk) => {
      if (framing) return onBody(chunk);
      buf = concat(buf, chunk);
      for (;;) {
        const end = indexOfBlankLine(buf);
        if (end < 0) {
          if (buf.length > MAX_HEADER_BYTES) {
            sock.destroy();
            fail(new HttpFetchError('response head larger than 64 KiB', url.href));
          }
          return;
        }
        let parsedHead: Head;
        try {
          parsedHead = parseHead(new TextDecoder('latin1').decode(buf.subarray(0, end)), url);
        } catch (err) {
          sock.destroy();
          return fail(err as Error);
        }
        buf = buf.subarray(end + 4);
        if (parsedHead.status >= 100 && parsedHead.status < 200 && parsedHead.status !== 101) continue;
        head = parsedHead;
        break;
      }
      framing = bodyFraming(head, method, url);
      const noBody = framing.done;
      const stream = noBody
        ? null
        : new ReadableStream<Uint8Array>({
            start: (c) => {
              controller = c;
            },
            pull: () => {
              sock.resume();
            },
            cancel: () => {
              sock.destroy();
            },
          });
      settled = true;
      const h = head;
      resolve(
        decoded(new Response(stream, { status: h.status, statusText: h.statusText, headers: h.headers })),
      );
      if (noBody) return finish();
      if (buf.length > 0) onBody(buf);
    });
    const ended = () => {
      if (framing instanceof UntilClose) finish();
      else if (!complete)
        fail(new HttpFetchError('connection closed before the response was complete', url.href));
    };
    sock.on('end', ended);
    sock.on('close', ended);
    sock.on('error', (err) => fail(new HttpFetchError(err.message, url.href, { cause: err })));
  });
}

/** Content-Encoding gzip/deflate undone as fetch does (the platform's DecompressionStream). */
function decoded(res: Response): Response {
  const enc = res.headers.get('content-encoding')?.toLowerCase();
  if (!res.body || (enc !== 'gzip' && enc !== 'deflate' && enc !== 'x-gzip')) return res;
  const format = enc === 'deflate' ? 'deflate' : 'gzip';
  const body = res.body.pipeThrough(new DecompressionStream(format)) as ReadableStream<Uint8Array>;
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

function parseHead(text: string, url: URL): Head {
  const [statusLine, ...lines] = text.split(CRLF);
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine ?? '');
  if (!m)
    throw new HttpFetchError(
      `not an HTTP/1.x response: ${JSON.stringify((statusLine ?? '').slice(0, 40))}`,
      url.href,
    );
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new HttpFetchError(`bad header line ${JSON.stringify(line.slice(0, 40))}`, url.href);
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), statusText: m[2] ?? '', headers };
}

interface BodyFraming {
  readonly done: boolean;
  /** The body bytes in `chunk`; throws on a framing error. */
  push(chunk: Uint8Array): Uint8Array[];
}

/** RFC 9112 §6.3: no body, chunked, Content-Length, or until the connection closes. */
function bodyFraming(head: Head, method: string, url: URL): BodyFraming {
  if (method === 'HEAD' || NULL_BODY.has(head.status)) return new FixedLength(0);
  const te = head.headers.get('transfer-encoding');
  if (te !== null) {
    if (!/(^|,)\s*chunked\s*$/i.test(te))
      throw new HttpFetchError(`unsupported transfer-encoding ${te}`, url.href);
    return new Chunked(url);
  }
  const cl = head.headers.get('content-length');
  if (cl !== null) {
    const n = Number(cl.split(',')[0]);
    if (!Number.isSafeInteger(n) || n < 0) throw new HttpFetchError(`bad content-length ${cl}`, url.href);
    return new FixedLength(n);
  }
  return new UntilClose();
}

class FixedLength implements BodyFraming {
  constructor(private left: number) {}
  get done(): boolean {
    return this.left === 0;
  }
  push(chunk: Uint8Array): Uint8Array[] {
    const take = chunk.subarray(0, this.left);
    this.left -= take.length;
    return [take];
  }
}

class UntilClose implements BodyFraming {
  readonly done = false;
  push(chunk: Uint8Array): Uint8Array[] {
    return [chunk];
  }
}

/** The chunked transfer coding (RFC 9112 §7.1), trailers read and dropped. */
class Chunked implements BodyFraming {
  done = false;
  private line = '';
  private left = 0;
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size';
  constructor(private readonly url: URL) {}

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length && !this.done) {
      if (this.state === 'data') {
        const take = chunk.subarray(i, i + this.left);
        out.push(take);
        i += take.length;
        this.left -= take.length;
        if (this.left === 0) this.state = 'data-crlf';
        continue;
      }
      const c = chunk[i++]!;
      if (c !== 0x0a) {
        if (this.line.length > 4096) throw new HttpFetchError('chunk header line too long', this.url.href);
        this.line += String.fromCharCode(c);
        continue;
      }
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'data-crlf') {
        if (line !== '') throw new HttpFetchError('missing CRLF after chunk data', this.url.href);
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
        if (!Number.isSafeInteger(size) || size < 0 || !/^[0-9a-f]+/i.test(line))
          throw new HttpFetchError(`bad chunk size ${JSON.stringify(line.slice(0, 20))}`, this.url.href);
        this.left = size;
        this.state = size === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.done = true;
      }
    }
    return out;
  }
}

function indexOfBlankLine(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
