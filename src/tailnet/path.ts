/**
 * Path selection for one peer, as magicsock's `endpoint` (wgengine/magicsock/endpoint.go):
 * packets go over DERP until a disco pong proves a direct UDP address; that address is then
 * trusted for TRUST_UDP_ADDR_DURATION after each pong, kept fresh by heartbeat pings while
 * the session is active, and when pongs stop the peer falls back to DERP (sending on both
 * while the best address is untrusted). Pure logic over a clock: the caller sends what
 * {@link PathActions} asks for and feeds pongs back.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../wireguard/clock.js';
import type { AddrPort } from './disco.js';

/** magicsock.go: how often pings to the best UDP address are sent while active. */
export const HEARTBEAT_INTERVAL = 3_000;
/** magicsock.go: how long a UDP address is trusted without a new pong. */
export const TRUST_UDP_ADDR_DURATION = 6_500;
/** magicsock.go: no heartbeats after this long without our sending. */
export const SESSION_ACTIVE_TIMEOUT = 45_000;
/** magicsock.go: a direct path this fast is not worth upgrading. */
export const GOOD_ENOUGH_LATENCY = 5;
/** magicsock.go: even a working direct path is re-probed this often for a better one. */
export const UPGRADE_UDP_DIRECT_INTERVAL = 60_000;
/** tsconst: minimum time between discovery pings to one address, and the pong timeout. */
export const DISCO_PING_INTERVAL = 5_000;
export const PING_TIMEOUT = 5_000;

export type PingPurpose = 'discovery' | 'heartbeat' | 'cli';

/** What the path wants done; the magicsock carries it out. */
export interface PathActions {
  sendDiscoPing(to: AddrPort | 'derp', txid: Uint8Array): void;
  sendCallMeMaybe(): void;
}

/** The outcome of a ping, for `ping()` / `tailscale ping`. */
export interface PingOutcome {
  via: AddrPort | 'derp';
  latencyMs: number;
}

interface SentPing {
  to: AddrPort | 'derp';
  at: number;
  purpose: PingPurpose;
  done?: (r: PingOutcome | undefined) => void;
  timer: ReturnType<Clock['setTimeout']>;
}

interface Candidate {
  lastPing: number;
  fromCallMeMaybe: boolean;
}

export const addrKey = (a: AddrPort): string =>
  a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;

export class PeerPath {
  private readonly candidates = new Map<string, { addr: AddrPort } & Candidate>();
  private readonly sent = new Map<string, SentPing>();
  private best: { addr: AddrPort; latency: number; key: string } | undefined;
  private trustUntil = Number.NEGATIVE_INFINITY;
  private lastFullPing = Number.NEGATIVE_INFINITY;
  private lastSendExt = Number.NEGATIVE_INFINITY;
  private heartbeat: ReturnType<Clock['setTimeout']> | undefined;
  private closed = false;
  /** Whether the peer has a DERP home to fall back on. */
  hasDerp = true;

  constructor(
    private readonly clock: Clock,
    private readonly actions: PathActions,
  ) {}

  /** Replaces the endpoints control reported for the peer (CallMeMaybe ones are kept). */
  setEndpoints(eps: readonly AddrPort[]): void {
    const keep = new Set(eps.map(addrKey));
    for (const [k, c] of this.candidates) if (!keep.has(k) && !c.fromCallMeMaybe) this.candidates.delete(k);
    for (const e of eps) {
      const k = addrKey(e);
      if (!this.candidates.has(k))
        this.candidates.set(k, { addr: e, lastPing: Number.NEGATIVE_INFINITY, fromCallMeMaybe: false });
    }
  }

  /**
   * Where to send a data packet now: the trusted direct address alone, or DERP plus the
   * best untrusted address if any (endpoint.go addrForSendLocked, send).
   */
  addrForSend(): { udp: AddrPort | undefined; derp: boolean } {
    const now = this.clock.now();
    const trusted = this.best !== undefined && now <= this.trustUntil;
    if (!trusted) this.sendDiscoPings(now, true);
    this.noteTxActivity(now);
    if (trusted) return { udp: this.best!.addr, derp: false };
    return { udp: this.best?.addr, derp: this.hasDerp || !this.best };
  }

