/**
 * Opening the byte stream to a DERP server, as derphttp_client.go connect does: TCP or TLS,
 * then `GET /derp` with `Upgrade: DERP` and a 101 answer; or a WebSocket with subprotocol
 * `derp` (derphttp/websocket.go). TLS can pin the leaf certificate by `sha256-raw:<hex>` (the
 * DERPNode.CertName form that derper prints for its self-signed IP certificates) or skip
 * verification (DERPNode.InsecureForTests).
 */
import { createHash } from 'node:crypto';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { runtime } from '../platform/runtime.js';
import { IdealNodeHeader } from './constants.js';
import { DerpError, errorMessage } from './errors.js';
import { type DerpConn, SocketConn, WebSocketConn } from './transport.js';
import { dialPlatformWebSocket } from './web-socket.js';

/** How to verify the server's TLS certificate. */
export interface DerpTlsOptions {
  /** Skip verification (DERPNode.InsecureForTests). */
  insecure?: boolean;
  /** `sha256-raw:<hex>` pins the leaf certificate; another value is the name to verify. */
  certName?: string;
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Buffer;
}

export interface DialOptions {
  /** `http://host:port/derp`, `https://…`, `ws://…` or `wss://…`. */
  url: string;
  /** Use WebSocket even for an http(s) URL. */
  websocket?: boolean;
  tls?: DerpTlsOptions;
  /** The whole dial, TLS and upgrade (derphttp_client.go: 10 s). */
  timeoutMs?: number;
  /** Connect here instead of the URL's host (which stays the TLS name and Host header). */
  connectHost?: string;
  /** Sent as the Ideal-Node header when we are not on the region's first node. */
  idealNode?: string;
}

/** The stream, and any DERP bytes that arrived together with the HTTP response. */
export interface Dialed {
  conn: DerpConn;
  leftover: Buffer;
}

const MAX_RESPONSE_HEADER = 16 << 10;

/**
 * Connects and upgrades; the returned stream is ready for the DERP login.
 *
 * @example
 * const { conn, leftover } = await dialDerp({ url: 'http://127.0.0.1:3340/derp' });
 */
export async function dialDerp(opts: DialOptions): Promise<Dialed> {
  const url = new URL(opts.url);
  // A web page has no TCP: there DERP always rides the page's WebSocket.
  const page = runtime.name === 'browser';
  const ws = page || opts.websocket || url.protocol === 'ws:' || url.protocol === 'wss:';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/derp';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (page) {
    url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
    return { conn: await dialPlatformWebSocket(url, timeoutMs), leftover: Buffer.alloc(0) };
  }
  return ws ? dialWebSocket(url, opts, timeoutMs) : dialUpgrade(url, opts, timeoutMs);
}

