/**
 * The netmap's peers applied to WireGuard and magicsock, as wgengine's Reconfig does: each peer a
 * lazy WireGuard peer (configured on its first packet) and a magicsock peer with its paths; a
 * peer whose key or disco key changed started afresh; one whose allowed IPs changed
 * (routes/node-routing.ts chooses them: its addresses and the routes it wins) keeps its sessions
 * with the new set, as wgengine's SyncDevicePeer does; peers gone from the netmap removed. Deltas
 * keep unchanged peers' node objects, so with thousands of peers only the changed ones are touched.
 */
import type { NetNode } from '../control/netmap.js';
import type { Device } from '../wireguard/device.js';
import type { Magicsock } from './magicsock.js';
import { keyBytes } from './status.js';

/** What was applied for a peer: its keys and allowed IPs, and the netmap node and our DERP home then. */
interface Applied {
  nodeKey: string;
  allowed: string;
  discoKey: string | undefined;
  node: NetNode;
  home: number | undefined;
}

/** The peers of one node's WireGuard device and magicsock, kept equal to the netmap's. */
export class PeerTable {
  private readonly applied = new Map<number, Applied>();

  constructor(
    private readonly device: Device,
    private readonly magicsock: Magicsock,
  ) {}

  /**
   * Configures every peer of the netmap and removes those no longer in it. `allowedOf` gives a
   * peer's WireGuard allowed IPs (default: the netmap's AllowedIPs).
   */
  apply(
    peers: Iterable<NetNode>,
    allowedOf: (peer: NetNode) => readonly string[] = (p) => p.allowedIPs,
  ): void {
    const seen = new Set<number>();
    for (const peer of peers) {
      seen.add(peer.id);
      this.configure(peer, allowedOf(peer));
    }
    for (const [id, a] of this.applied) {
      if (seen.has(id)) continue;
      this.device.removePeer(keyBytes(a.nodeKey));
      this.magicsock.removePeer(keyBytes(a.nodeKey));
      this.applied.delete(id);
    }
  }

  private configure(peer: NetNode, allowedIPs: readonly string[]): void {
    const home = this.magicsock.homeRegion;
    const prev = this.applied.get(peer.id);
    const allowed = [...allowedIPs].sort().join(',');
    if (prev?.node === peer && prev.home === home && prev.allowed === allowed) return;
    const nodeKey = keyBytes(peer.nodeKey);
    // A changed key is a different WireGuard peer: start it afresh. So is a changed disco key: the
    // peer restarted and lost its sessions, and ours would otherwise go on sealing with dead keys
    // until WireGuard's rekey timeout (wgengine Reconfig removes such peers the same way).
    const fresh =
      !prev ||
      prev.nodeKey !== peer.nodeKey ||
      (prev.discoKey !== undefined && prev.discoKey !== peer.discoKey);
    if (prev && fresh) this.device.removePeer(keyBytes(prev.nodeKey));
    else if (prev && prev.allowed !== allowed) this.device.replaceAllowedIPs(nodeKey, [...allowedIPs]);
    // A new node key is a new magicsock peer too: drop the old key's paths and disco state.
    if (prev && prev.nodeKey !== peer.nodeKey) this.magicsock.removePeer(keyBytes(prev.nodeKey));
    const endpoint = this.magicsock.upsertPeer({
      nodeKey,
      discoKey: peer.discoKey ? keyBytes(peer.discoKey) : undefined,
      endpoints: peer.endpoints,
      homeDERP: peer.homeDERP,
    });
    // Lazily: configured on the first packet to it or handshake from it (Device.addLazyPeer).
    if (fresh) this.device.addLazyPeer({ publicKey: nodeKey, endpoint, allowedIPs: [...allowedIPs] });
    this.applied.set(peer.id, {
      nodeKey: peer.nodeKey,
      allowed,
      discoKey: peer.discoKey || undefined,
      node: peer,
      home,
    });
  }
}
