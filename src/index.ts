/**
 * quackscale: a Tailscale-compatible node in TypeScript. Each layer is also importable on
 * its own: `quackscale/wireguard`, `quackscale/netstack`.
 */
export * as netstack from './netstack/index.js';
export * as wireguard from './wireguard/index.js';
