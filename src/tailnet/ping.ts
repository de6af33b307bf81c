/**
 * `tailscale ping` and its kinds (tailcfg.PingType; wgengine/userspace.go Ping): a disco ping
 * (magicsock: which path answers, direct or DERP), a TSMP ping (through WireGuard to the peer's
 * node, not its host stack) and an ICMP echo (through both nodes' IP stacks).
 */
import type { NetNode } from '../control/netmap.js';
import { derpCodeIn, type NodeInternals } from './internals.js';
import { keyBytes, unprefix } from './status.js';

/** What {@link pingPeer} sends: tailcfg.PingDisco, PingTSMP, PingICMP. */
export type PingType = 'disco' | 'tsmp' | 'icmp';

/** One pong, as `tailscale ping` prints it. */
export interface PingReply {
  /** The peer's short name and the address pinged. */
  node: string;
  ip: string;
  /** `DERP(code)`, `ip:port` of the direct path (disco), or `TSMP` / `ICMP`. */
  via: string;
  latencyMs: number;
  type: PingType;
  /** The peer's peerapi port from a TSMP pong (0: none). */
  peerAPIPort?: number;
  /** A disco pong's direct `ip:port`, or the DERP region it came through. */
  endpoint?: string;
  derpRegion?: number;
}

/** Thrown when no pong comes back in time. */
export class PingTimeoutError extends Error {
  override readonly name = 'PingTimeoutError';
  constructor(
    readonly host: string,
    readonly type: PingType,
    timeoutMs: number,
  ) {
    super(`ping ${host} (${type}): no reply within ${timeoutMs / 1000} s`);
  }
}

const PING_TIMEOUT_MS = 5000;

/**
 * Pings `peer` (asked for as `host`) once. `ip` is the address to ping for TSMP and ICMP, the
 * peer's first one by default. Rejects with {@link PingTimeoutError} when no pong comes.
 *
 * @example
 * const r = await pingPeer(node, tn.peerFor('db'), 'db', 'tsmp');   // { via: 'TSMP', latencyMs: 3.1, … }
 */
export async function pingPeer(
  node: NodeInternals,
  peer: NetNode,
  host: string,
  type: PingType = 'disco',
  ip = unprefix(peer.addresses[0] ?? ''),
): Promise<PingReply> {
  const { magicsock, tsmp, stack } = node;
  if (!magicsock || !tsmp || !stack) throw new Error('tailnet node is not up: call up() first');
  const base = { node: peer.shortName, ip, type };
  switch (type) {
    case 'disco': {
      const r = await magicsock.ping(keyBytes(peer.nodeKey));
      if (!r) throw new PingTimeoutError(host, type, PING_TIMEOUT_MS);
      if (r.via === 'derp') {
        const region = peer.homeDERP || magicsock.homeRegion;
        return {
          ...base,
          via: `DERP(${derpCodeIn(node.netmap, region)})`,
          latencyMs: r.latencyMs,
          derpRegion: region,
        };
      }
      const endpoint = `${r.via.ip.includes(':') ? `[${r.via.ip}]` : r.via.ip}:${r.via.port}`;
      return { ...base, via: endpoint, latencyMs: r.latencyMs, endpoint };
    }
    case 'tsmp': {
      const r = await tsmp.ping(ip, PING_TIMEOUT_MS);
      if (!r) throw new PingTimeoutError(host, type, PING_TIMEOUT_MS);
      return { ...base, via: 'TSMP', latencyMs: r.latencyMs, peerAPIPort: r.peerAPIPort };
    }
    case 'icmp': {
      const r = await stack.ping(ip, { timeoutMs: PING_TIMEOUT_MS }).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'TIMEOUT')
          throw new PingTimeoutError(host, type, PING_TIMEOUT_MS);
        throw err;
      });
      return { ...base, via: 'ICMP', latencyMs: r.rttMs };
    }
  }
}
