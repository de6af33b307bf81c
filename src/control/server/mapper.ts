/**
 * Builds MapResponses for the embedded server: tailcfg.Node values from node records, the
 * full map a stream starts with, and the delta between what a stream was last sent and the
 * tailnet now — PeersRemoved, PeersChanged, PeersChangedPatch (endpoints, DERP, keys),
 * OnlineChange and PeerSeenChange, a new PacketFilter or self Node — so every stream follows
 * the same rules whatever changed.
 */
import type {
  DERPMap,
  DNSConfig,
  FilterRule,
  MapResponse,
  Node,
  PeerChange,
  UserProfile,
} from '../tailcfg.js';
import { ZERO_TIME } from '../tailcfg.js';
import type { NodeRecord } from './store.js';

export interface MapperConfig {
  baseDomain: string;
  derpMap: DERPMap;
  isOnline: (id: number) => boolean;
  isExpired: (n: NodeRecord) => boolean;
  /** The profile of a user id (default: USER_PROFILE for every id). */
  userProfile?: (id: number) => UserProfile;
  /** The subnet routes a node is primary for and the exit routes it serves (default: none). */
  routesOf?: (id: number) => { primary: string[]; exit: string[] };
}

/** The profiles of the users owning `nodes`, one each (tailcfg.MapResponse.UserProfiles). */
function profilesOf(nodes: readonly { User: number }[], cfg: MapperConfig): UserProfile[] {
  const ids = [...new Set(nodes.map((n) => n.User))];
  return ids.map((id) => cfg.userProfile?.(id) ?? USER_PROFILE);
}

/** The tailcfg.Node a peer (or the node itself) sees. */
export function toTailcfgNode(n: NodeRecord, cfg: MapperConfig): Node {
  const addrs = [`${n.ipv4}/32`, `${n.ipv6}/128`];
  // As Headscale's tailNode: peers send a node its primary subnets and, if it is one, all traffic
  // as an exit node; a router that is not primary for a prefix does not get it.
  const routes = cfg.routesOf?.(n.id) ?? { primary: [], exit: [] };
  const node: Node = {
    ID: n.id,
    StableID: n.stableId,
    Name: `${n.givenName}.${cfg.baseDomain}.`,
    User: n.userId,
    Key: n.nodeKey,
    KeyExpiry: n.keyExpiry ?? ZERO_TIME,
    Machine: n.machineKey,
    DiscoKey: n.discoKey,
    Addresses: addrs,
    AllowedIPs: [...addrs, ...routes.primary, ...routes.exit],
    Endpoints: n.endpoints,
    HomeDERP: n.homeDERP,
    Hostinfo: n.hostinfo ?? {},
    Created: n.created,
    Cap: n.capVersion,
    Online: cfg.isOnline(n.id),
    MachineAuthorized: true,
  };
  if (n.homeDERP) node.DERP = `127.3.3.40:${n.homeDERP}`;
  if (n.tags.length > 0) node.Tags = n.tags;
  if (routes.primary.length > 0) node.PrimaryRoutes = routes.primary;
  if (n.lastSeen) node.LastSeen = n.lastSeen;
  if (cfg.isExpired(n)) node.Expired = true;
  return node;
}

/** The DNS settings: MagicDNS names under the base domain. */
export function dnsConfig(baseDomain: string): DNSConfig {
  return { Resolvers: [], Domains: [baseDomain], Proxied: true, Routes: {} };
}

/** The default user, which every node belongs to unless an admin approved it for another. */
export const USER_PROFILE: UserProfile = { ID: 1, LoginName: 'quackscale', DisplayName: 'quackscale' };

/** What a stream has been sent so far, to compute the next delta against. */
export interface StreamView {
  self: string;
  peers: Map<number, Node>;
  filter: string;
}

