/**
 * A tailnet node in a Node.js process: the TypeScript counterpart of Tailscale's
 * `tsnet.Server`. It logs in to a control server (Tailscale or Headscale), keeps the netmap,
 * runs WireGuard over magicsock (direct UDP or DERP), enforces the packet filter, and gives
 * the program `dial` / `listen` / `ping` on its tailnet addresses.
 *
 * @example
 * const tn = new Tailnet({ hostname: 'worker-1', controlURL, authKey, stateDir });
 * await tn.up();
 * console.log(tn.status().self.addresses);
 * await tn.close();
 */
import { EventEmitter } from 'node:events';
import { ControlClient } from '../control/client.js';
import type { NetMap, NetMapChange, NetNode } from '../control/netmap.js';
import type { DerpMap } from '../derp/derpmap.js';
import { Stack } from '../netstack/stack.js';
import { Device } from '../wireguard/device.js';
import { type Logger, silentLogger } from '../wireguard/logger.js';
import { interfaceEndpoints, mergeEndpoints, stunTargets } from './endpoints.js';
import { PacketFilter } from './filter.js';
import { FilteredLink } from './filtered-link.js';
import { Magicsock } from './magicsock.js';
import { NameResolver, UnknownHostError } from './names.js';

/** Tailscale's hosted control plane, the default as in tsnet. */
export const DEFAULT_CONTROL_URL = 'https://controlplane.tailscale.com';

export interface TailnetOptions {
  /** Node name; defaults to the saved one, then the OS hostname. */
  hostname?: string;
  /** Auth key (Tailscale auth key or Headscale pre-auth key); defaults to `TS_AUTHKEY`. */
  authKey?: string;
  /** Control server URL; default Tailscale's. */
  controlURL?: string;
  /** Where keys and login are kept (created 0700, files 0600). */
  stateDir: string;
  /** Register as an ephemeral node: control deletes it soon after it goes away. */
  ephemeral?: boolean;
  logger?: Logger;
  /** UDP port for WireGuard and disco (0 = any). */
  port?: number;
  /** Reach DERP servers over plain HTTP (`TS_DEBUG_USE_DERP_HTTP`), for test relays. */
  derpHttp?: boolean;
  /** UDP endpoints to advertise instead of discovering them. */
  endpoints?: string[];
  /** Never use direct UDP paths (like `TS_DEBUG_ALWAYS_USE_DERP`). */
  derpOnly?: boolean;
  /** Called with the URL to approve an interactive login. */
  onAuthURL?: (url: string) => void;
}

/** One peer as {@link Tailnet.status} reports it. */
export interface PeerStatus {
  name: string;
  hostname: string;
  addresses: string[];
  online: boolean | undefined;
  /** `direct IP:PORT`, `derp REGION`, or `none`. */
  path: string;
  /** Wall-clock ms of the latest WireGuard handshake, if any. */
  lastHandshake: number | undefined;
  rxBytes: number;
  txBytes: number;
}

export interface TailnetStatus {
  running: boolean;
  self: { name: string; hostname: string; addresses: string[]; derpRegion: number | undefined };
  peers: PeerStatus[];
  /** Inbound packets the packet filter dropped, by reason. */
  filterDrops: Record<string, number>;
}

const unprefix = (a: string) => a.replace(/\/\d+$/, '');
const keyBytes = (text: string) => new Uint8Array(Buffer.from(text.slice(text.indexOf(':') + 1), 'hex'));

export class Tailnet extends EventEmitter {
  private readonly opts: TailnetOptions;
  private control: ControlClient | undefined;
  private magicsock: Magicsock | undefined;
  private device: Device | undefined;
  /** The node's IP stack (ICMP, and TCP/UDP sockets), once up. */
  stack: Stack | undefined;
  private filter: PacketFilter = new PacketFilter([], []);
  private names = new NameResolver([], '');
  private netmap: NetMap | undefined;
  private peerKeys = new Map<number, { nodeKey: string; allowed: string }>();
  private readonly log: Logger;
  private closed = false;

  constructor(opts: TailnetOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
  }

