/**
 * The network map: an immutable snapshot built from the map stream, and the pure function
 * that folds one MapResponse into the next snapshot plus a list of what changed. Delta
 * semantics follow controlclient/map.go (updatePeersStateFromResponse and
 * updateStateFromResponse): a non-empty Peers replaces the whole list; otherwise
 * PeersRemoved, PeersChanged, PeerSeenChange, OnlineChange and PeersChangedPatch apply in that
 * order; a DERPMap without Regions keeps the old regions; PacketFilters are named chunks where
 * "*": null clears all; a null or absent field means "unchanged".
 */
import { ProtocolError } from './errors.js';
import {
  DERP_MAGIC_IP,
  type DERPMap,
  type DNSConfig,
  type FilterRule,
  type Hostinfo,
  type MapResponse,
  type Node,
  type PeerChange,
  type UserProfile,
} from './tailcfg.js';

/** One node (self or peer) as the netmap presents it. */
export interface NetNode {
  readonly id: number;
  readonly stableId: string;
  /** MagicDNS FQDN with the trailing dot, e.g. `host.tailnet.test.`; may be empty. */
  readonly name: string;
  /** The first label of `name`, or the Hostinfo hostname when the name is empty. */
  readonly shortName: string;
  readonly nodeKey: string;
  readonly machineKey: string | undefined;
  readonly discoKey: string | undefined;
  readonly addresses: readonly string[];
  readonly allowedIPs: readonly string[];
  readonly endpoints: readonly string[];
  /** Home DERP region, 0 when unknown. */
  readonly homeDERP: number;
  readonly online: boolean | undefined;
  readonly lastSeen: string | undefined;
  /** RFC 3339, undefined when the key does not expire. */
  readonly keyExpiry: string | undefined;
  readonly expired: boolean;
  readonly tags: readonly string[];
  readonly user: number;
  readonly hostinfo: Readonly<Hostinfo> | undefined;
  /** The node as the server sent it (after patches), unknown fields included. */
  readonly raw: Readonly<Node>;
}

/** An immutable snapshot of everything the map stream has told us. */
export interface NetMap {
  readonly self: NetNode;
  /** Peers by node ID. */
  readonly peers: ReadonlyMap<number, NetNode>;
  readonly derpMap: Readonly<DERPMap> | undefined;
  /** The concatenation of the named chunks, in key order. */
  readonly packetFilter: readonly FilterRule[];
  readonly packetFilterChunks: ReadonlyMap<string, readonly FilterRule[]>;
  readonly dns: Readonly<DNSConfig> | undefined;
  /**
   * MapResponse.Domain as sent. Headscale v0.29.2 puts its server_url host here (types/config.go
   * Domain()), not the MagicDNS base domain: use `magicDNSSuffix` for names.
   */
  readonly domain: string;
  /** Our name without its first label (netmap.MagicDNSSuffix in Go), e.g. `tailnet.test`. */
  readonly magicDNSSuffix: string;
  readonly userProfiles: ReadonlyMap<number, Readonly<UserProfile>>;
  readonly controlTime: string | undefined;
  /** How many non-keepalive messages built this snapshot. */
  readonly seq: number;
}

/** One thing that changed between two snapshots. */
export type NetMapChange =
  | { kind: 'full' }
  | { kind: 'self' }
  | { kind: 'peer-added'; id: number; name: string }
  | { kind: 'peer-removed'; id: number; name: string }
  | { kind: 'peer-changed'; id: number; name: string; fields: readonly string[] }
  | { kind: 'derp-map' }
  | { kind: 'packet-filter' }
  | { kind: 'dns' }
  | { kind: 'domain' };

/** Parses the home region from HomeDERP or the legacy "127.3.3.40:N" DERP field (map.go upgradeNode). */
function homeRegion(n: Node): number {
  if (typeof n.HomeDERP === 'number' && n.HomeDERP !== 0) return n.HomeDERP;
  if (typeof n.DERP === 'string') {
    const i = n.DERP.lastIndexOf(':');
    if (i > 0 && n.DERP.slice(0, i) === DERP_MAGIC_IP) {
      const port = Number(n.DERP.slice(i + 1));
      if (Number.isInteger(port)) return port;
    }
  }
  return 0;
}

/** A Go time that is zero or absent means "never". */
function goTime(t: string | null | undefined): string | undefined {
  if (t === undefined || t === null || t === '' || t.startsWith('0001-01-01')) return undefined;
  return t;
}