/** The first message of a stream, and the view it establishes. */
export function fullMap(
  self: NodeRecord,
  peers: readonly NodeRecord[],
  filter: FilterRule[],
  cfg: MapperConfig,
): { resp: MapResponse; view: StreamView } {
  const selfNode = toTailcfgNode(self, cfg);
  const peerNodes = peers.map((p) => toTailcfgNode(p, cfg));
  const resp: MapResponse = {
    Node: selfNode,
    DERPMap: cfg.derpMap,
    Peers: peerNodes,
    DNSConfig: dnsConfig(cfg.baseDomain),
    Domain: cfg.baseDomain,
    PacketFilter: filter,
    UserProfiles: profilesOf([selfNode, ...peerNodes], cfg),
    ControlTime: new Date().toISOString(),
  };
  return {
    resp,
    view: {
      self: JSON.stringify(selfNode),
      peers: new Map(peerNodes.map((n) => [n.ID, n])),
      filter: JSON.stringify(filter),
    },
  };
}

const PATCH_FIELDS = [
  'Endpoints',
  'HomeDERP',
  'DERP',
  'DiscoKey',
  'Key',
  'KeyExpiry',
  'Online',
  'LastSeen',
] as const;

function withoutPatchable(n: Node): string {
  const copy: Record<string, unknown> = { ...n };
  for (const f of PATCH_FIELDS) delete copy[f];
  return JSON.stringify(copy);
}

/** The delta from `view` to now (undefined when nothing changed); updates `view`. */
export function deltaMap(
  view: StreamView,
  self: NodeRecord,
  peers: readonly NodeRecord[],
  filter: FilterRule[],
  cfg: MapperConfig,
): MapResponse | undefined {
  const resp: MapResponse = {};
  let any = false;
  const selfNode = toTailcfgNode(self, cfg);
  const selfJSON = JSON.stringify(selfNode);
  if (selfJSON !== view.self) {
    resp.Node = selfNode;
    view.self = selfJSON;
    any = true;
  }
  const now = new Map(peers.map((p) => [p.id, toTailcfgNode(p, cfg)]));
  const removed = [...view.peers.keys()].filter((id) => !now.has(id));
  const changed: Node[] = [];
  const patches: PeerChange[] = [];
  const online: Record<string, boolean> = {};
  const seen: Record<string, boolean> = {};
  for (const [id, n] of now) {
    const old = view.peers.get(id);
    if (old === undefined || withoutPatchable(old) !== withoutPatchable(n)) {
      changed.push(n);
      continue;
    }
    const pc: PeerChange = { NodeID: id };
    let patched = false;
    if ((old.Endpoints ?? []).join() !== (n.Endpoints ?? []).join()) {
      pc.Endpoints = n.Endpoints ?? [];
      patched = true;
    }
    if ((old.HomeDERP ?? 0) !== (n.HomeDERP ?? 0) && n.HomeDERP) {
      pc.DERPRegion = n.HomeDERP;
      patched = true;
    }
    for (const f of ['DiscoKey', 'Key', 'KeyExpiry'] as const) {
      if (old[f] !== n[f]) {
        pc[f] = n[f];
        patched = true;
      }
    }
    if (patched) patches.push(pc);
    if (old.Online !== n.Online) online[id] = n.Online === true;
    if (old.LastSeen !== n.LastSeen && n.LastSeen) seen[id] = true;
  }
  if (removed.length > 0) resp.PeersRemoved = removed;
  if (changed.length > 0) resp.PeersChanged = changed;
  // Clients merge profiles across messages (controlclient/map.go): send those of new nodes.
  if (resp.Node || changed.length > 0) {
    resp.UserProfiles = profilesOf(resp.Node ? [resp.Node, ...changed] : changed, cfg);
  }
  if (patches.length > 0) resp.PeersChangedPatch = patches;
  if (Object.keys(online).length > 0) resp.OnlineChange = online;
  if (Object.keys(seen).length > 0) resp.PeerSeenChange = seen;
  any ||=
    removed.length + changed.length + patches.length + Object.keys(online).length + Object.keys(seen).length >
    0;
  view.peers = now;
  const filterJSON = JSON.stringify(filter);
  if (filterJSON !== view.filter) {
    resp.PacketFilter = filter;
    view.filter = filterJSON;
    any = true;
  }
  return any ? resp : undefined;
}