  /** Logs in (auth key, saved login, or interactive), brings up WireGuard, and resolves with the first netmap applied. */
  async up(): Promise<TailnetStatus> {
    if (this.closed) throw new Error('tailnet node is closed');
    if (this.device) return this.status();
    const control = await ControlClient.open({
      serverURL: this.opts.controlURL ?? DEFAULT_CONTROL_URL,
      stateDir: this.opts.stateDir,
      hostname: this.opts.hostname,
      authKey: this.opts.authKey ?? process.env.TS_AUTHKEY,
      ephemeral: this.opts.ephemeral,
      logger: this.log,
      onAuthURL: (url) => {
        this.emit('authURL', url);
        this.opts.onAuthURL?.(url);
      },
    });
    this.control = control;
    await control.login();
    const nodeKey = control.state.nodeKey!;
    const disco = control.state.discoKey;
    const magicsock = await Magicsock.open({
      nodePrivateKey: nodeKey.exportRaw(),
      nodePublicKey: nodeKey.publicKey.raw,
      disco: { publicKey: disco.publicKey.raw, secretKey: disco.exportRaw() },
      port: this.opts.port,
      derpHttp: this.opts.derpHttp,
      endpoints: this.opts.endpoints,
      derpOnly: this.opts.derpOnly,
      logger: this.log,
    });
    this.magicsock = magicsock;
    const localEndpoints = this.opts.derpOnly
      ? []
      : (this.opts.endpoints ?? interfaceEndpoints(magicsock.port));
    magicsock.setLocalEndpoints(localEndpoints);
    this.device = new Device({
      privateKey: nodeKey.exportRaw(),
      bind: magicsock,
      roaming: false,
      logger: this.log,
    });
    control.on('netmap', (nm, changes) => {
      this.apply(nm, changes).catch((err: unknown) => this.log.warn(`netmap: ${(err as Error).message}`));
    });
    control.start();
    await control
      .setEndpoints(localEndpoints)
      .catch((err: unknown) => this.log.debug(`endpoints: ${(err as Error).message}`));
    const nm = await control.waitForNetmap((m) => m.self.addresses.length > 0 && m.derpMap !== undefined);
    await this.apply(nm, [{ kind: 'full' }]);
    if (!this.opts.endpoints && !this.opts.derpOnly && nm.derpMap)
      void this.discoverEndpoints(nm.derpMap as DerpMap, localEndpoints);
    return this.status();
  }

  /** Applies a netmap: DERP map, our addresses, peers (WireGuard + paths), filter and names. */
  private async apply(nm: NetMap, changes: readonly NetMapChange[]): Promise<void> {
    const ms = this.magicsock;
    const dev = this.device;
    if (!ms || !dev || this.closed) return;
    this.netmap = nm;
    if (
      nm.derpMap &&
      (changes.some((c) => c.kind === 'full' || c.kind === 'derp-map') || ms.homeRegion === undefined)
    ) {
      await ms.setDerpMap(nm.derpMap as DerpMap);
    }
    const self = nm.self.addresses.map(unprefix);
    if (!this.stack) this.stack = new Stack(new FilteredLink(dev, () => this.filter), { addresses: self });
    this.filter = new PacketFilter(nm.packetFilter, self);
    this.names = new NameResolver(
      [nm.self, ...nm.peers.values()].map((n) => ({ name: n.name, addresses: n.addresses.map(unprefix) })),
      nm.magicDNSSuffix || nm.domain,
    );
    const seen = new Set<number>();
    for (const peer of nm.peers.values()) {
      seen.add(peer.id);
      this.configurePeer(peer);
    }
    for (const [id, k] of this.peerKeys) {
      if (seen.has(id)) continue;
      dev.removePeer(keyBytes(k.nodeKey));
      ms.removePeer(keyBytes(k.nodeKey));
      this.peerKeys.delete(id);
    }
    this.emit('netmap', nm, changes);
  }

  private configurePeer(peer: NetNode): void {
    const dev = this.device!;
    const nodeKey = keyBytes(peer.nodeKey);
    const allowed = [...peer.allowedIPs].sort().join(',');
    const prev = this.peerKeys.get(peer.id);
    // A changed key or allowed-IP set is a different WireGuard peer: start it afresh.
    if (prev && (prev.nodeKey !== peer.nodeKey || prev.allowed !== allowed))
      dev.removePeer(keyBytes(prev.nodeKey));
    const endpoint = this.magicsock!.upsertPeer({
      nodeKey,
      discoKey: peer.discoKey ? keyBytes(peer.discoKey) : undefined,
      endpoints: peer.endpoints,
      homeDERP: peer.homeDERP,
    });
    if (!prev || prev.nodeKey !== peer.nodeKey || prev.allowed !== allowed) {
      dev.addPeer({ publicKey: nodeKey, endpoint, allowedIPs: [...peer.allowedIPs] });
    }
    this.peerKeys.set(peer.id, { nodeKey: peer.nodeKey, allowed });
  }

