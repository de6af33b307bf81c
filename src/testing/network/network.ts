/**
 * An in-memory UDP internet for tests: hosts with addresses, some behind NAT routers (nat.ts),
 * each host and router on a link of its own shape (shape.ts). Nodes bind {@link VirtualUdpSocket}s
 * here instead of node:dgram, so magicsock's real disco, STUN and path code runs across NATs with
 * no socket, no namespace and no root, on any OS.
 *
 * A datagram crosses the links on its path (its host's, its router's, the far router's, the far
 * host's), each deciding from its own generator seeded from the network's seed: dropped, too big,
 * blocked, held back for reordering, or delayed. Decisions are taken when the datagram is sent, in
 * send order, so the same seed and the same sends give the same verdicts and the same NAT ports;
 * {@link VirtualNetwork.log} records each one.
 */
import { mulberry32 } from '../../netstack/link.js';
import { Nat, type NatKind } from './nat.js';
import { checkShape, type LinkShape, TestNetworkError } from './shape.js';
import { VirtualUdpSocket } from './udp.js';

/** IPv4 and UDP headers: what a datagram adds on the wire, for the MTU check. */
const UDP_IPV4_OVERHEAD = 28;
/** A reordered datagram waits for the next one on its link at most this long. */
const HOLD_MAX_MS = 100;
/** Log entries kept; the oldest go first. */
const LOG_MAX = 100_000;

/** What became of a datagram. */
export type Verdict = 'delivered' | 'lost' | 'too-big' | 'blocked' | 'filtered' | 'no-route' | 'no-listener';

/** One datagram's fate, as {@link VirtualNetwork.log} keeps it. */
export interface DeliveryRecord {
  /** Its sequence number in the run. */
  n: number;
  /** Source and destination as sent (`ip:port`), and the source the receiver saw (after NAT). */
  from: string;
  to: string;
  seenFrom: string;
  bytes: number;
  verdict: Verdict;
  /** The link that decided a drop. */
  link?: string;
}

interface Link {
  name: string;
  shape: Required<LinkShape>;
  random: () => number;
  held: (() => void) | undefined;
  holdTimer: NodeJS.Timeout | undefined;
}

interface Host {
  name: string;
  ip: string;
  nat: { name: string; router: Nat; link: Link } | undefined;
  link: Link;
  sockets: Map<number, VirtualUdpSocket>;
}

/** Options of {@link VirtualNetwork.addHost}. */
export interface HostOptions {
  /** Its address (an IPv4 literal; a private one behind a NAT). */
  ip: string;
  /** The NAT router it sits behind (by name); none: it is on the internet itself. */
  behind?: string;
  link?: LinkShape;
}

/** Options of {@link VirtualNetwork.addNat}. */
export interface NatOptions {
  publicIp: string;
  /** Default `easy`. */
  kind?: NatKind;
  link?: LinkShape;
}

/**
 * The network. Build it, add routers and hosts, then bind sockets on the hosts.
 *
 * @example
 * const net = new VirtualNetwork({ seed: 7 });
 * net.addNat('home', { publicIp: '203.0.113.11', kind: 'easy', link: { loss: 0.02, delayMs: 10 } });
 * net.addHost('laptop', { ip: '192.168.1.10', behind: 'home' });
 * net.addHost('server', { ip: '203.0.113.1' });
 * const sock = net.bind('laptop', 41641);
 */
export class VirtualNetwork {
  readonly log: DeliveryRecord[] = [];
  private readonly hosts = new Map<string, Host>();
  private readonly byIp = new Map<string, Host>();
  private readonly nats = new Map<string, { router: Nat; link: Link; publicIp: string }>();
  private readonly seed: number;
  private links = 0;
  private sent = 0;
  private closed = false;

  constructor(opts: { seed?: number } = {}) {
    this.seed = opts.seed ?? 1;
    if (!Number.isInteger(this.seed)) throw new TestNetworkError(`seed ${this.seed} is not an integer`);
  }

