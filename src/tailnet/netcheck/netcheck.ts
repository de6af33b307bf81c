/**
 * netcheck: what the network lets a node do, measured as Tailscale's net/netcheck measures it
 * for a first (full) report: STUN to every region of the DERP map from one socket per address
 * family, three tries per region 100 ms apart cycling through its nodes, a region's tries
 * stopping at its first answer (makeProbePlanInitial, runProbe); the first IPv4 mapping is our
 * public endpoint, and two IPv4 answers with different mappings mean the NAT maps by destination
 * (addNodeLatency); once three regions answered, the rest get twice the slowest latency; STUN
 * gives up after 3 s. With no UDP answer at all, HTTPS `GET /derp/latency-check` measures each
 * region over TCP, over TLS as tailscale does. Nothing here uses the node's own socket: a
 * netcheck cannot disturb the data path.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { DerpMap, DerpNode } from '../../derp/derpmap.js';
import { choosePreferredRegion, httpLatency } from '../../derp/latency.js';
import { isStun, parseStunResponse, stunRequest } from '../../derp/stun.js';
import { UdpEndpoint } from '../../wireguard/udp-bind.js';
import type { NetcheckReport } from './report.js';

export type { NetcheckReport };

/** netcheck.go stunProbeTimeout, defaultInitialRetransmitTime, ReportTimeout, enoughRegions. */
const STUN_TIMEOUT_MS = 3000;
const RETRANSMIT_MS = 100;
const REPORT_TIMEOUT_MS = 5000;
const ENOUGH_REGIONS = 3;
const TRIES = 3;

/** Options for {@link runNetcheck}. */
export interface NetcheckOptions {
  /** The current home region, for tailscale's hysteresis in picking the preferred one. */
  currentHome?: number;
  /** Whether the host has usable IPv4 / IPv6 (default: from its interfaces, as netmon decides). */
  haveV4?: boolean;
  haveV6?: boolean;
}

type Family = 4 | 6;

interface Probe {
  region: number;
  node: DerpNode;
  family: Family;
  delayMs: number;
}

/** Whether the host has a non-loopback address of each family (IPv6: not link-local either). */
function interfaceFamilies(): { v4: boolean; v6: boolean } {
  let v4 = false;
  let v6 = false;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') v4 = true;
      else if (!a.address.toLowerCase().startsWith('fe80:')) v6 = true;
    }
  }
  return { v4, v6 };
}

/** The address to STUN a node at over one family (nodeAddrPort), or undefined when it has none. */
function stunAddress(node: DerpNode, family: Family): string | undefined {
  if (node.STUNPort === -1) return undefined;
  const explicit = family === 4 ? node.IPv4 : node.IPv6;
  if (explicit === 'none') return undefined;
  if (explicit) return explicit;
  const isLiteral = family === 4 ? /^\d+\.\d+\.\d+\.\d+$/.test(node.HostName) : node.HostName.includes(':');
  return isLiteral ? node.HostName : undefined;
}

/** makeProbePlanInitial: three tries per region and family, cycling through its nodes. */
function probePlan(map: DerpMap, v4: boolean, v6: boolean): Map<string, Probe[]> {
  const plan = new Map<string, Probe[]>();
  for (const reg of Object.values(map.Regions)) {
    if (reg.NoMeasureNoHome || reg.Nodes.length === 0) continue;
    for (const family of [4, 6] as const) {
      if (family === 4 ? !v4 : !v6) continue;
      const set: Probe[] = [];
      for (let t = 0; t < TRIES; t++) {
        const node = reg.Nodes[t % reg.Nodes.length]!;
        if (stunAddress(node, family))
          set.push({ region: reg.RegionID, node, family, delayMs: t * RETRANSMIT_MS });
      }
      if (set.length > 0) plan.set(`region-${reg.RegionID}-v${family}`, set);
    }
  }
  return plan;
}

const ns = (ms: number) => Math.round(ms * 1e6);
/** `ip:port` / `[ip]:port` with the address in its canonical text, as Go's netip.AddrPort prints it. */
const endpoint = (ip: string, port: number) => UdpEndpoint.from(ip, port).toString();

/** Binds a UDP socket of the family, or undefined when the host cannot. */
function bind(family: Family, host?: string): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 });
    s.once('error', () => {
      s.close();
      resolve(undefined);
    });
    s.bind({ port: 0, address: host ?? (family === 4 ? '0.0.0.0' : '::') }, () => {
      s.removeAllListeners('error');
      s.on('error', () => {}); // ICMP unreachables and the like: a probe that fails just goes unanswered
      resolve(s);
    });
  });
}

/**
 * Runs a netcheck against `map`'s regions and resolves with the report (within about 5 s).
 *
 * @example
 * const report = await runNetcheck(derpMap);
 * console.log(report.UDP, report.GlobalV4, report.MappingVariesByDestIP, report.PreferredDERP);
 */
