/** What magicsock knows of a peer apart from its paths: its WireGuard endpoint, netmap facts and traffic. */
import type { Endpoint } from '../wireguard/bind.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** Peers are keyed by their endpoint's key, so a send finds its peer without converting the node key. */
export const peerKey = (nodeKey: Uint8Array) => `peer:${hex(nodeKey)}`;

/** WireGuard's view of a peer: one endpoint per node key, whatever path carries it. */
export class PeerEndpoint implements Endpoint {
  readonly key: string;
  constructor(readonly nodeKey: Uint8Array) {
    this.key = peerKey(nodeKey);
  }
  toString(): string {
    return `peer ${hex(this.nodeKey).slice(0, 8)}`;
  }
}

/** What magicsock needs to know about a peer, from the netmap. */
export interface MagicPeer {
  nodeKey: Uint8Array;
  discoKey: Uint8Array | undefined;
  /** "ip:port" / "[ip]:port" endpoints control reported. */
  endpoints: readonly string[];
  homeDERP: number;
}

/** WireGuard datagrams to and from one peer, by path (disco and STUN are not counted). */
export interface PeerTraffic {
  directTxPackets: number;
  directTxBytes: number;
  derpTxPackets: number;
  derpTxBytes: number;
  directRxPackets: number;
  directRxBytes: number;
  derpRxPackets: number;
  derpRxBytes: number;
}

/** A peer's counters before any traffic. */
export const noTraffic = (): PeerTraffic => ({
  directTxPackets: 0,
  directTxBytes: 0,
  derpTxPackets: 0,
  derpTxBytes: 0,
  directRxPackets: 0,
  directRxBytes: 0,
  derpRxPackets: 0,
  derpRxBytes: 0,
});
