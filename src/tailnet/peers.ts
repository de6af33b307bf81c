/**
 * The netmap's peers applied to WireGuard and magicsock, as wgengine's Reconfig does: each peer a
 * lazy WireGuard peer (configured on its first packet) and a magicsock peer with its paths; a
 * peer whose key, allowed IPs or disco key changed started afresh; peers gone from the netmap
 * removed. Deltas keep unchanged peers' node objects, so with thousands of peers only the changed
 * ones are touched.
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

  /** Configures every peer of the netmap and removes those no longer in it. */
  apply(peers: Iterable<NetNode>): void {
    const seen = new Set<number>();
    for (const peer of peers) {
      seen.add(peer.id);
      this.configure(peer);
    }
    for (const [id, a] of this.applied) {
      if (seen.has(id)) continue;
      this.device.removePeer(keyBytes(a.nodeKey));
      this.magicsock.removePeer(keyBytes(a.nodeKey));
      this.applied.delete(id);
    }
  }

  private configure(peer: NetNode): void {
    const home = this.magicsock.homeRegion;
    const prev = this.applied.get(peer.id);
    if (prev?.node === peer && prev.home === home) return;
    const nodeKey = keyBytes(peer.nodeKey);
    const allowed = [...peer.allowedIPs].sort().join(',');
    // A changed key or allowed-IP set is a different WireGuard peer: start it afresh. So is a changed
    // disco key: the peer restarted and lost its sessions, and ours would otherwise go on sealing with
    // dead keys until WireGuard's rekey timeout (wgengine Reconfig removes such peers the same way).
    const fresh =
      !prev ||
      prev.nodeKey !== peer.nodeKey ||
      prev.allowed !== allowed ||
      (prev.discoKey !== undefined && prev.discoKey !== peer.discoKey);
    if (prev && fresh) this.device.removePeer(keyBytes(prev.nodeKey));
    // A new node key is a new magicsock peer too: drop the old key's paths and disco state.
    if (prev && prev.nodeKey !== peer.nodeKey) this.magicsock.removePeer(keyBytes(prev.nodeKey));
    const endpoint = this.magicsock.upsertPeer({
      nodeKey,
      discoKey: peer.discoKey ? keyBytes(peer.discoKey) : undefined,
      endpoints: peer.endpoints,
      homeDERP: peer.homeDERP,
    });
    // Lazily: configured on the first packet to it or handshake from it (Device.addLazyPeer).
    if (fresh) this.device.addLazyPeer({ publicKey: nodeKey, endpoint, allowedIPs: [...peer.allowedIPs] });
    this.applied.set(peer.id, {
      nodeKey: peer.nodeKey,
      allowed,
      discoKey: peer.discoKey || undefined,
      node: peer,
      home,
    });
  }
}
