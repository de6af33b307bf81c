/**
 * The attacks of `npm run bench -- abuse` (issue 23), each against one target, from loopback
 * addresses other than the legitimate node's 127.0.0.1:
 * (a) silent connections, (b) connections that send one header byte a second, (c) a flood of
 * handshakes from one address, (d) frames and bodies that declare 2 GB, (e) connect/disconnect
 * cycles from many addresses. Handshakes are real ones: a DERP upgrade with a sealed ClientInfo
 * (the server opens the box: an X25519 operation), a ts2021 upgrade with a Noise initiation.
 */
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { fetchServerKey, finishNoise } from '../src/control/dial.js';
import { PrivateKey } from '../src/control/keys.js';
import { MSG_RESPONSE } from '../src/control/noise/frames.js';
import { type ClientHandshake, clientInitiation } from '../src/control/noise/handshake.js';
import { CAPABILITY_VERSION } from '../src/control/version.js';
import { FrameClientInfo, FrameSendPacket, FrameServerInfo, ProtocolVersion } from '../src/derp/constants.js';
import { generateNodeKeyPair, NaclBox } from '../src/derp/keys.js';
import { clientInfoJson, decodeServerKey, encodeClientInfo } from '../src/derp/messages.js';
import type { Target } from './abuse-targets.js';

/**
 * Closed this soon after opening: refused by a limit on accept, not shed by a deadline (the
 * shortest of those here is 30 s). Not 0: under a burst of thousands of connections the kernel
 * completes them seconds before the server gets to accept (and refuse) them.
 */
const REFUSED_WITHIN_MS = 5000;

/** How the connections (or attempts) of one attack ended. */
export interface Outcome {
  attempts: number;
  /** Closed by the server (or refused) within REFUSED_WITHIN_MS of opening. */
  refused: number;
  /** Closed by the server later: ms after the attack began, one per connection. */
  shedAtMs: number[];
  /** Still open when the attack stopped waiting. */
  stillOpen: number;
  /** Handshakes that completed (c, e), or requests answered with an error status (d). */
  completed: number;
}

interface Conn {
  socket: Socket;
  openedAt: number;
  closedAt: number | undefined;
  data: Buffer[];
}

function openConn(port: number, from: string): Promise<Conn> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    const c: Conn = { socket, openedAt: Date.now(), closedAt: undefined, data: [] };
    // The server closing or resetting is what is measured; the error itself says nothing more.
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => c.data.push(d));
    socket.on('close', () => {
      c.closedAt ??= Date.now();
      resolve(c);
    });
    // A connect the server never completes (its accept queue full) counts as refused.
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(c);
    });
  });
}

async function openMany(port: number, n: number, from: string): Promise<Conn[]> {
  const out: Conn[] = [];
  for (let i = 0; i < n; i += 250) {
    out.push(
      ...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, () => openConn(port, from)))),
    );
  }
  return out;
}

/** Waits until every connection is closed or `waitMs` has passed since `start`, then sorts them out. */
async function settle(conns: Conn[], start: number, waitMs: number): Promise<Outcome> {
  while (Date.now() - start < waitMs && conns.some((c) => c.closedAt === undefined)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const o: Outcome = { attempts: conns.length, refused: 0, shedAtMs: [], stillOpen: 0, completed: 0 };
  for (const c of conns) {
    if (c.closedAt === undefined) o.stillOpen++;
    else if (c.closedAt - c.openedAt < REFUSED_WITHIN_MS) o.refused++;
    else o.shedAtMs.push(c.closedAt - start);
    c.socket.destroy();
  }
  return o;
}

/** (a) `n` connections that send nothing. */
export async function silent(t: Target, n: number, from: string, waitMs: number): Promise<Outcome> {
  const start = Date.now();
  return settle(await openMany(t.port, n, from), start, waitMs);
}

/** (b) `n` connections that send their request one byte a second. */
export async function slowHeaders(t: Target, n: number, from: string, waitMs: number): Promise<Outcome> {
  const request =
    t.kind === 'derp'
      ? 'GET /derp HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n'
      : 'POST /ts2021 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: tailscale-control-protocol\r\n\r\n';
  const start = Date.now();
  const conns = await openMany(t.port, n, from);
  let i = 0;
  const timer = setInterval(() => {
    const byte = request[i++ % request.length]!;
    for (const c of conns) if (c.closedAt === undefined && !c.socket.destroyed) c.socket.write(byte);
  }, 1000);
  try {
    return await settle(conns, start, waitMs);
  } finally {
    clearInterval(timer);
  }
}

/** One complete handshake from `from`: true when the server finished its side, false when it refused. */
export type Handshake = (from: string) => Promise<boolean>;

const DERP_UPGRADE = 'GET /derp HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n';

/** The relay's public key, from the ServerKey frame after an upgrade. */
async function serverKeyOf(t: Target): Promise<Uint8Array> {
  const probe = await openConn(t.port, '127.0.0.1');
  probe.socket.write(DERP_UPGRADE);
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      probe.socket.on('data', () => {
        const all = Buffer.concat(probe.data);
        const end = all.indexOf('\r\n\r\n');
        if (end >= 0 && all.length >= end + 49) resolve(decodeServerKey(all.subarray(end + 9, end + 49)));
      });
      probe.socket.once('close', () => reject(new Error(`${t.name} closed before its ServerKey`)));
    });
  } finally {
    probe.socket.destroy();
  }
}

