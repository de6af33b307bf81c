/**
 * `tailscale status --json` for our node: ipnstate.Status with the fields filled as tailscaled
 * fills them (ipn/ipnlocal/local.go updateStatusLocked and populatePeerStatusLocked,
 * wgengine/magicsock UpdateStatus and endpoint.go populatePeerStatus, wgengine's WireGuard
 * counters), so that scripts written against tailscaled read ours unchanged. Peers are keyed by
 * node key (`nodekey:<hex>`); Go's zero time is `0001-01-01T00:00:00Z`, and a Go nil slice or
 * map is `null`, as encoding/json writes them.
 */
import type { NetNode } from '../control/netmap.js';
import type { UserProfile } from '../control/tailcfg.js';
import { CLIENT_VERSION } from '../control/version.js';
import { derpCodeIn, type NodeInternals } from './internals.js';
import { keyBytes, unprefix } from './status.js';

/** Go's time.Time zero value as encoding/json writes it. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
/** magicsock sessionActiveTimeout: a peer sent to within this is `Active`. */
const SESSION_ACTIVE_MS = 45_000;

/** ipnstate.PeerStatus (the fields a node of ours can know; see docs/operations-tools.md). */
export interface IpnPeerStatus {
  ID: string;
  NodeID: number;
  PublicKey: string;
  HostName: string;
  DNSName: string;
  OS: string;
  UserID: number;
  TailscaleIPs: string[] | null;
  AllowedIPs?: string[];
  Tags?: string[];
  PrimaryRoutes?: string[];
  Addrs: string[] | null;
  CurAddr: string;
  Relay: string;
  PeerRelay: string;
  RxBytes: number;
  TxBytes: number;
  Created: string;
  LastWrite: string;
  LastSeen: string;
  LastHandshake: string;
  Online: boolean;
  ExitNode: boolean;
  ExitNodeOption: boolean;
  Active: boolean;
  PeerAPIURL: string[] | null;
  TaildropTarget: number;
  NoFileSharingReason: string;
  Capabilities?: string[];
  CapMap?: Record<string, unknown[]>;
  InNetworkMap: boolean;
  InMagicSock: boolean;
  InEngine: boolean;
  Expired?: boolean;
  KeyExpiry?: string;
}

/** ipnstate.Status. */
export interface IpnStatus {
  Version: string;
  TUN: boolean;
  BackendState: 'NoState' | 'NeedsLogin' | 'Starting' | 'Running' | 'Stopped';
  HaveNodeKey: boolean;
  AuthURL: string;
  TailscaleIPs: string[] | null;
  Self: IpnPeerStatus;
  Health: string[];
  MagicDNSSuffix: string;
  CurrentTailnet: { Name: string; MagicDNSSuffix: string; MagicDNSEnabled: boolean } | null;
  CertDomains: string[] | null;
  ExtraRecords: unknown[] | null;
  Peer: Record<string, IpnPeerStatus> | null;
  User: Record<string, { ID: number; LoginName: string; DisplayName: string; ProfilePicURL?: string }> | null;
  ClientVersion: null;
}

/** ipnstate.PeerStatus's fields in its declaration order, which encoding/json keeps. */
const PEER_FIELDS: ReadonlyArray<keyof IpnPeerStatus> = [
  'ID',
  'NodeID',
  'PublicKey',
  'HostName',
  'DNSName',
  'OS',
  'UserID',
  'TailscaleIPs',
  'AllowedIPs',
  'Tags',
  'PrimaryRoutes',
  'Addrs',
  'CurAddr',
  'Relay',
  'PeerRelay',
  'RxBytes',
  'TxBytes',
  'Created',
  'LastWrite',
  'LastSeen',
  'LastHandshake',
  'Online',
  'ExitNode',
  'ExitNodeOption',
  'Active',
  'PeerAPIURL',
  'TaildropTarget',
  'NoFileSharingReason',
  'Capabilities',
  'CapMap',
  'InNetworkMap',
  'InMagicSock',
  'InEngine',
  'Expired',
  'KeyExpiry',
];
/** local.go's marker heading Self.Capabilities, which now come from the CapMap (tailscale#11508). */
const DEPRECATED_CAPS =
  'HTTPS://TAILSCALE.COM/s/DEPRECATED-NODE-CAPS#see-https://github.com/tailscale/tailscale/issues/11508';