  /** When a data packet was last sent to the peer (the path's clock), or -Infinity if never. */
  get lastSend(): number {
    return this.lastSendExt;
  }

  /** The path `status()` reports. */
  current(): { kind: 'direct'; addr: AddrPort; latencyMs: number } | { kind: 'derp' } {
    const now = this.clock.now();
    if (this.best && now <= this.trustUntil)
      return { kind: 'direct', addr: this.best.addr, latencyMs: this.best.latency };
    return { kind: 'derp' };
  }

  /** The {@link addrKey} of the direct path now, or undefined while packets go over DERP (no allocation: per packet). */
  directKey(): string | undefined {
    return this.best && this.clock.now() <= this.trustUntil ? this.best.key : undefined;
  }

  /** A pong arrived; `via` is where it came from (a UDP address, or DERP). Returns false for unknown txids. */
  handlePong(txid: Uint8Array, via: AddrPort | 'derp'): boolean {
    const key = Buffer.from(txid).toString('hex');
    const sp = this.sent.get(key);
    if (!sp) return false;
    this.sent.delete(key);
    this.clock.clearTimeout(sp.timer);
    const now = this.clock.now();
    const latency = now - sp.at;
    sp.done?.({ via: sp.to, latencyMs: latency });
    if (via !== 'derp' && sp.to !== 'derp') {
      const pong = { addr: sp.to, latency, key: addrKey(sp.to) };
      if (!this.best || now > this.trustUntil || betterAddr(pong, this.best)) this.best = pong;
      if (this.best.key === pong.key) {
        this.best.latency = latency;
        this.trustUntil = now + TRUST_UDP_ADDR_DURATION;
      }
    }
    return true;
  }

  /** The peer told us (over DERP) where it can be reached: ping those now (endpoint.go handleCallMeMaybe). */
  handleCallMeMaybe(eps: readonly AddrPort[]): void {
    for (const c of this.candidates.values()) if (c.fromCallMeMaybe) c.fromCallMeMaybe = false;
    for (const e of eps) {
      if (e.ip.toLowerCase().startsWith('fe80:')) continue;
      const k = addrKey(e);
      const c = this.candidates.get(k);
      if (c) {
        c.fromCallMeMaybe = true;
        c.lastPing = Number.NEGATIVE_INFINITY; // the first pings likely died in the peer's firewall
      } else {
        this.candidates.set(k, { addr: e, lastPing: Number.NEGATIVE_INFINITY, fromCallMeMaybe: true });
      }
    }
    this.sendDiscoPings(this.clock.now(), false);
  }

  /** A disco ping arrived from `from` over UDP: that address is a candidate (endpoint.go addCandidateEndpoint). */
  addCandidate(from: AddrPort): void {
    const k = addrKey(from);
    if (!this.candidates.has(k))
      this.candidates.set(k, { addr: from, lastPing: Number.NEGATIVE_INFINITY, fromCallMeMaybe: false });
  }