  /** A NAT router with its public address and the link to the internet. */
  addNat(name: string, opts: NatOptions): void {
    if (this.nats.has(name)) throw new TestNetworkError(`NAT '${name}' exists already`);
    this.claim(opts.publicIp, `NAT '${name}'`);
    const link = this.link(`nat ${name}`, opts.link ?? {});
    const router = new Nat(opts.kind ?? 'easy', opts.publicIp, mulberry32(this.seed * 7919 + this.links));
    this.nats.set(name, { router, link, publicIp: opts.publicIp });
  }

  /** A host, on the internet or behind a NAT router added before. */
  addHost(name: string, opts: HostOptions): void {
    if (this.hosts.has(name)) throw new TestNetworkError(`host '${name}' exists already`);
    const nat = opts.behind === undefined ? undefined : this.nats.get(opts.behind);
    if (opts.behind !== undefined && !nat)
      throw new TestNetworkError(`host '${name}': no NAT '${opts.behind}'`);
    this.claim(opts.ip, `host '${name}'`);
    const host: Host = {
      name,
      ip: opts.ip,
      nat: nat && opts.behind ? { name: opts.behind, ...nat } : undefined,
      link: this.link(`host ${name}`, opts.link ?? {}),
      sockets: new Map(),
    };
    this.hosts.set(name, host);
    this.byIp.set(`${opts.behind ?? ''}/${opts.ip}`, host);
  }

  /** Reshapes a host's or a router's link from now on (`host NAME` or `nat NAME`), e.g. to block UDP. */
  setShape(link: string, shape: LinkShape): void {
    const l = [...this.hosts.values()].map((h) => h.link).concat([...this.nats.values()].map((n) => n.link));
    const found = l.find((x) => x.name === link);
    if (!found) throw new TestNetworkError(`no link '${link}'`);
    found.shape = checkShape(shape, link);
  }

  /** Binds a UDP socket on `host` (port 0: any free one). */
  bind(host: string, port = 0): VirtualUdpSocket {
    const h = this.hosts.get(host);
    if (!h) throw new TestNetworkError(`no host '${host}'`);
    let p = port;
    if (p === 0) for (p = 49152; h.sockets.has(p); p++);
    if (h.sockets.has(p)) throw new TestNetworkError(`host '${host}': port ${p} is in use`);
    const sock = new VirtualUdpSocket(
      h.ip,
      p,
      (to, toPort, data) => this.send(h, p, to, toPort, data),
      () => h.sockets.delete(p),
    );
    h.sockets.set(p, sock);
    return sock;
  }

  /** Stops every held datagram's timer; sockets stay as they are. */
  close(): void {
    this.closed = true;
    for (const h of this.hosts.values()) clearTimeout(h.link.holdTimer);
    for (const n of this.nats.values()) clearTimeout(n.link.holdTimer);
  }