export async function runNetcheck(map: DerpMap, opts: NetcheckOptions = {}): Promise<NetcheckReport> {
  const start = performance.now();
  const ifs = interfaceFamilies();
  const r: NetcheckReport = {
    Now: new Date().toISOString(),
    UDP: false,
    IPv6: false,
    IPv4: false,
    IPv6CanSend: false,
    IPv4CanSend: false,
    OSHasIPv6: false,
    ICMPv4: false,
    MappingVariesByDestIP: null,
    UPnP: null,
    PMP: null,
    PCP: null,
    PreferredDERP: 0,
    RegionLatency: {},
    RegionV4Latency: {},
    RegionV6Latency: {},
    GlobalV4Counters: null,
    GlobalV6Counters: null,
    GlobalV4: '',
    GlobalV6: '',
    CaptivePortal: null,
  };
  const loopback6 = await bind(6, '::1');
  r.OSHasIPv6 = loopback6 !== undefined;
  loopback6?.close();
  const sockets = { 4: await bind(4), 6: r.OSHasIPv6 ? await bind(6) : undefined };
  const plan = probePlan(map, opts.haveV4 ?? ifs.v4, opts.haveV6 ?? ifs.v6);
  const timers: NodeJS.Timeout[] = [];
  const inflight = new Map<string, (ip: string, port: number) => void>();
  let gotEP4 = '';
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let pendingSets = plan.size;
  const min = (m: Record<string, number>, id: number, d: number) => {
    const k = String(id);
    if (m[k] === undefined || d < m[k]!) m[k] = d;
  };

  /** rs.addNodeLatency. */
  const answered = (p: Probe, ip: string, port: number, rttMs: number) => {
    const d = ns(rttMs);
    r.UDP = true;
    const before = Object.keys(r.RegionLatency).length;
    min(r.RegionLatency, p.region, d);
    // Enough regions heard: the others get twice the slowest latency so far, then the report ends.
    if (before < ENOUGH_REGIONS && Object.keys(r.RegionLatency).length === ENOUGH_REGIONS) {
      timers.push(setTimeout(finish, (2 * Math.max(...Object.values(r.RegionLatency))) / 1e6));
    }
    const ep = endpoint(ip, port);
    if (ip.includes(':')) {
      min(r.RegionV6Latency, p.region, d);
      r.IPv6 = true;
      r.GlobalV6 = ep;
      r.GlobalV6Counters = { ...r.GlobalV6Counters, [ep]: (r.GlobalV6Counters?.[ep] ?? 0) + 1 };
      return;
    }
    min(r.RegionV4Latency, p.region, d);
    r.IPv4 = true;
    r.GlobalV4Counters = { ...r.GlobalV4Counters, [ep]: (r.GlobalV4Counters?.[ep] ?? 0) + 1 };
    if (!gotEP4) {
      gotEP4 = ep;
      r.GlobalV4 = ep;
    } else if (gotEP4 !== ep) r.MappingVariesByDestIP = true;
    else if (r.MappingVariesByDestIP === null) r.MappingVariesByDestIP = false;
  };

  for (const family of [4, 6] as const) {
    sockets[family]?.on('message', (msg) => {
      if (!isStun(msg)) return;
      let res: ReturnType<typeof parseStunResponse>;
      try {
        res = parseStunResponse(msg);
      } catch {
        return; // not a Binding Success for us: netcheck.go ignores it the same way
      }
      inflight.get(Buffer.from(res.txId).toString('hex'))?.(res.ip, res.port);
    });
  }

  for (const set of plan.values()) {
    let closed = false;
    const closeSet = () => {
      if (closed) return;
      closed = true;
      if (--pendingSets === 0) finish();
    };
    for (const p of set) {
      timers.push(
        setTimeout(() => {
          // probeWouldHelp: a region that answered, with nothing left to learn from it.
          if (closed) return;
          const sock = sockets[p.family];
          const addr = stunAddress(p.node, p.family);
          if (!sock || !addr) return;
          const txid = new Uint8Array(randomBytes(12));
          const key = Buffer.from(txid).toString('hex');
          const sent = performance.now();
          inflight.set(key, (ip, port) => {
            inflight.delete(key);
            answered(p, ip, port, performance.now() - sent);
            closeSet();
          });
          sock.send(stunRequest(txid), p.node.STUNPort || 3478, addr, (err) => {
            if (err) return;
            if (p.family === 4) r.IPv4CanSend = true;
            else r.IPv6CanSend = true;
          });
        }, p.delayMs),
      );
    }
  }
  if (plan.size === 0) finish();
  timers.push(setTimeout(finish, STUN_TIMEOUT_MS));
  await done;
  for (const t of timers) clearTimeout(t);
  sockets[4]?.close();
  sockets[6]?.close();

  if (!r.UDP) await httpsLatency(map, r, REPORT_TIMEOUT_MS - (performance.now() - start));
  const latency = new Map(Object.entries(r.RegionLatency).map(([k, v]) => [Number(k), v / 1e6]));
  r.PreferredDERP = choosePreferredRegion(latency, opts.currentHome, map) ?? 0;
  return r;
}

/** UDP is blocked: each region's first DERP node over HTTPS (netcheck.go measureHTTPSLatency). */
async function httpsLatency(map: DerpMap, r: NetcheckReport, budgetMs: number): Promise<void> {
  const regions = Object.values(map.Regions).filter((reg) => !reg.Avoid && !reg.NoMeasureNoHome);
  await Promise.all(
    regions.map(async (reg) => {
      const node = reg.Nodes.find((n) => !n.STUNOnly);
      if (!node || budgetMs <= 0) return;
      try {
        r.RegionLatency[String(reg.RegionID)] = ns(
          await httpLatency(node, { timeoutMs: budgetMs, useHttp: false }),
        );
        if (node.IPv4 !== 'none') r.IPv4 = true;
      } catch {
        // As tailscale: a region that did not answer over HTTPS has no latency (logged there at [v1] only).
      }
    }),
  );
}
