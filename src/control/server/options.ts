/** What the embedded control server is given (server.ts). */
import type { ConnectionLimits } from '../../guard/guard.js';
import type { ControlLogger } from '../logger.js';
import type { DERPMap } from '../tailcfg.js';
import type { NoiseHttpLimits } from './noise-http.js';
import type { AclPolicy } from './policy.js';
import type { AuthKeyBackend, ControlStateStore } from './state-store.js';

export interface ControlServerOptions {
  /** The state directory: nodes and pre-auth keys (unless `store`/`authKeys` say otherwise) and the admin token. */
  stateDir: string;
  /** Where nodes and the Noise key are kept (default: control-server.json in `stateDir`). */
  store?: ControlStateStore;
  /** Where pre-auth keys are kept (default: `stateDir`/authkeys/). */
  authKeys?: AuthKeyBackend;
  /** MagicDNS suffix; nodes are named `<host>.<baseDomain>.` (default `tailnet.internal`). */
  baseDomain?: string;
  /** The DERP map handed to nodes (default: no regions). */
  derpMap?: DERPMap;
  policy?: AclPolicy;
  keepAliveMs?: number;
  /** How long an ephemeral node may be disconnected before it is deleted (default 30 s). */
  ephemeralTimeoutMs?: number;
  /** Node key lifetime (default 180 days; 0 = never expires). */
  nodeKeyTtlMs?: number;
  /** How often expiry is re-evaluated and pushed to streams (default 5 s). */
  sweepMs?: number;
  /** Lowest capability version accepted (default 113, as Headscale v0.29.2). */
  minCapVersion?: number;
  logger?: ControlLogger;
  /** The URL clients reach us at, for AuthURLs (default: the listening address). */
  serverURL?: string;
  /** How long a Followup register request is held before the AuthURL is repeated (default 60 s). */
  followupWaitMs?: number;
  /** How long an interactive login waits for approval (default 10 min). */
  pendingTtlMs?: number;
  /** Interactive logins waiting at once (default 256); more are refused with HTTP 429. */
  maxPending?: number;
  /** Connection limits, the request deadline and the per-source ts2021 rate (src/guard/guard.ts DEFAULT_LIMITS). */
  limits?: Partial<ConnectionLimits>;
  /** Deadlines, streams and body size of HTTP/2 inside Noise (noise-http.ts DEFAULT_NOISE_LIMITS). */
  noiseLimits?: Partial<NoiseHttpLimits>;
  /** Streaming map requests one node may hold; another one closes the oldest (default 4). */
  maxMapSessionsPerNode?: number;
}

/** Reasons the control server sheds for, besides the guard's own. */
export const CONTROL_REASONS = [
  'timeout_noise',
  'timeout_noise_idle',
  'body_too_large',
  'map_sessions_per_node',
];
