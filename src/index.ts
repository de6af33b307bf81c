/**
 * quackscale: a Tailscale-compatible node in TypeScript.
 *
 * @example
 * import { Tailnet } from 'quackscale';
 * const tn = new Tailnet({ hostname: 'worker-1', authKey, controlURL, stateDir });
 * await tn.up();
 *
 * Each layer is also importable on its own: `quackscale/tailnet`, `quackscale/wireguard`,
 * `quackscale/netstack`, `quackscale/derp`, `quackscale/control`.
 */

export * as control from './control/index.js';
export * as derp from './derp/index.js';
export * as netstack from './netstack/index.js';
export {
  type LocalTailnet,
  startLocalTailnet,
  Tailnet,
  type TailnetOptions,
  type TailnetStatus,
} from './tailnet/index.js';
export * as wireguard from './wireguard/index.js';