  private claim(ip: string, what: string): void {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip))
      throw new TestNetworkError(`${what}: '${ip}' is not an IPv4 address`);
  }

  private link(name: string, shape: LinkShape): Link {
    const s = checkShape(shape, name);
    this.links++;
    return {
      name,
      shape: s,
      random: mulberry32(this.seed * 1_000_003 + this.links),
      held: undefined,
      holdTimer: undefined,
    };
  }

  /** Sends one datagram: routed (NATs translate), then the links on its path decide, in order. */
  private send(src: Host, srcPort: number, dstIp: string, dstPort: number, data: Uint8Array): void {
    const rec: DeliveryRecord = {
      n: ++this.sent,
      from: `${src.ip}:${srcPort}`,
      to: `${dstIp}:${dstPort}`,
      seenFrom: '',
      bytes: data.length,
      verdict: 'delivered',
    };
    this.record(rec);
    const r = this.closed
      ? { verdict: 'no-route' as const, link: undefined }
      : this.route(src, srcPort, dstIp, dstPort);
    if ('verdict' in r) {
      this.drop(rec, r.verdict, r.link);
      return;
    }
    rec.seenFrom = `${r.fromIp}:${r.fromPort}`;
    let delay = 0;
    for (const l of r.path) {
      const s = l.shape;
      const verdict = s.udpBlocked
        ? 'blocked'
        : data.length + UDP_IPV4_OVERHEAD > s.mtu
          ? 'too-big'
          : s.loss > 0 && l.random() < s.loss
            ? 'lost'
            : undefined;
      if (verdict) {
        this.drop(rec, verdict, l);
        return;
      }
      delay += s.delayMs + (s.jitterMs > 0 ? l.random() * s.jitterMs : 0);
    }
    const copy = data.slice();
    const deliver = () => {
      const sock = r.dst.sockets.get(r.toPort);
      if (sock) sock.receive(r.fromIp, r.fromPort, copy);
      else rec.verdict = 'no-listener';
    };
    this.schedule(delay, () => {
      // Reordering: the first link that wants it (and holds nothing yet) keeps this datagram until
      // the next one it carries has been delivered.
      const holder = r.path.find((l) => l.shape.reorder > 0 && !l.held && l.random() < l.shape.reorder);
      for (const l of r.path) if (l !== holder) this.release(l);
      if (!holder) {
        deliver();
        return;
      }
      holder.held = deliver;
      holder.holdTimer = setTimeout(() => this.release(holder), HOLD_MAX_MS);
    });
  }

  /** Where a datagram goes: the links it crosses and its addresses after NAT, or why it goes nowhere. */
  private route(
    src: Host,
    srcPort: number,
    dstIp: string,
    dstPort: number,
  ):
    | { dst: Host; path: Link[]; fromIp: string; fromPort: number; toPort: number }
    | { verdict: Verdict; link?: Link } {
    const path: Link[] = [src.link];
    // The same LAN (or both on the internet): straight across, no translation.
    const near = this.byIp.get(`${src.nat?.name ?? ''}/${dstIp}`);
    if (near)
      return { dst: near, path: [...path, near.link], fromIp: src.ip, fromPort: srcPort, toPort: dstPort };
    let fromIp = src.ip;
    let fromPort = srcPort;
    if (src.nat) {
      path.push(src.nat.link);
      fromIp = src.nat.router.publicIp;
      fromPort = src.nat.router.outbound(src.ip, srcPort, dstIp, dstPort).port;
    }
    const open = this.byIp.get(`/${dstIp}`);
    if (open) return { dst: open, path: [...path, open.link], fromIp, fromPort, toPort: dstPort };
    const nat = [...this.nats.entries()].find(([, n]) => n.publicIp === dstIp);
    if (!nat) return { verdict: 'no-route' };
    const [natName, router] = nat;
    path.push(router.link);
    const inside = router.router.inbound(fromIp, fromPort, dstPort);
    const dst = inside && this.byIp.get(`${natName}/${inside.ip}`);
    if (!inside || !dst) return { verdict: 'filtered', link: router.link };
    return { dst, path: [...path, dst.link], fromIp, fromPort, toPort: inside.port };
  }

  private release(l: Link): void {
    const held = l.held;
    if (!held) return;
    l.held = undefined;
    clearTimeout(l.holdTimer);
    queueMicrotask(held);
  }

  private schedule(delayMs: number, fn: () => void): void {
    if (delayMs > 0) setTimeout(fn, delayMs);
    else queueMicrotask(fn);
  }

  private drop(rec: DeliveryRecord, verdict: Verdict, link: Link | undefined): void {
    rec.verdict = verdict;
    if (link) rec.link = link.name;
  }

  private record(rec: DeliveryRecord): void {
    this.log.push(rec);
    if (this.log.length > LOG_MAX) this.log.splice(0, this.log.length - LOG_MAX);
  }
}