/** Builds the frozen view of a tailcfg.Node. */
export function toNetNode(n: Node): NetNode {
  const raw = Object.freeze({ ...n });
  const name = typeof n.Name === 'string' ? n.Name : '';
  const hostname = n.Hostinfo?.Hostname ?? '';
  const addresses = Object.freeze([...(n.Addresses ?? [])]);
  return Object.freeze({
    id: n.ID,
    stableId: n.StableID ?? '',
    name,
    shortName: name !== '' ? name.split('.')[0]! : hostname,
    nodeKey: n.Key,
    machineKey: n.Machine,
    discoKey: n.DiscoKey,
    addresses,
    // A nil AllowedIPs means the same as Addresses (capver 112).
    allowedIPs: n.AllowedIPs == null ? addresses : Object.freeze([...n.AllowedIPs]),
    endpoints: Object.freeze([...(n.Endpoints ?? [])]),
    homeDERP: homeRegion(n),
    online: n.Online ?? undefined,
    lastSeen: goTime(n.LastSeen),
    keyExpiry: goTime(n.KeyExpiry),
    expired: n.Expired === true,
    tags: Object.freeze([...(n.Tags ?? [])]),
    user: n.User ?? 0,
    hostinfo: n.Hostinfo ? Object.freeze({ ...n.Hostinfo }) : undefined,
    raw,
  });
}

function applyPatch(n: Node, pc: PeerChange): { node: Node; fields: string[] } {
  const next: Node = { ...n };
  const fields: string[] = [];
  if (pc.DERPRegion) {
    next.HomeDERP = pc.DERPRegion;
    delete next.DERP;
    fields.push('homeDERP');
  }
  if (pc.Cap) {
    next.Cap = pc.Cap;
    fields.push('cap');
  }
  if (pc.Endpoints != null) {
    next.Endpoints = pc.Endpoints;
    fields.push('endpoints');
  }
  if (pc.Key != null) {
    next.Key = pc.Key;
    fields.push('nodeKey');
  }
  if (pc.DiscoKey != null) {
    next.DiscoKey = pc.DiscoKey;
    fields.push('discoKey');
  }
  if (pc.Online != null) {
    next.Online = pc.Online;
    fields.push('online');
  }
  if (pc.LastSeen != null) {
    next.LastSeen = pc.LastSeen;
    fields.push('lastSeen');
  }
  if (pc.KeyExpiry != null) {
    next.KeyExpiry = pc.KeyExpiry;
    fields.push('keyExpiry');
  }
  if (pc.CapMap != null) {
    next.CapMap = pc.CapMap;
    fields.push('capMap');
  }
  return { node: next, fields };
}

const EMPTY_CHUNKS: ReadonlyMap<string, readonly FilterRule[]> = new Map();

/**
 * Folds one non-keepalive MapResponse into `prev` (undefined before the first message, which
 * must carry Node). Returns the new snapshot and the changes; `prev` is never modified.
 */
