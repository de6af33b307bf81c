/**
 * A subnet router (and exit node) in userspace, as tailscaled's netstack is one with
 * `--tun=userspace-networking` (wgengine/netstack/netstack.go): what peers send to a routed
 * address leaves through this host's own sockets, and what comes back returns through the
 * tunnel in that address's name.
 * - TCP (acceptTCP/forwardTCP): the host dials the destination first; only once that connection
 *   is up does the client's handshake complete, else the client gets a RST. Then the two are
 *   spliced, half-closes passed on. In-flight dials are bounded, in total and per client
 *   (maxInFlightConnectionAttempts: 8192 on Linux, two thirds of it per client).
 * - UDP (acceptUDP/forwardUDP): one host socket per flow, bound to the client's source port
 *   when free, connected to the destination so that only its answers come back; a flow idle
 *   for 2 minutes (30 s for DNS) is closed.
 * - ICMP echo (injectInbound/userPing): the host runs `ping -c 1 -W 3`, at most 20 at once,
 *   and the request is answered only if that ping was.
 * Nothing is forwarded to our own tailnet addresses or to loopback: RoutedNets decides what
 * counts as routed, and our own addresses are the stack's, never a forwarder's.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { formatIp } from '../../netstack/address.js';
import { splice } from '../../netstack/splice.js';
import type { Stack } from '../../netstack/stack.js';
import type { TcpEndpoint, TcpForwardRequest } from '../../netstack/tcp/endpoint.js';
import { TcpSocket } from '../../netstack/tcp/socket.js';
import type { ForwardedDatagram, UdpEndpoint } from '../../netstack/udp.js';
import type { Logger } from '../../wireguard/logger.js';
import type { RoutedNets } from './local-nets.js';

const MAX_IN_FLIGHT = 8192;
const MAX_IN_FLIGHT_PER_CLIENT = Math.floor((MAX_IN_FLIGHT * 2) / 3);
const UDP_IDLE_MS = 120_000;
const DNS_IDLE_MS = 30_000;
const MAX_PINGS = 20;
/** Datagrams held for a flow whose host socket is still binding. */
const FLOW_QUEUE = 64;

/** Options of {@link SubnetRouter}. */
export interface SubnetRouterOptions {
  stack: Stack;
  tcp: TcpEndpoint;
  udp: UdpEndpoint;
  nets: RoutedNets;
  logger: Logger;
  /** How long the host may take to connect to a destination before the client gets a RST (default 30 s). */
  dialTimeoutMs?: number;
  /** The ping command (default `ping`, iputils' or busybox's). */
  ping?: string;
}

/** What the router has done, for status and tests. */
export interface RouterStats {
  tcpForwarded: number;
  tcpRefused: number;
  tcpDropped: number;
  udpFlows: number;
  udpDatagrams: number;
  pingsAnswered: number;
  pingsUnanswered: number;
}

interface UdpFlow {
  /** Once bound; datagrams wait in `queue` until then. */
  sock: dgram.Socket | undefined;
  queue: Uint8Array[];
  timer: NodeJS.Timeout;
}

/** A UDP socket bound to `port`, or to any port when that one is taken. */
function bindUdp(type: 'udp4' | 'udp6', port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(type);
    sock.once('error', (err: NodeJS.ErrnoException) => {
      sock.close();
      if (err.code === 'EADDRINUSE' && port !== 0) resolve(bindUdp(type, 0));
      else reject(err);
    });
    sock.bind(port, () => {
      sock.removeAllListeners('error');
      resolve(sock);
    });
  });
}

/** Forwards a stack's routed traffic to the host's sockets; {@link close} stops it and closes them. */
export class SubnetRouter {
  readonly stats: RouterStats = {
    tcpForwarded: 0,
    tcpRefused: 0,
    tcpDropped: 0,
    udpFlows: 0,
    udpDatagrams: 0,
    pingsAnswered: 0,
    pingsUnanswered: 0,
  };
  private readonly inFlight = new Map<string, number>();
  private inFlightTotal = 0;
  private readonly sockets = new Set<{ destroy(): void }>();
  private readonly flows = new Map<string, UdpFlow>();
  private pings = 0;
  private closed = false;

  constructor(private readonly o: SubnetRouterOptions) {
    o.stack.setRouted({
      contains: (buf, off, len) => o.nets.contains(buf, off, len),
      echo: (dst, reply) => this.echo(dst, reply),
    });
    o.tcp.setForwarder((req) => this.forwardTcp(req));
    o.udp.setForwarder((d) => this.forwardUdp(d));
  }

