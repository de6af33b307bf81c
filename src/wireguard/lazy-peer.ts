/**
 * A peer known only by its key, allowed IPs and endpoint (Device.addLazyPeer): it holds its
 * routes in the device's allowed-IPs table, but no precomputed key, sessions or timers, until
 * the device configures it on first need.
 */
import type { PeerOptions } from './device.js';

/** Emitted as `'peerConfigured'` when a lazy peer is configured on first need. */
export interface PeerConfiguredEvent {
  peer: string;
  /** `outbound`: a packet was routed to it; `inbound`: a handshake initiation carried its key. */
  reason: 'outbound' | 'inbound';
}

export class LazyPeer {
  constructor(
    readonly opts: PeerOptions,
    readonly publicKeyText: string,
  ) {}
}