function secure(url: URL): boolean {
  return url.protocol === 'https:' || url.protocol === 'wss:';
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function portOf(url: URL): number {
  if (url.port) return Number(url.port);
  return secure(url) ? 443 : 80;
}

/**
 * Checks a pinned `sha256-raw:` certificate as tailscaled does (net/tlsdial
 * SetConfigExpectedCertHash): the hex SHA-256 of the leaf's DER equals the pin as written
 * (Go compares lowercase `%02x` text), the certificate is valid for the TLS server name unless
 * that is an IP address (then Go's ConnectionState.ServerName is empty and no name is checked;
 * like Go, only subjectAltName counts), and now lies in its validity period. Returns an error
 * text or undefined. Node shows only the leaf, so Go's refusal of a second (non-meta)
 * certificate in the chain has no counterpart here.
 */
export function checkPin(
  socket: TLSSocket | null | undefined,
  tls: DerpTlsOptions | undefined,
  serverName: string,
): string | undefined {
  const pin = tls?.certName?.startsWith('sha256-raw:') ? tls.certName.slice('sha256-raw:'.length) : undefined;
  if (pin === undefined) return undefined;
  // Fail closed where the runtime does not show the connection (Bun's WebSocket upgrade).
  if (typeof socket?.getPeerX509Certificate !== 'function')
    return 'cannot check the pinned certificate: the runtime does not expose the TLS connection';
  const cert = socket.getPeerX509Certificate();
  if (!cert) return 'server sent no certificate';
  if (createHash('sha256').update(cert.raw).digest('hex') !== pin)
    return 'server certificate does not match the pinned sha256-raw hash';
  if (isIP(serverName) === 0 && cert.checkHost(serverName, { subject: 'never' }) === undefined)
    return `server certificate does not match server name ${serverName}`;
  const now = Date.now();
  if (now > Date.parse(cert.validTo)) return `server certificate expired ${cert.validTo}`;
  if (now < Date.parse(cert.validFrom))
    return `server certificate not valid until ${cert.validFrom}; is the clock correct?`;
  return undefined;
}

/**
 * TLS options toward a DERP node at `url`: the server name (the CertName when it is a name),
 * verification unless `insecure` or a `sha256-raw:` pin (which {@link checkPin} checks instead).
 */
export function tlsOptions(url: URL, tls: DerpTlsOptions | undefined) {
  const host = hostOf(url);
  const pinned = tls?.certName?.startsWith('sha256-raw:') ?? false;
  const name = !pinned && tls?.certName ? tls.certName : host;
  return {
    // RFC 6066 forbids an IP address as SNI; Go's crypto/tls omits it too.
    ...(isIP(name) ? {} : { servername: name }),
    rejectUnauthorized: !(tls?.insecure || pinned),
    ...(tls?.ca ? { ca: tls.ca } : {}),
    ALPNProtocols: ['http/1.1'],
  };
}

function dialUpgrade(url: URL, opts: DialOptions, timeoutMs: number): Promise<Dialed> {
  return new Promise<Dialed>((resolve, reject) => {
    const host = opts.connectHost ?? hostOf(url);
    const port = portOf(url);
    const tls = secure(url);
    const where = `${url.protocol}//${url.host}`;
    let socket: Socket;
    let done = false;
    const fail = (code: 'CONNECT' | 'HTTP_UPGRADE' | 'TIMEOUT', why: string, cause?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new DerpError(code, `DERP dial ${where}: ${why}`, { cause }));
    };
    const timer = setTimeout(() => fail('TIMEOUT', `no upgrade within ${timeoutMs} ms`), timeoutMs);
    const onConnected = (): void => {
      if (tls) {
        const bad = checkPin(socket as TLSSocket, opts.tls, hostOf(url));
        if (bad) {
          fail('CONNECT', bad);
          return;
        }
      }
      const lines = [
        `GET ${url.pathname}${url.search} HTTP/1.1`,
        `Host: ${url.host}`,
        'User-Agent: quackscale-derp',
        'Upgrade: DERP',
        'Connection: Upgrade',
      ];
      if (opts.idealNode) lines.push(`${IdealNodeHeader}: ${opts.idealNode}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    };
    socket = tls
      ? tlsConnect({ host, port, ...tlsOptions(url, opts.tls) }, onConnected)
      : netConnect({ host, port }, onConnected);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEADER) fail('HTTP_UPGRADE', 'response header too large');
        return;
      }
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.[01] 101 /.test(status)) {
        const body = head.subarray(end + 4, end + 4 + 200).toString('utf8');
        fail('HTTP_UPGRADE', `server answered "${status}" ${body.trim()}`);
        return;
      }
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      resolve({ conn: new SocketConn(socket), leftover: head.subarray(end + 4) });
    };
    const onError = (err: Error): void => fail('CONNECT', errorMessage(err), err);
    const onClose = (): void => fail('HTTP_UPGRADE', 'connection closed before the upgrade');
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

async function dialWebSocket(url: URL, opts: DialOptions, timeoutMs: number): Promise<Dialed> {
  // Loaded on first use: `ws` costs a node ~8 MB of memory, and most never dial DERP over WebSocket.
  const { WebSocket } = await import('ws');
  const wsUrl = new URL(url.href);
  if (wsUrl.protocol === 'http:') wsUrl.protocol = 'ws:';
  if (wsUrl.protocol === 'https:') wsUrl.protocol = 'wss:';
  const tls = secure(wsUrl);
  return new Promise<Dialed>((resolve, reject) => {
    const ws = new WebSocket(wsUrl.href, ['derp'], {
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
      maxPayload: 1 << 20,
      ...(tls ? tlsOptions(wsUrl, opts.tls) : {}),
      ...(opts.idealNode ? { headers: { [IdealNodeHeader]: opts.idealNode } } : {}),
    });
    let done = false;
    const fail = (why: string, cause?: unknown): void => {
      if (done) return;
      done = true;
      ws.terminate();
      reject(
        new DerpError('CONNECT', `DERP WebSocket dial ${wsUrl.protocol}//${wsUrl.host}: ${why}`, { cause }),
      );
    };
    ws.on('upgrade', (res) => {
      if (!tls) return;
      const bad = checkPin(res.socket as TLSSocket | null, opts.tls, hostOf(wsUrl));
      if (bad) fail(bad);
    });
    ws.once('error', (err) => fail(errorMessage(err), err));
    ws.once('unexpected-response', (_req, res) =>
      fail(`server answered ${res.statusCode} ${res.statusMessage}`),
    );
    ws.once('open', () => {
      if (done) return;
      if (ws.protocol !== 'derp') {
        fail(`server chose subprotocol "${ws.protocol}", not "derp"`);
        return;
      }
      done = true;
      const sock = (ws as unknown as { _socket?: Socket })._socket;
      const conn = new WebSocketConn(
        ws,
        sock?.remoteAddress ?? hostOf(wsUrl),
        sock?.remotePort ?? portOf(wsUrl),
      );
      resolve({ conn, leftover: Buffer.alloc(0) });
    });
  });
}