/** `ps` with its fields in Go's order, the omitted (`omitempty`) ones left out. */
function ordered(ps: IpnPeerStatus): IpnPeerStatus {
  const out: Record<string, unknown> = {};
  for (const k of PEER_FIELDS) if (ps[k] !== undefined) out[k] = ps[k];
  return out as unknown as IpnPeerStatus;
}

/** The node's CapMap as Go copies it (a nil value list becomes an empty one), or undefined when empty. */
function capMap(n: NetNode): Record<string, unknown[]> | undefined {
  const m = (n.raw as { CapMap?: Record<string, unknown[] | null> }).CapMap;
  if (!m || Object.keys(m).length === 0) return undefined;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v ?? []]));
}

const goTime = (t: string | number | undefined | null): string => {
  if (t === undefined || t === null || t === '' || t === 0) return GO_ZERO_TIME;
  return typeof t === 'number' ? new Date(t).toISOString() : t;
};
const nonEmpty = <T>(a: readonly T[] | undefined | null): T[] | undefined =>
  a && a.length > 0 ? [...a] : undefined;
/** tsaddr.ContainsExitRoutes: both default routes among the allowed IPs. */
const offersExit = (allowed: readonly string[]) => allowed.includes('0.0.0.0/0') && allowed.includes('::/0');
/** A single address (a /32 or /128 prefix, or a bare address) without its prefix length. */
const singleIPs = (prefixes: readonly string[]) =>
  prefixes.filter((p) => !p.includes('/') || /\/(32|128)$/.test(p)).map(unprefix);

/** Fields of tailcfg.Node that self and peers share (local.go peerStatusFromNode). */
function fromNode(n: NetNode): Partial<IpnPeerStatus> {
  const raw = n.raw as { Created?: string; PrimaryRoutes?: string[] | null };
  const expiry = n.keyExpiry ? new Date(n.keyExpiry) : undefined;
  if (expiry) expiry.setMilliseconds(expiry.getMilliseconds() >= 500 ? 1000 : 0);
  return {
    ID: n.stableId,
    NodeID: n.id,
    PublicKey: n.nodeKey,
    Created: goTime(raw.Created),
    ExitNodeOption: offersExit(n.allowedIPs),
    ...(nonEmpty(n.tags) ? { Tags: [...n.tags] } : {}),
    ...(nonEmpty(raw.PrimaryRoutes) ? { PrimaryRoutes: [...raw.PrimaryRoutes!] } : {}),
    ...(nonEmpty(n.allowedIPs) ? { AllowedIPs: [...n.allowedIPs] } : {}),
    ...(n.expired ? { Expired: true } : {}),
    ...(expiry ? { KeyExpiry: expiry.toISOString().replace('.000Z', 'Z') } : {}),
  };
}

function blankPeer(): IpnPeerStatus {
  return {
    ID: '',
    NodeID: 0,
    PublicKey: 'nodekey:0000000000000000000000000000000000000000000000000000000000000000',
    HostName: '',
    DNSName: '',
    OS: '',
    UserID: 0,
    TailscaleIPs: null,
    Addrs: null,
    CurAddr: '',
    Relay: '',
    PeerRelay: '',
    RxBytes: 0,
    TxBytes: 0,
    Created: GO_ZERO_TIME,
    LastWrite: GO_ZERO_TIME,
    LastSeen: GO_ZERO_TIME,
    LastHandshake: GO_ZERO_TIME,
    Online: false,
    ExitNode: false,
    ExitNodeOption: false,
    Active: false,
    PeerAPIURL: null,
    TaildropTarget: 0,
    NoFileSharingReason: '',
    InNetworkMap: false,
    InMagicSock: false,
    InEngine: false,
  };
}

/**
 * Builds the node's status in `tailscale status --json`'s shape.
 *
 * @example
 * const st = tn.tailscaleStatus();
 * for (const p of Object.values(st.Peer ?? {})) console.log(p.HostName, p.CurAddr || `DERP(${p.Relay})`);
 */