/** A ClientInfo frame of a fresh key, sealed to `serverKey`. */
function clientInfo(serverKey: Uint8Array): Buffer {
  const k = generateNodeKeyPair();
  const box = NaclBox.between(k.privateKey, serverKey);
  return encodeClientInfo(
    k.publicKey,
    box.seal(clientInfoJson({ version: ProtocolVersion, canAckPings: false })),
  );
}

/** DERP logins with ClientInfo sealed once per key (the server still opens each box). */
export async function derpHandshake(t: Target): Promise<Handshake> {
  const serverKey = await serverKeyOf(t);
  const logins = Array.from({ length: 16 }, () =>
    Buffer.concat([Buffer.from(DERP_UPGRADE), clientInfo(serverKey)]),
  );
  let n = 0;
  return (from) =>
    exchange(t.port, from, logins[n++ % logins.length]!, (all) => {
      // After the 101: ServerKey (5 + 40 bytes), then the ServerInfo frame once the box opened.
      const body = afterUpgrade(all);
      if (typeof body !== 'number') return body;
      return all.length > body + 45 ? all[body + 45] === FrameServerInfo : undefined;
    });
}

/** ts2021 upgrades with Noise initiations made once (the server does its DH for each). */
export async function noiseHandshake(t: Target): Promise<Handshake> {
  const controlKey = await fetchServerKey(t.url, CAPABILITY_VERSION);
  const inits = Array.from({ length: 16 }, () =>
    noiseRequest(clientInitiation(PrivateKey.generate('machine'), controlKey, CAPABILITY_VERSION)),
  );
  let n = 0;
  return (from) =>
    exchange(t.port, from, inits[n++ % inits.length]!, (all) => {
      const body = afterUpgrade(all);
      if (typeof body !== 'number') return body;
      return all.length > body ? all[body] === MSG_RESPONSE : undefined;
    });
}

/** Where the bytes after a 101 answer start; false for another answer, undefined until it is all in. */
function afterUpgrade(all: Buffer): number | false | undefined {
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  return all.subarray(0, 12).toString().includes('101') ? end + 4 : false;
}

function noiseRequest(hs: ClientHandshake): Buffer {
  return Buffer.from(
    'POST /ts2021 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n' +
      `X-Tailscale-Handshake: ${hs.initiation.toString('base64')}\r\nContent-Length: 0\r\n\r\n`,
  );
}

/** Sends `request`, then reads until `verdict` decides (or the server closes: false), within 5 s. */
function exchange(
  port: number,
  from: string,
  request: Buffer,
  verdict: (all: Buffer) => boolean | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    const chunks: Buffer[] = [];
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 5000);
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      const v = verdict(Buffer.concat(chunks));
      if (v !== undefined) done(v);
    });
    socket.once('connect', () => socket.write(request));
  });
}

/**
 * (c) and (e): `perSecond` handshakes for `seconds`, from `sources` in turn (one address for a
 * flood, many for churn), at most 500 at a time.
 */
