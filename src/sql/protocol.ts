// The messages between the SQL thread (where DuckDB calls our table functions) and the worker
// thread that owns the tailnet node. Plain data only: they cross threads by structured clone.
import type { RouteOptions } from '../tailnet/routes/node-routing.js';
import type {
  CoordinatorNode,
  CoordinatorRequest,
  CoordinatorStart,
  CoordinatorState,
  NewKey,
} from './coordinator/protocol.js';

/** What `tailscale_up` asks the worker for. */
export interface UpRequest {
  op: 'up';
  hostname: string | undefined;
  authKey: string | undefined;
  controlURL: string | undefined;
  stateDir: string;
  ephemeral: boolean;
  /** Start the loopback HTTP proxy that DuckDB's `http_proxy` setting will point to. */
  httpRoute: boolean;
  /** Start the loopback SOCKS5 proxy exported through `ALL_PROXY` (see host.ts). */
  loopbackProxy: boolean;
  derpHttp: boolean | undefined;
  endpoints: string[] | undefined;
  /** accept_routes, advertise_routes, advertise_exit_node, exit_node, exit_node_allow_lan_access. */
  routes?: RouteOptions;
}

/** What `tailscale_login` asks for: as up, but answered once the login URL is known (or `waitMs` passes). */
export type LoginRequest = Omit<UpRequest, 'op'> & { op: 'login'; waitMs: number };

export type Request =
  | UpRequest
  | LoginRequest
  | { op: 'status' }
  | { op: 'down' }
  | { op: 'peers' }
  | { op: 'serveLocal'; port: number; localPort: number }
  | { op: 'ping'; host: string; port: number; timeoutMs: number }
  | { op: 'forward'; host: string; port: number; localPort: number }
  /** tailscale_quack_proxy: the loopback SOCKS5 proxy of loopback_proxy, started on demand. */
  | { op: 'socks' }
  /** quackscale_serve: the coordinator, then (unless join => false) the node joins it. */
  | { op: 'serve'; start: CoordinatorStart; join: Omit<UpRequest, 'op'> | undefined }
  | CoordinatorRequest;

/** The states of an interactive login, as the original's `tailscale_login_status` names them. */
export type LoginStatus = 'starting' | 'needs_login' | 'up' | 'error' | 'idle';

export interface LoginState {
  status: LoginStatus;
  loginUrl: string | null;
  message: string | null;
}

/** The node as the lifecycle functions report it. */
export interface NodeState {
  running: boolean;
  hostname: string | null;
  tailnetIps: string[];
  /** Our MagicDNS name (FQDN without the trailing dot), once the netmap has it. */
  dnsName: string | null;
  login: LoginState;
}

/** The state before any up or login, and after down. */
export const IDLE_STATE: NodeState = {
  running: false,
  hostname: null,
  tailnetIps: [],
  dnsName: null,
  login: { status: 'idle', loginUrl: null, message: null },
};

/** The text every function that needs a node gives before one is up (sql-surface.md). */
export const NOT_UP = 'call tailscale_up() first';

/** One peer, as tailscale_peers() reports it. */
export interface PeerRow {
  name: string;
  dnsName: string;
  tailnetIps: string[];
  online: boolean | null;
  path: string;
  /** Wall-clock ms of the latest WireGuard handshake, if any. */
  lastHandshakeMs: number | null;
  rxBytes: number;
  txBytes: number;
}

/** Where one of the worker's loopback proxies listens, with its credentials (never shown in results). */
export interface ProxyEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
}

export type Reply =
  | {
      ok: true;
      state: NodeState;
      /** The HTTP proxy for DuckDB's http_proxy settings (http_route). */
      proxy?: ProxyEndpoint;
      /** The SOCKS5 proxy for ALL_PROXY (loopback_proxy). */
      socks?: ProxyEndpoint;
      peers?: PeerRow[];
      /** The loopback port a forwarder listens on. */
      localPort?: number;
      /** The coordinator, after any coordinator request. */
      coordinator?: CoordinatorState;
      /** quackscale_serve's key (the one its node joined with). */
      preauthKey?: string;
      key?: NewKey;
      nodes?: CoordinatorNode[];
    }
  | { ok: false; error: string };

/** A request tagged with its sequence number, so a late answer to a timed-out call is recognised. */
export interface Envelope<T> {
  id: number;
  body: T;
}

/** Slot 0 of the shared Int32Array: bumped (and notified) by the worker after each reply is posted. */
export const SIGNAL_SLOT = 0;

/** Error text without secrets: auth keys must never reach SQL results, errors or logs. */
export function redact(err: unknown, secrets: readonly (string | undefined)[]): string {
  let text = err instanceof Error ? err.message : String(err);
  for (const s of secrets) if (s) text = text.split(s).join('<redacted>');
  return text;
}
