/**
 * The UDP endpoints a node advertises to control and in CallMeMaybe: its interface
 * addresses on the magicsock port, plus what STUN servers of the DERP map see
 * (net/netcheck; magicsock determineEndpoints). Loopback is advertised only when there is
 * nothing else, as magicsock does. {@link EndpointDiscovery} keeps them current: it
 * re-STUNs while the node is active (a NAT mapping can change, or UDP can come back after
 * being blocked) and at once when the host's addresses change (roaming).
 */
import { networkInterfaces } from 'node:os';
import type { DerpMap } from '../derp/derpmap.js';
import { type Logger, silentLogger } from '../wireguard/logger.js';
import type { AddrPort } from './disco.js';

/** `ip:port` / `[ip]:port` of every non-internal interface address (link-local IPv6 excluded). */
export function interfaceEndpoints(port: number): string[] {
  const out: string[] = [];
  const loopback: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:')) continue;
      const text = a.family === 'IPv6' ? `[${a.address}]:${port}` : `${a.address}:${port}`;
      (a.internal ? loopback : out).push(text);
    }
  }
  return out.length > 0 ? out : loopback;
}

/** `ip:0` / `[ip]:0` with the node's UDP port in place of 0 (the port is only known once bound). */
export function withPort(endpoint: string, port: number): string {
  return endpoint.endsWith(':0') ? `${endpoint.slice(0, -1)}${port}` : endpoint;
}

/** STUN targets of a DERP map: every node with STUN enabled, IPv4 preferred. */
export function stunTargets(map: DerpMap): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (const region of Object.values(map.Regions)) {
    for (const n of region.Nodes) {
      if (n.STUNPort === -1) continue;
      const host = n.IPv4 && n.IPv4 !== 'none' ? n.IPv4 : n.HostName;
      out.push({ host, port: n.STUNPort || 3478 });
    }
  }
  return out;
}

/** Merges discovered endpoints, dropping duplicates, in a stable order. */
export function mergeEndpoints(
  local: readonly string[],
  stun: ReadonlyArray<AddrPort | undefined>,
): string[] {
  const seen = new Set(local);
  for (const s of stun) {
    if (!s) continue;
    seen.add(s.ip.includes(':') ? `[${s.ip}]:${s.port}` : `${s.ip}:${s.port}`);
  }
  return [...seen];
}

/**
 * magicsock.go updateEndpoints: periodic re-STUN at a random 20–26 s, just under the 30 s
 * that many NATs keep an idle UDP mapping.
 */
export const RESTUN_MIN_MS = 20_000;
export const RESTUN_MAX_MS = 26_000;
/** magicsock.go sessionActiveTimeout: no periodic re-STUN after this long without sending. */
export const ACTIVE_TIMEOUT_MS = 45_000;
/**
 * How often the host's addresses are compared. tailscaled hears of a change from netlink
 * (net/netmon); Node.js has no such event, so the interfaces are polled.
 */
export const LINK_POLL_MS = 1_000;
/** At most this many STUN servers are asked per round. */
const STUN_SERVERS = 3;

export interface EndpointDiscoveryOptions {
  /** The magicsock UDP port. */
  port: number;
  /** Our address as the STUN server at host:port sees it, or undefined when it does not answer. */
  stun(host: string, port: number): Promise<AddrPort | undefined>;
  /** The DERP map whose STUN servers are asked (none yet: interface endpoints only). */
  derpMap(): DerpMap | undefined;
  /** A count that grows whenever the node sends data: periodic re-STUN only runs while it grows. */
  sends(): number;
  /** Called with the new list whenever it changes. */
  onEndpoints(endpoints: string[]): void;
  /** Called when the host's addresses changed, before the re-STUN that follows. */
  onLinkChange(): void;
  /** The host's endpoints on `port` (default: {@link interfaceEndpoints}). */
  interfaces?: (port: number) => string[];
  logger?: Logger;
}

/**
 * Keeps a node's advertised endpoints current (magicsock ReSTUN, wgengine linkChange).
 *
 * @example
 * const d = new EndpointDiscovery({ port, stun, derpMap, sends, onEndpoints, onLinkChange });
 * await d.update('initial');
 * d.close();
 */
export class EndpointDiscovery {
  private current: string[] = [];
  private links: string;
  private running: Promise<void> | undefined;
  private again: string | undefined;
  private lastSends = 0;
  private lastActive = Number.NEGATIVE_INFINITY;
  private restunTimer: NodeJS.Timeout | undefined;
  private readonly linkTimer: NodeJS.Timeout;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: EndpointDiscoveryOptions) {
    this.log = opts.logger ?? silentLogger;
    this.current = this.interfaces();
    this.links = this.current.join(' ');
    this.linkTimer = setInterval(() => this.checkLinks(), LINK_POLL_MS);
    this.linkTimer.unref();
    this.schedule();
  }

  /** The endpoints last found. */
  get endpoints(): readonly string[] {
    return this.current;
  }

  /**
   * Finds the endpoints now (interfaces, then STUN) and reports them if they changed. A call
   * while one runs makes one more run after it (magicsock ReSTUN's wantEndpointsUpdate).
   */
  update(why: string): Promise<void> {
    if (this.running) {
      this.again = why;
      return this.running;
    }
    this.running = this.discover(why).finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next !== undefined && !this.closed) void this.update(next);
    });
    return this.running;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.linkTimer);
    clearTimeout(this.restunTimer);
  }

  private interfaces(): string[] {
    return (this.opts.interfaces ?? interfaceEndpoints)(this.opts.port);
  }

  private async discover(why: string): Promise<void> {
    const local = this.interfaces();
    const map = this.opts.derpMap();
    const targets = map ? stunTargets(map).slice(0, STUN_SERVERS) : [];
    const seen = await Promise.all(targets.map((t) => this.opts.stun(t.host, t.port)));
    if (this.closed) return;
    const all = mergeEndpoints(local, seen);
    if (all.join(' ') === this.current.join(' ')) return;
    this.log.info(`endpoints (${why}): ${all.join(' ')}`);
    this.current = all;
    this.opts.onEndpoints(all);
  }

  /** The next periodic re-STUN, at a random 20–26 s; it runs only while the node sends. */
  private schedule(): void {
    if (this.closed) return;
    const delay = RESTUN_MIN_MS + Math.random() * (RESTUN_MAX_MS - RESTUN_MIN_MS);
    this.restunTimer = setTimeout(() => {
      if (this.active()) void this.update('periodic');
      this.schedule();
    }, delay);
    this.restunTimer.unref();
  }

  private active(): boolean {
    const sends = this.opts.sends();
    const now = Date.now();
    if (sends !== this.lastSends) {
      this.lastSends = sends;
      this.lastActive = now;
    }
    return now - this.lastActive <= ACTIVE_TIMEOUT_MS;
  }

  private checkLinks(): void {
    const links = this.interfaces().join(' ');
    if (links === this.links) return;
    this.log.info(`link change: ${this.links || '(none)'} -> ${links || '(none)'}`);
    this.links = links;
    this.opts.onLinkChange();
    void this.update('link-change');
  }
}
