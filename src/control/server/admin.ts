/**
 * The admin credential of the embedded control server, and the client side of its admin API.
 *
 * Approving a login is an admin act, so the HTTP admin API (POST /register/<id>/approve,
 * …/reject, GET /admin/pending) demands two things:
 * - the bearer token in `<state>/admin.json` (0600 in the 0700 state dir, made once, kept across
 *   restarts): only who can read the server's state (the same people who can already mint auth
 *   keys by writing into it) can approve. A browser cannot attach it to a cross-site request, so
 *   a page that POSTs to the server from the admin's browser cannot approve anything either.
 * - a request from this host (loopback, or the address the server itself listens on): the
 *   server speaks plain HTTP, and a token sent across a network could be read on the way; this
 *   keeps it on the machine, and a token leaked anyway is useless from elsewhere.
 * The token is never printed or logged: `control serve` prints the file's path, and the CLI
 * (`quackscale control approve --state-dir DIR`) reads the file and the admin URL next to it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { StateError } from '../errors.js';

const FILE = 'admin.json';

/** What `<state>/admin.json` holds. */
export interface AdminFile {
  /** Bearer token of the admin API. */
  token: string;
  /** Where a local admin reaches the running server (written at listen). */
  url?: string;
}

/** The admin API refused a request or could not be reached; the message never holds the token. */
export class AdminAPIError extends Error {
  override readonly name = 'AdminAPIError';
  constructor(
    message: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The path of the admin file in a server state dir. */
export function adminFilePath(stateDir: string): string {
  return join(stateDir, FILE);
}

async function writeAdminFile(stateDir: string, data: AdminFile): Promise<void> {
  const path = adminFilePath(stateDir);
  const tmp = `${path}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(data)}\n`, { mode: 0o600 });
    await rename(tmp, path);
  } catch (err) {
    throw new StateError(`writing ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the admin file; a missing or malformed one is a StateError naming the file. */
export async function readAdminFile(stateDir: string): Promise<AdminFile> {
  const path = adminFilePath(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const hint =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? ' (is this the state dir of `quackscale control serve`, and has it started once?)'
        : '';
    throw new StateError(`reading ${path}: ${(err as Error).message}${hint}`, { cause: err });
  }
  try {
    const data = JSON.parse(text) as AdminFile;
    if (typeof data.token !== 'string' || data.token.length < 32) throw new Error('no token');
    return data;
  } catch {
    // Without the parser's message: it may quote the token.
    throw new StateError(`${path} is corrupt`);
  }
}

/** The server's side: checks the token, publishes the admin URL. */
export class AdminCredential {
  readonly #token: Buffer;

  private constructor(
    readonly stateDir: string,
    token: string,
  ) {
    this.#token = Buffer.from(token);
  }

  /** The token from the state dir, made (32 random bytes) if there is none yet. */
  static async load(stateDir: string): Promise<AdminCredential> {
    try {
      return new AdminCredential(stateDir, (await readAdminFile(stateDir)).token);
    } catch (err) {
      if (!(err instanceof StateError) || !((err.cause as NodeJS.ErrnoException)?.code === 'ENOENT'))
        throw err;
    }
    const token = randomBytes(32).toString('base64url');
    await writeAdminFile(stateDir, { token });
    return new AdminCredential(stateDir, token);
  }

  get path(): string {
    return adminFilePath(this.stateDir);
  }

  /** Records where the running server takes admin requests. */
  async publish(url: string): Promise<void> {
    await writeAdminFile(this.stateDir, { token: this.#token.toString(), url });
  }

  /** Whether an Authorization header carries the token (constant time in the token). */
  check(authorization: string | undefined): boolean {
    const m = /^Bearer (\S+)$/.exec(authorization ?? '');
    if (!m) return false;
    const got = Buffer.from(m[1]!);
    return got.length === this.#token.length && timingSafeEqual(got, this.#token);
  }
}

function bareAddress(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}

/** Whether a connection comes from this host: loopback, or from the very address it reached. */
export function isSameHost(socket: Pick<Socket, 'remoteAddress' | 'localAddress'>): boolean {
  const remote = bareAddress(socket.remoteAddress);
  if (remote === '::1' || remote.startsWith('127.')) return true;
  return remote !== '' && remote === bareAddress(socket.localAddress);
}

/** Answers an admin API request with JSON. */
export function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}

/**
 * Whether an admin API request may go on: from this host, with the token. Otherwise it has
 * been answered (403 or 401) and the caller stops.
 */
export function authorizeAdmin(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  admin: AdminCredential,
): boolean {
  if (!isSameHost(req.socket)) {
    json(res, 403, { error: 'the admin API only answers requests from this host' });
    return false;
  }
  if (!admin.check(req.headers.authorization)) {
    res.setHeader('www-authenticate', 'Bearer');
    json(res, 401, { error: `admin token missing or wrong (it is in ${admin.path})` });
    return false;
  }
  return true;
}

const MAX_ADMIN_BODY = 4096;

/** An admin request's body as text; beyond 4 KiB the request is destroyed with `tooLarge(limit)`. */
export function readBody(req: http.IncomingMessage, tooLarge: (max: number) => Error): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_ADMIN_BODY) req.destroy(tooLarge(MAX_ADMIN_BODY));
      else chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

/** The URL a local admin uses for a server listening on `host:port` (wildcards become loopback). */
export function localAdminURL(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '') return `http://127.0.0.1:${port}`;
  if (host === '::') return `http://[::1]:${port}`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * One admin API call to the server whose state dir is `stateDir`: the token and URL come from
 * its admin file. Resolves with the parsed JSON reply; non-2xx replies throw AdminAPIError
 * with the server's message.
 */
export async function adminRequest(
  stateDir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<unknown> {
  const admin = await readAdminFile(stateDir);
  if (!admin.url) {
    throw new AdminAPIError(`${adminFilePath(stateDir)} has no server URL: the server has not listened yet`);
  }
  const url = new URL(path, admin.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        // No agent: a plain connection to the local server, never through a proxy.
        agent: false,
        headers: {
          authorization: `Bearer ${admin.token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) =>
      reject(
        new AdminAPIError(
          `cannot reach the control server at ${admin.url} (is \`quackscale control serve\` running?): ${err.message}`,
          undefined,
          { cause: err },
        ),
      ),
    );
    req.end(payload);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status < 200 || status > 299) {
    const msg = (json as { error?: unknown } | undefined)?.error;
    throw new AdminAPIError(
      `${method} ${url.pathname}: HTTP ${status}: ${typeof msg === 'string' ? msg : text.trim().slice(0, 200)}`,
      status,
    );
  }
  return json;
}