export function buildIpnStatus(node: NodeInternals, now = Date.now()): IpnStatus {
  const nm = node.netmap;
  const ms = node.magicsock;
  const wg = new Map((node.device?.status().peers ?? []).map((p) => [p.publicKey, p]));
  const backendState = stateOf(node);
  const selfIPs = nm ? singleIPs(nm.self.addresses) : [];
  const self: IpnPeerStatus = {
    ...blankPeer(),
    ...(nm ? fromNode(nm.self) : {}),
    HostName: nm?.self.hostinfo?.Hostname ?? node.opts.hostname ?? '',
    DNSName: nm?.self.name ?? '',
    OS: nm?.self.hostinfo?.OS ?? process.platform,
    UserID: nm?.self.user ?? 0,
    TailscaleIPs: nm ? selfIPs : null,
    Addrs: [...(ms?.localEndpoints ?? [])],
    Relay: ms?.homeRegion === undefined ? '' : derpCodeIn(node.netmap, ms.homeRegion),
    Online: backendState === 'Running',
    InNetworkMap: nm !== undefined,
  };
  // local.go updateStatusLocked: Self's capabilities are its CapMap's keys, after a marker.
  self.CapMap = nm && capMap(nm.self);
  if (self.CapMap) self.Capabilities = [DEPRECATED_CAPS, ...Object.keys(self.CapMap).sort()];
  let peers: Record<string, IpnPeerStatus> | null = null;
  for (const p of nm?.peers.values() ?? []) {
    const key = keyBytes(p.nodeKey);
    const w = wg.get(Buffer.from(key).toString('base64'));
    const activity = ms?.peerActivity(key);
    const path = ms?.pathOf(key);
    const sentAgo = activity?.lastSendAgoMs ?? Number.POSITIVE_INFINITY;
    peers ??= {};
    peers[p.nodeKey] = ordered({
      ...blankPeer(),
      ...fromNode(p),
      HostName: p.hostinfo?.Hostname ?? '',
      DNSName: p.name,
      OS: p.hostinfo?.OS ?? '',
      UserID: p.user,
      TailscaleIPs: singleIPs(p.addresses),
      CurAddr: path?.kind === 'direct' ? path.addr : '',
      Relay: p.homeDERP ? derpCodeIn(node.netmap, p.homeDERP) : '',
      RxBytes: w?.rxBytes ?? 0,
      TxBytes: w?.txBytes ?? 0,
      LastWrite: Number.isFinite(sentAgo) ? goTime(now - sentAgo) : GO_ZERO_TIME,
      LastSeen: goTime(p.lastSeen),
      LastHandshake: goTime(w?.latestHandshake),
      Online: p.online === true,
      Active: sentAgo < SESSION_ACTIVE_MS,
      InNetworkMap: true,
      InMagicSock: activity !== undefined,
      InEngine: w !== undefined,
      Capabilities: nonEmpty((p.raw as { Capabilities?: string[] }).Capabilities),
      CapMap: capMap(p),
    });
  }
  const users: IpnStatus['User'] = nm && nm.userProfiles.size > 0 ? {} : null;
  for (const [id, u] of nm?.userProfiles ?? []) users![String(id)] = userProfile(u);
  const suffix = nm?.magicDNSSuffix ?? '';
  return {
    Version: CLIENT_VERSION,
    TUN: false,
    BackendState: backendState,
    HaveNodeKey: node.control?.state.nodeKey !== undefined,
    AuthURL: node.device ? '' : node.authURL,
    TailscaleIPs: nm ? selfIPs : null,
    Self: ordered(self),
    Health: [],
    MagicDNSSuffix: suffix,
    CurrentTailnet: nm
      ? { Name: nm.domain, MagicDNSSuffix: suffix, MagicDNSEnabled: nm.dns?.Proxied === true }
      : null,
    CertDomains: nonEmpty(nm?.dns?.CertDomains as string[] | undefined) ?? null,
    ExtraRecords: nonEmpty(nm?.dns?.ExtraRecords as unknown[] | undefined) ?? null,
    Peer: peers,
    User: users,
    ClientVersion: null,
  };
}

/** ipn.State as tailscaled reports it, from what the node has got to. */
function stateOf(n: NodeInternals): IpnStatus['BackendState'] {
  if (n.closed) return 'Stopped';
  if (n.device) return 'Running';
  if (n.authURL) return 'NeedsLogin';
  return n.control ? 'Starting' : 'NoState';
}

function userProfile(u: Readonly<UserProfile>): NonNullable<IpnStatus['User']>[string] {
  const pic = (u as { ProfilePicURL?: string }).ProfilePicURL;
  return {
    ID: u.ID,
    LoginName: u.LoginName,
    DisplayName: u.DisplayName,
    ...(pic ? { ProfilePicURL: pic } : {}),
  };
}
