// The coordinator's messages between the SQL thread and the worker (plain data, structured clone).
import type { StoreChoice } from './store.js';

/** What quackscale_serve asks the worker to start. */
export interface CoordinatorStart {
  /** Where the control server listens (the DERP relay too, on a port of its own). */
  host: string;
  port: number;
  derpPort: number;
  /** The URL nodes reach the control server at, when not where it listens. */
  serverURL: string | undefined;
  /** MagicDNS suffix. */
  domain: string;
  store: StoreChoice;
  /** The Noise key file, the relay's certificate and the admin token. */
  dir: string;
}

/** The coordinator as quackscale_coordinator_status() reports it. */
export interface CoordinatorState {
  running: boolean;
  bound: string | null;
  controlURL: string | null;
  derpURL: string | null;
  domain: string | null;
  /** `catalog.schema` of its tables. */
  storage: string | null;
  nodes: number;
  online: number;
  /** The control server's latest warning, if any (never key material). */
  lastWarning: string | null;
}

export const STOPPED: CoordinatorState = {
  running: false,
  bound: null,
  controlURL: null,
  derpURL: null,
  domain: null,
  storage: null,
  nodes: 0,
  online: 0,
  lastWarning: null,
};

/** One node, as quackscale_nodes() lists it (times in epoch ms). */
export interface CoordinatorNode {
  id: number;
  name: string;
  hostname: string;
  ipv4: string;
  ipv6: string;
  online: boolean;
  ephemeral: boolean;
  nodeKey: string;
  created: number;
  lastSeen: number | null;
  expires: number | null;
}

/** A pre-auth key just minted: the only time its text is seen. */
export interface NewKey {
  key: string;
  id: string;
  reusable: boolean;
  ephemeral: boolean;
  /** Epoch ms, or null for never. */
  expires: number | null;
}

/** The companions' requests (quackscale_serve's is in ../protocol.ts: it brings a node up too). */
export type CoordinatorRequest =
  | { op: 'coordinator' }
  | { op: 'newKey'; reusable: boolean; ephemeral: boolean; ttlMs: number }
  | { op: 'nodes' }
  | { op: 'removeNode'; node: string }
  | { op: 'stopCoordinator' };
