/**
 * Answers control's PingRequests (tailcfg.PingRequest), as tailscaled does
 * (control/controlclient/direct.go answerPing, answerHeadPing, doPingerPing, postPingResult;
 * feature/c2n answerC2NPing):
 * - a URL seen last time is ignored (isUniquePingRequest);
 * - no Types: a HEAD to the URL proves the node is alive (Headscale's /debug/ping and its HA
 *   probes send only these);
 * - "c2n": the Payload is an HTTP request for the node's control-to-node handler, whose HTTP
 *   response is POSTed to the URL, over Noise only. We serve `/echo` (the body back, tailscaled's
 *   reachability probe) and answer 404 for the rest (tailscaled's debug handlers);
 * - otherwise each comma-separated type (disco, TSMP, ICMP) pings IP and POSTs the
 *   tailcfg.PingResponse as JSON; a ping that times out is logged and not answered, as
 *   doPingerPing does; `peerapi` is unsupported here (we run no peerapi) and logged.
 * URLIsNoise (always, for c2n) sends the answer over the Noise channel, else plain HTTP(S).
 */
import type { PingRequest, PingResponse } from '../control/tailcfg.js';
import type { Logger } from '../wireguard/logger.js';
import { derpCodeIn, type NodeInternals } from './internals.js';
import { type PingType, pingPeer } from './ping.js';
import { unprefix } from './status.js';

/** tailcfg.PingType names → ours. */
const TYPES: Record<string, PingType> = { disco: 'disco', TSMP: 'tsmp', ICMP: 'icmp' };
/** direct.go: answers get this long to reach control. */
const REPLY_TIMEOUT_MS = 15_000;
/** The largest c2n request we parse (an HTTP request in a map message: small). */
const MAX_C2N_REQUEST = 1 << 20;

/** A parsed HTTP/1.x request from a c2n Payload. */
interface C2nRequest {
  method: string;
  path: string;
  body: Buffer;
}

/** Thrown for a c2n Payload that is not an HTTP/1.x request. */
export class C2nRequestError extends Error {
  override readonly name = 'C2nRequestError';
}

/**
 * Parses an HTTP/1.0 or 1.1 request (what Go's http.ReadRequest takes): the request line,
 * headers, and a body of Content-Length bytes.
 */
export function parseC2nRequest(raw: Buffer): C2nRequest {
  if (raw.length > MAX_C2N_REQUEST) throw new C2nRequestError(`c2n request of ${raw.length} bytes`);
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new C2nRequestError('c2n request without the end of its headers');
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
  if (!m) throw new C2nRequestError(`c2n request line '${(lines[0] ?? '').slice(0, 80)}'`);
  let length = 0;
  for (const h of lines.slice(1)) {
    const i = h.indexOf(':');
    if (i > 0 && h.slice(0, i).trim().toLowerCase() === 'content-length')
      length = Number(h.slice(i + 1).trim());
  }
  if (!Number.isInteger(length) || length < 0 || end + 4 + length > raw.length)
    throw new C2nRequestError('c2n request body shorter than its Content-Length');
  const path = new URL(m[2]!, 'http://c2n').pathname;
  return { method: m[1]!, path, body: raw.subarray(end + 4, end + 4 + length) };
}

/** The node's c2n handler: `/echo` echoes the body (ipnlocal/c2n.go handleC2NEcho); nothing else is served. */
export function serveC2n(req: C2nRequest): Buffer {
  const [status, body] =
    req.path === '/echo'
      ? (['200 OK', req.body] as const)
      : (['404 Not Found', Buffer.from('unknown c2n path\n')] as const);
  const head = `HTTP/1.1 ${status}\r\nContent-Length: ${body.length}\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/**
 * A handler for the control client's `'ping-request'` events, answering each as tailscaled would.
 *
 * @example
 * control.on('ping-request', pingRequestAnswerer(() => node, log));
 */
export function pingRequestAnswerer(node: () => NodeInternals, log: Logger): (pr: PingRequest) => void {
  let lastURL = '';
  return (pr) => {
    if (!pr.URL || pr.URL === lastURL) return;
    lastURL = pr.URL;
    answer(node(), pr, log).catch((err: unknown) =>
      log.warn(`ping request: answering ${redact(pr.URL)} failed: ${(err as Error).message}`),
    );
  };
}

/** The URL without its query (which holds the ping's one-time id). */
const redact = (url: string) => url.replace(/\?.*$/, '?…');

async function answer(node: NodeInternals, pr: PingRequest, log: Logger): Promise<void> {
  const types = pr.Types ?? '';
  if (types === '') return reply(node, pr, 'HEAD', undefined);
  if (types === 'c2n') {
    const req = parseC2nRequest(Buffer.from(pr.Payload ?? '', 'base64'));
    if (pr.Log) log.info(`ping request: c2n ${req.method} ${req.path}`);
    // direct.go: c2n always goes over Noise, whatever URLIsNoise says.
    return reply(node, { ...pr, URLIsNoise: true }, 'POST', serveC2n(req));
  }
  await Promise.all(
    types.split(',').map(async (t) => {
      const type = TYPES[t];
      if (!type) {
        log.info(`ping request: unsupported ping type '${t}'`);
        return;
      }
      const res = await pingFor(node, type, t, pr.IP ?? '');
      if (res) await reply(node, pr, 'POST', Buffer.from(JSON.stringify(res)));
      else log.info(`ping request: ${t} ping to ${pr.IP} got no reply`);
    }),
  );
}

/** One ping of a PingRequest as a tailcfg.PingResponse, or undefined when it timed out. */
async function pingFor(
  node: NodeInternals,
  type: PingType,
  name: string,
  ip: string,
): Promise<PingResponse | undefined> {
  const res: PingResponse = { Type: name, IP: ip };
  const nm = node.netmap;
  if (nm?.self.addresses.some((a) => unprefix(a) === ip))
    return { ...res, Err: `${ip} is local Tailscale IP`, IsLocalIP: true };
  const peer = [...(nm?.peers.values() ?? [])].find((p) => p.addresses.some((a) => unprefix(a) === ip));
  if (!peer) return { ...res, Err: 'no matching peer' };
  try {
    const r = await pingPeer(node, peer, ip, type, ip);
    return {
      ...res,
      NodeIP: ip,
      NodeName: peer.shortName,
      LatencySeconds: r.latencyMs / 1000,
      ...(r.endpoint ? { Endpoint: r.endpoint } : {}),
      ...(r.derpRegion
        ? { DERPRegionID: r.derpRegion, DERPRegionCode: derpCodeIn(node.netmap, r.derpRegion) }
        : {}),
      ...(r.peerAPIPort ? { PeerAPIPort: r.peerAPIPort } : {}),
    };
  } catch (err) {
    if ((err as Error).name === 'PingTimeoutError') return undefined;
    throw err;
  }
}

/** Sends the answer to the PingRequest's URL: over Noise, or plain HTTP(S). */
async function reply(
  node: NodeInternals,
  pr: PingRequest,
  method: 'HEAD' | 'POST',
  body?: Buffer,
): Promise<void> {
  if (pr.URLIsNoise) {
    if (!node.control) throw new Error('no control client to answer over Noise');
    const status = await node.control.noiseRequest(method, pr.URL, body);
    if (status >= 400) throw new Error(`control answered HTTP ${status}`);
    return;
  }
  const res = await fetch(pr.URL, { method, body, signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`control answered HTTP ${res.status}`);
}