export function applyMapResponse(
  prev: NetMap | undefined,
  resp: MapResponse,
  now: () => Date = () => new Date(),
): { netmap: NetMap; changes: NetMapChange[] } {
  if (prev === undefined && (resp.Node === undefined || resp.Node === null)) {
    throw new ProtocolError('the first MapResponse lacks Node');
  }
  const changes: NetMapChange[] = prev === undefined ? [{ kind: 'full' }] : [];
  const self = resp.Node ? toNetNode(resp.Node) : prev!.self;
  if (prev !== undefined && resp.Node) changes.push({ kind: 'self' });

  let peers: Map<number, NetNode>;
  const note = (c: NetMapChange): void => {
    if (prev !== undefined) changes.push(c);
  };
  if (resp.Peers && resp.Peers.length > 0) {
    peers = new Map();
    for (const n of resp.Peers) {
      const p = toNetNode(n);
      peers.set(p.id, p);
      const old = prev?.peers.get(p.id);
      if (old === undefined) note({ kind: 'peer-added', id: p.id, name: p.name });
      else note({ kind: 'peer-changed', id: p.id, name: p.name, fields: ['*'] });
    }
    for (const [id, old] of prev?.peers ?? []) {
      if (!peers.has(id)) note({ kind: 'peer-removed', id, name: old.name });
    }
  } else {
    peers = new Map(prev?.peers ?? []);
    for (const id of resp.PeersRemoved ?? []) {
      const old = peers.get(id);
      if (old && peers.delete(id)) note({ kind: 'peer-removed', id, name: old.name });
    }
    for (const n of resp.PeersChanged ?? []) {
      const p = toNetNode(n);
      const had = peers.has(p.id);
      peers.set(p.id, p);
      note(
        had
          ? { kind: 'peer-changed', id: p.id, name: p.name, fields: ['*'] }
          : { kind: 'peer-added', id: p.id, name: p.name },
      );
    }
    for (const [idText, seen] of Object.entries(resp.PeerSeenChange ?? {})) {
      const old = peers.get(Number(idText));
      if (!old) continue;
      const node: Node = { ...old.raw, LastSeen: seen ? now().toISOString() : null };
      peers.set(old.id, toNetNode(node));
      note({ kind: 'peer-changed', id: old.id, name: old.name, fields: ['lastSeen'] });
    }
    for (const [idText, online] of Object.entries(resp.OnlineChange ?? {})) {
      const old = peers.get(Number(idText));
      if (!old) continue;
      peers.set(old.id, toNetNode({ ...old.raw, Online: online }));
      note({ kind: 'peer-changed', id: old.id, name: old.name, fields: ['online'] });
    }
    for (const pc of resp.PeersChangedPatch ?? []) {
      const old = peers.get(pc.NodeID);
      if (!old) continue;
      const { node, fields } = applyPatch(old.raw, pc);
      peers.set(old.id, toNetNode(node));
      note({ kind: 'peer-changed', id: old.id, name: old.name, fields });
    }
  }

  let derpMap = prev?.derpMap;
  if (resp.DERPMap) {
    const regions = resp.DERPMap.Regions
      ? Object.fromEntries(Object.entries(resp.DERPMap.Regions).filter(([, r]) => r !== null))
      : (derpMap?.Regions ?? {});
    derpMap = Object.freeze({
      ...resp.DERPMap,
      Regions: regions,
      HomeParams: resp.DERPMap.HomeParams ?? derpMap?.HomeParams,
    });
    note({ kind: 'derp-map' });
  }

  let chunks = prev?.packetFilterChunks ?? EMPTY_CHUNKS;
  let filterChanged = false;
  if (resp.PacketFilter) {
    const next = new Map(chunks);
    next.set('base', Object.freeze([...resp.PacketFilter]));
    chunks = next;
    filterChanged = true;
  }
  if (resp.PacketFilters) {
    const next = '*' in resp.PacketFilters && resp.PacketFilters['*'] === null ? new Map() : new Map(chunks);
    for (const [k, v] of Object.entries(resp.PacketFilters)) {
      if (k === '*') continue;
      if (v === null) next.delete(k);
      else next.set(k, Object.freeze([...v]));
    }
    chunks = next;
    filterChanged = true;
  }
  let packetFilter = prev?.packetFilter ?? Object.freeze([]);
  if (filterChanged) {
    packetFilter = Object.freeze([...chunks.keys()].sort().flatMap((k) => [...chunks.get(k)!]));
    note({ kind: 'packet-filter' });
  }

  let dns = prev?.dns;
  if (resp.DNSConfig) {
    dns = Object.freeze({ ...resp.DNSConfig });
    note({ kind: 'dns' });
  }
  let domain = prev?.domain ?? '';
  if (resp.Domain && resp.Domain !== domain) {
    domain = resp.Domain;
    note({ kind: 'domain' });
  }
  let userProfiles = prev?.userProfiles ?? new Map<number, UserProfile>();
  if (resp.UserProfiles && resp.UserProfiles.length > 0) {
    const next = new Map(userProfiles);
    for (const up of resp.UserProfiles) next.set(up.ID, Object.freeze({ ...up }));
    userProfiles = next;
  }

  const netmap: NetMap = Object.freeze({
    self,
    peers,
    derpMap,
    packetFilter,
    packetFilterChunks: chunks,
    dns,
    domain,
    magicDNSSuffix: self.name.replace(/\.$/, '').split('.').slice(1).join('.'),
    userProfiles,
    controlTime: resp.ControlTime ?? prev?.controlTime,
    seq: (prev?.seq ?? 0) + 1,
  });
  return { netmap, changes };
}

/** Finds a peer by short name, FQDN (with or without the dot) or Tailscale address. */
export function findPeer(nm: NetMap, nameOrAddr: string): NetNode | undefined {
  const want = nameOrAddr.toLowerCase().replace(/\.$/, '');
  for (const p of nm.peers.values()) {
    if (p.shortName.toLowerCase() === want || p.name.toLowerCase().replace(/\.$/, '') === want) return p;
    if (p.addresses.some((a) => a.split('/')[0] === want)) return p;
  }
  return undefined;
}