  /** Pings the peer on every path now; resolves with the first pong, or undefined after PING_TIMEOUT. */
  ping(): Promise<PingOutcome | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: PingOutcome | undefined) => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      const now = this.clock.now();
      // As endpoint.go startDiscoPingLocked for pingCLI: a ping is activity, so heartbeats follow and
      // discover (with CallMeMaybe) the direct paths that a NAT lets open only from the peer's side.
      this.noteTxActivity(now);
      if (this.best && now <= this.trustUntil) this.startPing(this.best.addr, now, 'cli', done);
      else {
        for (const c of this.candidates.values()) this.startPing(c.addr, now, 'cli', done);
        if (this.hasDerp) this.startPing('derp', now, 'cli', done);
      }
      if (!this.hasDerp && this.candidates.size === 0) done(undefined);
    });
  }

  /**
   * Forgets the direct path (e.g. on a network change), falling back to DERP, and lets every
   * candidate be pinged at once (endpoint.go noteConnectivityChange).
   */
  reset(): void {
    this.best = undefined;
    this.trustUntil = Number.NEGATIVE_INFINITY;
    for (const c of this.candidates.values()) c.lastPing = Number.NEGATIVE_INFINITY;
  }

  close(): void {
    this.closed = true;
    if (this.heartbeat) this.clock.clearTimeout(this.heartbeat);
    for (const sp of this.sent.values()) {
      this.clock.clearTimeout(sp.timer);
      sp.done?.(undefined);
    }
    this.sent.clear();
  }

  private noteTxActivity(now: number): void {
    this.lastSendExt = now;
    if (!this.heartbeat && !this.closed)
      this.heartbeat = this.clock.setTimeout(() => this.beat(), HEARTBEAT_INTERVAL);
  }

  /** endpoint.go heartbeat: keep the best path alive while the session is active. */
  private beat(): void {
    this.heartbeat = undefined;
    if (this.closed) return;
    const now = this.clock.now();
    if (now - this.lastSendExt > SESSION_ACTIVE_TIMEOUT) return;
    if (this.best) this.startPing(this.best.addr, now, 'heartbeat');
    if (this.wantFullPing(now)) this.sendDiscoPings(now, true);
    this.heartbeat = this.clock.setTimeout(() => this.beat(), HEARTBEAT_INTERVAL);
  }

  private wantFullPing(now: number): boolean {
    if (!this.best || this.lastFullPing === Number.NEGATIVE_INFINITY || now > this.trustUntil) return true;
    if (this.best.latency <= GOOD_ENOUGH_LATENCY) return false;
    return now - this.lastFullPing >= UPGRADE_UDP_DIRECT_INTERVAL;
  }

  /** endpoint.go sendDiscoPingsLocked: ping each candidate not pinged within DISCO_PING_INTERVAL. */
  private sendDiscoPings(now: number, sendCallMeMaybe: boolean): void {
    this.lastFullPing = now;
    let sentAny = false;
    for (const c of this.candidates.values()) {
      if (now - c.lastPing < DISCO_PING_INTERVAL) continue;
      sentAny = true;
      this.startPing(c.addr, now, 'discovery');
    }
    if (sentAny && sendCallMeMaybe && this.hasDerp) this.actions.sendCallMeMaybe();
  }

  private startPing(
    to: AddrPort | 'derp',
    now: number,
    purpose: PingPurpose,
    done?: (r: PingOutcome | undefined) => void,
  ): void {
    if (this.closed) return;
    // CLI pings do not count against DISCO_PING_INTERVAL: discovery follows them at once (endpoint.go).
    if (to !== 'derp' && purpose !== 'cli') {
      const c = this.candidates.get(addrKey(to));
      if (c) c.lastPing = now;
    }
    const txid = new Uint8Array(randomBytes(12));
    const key = Buffer.from(txid).toString('hex');
    const timer = this.clock.setTimeout(() => {
      this.sent.delete(key);
      done?.(undefined);
    }, PING_TIMEOUT);
    this.sent.set(key, { to, at: now, purpose, done, timer });
    this.actions.sendDiscoPing(to, txid);
  }
}

/** endpoint.go betterAddr: lower latency wins, with bonuses for loopback, private and IPv6 addresses. */
export function betterAddr(
  a: { addr: AddrPort; latency: number },
  b: { addr: AddrPort; latency: number },
): boolean {
  if (addrKey(a.addr) === addrKey(b.addr)) return false;
  let aPoints = 0;
  let bPoints = 0;
  if (a.latency > b.latency && a.latency > 0) bPoints = Math.floor(100 - (b.latency * 100) / a.latency);
  else if (b.latency > 0) aPoints = Math.floor(100 - (a.latency * 100) / b.latency);
  aPoints += addrBonus(a.addr.ip);
  bPoints += addrBonus(b.addr.ip);
  if (aPoints <= 1 && bPoints === 0) return false;
  return aPoints > bPoints;
}

function addrBonus(ip: string): number {
  const v6 = ip.includes(':');
  let p = v6 ? 10 : 0;
  if (ip === '::1' || ip.startsWith('127.')) p += 50;
  else if (ip.toLowerCase().startsWith('fe80:') || ip.startsWith('169.254.')) p += 30;
  else if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(ip) || /^f[cd]/i.test(ip)) p += 20;
  return p;
}
