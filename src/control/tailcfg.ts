/**
 * The tailcfg JSON we read and write (tailcfg/tailcfg.go, tailcfg/derpmap.go at v1.102.3),
 * with Go's field names. Only the fields we use are typed; every object keeps the rest
 * through its index signature so nothing the server sends is lost. Keys are their text forms
 * (`nodekey:…`), times RFC 3339 strings, addresses and prefixes strings.
 */

/** Extra fields a newer server may send; kept, not interpreted. */
export type Unknown = { [field: string]: unknown };

export interface Hostinfo extends Unknown {
  IPNVersion?: string;
  BackendLogID?: string;
  OS?: string;
  OSVersion?: string;
  Hostname?: string;
  GoArch?: string;
  Userspace?: boolean;
  RequestTags?: string[];
  RoutableIPs?: string[];
  NetInfo?: Unknown & { PreferredDERP?: number };
}

export interface RegisterRequest extends Unknown {
  Version: number;
  NodeKey: string;
  OldNodeKey: string;
  NLKey?: string;
  Auth?: { AuthKey?: string } & Unknown;
  /** RFC 3339; the zero time means "no expiry request"; a past time means logout. */
  Expiry: string;
  Followup: string;
  Hostinfo: Hostinfo | null;
  Ephemeral?: boolean;
  NodeKeySignature?: string | null;
  Timestamp?: string;
}

export interface User extends Unknown {
  ID: number;
  DisplayName?: string;
}

export interface Login extends Unknown {
  ID?: number;
  Provider?: string;
  LoginName?: string;
  DisplayName?: string;
}

export interface RegisterResponse extends Unknown {
  User?: User;
  Login?: Login;
  NodeKeyExpired?: boolean;
  MachineAuthorized?: boolean;
  AuthURL?: string;
  Error?: string;
}

export interface MapRequest extends Unknown {
  Version: number;
  Compress?: string;
  KeepAlive?: boolean;
  NodeKey: string;
  DiscoKey: string;
  Stream?: boolean;
  Hostinfo: Hostinfo | null;
  Endpoints?: string[];
  EndpointTypes?: number[];
  ReadOnly?: boolean;
  OmitPeers?: boolean;
  DebugFlags?: string[];
}

export interface Node extends Unknown {
  ID: number;
  StableID: string;
  /** The MagicDNS FQDN with a trailing dot. */
  Name: string;
  User: number;
  Key: string;
  KeyExpiry?: string;
  Machine?: string;
  DiscoKey?: string;
  Addresses: string[];
  AllowedIPs?: string[] | null;
  Endpoints?: string[];
  /** Legacy "127.3.3.40:<region>". */
  DERP?: string;
  HomeDERP?: number;
  Hostinfo?: Hostinfo;
  Created?: string;
  Cap?: number;
  Tags?: string[];
  PrimaryRoutes?: string[];
  LastSeen?: string | null;
  Online?: boolean | null;
  MachineAuthorized?: boolean;
  Capabilities?: string[];
  CapMap?: Record<string, unknown[] | null>;
  ComputedName?: string;
  Expired?: boolean;
}

export interface PeerChange extends Unknown {
  NodeID: number;
  DERPRegion?: number;
  Cap?: number;
  CapMap?: Record<string, unknown[] | null>;
  Endpoints?: string[];
  Key?: string;
  DiscoKey?: string;
  Online?: boolean;
  LastSeen?: string;
  KeyExpiry?: string;
}

export interface PortRange {
  First: number;
  Last: number;
}

export interface NetPortRange extends Unknown {
  IP: string;
  Bits?: number;
  Ports: PortRange;
}

export interface FilterRule extends Unknown {
  SrcIPs: string[];
  SrcBits?: number[];
  DstPorts?: NetPortRange[];
  IPProto?: number[];
  CapGrant?: Unknown[];
}

export interface DNSResolver extends Unknown {
  Addr: string;
}

export interface DNSConfig extends Unknown {
  Resolvers?: DNSResolver[];
  Routes?: Record<string, DNSResolver[] | null>;
  FallbackResolvers?: DNSResolver[];
  Domains?: string[];
  Proxied?: boolean;
  Nameservers?: string[];
  CertDomains?: string[];
  ExtraRecords?: { Name: string; Type?: string; Value: string }[];
}

export interface DERPNode extends Unknown {
  Name: string;
  RegionID: number;
  HostName: string;
  CertName?: string;
  IPv4?: string;
  IPv6?: string;
  STUNPort?: number;
  STUNOnly?: boolean;
  DERPPort?: number;
  InsecureForTests?: boolean;
  CanPort80?: boolean;
}

export interface DERPRegion extends Unknown {
  RegionID: number;
  RegionCode: string;
  RegionName: string;
  Avoid?: boolean;
  NoMeasureNoHome?: boolean;
  Nodes: DERPNode[];
}

export interface DERPMap extends Unknown {
  HomeParams?: Unknown | null;
  /** Keyed by the decimal region ID. */
  Regions: Record<string, DERPRegion | null>;
  omitDefaultRegions?: boolean;
}

export interface UserProfile extends Unknown {
  ID: number;
  LoginName: string;
  DisplayName: string;
}

/**
 * Control asking the node to prove it is alive or reach a peer (tailcfg.PingRequest): with no
 * Types, a HEAD to URL; "c2n", an HTTP request in Payload whose response is POSTed to URL over
 * Noise; otherwise comma-separated PingTypes to IP, each PingResponse POSTed to URL.
 */
export interface PingRequest extends Unknown {
  URL: string;
  URLIsNoise?: boolean;
  Log?: boolean;
  Types?: string;
  IP?: string;
  /** base64 (Go []byte): for c2n, an HTTP/1.x request. */
  Payload?: string | null;
}

/** tailcfg.PingResponse: what a ping of a PingRequest found. */
export interface PingResponse extends Unknown {
  Type: string;
  IP?: string;
  NodeIP?: string;
  NodeName?: string;
  Err?: string;
  LatencySeconds?: number;
  Endpoint?: string;
  DERPRegionID?: number;
  DERPRegionCode?: string;
  PeerAPIPort?: number;
  IsLocalIP?: boolean;
}

export interface MapResponse extends Unknown {
  MapSessionHandle?: string;
  Seq?: number;
  KeepAlive?: boolean;
  PingRequest?: PingRequest | null;
  PopBrowserURL?: string;
  Node?: Node | null;
  DERPMap?: DERPMap | null;
  Peers?: Node[] | null;
  PeersChanged?: Node[] | null;
  PeersRemoved?: number[] | null;
  PeersChangedPatch?: PeerChange[] | null;
  PeerSeenChange?: Record<string, boolean> | null;
  OnlineChange?: Record<string, boolean> | null;
  DNSConfig?: DNSConfig | null;
  Domain?: string;
  CollectServices?: boolean | string;
  PacketFilter?: FilterRule[] | null;
  PacketFilters?: Record<string, FilterRule[] | null> | null;
  UserProfiles?: UserProfile[] | null;
  Health?: string[] | null;
  SSHPolicy?: Unknown | null;
  ControlTime?: string;
  Debug?: Unknown | null;
}

/** tailcfg.EarlyNoise and OverTLSPublicKeyResponse use lower-case JSON names. */
export interface OverTLSPublicKeyResponse {
  legacyPublicKey?: string;
  publicKey: string;
}

/** Go's zero time.Time as JSON. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The magic IP of the legacy Node.DERP field ("127.3.3.40:<region>"). */
export const DERP_MAGIC_IP = '127.3.3.40';
