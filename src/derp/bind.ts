/**
 * A WireGuard {@link Bind} over DERP (DESIGN.md, "The seams"): endpoints are peers' node
 * public keys (`derp:<hex>`), datagrams travel as DERP packets through the peer's region (or
 * our home region when the peer's is unknown), and a Device runs over a relay unchanged.
 */
import type { Bind, Endpoint } from '../wireguard/bind.js';
import { DerpError } from './errors.js';
import { fingerprint, keyFromHex, keyToHex } from './keys.js';
import { DerpClientManager, type DerpClientManagerOptions } from './manager.js';

/**
 * A peer reached through DERP, identified by its node public key.
 *
 * @example
 * const ep = new DerpEndpoint(peerPublicKey);
 * ep.key;   // 'derp:<64 hex digits>'
 */
export class DerpEndpoint implements Endpoint {
  readonly key: string;
  constructor(readonly publicKey: Uint8Array) {
    this.key = `derp:${keyToHex(publicKey)}`;
  }
  toString(): string {
    return `derp:${fingerprint(this.publicKey)}`;
  }
}

export interface DerpBindOptions extends DerpClientManagerOptions {
  /** The home region: connected at open and used for peers whose region is unknown. */
  homeRegion: number;
}

/**
 * @example
 * const bind = await DerpBind.open({ privateKey, derpMap, homeRegion: 900 });
 * const device = new Device({ privateKey, bind });
 * device.addPeer({ publicKey: peerKey, endpoint: bind.endpointFor(peerKey), allowedIPs: ['10.0.0.2/32'] });
 */
export class DerpBind implements Bind {
  private handler: (from: Endpoint, datagram: Uint8Array) => void = () => {};
  private readonly endpoints = new Map<string, DerpEndpoint>();
  private readonly peerRegions = new Map<string, number>();
  private closed = false;

  constructor(
    readonly manager: DerpClientManager,
    private readonly homeRegion: number,
  ) {
    manager.onPacket((region, src, data) => {
      if (this.closed) return;
      const id = Buffer.from(src.buffer, src.byteOffset, src.byteLength).toString('latin1');
      let ep = this.endpoints.get(id);
      if (ep === undefined) {
        ep = new DerpEndpoint(src.slice());
        this.endpoints.set(id, ep);
      }
      // Answer through the region the peer last spoke from unless told otherwise.
      if (!this.peerRegions.has(id)) this.peerRegions.set(id, region);
      this.handler(ep, data);
    });
  }

  /** Makes a manager for `opts`, connects the home region, and returns the bind. */
  static async open(opts: DerpBindOptions): Promise<DerpBind> {
    const manager = new DerpClientManager(opts);
    const bind = new DerpBind(manager, opts.homeRegion);
    try {
      await manager.setHome(opts.homeRegion);
    } catch (err) {
      manager.close();
      throw err;
    }
    return bind;
  }

  /** The endpoint for a peer's node key. */
  endpointFor(publicKey: Uint8Array): DerpEndpoint {
    const id = Buffer.from(publicKey).toString('latin1');
    let ep = this.endpoints.get(id);
    if (ep === undefined) {
      ep = new DerpEndpoint(publicKey.slice());
      this.endpoints.set(id, ep);
    }
    return ep;
  }

  /** Routes a peer through `regionId` (its home region from the netmap). */
  setPeerRegion(publicKey: Uint8Array, regionId: number): void {
    this.peerRegions.set(Buffer.from(publicKey).toString('latin1'), regionId);
  }

  /**
   * Sends through the peer's region. Like UdpBind, the datagram is referenced until written
   * (not copied); a drop while the region connects or is backed up is silent, as on UDP.
   */
  send(to: Endpoint, datagram: Uint8Array): void {
    if (this.closed) return;
    const ep = to instanceof DerpEndpoint ? to : this.parseEndpoint(to.key);
    const id = Buffer.from(ep.publicKey).toString('latin1');
    // A dropped packet is a transient network condition: Bind.send never throws for it.
    this.manager.send(this.peerRegions.get(id) ?? this.homeRegion, ep.publicKey, datagram);
  }

  onDatagram(handler: (from: Endpoint, datagram: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** Accepts `derp:<hex>`, `nodekey:<hex>` or bare hex. */
  parseEndpoint(text: string): DerpEndpoint {
    const hex = text.startsWith('derp:') ? text.slice(5) : text;
    try {
      return this.endpointFor(keyFromHex(hex));
    } catch (err) {
      throw new DerpError('BAD_CONFIG', 'a DERP endpoint is derp:<64 hex digits of a node public key>', {
        cause: err,
      });
    }
  }

  close(): void {
    this.closed = true;
    this.manager.close();
  }
}