export async function handshakes(
  handshake: Handshake,
  perSecond: number,
  seconds: number,
  sources: readonly string[],
): Promise<Outcome> {
  const o: Outcome = { attempts: 0, refused: 0, shedAtMs: [], stillOpen: 0, completed: 0 };
  const running = new Set<Promise<void>>();
  const start = Date.now();
  while (Date.now() - start < seconds * 1000) {
    const due = Math.floor(((Date.now() - start) * perSecond) / 1000);
    while (o.attempts < due && running.size < 500) {
      const p = handshake(sources[o.attempts % sources.length]!).then((ok) => {
        if (ok) o.completed++;
        else o.refused++;
        running.delete(p);
      });
      running.add(p);
      o.attempts++;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(running);
  return o;
}

/**
 * Runs `wave` once a second for `seconds` and adds up the outcomes (each wave's times count from
 * its own start).
 */
export async function waves(seconds: number, wave: () => Promise<Outcome>): Promise<Outcome> {
  const running: Promise<Outcome>[] = [];
  for (let i = 0; i < seconds; i++) {
    running.push(wave());
    await new Promise((r) => setTimeout(r, 1000));
  }
  const o: Outcome = { attempts: 0, refused: 0, shedAtMs: [], stillOpen: 0, completed: 0 };
  for (const w of await Promise.all(running)) {
    o.attempts += w.attempts;
    o.refused += w.refused;
    o.shedAtMs.push(...w.shedAtMs);
    o.stillOpen += w.stillOpen;
    o.completed += w.completed;
  }
  return o;
}

/** (d) on a relay: `n` connections, half declaring a 2 GB ClientInfo, half a 2 GB packet after login. */
export async function oversizedFrames(t: Target, n: number, from: string): Promise<Outcome> {
  const huge = (type: number) => Buffer.from([type, 0x7f, 0xff, 0xff, 0xff]);
  const serverKey = await serverKeyOf(t);
  const start = Date.now();
  const conns = await openMany(t.port, n, from);
  conns.forEach((c, i) => {
    c.socket.write(DERP_UPGRADE);
    c.socket.write(
      i % 2 === 0 ? huge(FrameClientInfo) : Buffer.concat([clientInfo(serverKey), huge(FrameSendPacket)]),
    );
    junk(c.socket);
  });
  return settle(conns, start, 15_000);
}

/** Writes up to 2 MB of zeros in 64 KiB pieces as fast as `w` (a socket, a request) takes them. */
function junk(w: Writable): void {
  const piece = Buffer.alloc(64 << 10);
  let left = 32;
  const more = (): void => {
    while (left > 0 && !w.destroyed) {
      left--;
      if (!w.write(piece)) {
        w.once('drain', more);
        return;
      }
    }
  };
  more();
}

/** (d) on a control server: `n` Noise connections, each POSTing a body that declares 2 GB. */
export async function oversizedBodies(t: Target, n: number, sources: readonly string[]): Promise<Outcome> {
  const controlKey = await fetchServerKey(t.url, CAPABILITY_VERSION);
  const start = Date.now();
  const o: Outcome = { attempts: n, refused: 0, shedAtMs: [], stillOpen: 0, completed: 0 };
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const r = await bigPost(t, controlKey, sources[i % sources.length]!);
      if (r === 'open') o.stillOpen++;
      else if (r === 'refused') o.refused++;
      else {
        o.completed++;
        o.shedAtMs.push(Date.now() - start);
      }
    }),
  );
  return o;
}

async function bigPost(
  t: Target,
  controlKey: Awaited<ReturnType<typeof fetchServerKey>>,
  from: string,
): Promise<'answered' | 'refused' | 'open'> {
  const hs = clientInitiation(PrivateKey.generate('machine'), controlKey, CAPABILITY_VERSION);
  const c = await openConn(t.port, from);
  if (c.closedAt !== undefined) return 'refused';
  c.socket.write(noiseRequest(hs));
  const head = await new Promise<Buffer | undefined>((resolve) => {
    const check = (): void => {
      const all = Buffer.concat(c.data);
      const end = all.indexOf('\r\n\r\n');
      if (end >= 0)
        resolve(all.subarray(0, 12).toString().includes('101') ? all.subarray(end + 4) : undefined);
    };
    c.socket.on('data', check);
    c.socket.once('close', () => resolve(undefined));
  });
  if (head === undefined) return 'refused';
  c.socket.removeAllListeners('data');
  const conn = await finishNoise(c.socket, head, hs, t.url, 5000).catch(() => undefined);
  if (conn === undefined) return 'refused';
  const session = http2.connect(t.url, { createConnection: () => conn });
  // The server resetting or closing is what is measured, not an error of the attack.
  session.on('error', () => {});
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/machine/register',
      'content-length': String(2 ** 31),
    });
    stream.on('error', () => {});
    junk(stream);
    return await new Promise((resolve) => {
      const t0 = setTimeout(() => resolve('open'), 45_000);
      const end = (): void => {
        clearTimeout(t0);
        resolve('answered');
      };
      stream.once('response', end);
      stream.once('close', end);
    });
  } finally {
    session.destroy();
  }
}