  /** STUN against the DERP map's servers, then advertise what they saw too. */
  private async discoverEndpoints(map: DerpMap, local: string[]): Promise<void> {
    const ms = this.magicsock;
    if (!ms) return;
    const seen = await Promise.all(
      stunTargets(map)
        .slice(0, 3)
        .map((t) => ms.stun(t.host, t.port)),
    );
    const all = mergeEndpoints(local, seen);
    if (all.length === local.length || this.closed) return;
    ms.setLocalEndpoints(all);
    await this.control
      ?.setEndpoints(all)
      .catch((err: unknown) => this.log.debug(`endpoints: ${(err as Error).message}`));
  }

  /** The peer node a host names (MagicDNS short name, FQDN or tailnet address). */
  peerFor(host: string): NetNode {
    const nm = this.requireNetmap();
    const addr = this.names.resolve(host);
    for (const p of nm.peers.values()) if (p.addresses.some((a) => unprefix(a) === addr)) return p;
    throw new UnknownHostError(host);
  }

  /** The address to dial for a host (MagicDNS name or tailnet literal). */
  resolve(host: string, family?: 4 | 6): string {
    this.requireNetmap();
    return this.names.resolve(host, family);
  }

  /** True if the host is reached over the tailnet (a tailnet name or address). */
  isTailnetHost(host: string): boolean {
    return this.names.isTailnetHost(host);
  }

  /**
   * A disco ping, as `tailscale ping`: reports whether the pong came over a direct path or
   * DERP, and the latency. Rejects if no pong arrives within 5 s.
   */
  async ping(host: string): Promise<{ node: string; ip: string; via: string; latencyMs: number }> {
    const peer = this.peerFor(host);
    const r = await this.magicsock!.ping(keyBytes(peer.nodeKey));
    if (!r) throw new Error(`ping ${host}: no reply within 5 s`);
    const via =
      r.via === 'derp'
        ? `DERP(${this.derpCode(peer.homeDERP || this.magicsock!.homeRegion)})`
        : `${r.via.ip.includes(':') ? `[${r.via.ip}]` : r.via.ip}:${r.via.port}`;
    return { node: peer.shortName, ip: unprefix(peer.addresses[0] ?? ''), via, latencyMs: r.latencyMs };
  }

  private derpCode(region: number | undefined): string {
    const r = region === undefined ? undefined : this.netmap?.derpMap?.Regions[String(region)];
    return r?.RegionCode ?? String(region ?? '?');
  }

  /** The netmap's peers, as status reports them. */
  peers(): PeerStatus[] {
    return this.status().peers;
  }

  status(): TailnetStatus {
    const nm = this.netmap;
    const wg = new Map((this.device?.status().peers ?? []).map((p) => [p.publicKey, p]));
    const peers: PeerStatus[] = [];
    for (const p of nm?.peers.values() ?? []) {
      const nodeKey = keyBytes(p.nodeKey);
      const w = wg.get(Buffer.from(nodeKey).toString('base64'));
      const path = this.magicsock?.pathOf(nodeKey) ?? { kind: 'none' as const };
      peers.push({
        name: p.name,
        hostname: p.shortName,
        addresses: p.addresses.map(unprefix),
        online: p.online,
        path:
          path.kind === 'direct'
            ? `direct ${path.addr}`
            : path.kind === 'derp'
              ? `derp ${this.derpCode(path.region)}`
              : 'none',
        lastHandshake: w?.latestHandshake,
        rxBytes: w?.rxBytes ?? 0,
        txBytes: w?.txBytes ?? 0,
      });
    }
    return {
      running: this.device !== undefined && !this.closed,
      self: {
        name: nm?.self.name ?? '',
        hostname: nm?.self.shortName ?? this.opts.hostname ?? '',
        addresses: nm?.self.addresses.map(unprefix) ?? [],
        derpRegion: this.magicsock?.homeRegion,
      },
      peers,
      filterDrops: { ...this.filter.stats.dropReasons },
    };
  }

  private requireNetmap(): NetMap {
    if (!this.netmap) throw new Error('tailnet node is not up: call up() first');
    return this.netmap;
  }

  /** Logs the node out of the tailnet (its key expires; ephemeral nodes are deleted) and closes it. */
  async logout(): Promise<void> {
    await this.control?.logout();
    await this.close();
  }

  /** Stops everything; afterwards nothing keeps the process alive. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stack?.close();
    await this.control?.close();
    await this.device?.close();
    await this.magicsock?.close();
    this.emit('close');
  }
}
