/**
 * The UDP endpoints a node advertises to control and in CallMeMaybe: its interface
 * addresses on the magicsock port, plus what STUN servers of the DERP map see
 * (net/netcheck; magicsock determineEndpoints). Loopback is advertised only when there is
 * nothing else, as magicsock does.
 */
import { networkInterfaces } from 'node:os';
import type { DerpMap } from '../derp/derpmap.js';
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
