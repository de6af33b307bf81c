/**
 * quackscale: a Tailscale-compatible node in TypeScript. Each layer is also importable on
 * its own: `quackscale/wireguard`, `quackscale/netstack`, `quackscale/derp`,
 * `quackscale/control`.
 */
export * as control from './control/index.js';
export * as derp from './derp/index.js';
export * as netstack from './netstack/index.js';
export * as wireguard from './wireguard/index.js';
