/**
 * The parts of a running {@link Tailnet} that its diagnostics read (status-json.ts, metrics/,
 * netcheck/): one view handed out by the node, so that each diagnostic lives in its own file
 * and the node class only gains a one-line method per diagnostic.
 */
import type { ControlClient } from '../control/client.js';
import type { NetMap } from '../control/netmap.js';
import type { Stack } from '../netstack/stack.js';
import type { TcpEndpoint } from '../netstack/tcp/endpoint.js';
import type { Device } from '../wireguard/device.js';
import type { PacketFilter } from './filter.js';
import type { Magicsock } from './magicsock.js';
import type { TailnetOptions } from './options.js';
import type { NodeRouting } from './routes/node-routing.js';
import type { Tsmp } from './tsmp/tsmp.js';

/** A DERP region's code from the netmap's DERP map, or its number (`?` for none) when unknown. */
export function derpCodeIn(netmap: NetMap | undefined, region: number | undefined): string {
  const r = region === undefined ? undefined : netmap?.derpMap?.Regions[String(region)];
  return r?.RegionCode ?? String(region ?? '?');
}

/** What a node is made of right now; the optional parts exist once it is up. */
export interface NodeInternals {
  /** What the node was given (read only; it holds the auth key, so never log it whole). */
  opts: Readonly<TailnetOptions>;
  closed: boolean;
  /** The last AuthURL control gave (an interactive login waiting for approval), or ''. */
  authURL: string;
  control: ControlClient | undefined;
  magicsock: Magicsock | undefined;
  device: Device | undefined;
  stack: Stack | undefined;
  tcp: TcpEndpoint | undefined;
  filter: PacketFilter;
  tsmp: Tsmp | undefined;
  netmap: NetMap | undefined;
  /** Routes used and served (routes/). */
  routing: NodeRouting;
}
