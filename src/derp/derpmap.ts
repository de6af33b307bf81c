/**
 * The DERP map (tailcfg/derpmap.go): regions of relay nodes, in the JSON shape control servers
 * and derpprobe use (Go field names), plus the URL and TLS settings a client derives for a node
 * (derphttp_client.go urlString, dialNode, tlsClient).
 */
import { isIP } from 'node:net';
import type { DerpTlsOptions } from './dial.js';
import { DerpError } from './errors.js';

export interface DerpNode {
  Name: string;
  RegionID: number;
  HostName: string;
  /** `sha256-raw:<hex>` pins the certificate; another value is the TLS name to verify. */
  CertName?: string;
  /** IPv4 to dial instead of resolving HostName; "none" disables IPv4. */
  IPv4?: string;
  IPv6?: string;
  /** 0 means 3478; -1 disables STUN. */
  STUNPort?: number;
  STUNOnly?: boolean;
  /** 0 means 443 (TLS) or 3340 (plain HTTP). */
  DERPPort?: number;
  InsecureForTests?: boolean;
  STUNTestIP?: string;
  CanPort80?: boolean;
}

export interface DerpRegion {
  RegionID: number;
  RegionCode: string;
  RegionName: string;
  Latitude?: number;
  Longitude?: number;
  /** Do not pick as home. */
  Avoid?: boolean;
  NoMeasureNoHome?: boolean;
  Nodes: DerpNode[];
}

export interface DerpMap {
  HomeParams?: { RegionScore?: Record<string, number> };
  /** Keyed by region ID (a JSON object key, so a string). */
  Regions: Record<string, DerpRegion>;
  omitDefaultRegions?: boolean;
}

function fail(why: string): never {
  throw new DerpError('BAD_CONFIG', `DERP map: ${why}`);
}

/**
 * Parses and checks DERP map JSON (a string or already-parsed value).
 *
 * @example
 * const map = parseDerpMap('{"Regions":{"900":{"RegionID":900,"RegionCode":"t","RegionName":"t",' +
 *   '"Nodes":[{"Name":"900a","RegionID":900,"HostName":"127.0.0.1","DERPPort":3340}]}}}');
 */
export function parseDerpMap(input: string | unknown): DerpMap {
  let v: unknown = input;
  if (typeof input === 'string') {
    try {
      v = JSON.parse(input);
    } catch (err) {
      throw new DerpError('BAD_CONFIG', 'DERP map: invalid JSON', { cause: err });
    }
  }
  if (typeof v !== 'object' || v === null) fail('not an object');
  const regions = (v as { Regions?: unknown }).Regions;
  if (typeof regions !== 'object' || regions === null) fail('no Regions object');
  for (const [id, r] of Object.entries(regions as Record<string, unknown>)) {
    const reg = r as Partial<DerpRegion>;
    if (typeof reg !== 'object' || reg === null) fail(`region ${id} is not an object`);
    if (reg.RegionID !== Number(id))
      fail(`region key ${id} differs from its RegionID ${String(reg.RegionID)}`);
    if (!Array.isArray(reg.Nodes)) fail(`region ${id} has no Nodes list`);
    for (const n of reg.Nodes) {
      if (typeof n?.HostName !== 'string' || n.HostName === '')
        fail(`a node of region ${id} has no HostName`);
      if (typeof n.Name !== 'string') fail(`a node of region ${id} has no Name`);
    }
  }
  return v as DerpMap;
}

/**
 * Region IDs in ascending order (tailcfg DERPMap.RegionIDs).
 *
 * @example
 * for (const id of regionIds(map)) console.log(map.Regions[id]!.RegionCode);
 */
export function regionIds(map: DerpMap): number[] {
  return Object.keys(map.Regions)
    .map(Number)
    .sort((a, b) => a - b);
}

/** How to reach one node: the URL, the address to connect to, and TLS verification. */
export interface NodeTarget {
  url: string;
  connectHost: string;
  tls: DerpTlsOptions;
}

/**
 * The dial target for `node`. Clients use TLS unless `useHttp` (Tailscale's
 * TS_DEBUG_USE_DERP_HTTP); an explicit IPv4 (else IPv6) is dialled instead of HostName.
 *
 * @example
 * nodeTarget(node, { useHttp: true }).url;   // http://127.0.0.1:3340/derp
 */
export function nodeTarget(node: DerpNode, opts: { useHttp?: boolean } = {}): NodeTarget {
  const http = opts.useHttp ?? false;
  const port = node.DERPPort || (http ? 3340 : 443);
  const literal = (ip: string | undefined, fam: 4 | 6) => (ip && isIP(ip) === fam ? ip : undefined);
  const connectHost = literal(node.IPv4, 4) ?? literal(node.IPv6, 6) ?? node.HostName;
  const h = node.HostName.includes(':') ? `[${node.HostName}]` : node.HostName;
  const tls: DerpTlsOptions = {};
  if (node.InsecureForTests) tls.insecure = true;
  if (node.CertName) tls.certName = node.CertName;
  return { url: `${http ? 'http' : 'https'}://${h}:${port}/derp`, connectHost, tls };
}

/**
 * The STUN address of a node, or undefined when it has none (STUNPort -1).
 *
 * @example
 * const st = stunTarget(node); if (st) await stunQuery(st.host, st.port);
 */
export function stunTarget(node: DerpNode): { host: string; port: number } | undefined {
  if (node.STUNPort === -1) return undefined;
  const host = node.IPv4 && isIP(node.IPv4) === 4 ? node.IPv4 : node.HostName;
  return { host, port: node.STUNPort || 3478 };
}
