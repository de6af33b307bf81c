/** What a {@link Tailnet} is given: who it is, where control is, and how it reaches peers. */
import type { ControlClientOptions } from '../control/client.js';
import type { ControlStateStore } from '../control/state.js';
import type { Hostinfo } from '../control/tailcfg.js';
import type { TcpOptions } from '../netstack/tcp/options.js';
import type { Clock } from '../wireguard/clock.js';
import type { Logger } from '../wireguard/logger.js';
import type { MagicsockOptions } from './magicsock.js';
import type { RouteOptions } from './routes/node-routing.js';

/** Tailscale's hosted control plane, the default as in tsnet. */
export const DEFAULT_CONTROL_URL = 'https://controlplane.tailscale.com';

/**
 * Route options (routes/node-routing.ts): `acceptRoutes`, `exitNode`, `exitNodeAllowLANAccess`
 * to use peers' subnet routes and an exit node; `advertiseRoutes`, `advertiseExitNode` to be a
 * subnet router or exit node, forwarding through this host's sockets.
 */
export interface TailnetOptions extends RouteOptions {
  /** Node name; defaults to the saved one, then the OS hostname. */
  hostname?: string;
  /** Auth key (Tailscale auth key or Headscale pre-auth key); defaults to `TS_AUTHKEY`. */
  authKey?: string;
  /** Control server URL; default Tailscale's. */
  controlURL?: string;
  /** Where keys and login are kept (created 0700, files 0600). */
  stateDir: string;
  /** Register as an ephemeral node: control deletes it soon after it goes away. */
  ephemeral?: boolean;
  logger?: Logger;
  /** UDP port for WireGuard and disco (0 = any). */
  port?: number;
  /** Reach DERP servers over plain HTTP, for relays that only speak HTTP (default: `TS_DEBUG_USE_DERP_HTTP=1`). */
  derpHttp?: boolean;
  /** UDP endpoints to advertise instead of discovering them; port 0 stands for the node's own UDP port. */
  endpoints?: string[];
  /** Never use direct UDP paths (like `TS_DEBUG_ALWAYS_USE_DERP`). */
  derpOnly?: boolean;
  /**
   * Path MTU discovery toward our own peers (default on): each direct UDP path to another
   * quackscale node is probed with sealed disco probes, and packets toward it grow up to what the
   * path carries (8,928 inner bytes on a 9,000-byte link, 65,472 on loopback) instead of 1,420.
   * Peers that do not answer (tailscaled, wireguard-go) and DERP paths stay at 1,420. `false`
   * turns it off: 1,420 toward everyone, and peers' probes go unanswered.
   */
  peerMtu?: boolean;
  /**
   * Worker threads that seal and open WireGuard packets beside the node's own thread (default 0:
   * none). For machines with cores to spare; on 2 cores it costs more CPU per GB than it saves
   * (docs/INTERNALS.md, "Crypto workers").
   */
  cryptoWorkers?: number;
  /** Called with the URL to approve an interactive login. */
  onAuthURL?: (url: string) => void;
  /** Reach control over a WebSocket (ts2021 as a web page speaks it) instead of the HTTP upgrade. */
  controlWebSocket?: boolean;
  /** The control server's Noise key (`mkey:…`), to skip `GET /key`. */
  controlKey?: string;
  /** Where the control state lives instead of `stateDir` (a web page: memory or IndexedDB). */
  stateStore?: ControlStateStore;
  /**
   * The node's TCP tunables (buffers, RTO bounds, keepalive probe interval and count…), each
   * with a Linux-like default. A client that must notice a vanished peer within seconds lowers
   * `keepaliveIntervalMs` and `keepaliveProbes` and turns keepalive on for its sockets.
   */
  tcp?: TcpOptions;
  /**
   * For tests: the clock of the WireGuard timers (default the real one). `scaledClock(12)` from
   * `quackscale/wireguard` rekeys every 10 s instead of every 2 minutes.
   */
  wireguardClock?: Clock;
  /**
   * For tests (`quackscale/testing`'s createTestTailnet): the node's UDP socket, its DERP
   * connections and its interfaces' addresses on an in-memory network instead of the host's.
   */
  network?: TailnetNetwork;
}

/** Where a node's datagrams go when it runs on an in-memory network ({@link TailnetOptions.network}). */
export interface TailnetNetwork {
  udp: NonNullable<MagicsockOptions['udp']>;
  derp: NonNullable<MagicsockOptions['derp']>;
  /** The node's own `ip:port` endpoints, given its UDP port. */
  interfaces: (port: number) => string[];
  /**
   * The MTU of the node's link toward an IP, for path MTU discovery; absent: unknown, and no
   * path is raised (the host's routes say nothing about an in-memory network).
   */
  egressMtu?: (ip: string) => number | undefined;
}

/** A private key as the control state keeps it (node or disco). */
interface RawKeyPair {
  exportRaw(): Uint8Array;
  readonly publicKey: { readonly raw: Uint8Array };
}

/** What the control client is given for a node with these options. */
export function controlClientOptions(
  opts: TailnetOptions,
  logger: Logger,
  hostinfo: Partial<Hostinfo>,
  onAuthURL: (url: string) => void,
): ControlClientOptions {
  return {
    serverURL: opts.controlURL ?? DEFAULT_CONTROL_URL,
    stateDir: opts.stateDir,
    hostname: opts.hostname,
    authKey: opts.authKey ?? process.env.TS_AUTHKEY,
    ephemeral: opts.ephemeral,
    logger,
    websocket: opts.controlWebSocket,
    controlKey: opts.controlKey,
    store: opts.stateStore,
    hostinfo,
    onAuthURL,
  };
}

/** What magicsock is given for a node with these options and keys. */
export function magicsockOptions(
  opts: TailnetOptions,
  logger: Logger,
  nodeKey: RawKeyPair,
  disco: RawKeyPair,
): MagicsockOptions {
  return {
    nodePrivateKey: nodeKey.exportRaw(),
    nodePublicKey: nodeKey.publicKey.raw,
    disco: { publicKey: disco.publicKey.raw, secretKey: disco.exportRaw() },
    port: opts.port,
    derpHttp: opts.derpHttp ?? process.env.TS_DEBUG_USE_DERP_HTTP === '1',
    endpoints: opts.endpoints,
    derpOnly: opts.derpOnly,
    logger,
    udp: opts.network?.udp,
    derp: opts.network?.derp,
    peerMtu: opts.peerMtu ?? true,
    // The testing network has no routes to read: its egress MTU is what it says, or unknown.
    ...(opts.network ? { egressMtu: opts.network.egressMtu ?? (() => undefined) } : {}),
  };
}