  /** Stops forwarding and closes every host socket it opened. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.stack.setRouted(undefined);
    this.o.tcp.setForwarder(undefined);
    this.o.udp.setForwarder(undefined);
    for (const s of this.sockets) s.destroy();
    for (const f of this.flows.values()) this.endFlow(f);
    this.flows.clear();
  }

  private forwardTcp(req: TcpForwardRequest): void {
    const client = req.remote;
    const mine = this.inFlight.get(client) ?? 0;
    if (this.closed || this.inFlightTotal >= MAX_IN_FLIGHT || mine >= MAX_IN_FLIGHT_PER_CLIENT) {
      this.stats.tcpDropped++;
      req.reject();
      return;
    }
    this.inFlight.set(client, mine + 1);
    this.inFlightTotal++;
    let done = false;
    const settle = () => {
      if (done) return false;
      done = true;
      this.inFlightTotal--;
      const n = (this.inFlight.get(client) ?? 1) - 1;
      if (n > 0) this.inFlight.set(client, n);
      else this.inFlight.delete(client);
      return true;
    };
    const where = `${req.local}:${req.localPort}`;
    const host = net.connect({ host: req.local, port: req.localPort, allowHalfOpen: true });
    this.sockets.add(host);
    host.once('close', () => this.sockets.delete(host));
    host.setTimeout(this.o.dialTimeoutMs ?? 30_000, () => host.destroy(new Error('connect timed out')));
    host.once('error', (err: NodeJS.ErrnoException) => {
      if (!settle()) return;
      this.stats.tcpRefused++;
      this.o.logger.debug(`router: ${client} → ${where}: ${err.code ?? err.message}`);
      req.reject();
    });
    host.once('connect', () => {
      if (!settle()) return;
      host.setTimeout(0);
      req.accept(
        (c) => {
          this.stats.tcpForwarded++;
          const tunnel = TcpSocket.fromConnection(c, { allowHalfOpen: true });
          splice(tunnel, host);
        },
        () => host.destroy(),
      );
    });
  }

  private forwardUdp(d: ForwardedDatagram): void {
    if (this.closed) return;
    const dst = formatIp(d.dst);
    const key = `${formatIp(d.src)}:${d.srcPort}>${dst}:${d.dstPort}`;
    const flow = this.flows.get(key) ?? this.openFlow(key, d, dst);
    this.stats.udpDatagrams++;
    this.touch(flow);
    if (!flow.sock) {
      if (flow.queue.length < FLOW_QUEUE) flow.queue.push(d.data);
      return;
    }
    flow.sock.send(d.data, (err) => {
      if (err) this.o.logger.debug(`router: udp ${key}: ${err.message}`);
    });
  }

  private openFlow(key: string, d: ForwardedDatagram, dst: string): UdpFlow {
    const idleMs = d.dstPort === 53 ? DNS_IDLE_MS : UDP_IDLE_MS;
    const flow: UdpFlow = { sock: undefined, queue: [], timer: setTimeout(() => this.expire(key), idleMs) };
    flow.timer.unref();
    this.flows.set(key, flow);
    this.stats.udpFlows++;
    const { src, srcPort, dst: from, dstPort } = d;
    // Keep the client's source port when the host has it free (forwardUDP), else any.
    bindUdp(d.dst.length === 4 ? 'udp4' : 'udp6', srcPort).then(
      (sock) => {
        if (this.flows.get(key) !== flow) {
          sock.close();
          return;
        }
        flow.sock = sock;
        sock.on('error', (err) => {
          this.o.logger.debug(`router: udp ${key}: ${err.message}`);
          this.expire(key);
        });
        // Connected: only the destination's answers come back, each in its name.
        sock.on('message', (msg) => {
          this.touch(flow);
          this.o.udp.sendDatagram(from, dstPort, src, srcPort, msg);
        });
        sock.connect(dstPort, dst, () => {
          for (const q of flow.queue.splice(0)) sock.send(q);
        });
      },
      (err: Error) => {
        this.o.logger.debug(`router: udp ${key}: ${err.message}`);
        this.expire(key);
      },
    );
    return flow;
  }

  private touch(flow: UdpFlow): void {
    flow.timer.refresh();
  }

  private expire(key: string): void {
    const flow = this.flows.get(key);
    if (!flow) return;
    this.flows.delete(key);
    this.endFlow(flow);
  }

  private endFlow(flow: UdpFlow): void {
    clearTimeout(flow.timer);
    const sock = flow.sock;
    flow.sock = undefined;
    sock?.removeAllListeners('message');
    try {
      sock?.close();
    } catch (err) {
      // Already closed (an error closed it first): nothing else to release.
      if ((err as NodeJS.ErrnoException).code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw err;
    }
  }

  private echo(dst: string, reply: () => void): void {
    if (this.closed || this.pings >= MAX_PINGS) return;
    this.pings++;
    const t0 = performance.now();
    const child = spawn(this.o.ping ?? 'ping', ['-c', '1', '-W', '3', dst], { stdio: 'ignore' });
    const finish = (ok: boolean, why: string) => {
      this.pings--;
      if (ok && !this.closed) {
        this.stats.pingsAnswered++;
        reply();
        return;
      }
      this.stats.pingsUnanswered++;
      // A quick failure is the ping command's, not the host's silence (userPing logs those).
      if (performance.now() - t0 < 500) this.o.logger.debug(`router: ping ${dst}: ${why}`);
    };
    child.once('error', (err) => finish(false, err.message));
    child.once('exit', (code) => finish(code === 0, `exit ${code}`));
  }
}
