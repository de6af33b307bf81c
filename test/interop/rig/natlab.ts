// A NAT lab in network namespaces: a bridge as the "internet" (203.0.113.0/24, 2001:db8::/64) in a namespace
// that also hosts the control server, routers that masquerade their LANs onto it with nftables, and hosts
// behind the routers with default routes through them. Nothing here knows about Tailscale: natlab-nodes.ts
// starts Headscale, tailscaled and our node on top.
//
// Each router behaves as a home router: endpoint-independent mapping (Linux masquerade keeps the source
// port when it can) and a firewall that drops new inbound UDP on the WAN, in both the input and forward
// chains. The input drop matters: a punch that reaches the router's own conntrack before the host behind it
// has sent anything would be confirmed as an entry for that tuple, and the host's own packets to the same
// peer would then be remapped to another port for good (an endpoint-dependent mapping by accident).
// A "hard" router masquerades with `random`: a new source port for every destination.
import { type Cleanup, execIn } from './exec.js';
import { createNetns, createVeth, ipIn, newRunTag, rigName } from './netns.js';

/** The internet side: the control server's addresses, on the bridge in the `inet` namespace. */
export const SERVER_V4 = '203.0.113.1';
export const SERVER_V6 = '2001:db8::1';

export type NatKind = 'easy' | 'hard';
export type UdpBlock = 'all' | 'ipv4' | 'none';

export interface Site {
  name: string;
  /** The router's namespace. */
  ns: string;
  index: number;
  nat: NatKind;
  /** The router's public (WAN) addresses. */
  wan4: string;
  wan6: string | undefined;
  /** Hosts behind it get 192.168.<index>.x (and 2001:db8:<index>::x with ipv6). */
  lan4Prefix: string;
  lan6Prefix: string | undefined;
  /** UDP through the router: all of it, IPv4 only, or none dropped. */
  udpBlocked: UdpBlock;
  hostCount: number;
}

export interface Host {
  name: string;
  ns: string;
  site: Site;
  /** Its current LAN addresses (they change when the host moves). */
  v4: string;
  v6: string | undefined;
  /** Moves so far: each gives the host a new interface name. */
  moves: number;
}

const nftRouter = (s: Site, udpBlocked: UdpBlock): string =>
  [
    'table inet natlab',
    'delete table inet natlab',
    'table inet natlab {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat;',
    `    oifname "wan" meta nfproto ipv4 masquerade${s.nat === 'hard' ? ' random' : ''}`,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter;',
    '    iifname "wan" meta l4proto udp ct state new drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter;',
    '    iifname "wan" meta l4proto udp ct state new drop',
    // A blocked site has UDP neither out nor in: DERP (TCP) is all that is left (of that family).
    ...(udpBlocked === 'all' ? ['    meta l4proto udp drop'] : []),
    ...(udpBlocked === 'ipv4' ? ['    meta nfproto ipv4 meta l4proto udp drop'] : []),
    '  }',
    '}',
    '',
  ].join('\n');

/** The lab's namespaces, routers and hosts; `cleanup` removes them all. */
export class NatLab {
  readonly sites: Site[] = [];
  private constructor(
    readonly tag: string,
    /** The internet: the bridge, and the control server's namespace. */
    readonly inet: string,
    readonly cleanup: Cleanup,
  ) {}

  static async create(cleanup: Cleanup): Promise<NatLab> {
    const tag = await newRunTag(cleanup);
    const inet = await createNetns(rigName(tag, 'inet'), cleanup);
    await ipIn(inet, ['link', 'add', 'br0', 'type', 'bridge']);
    await ipIn(inet, ['addr', 'add', `${SERVER_V4}/24`, 'dev', 'br0']);
    await ipIn(inet, ['addr', 'add', `${SERVER_V6}/64`, 'dev', 'br0', 'nodad']);
    await ipIn(inet, ['link', 'set', 'br0', 'up']);
    // The inet namespace routes IPv6 between sites (their LAN prefixes are routed, never NATed).
    await sysctl(inet, 'net.ipv6.conf.all.forwarding', '1');
    return new NatLab(tag, inet, cleanup);
  }

  /** A router on the internet with its own LAN (and routed IPv6 with `ipv6`). */
  async addSite(name: string, opts: { nat?: NatKind; ipv6?: boolean } = {}): Promise<Site> {
    const index = this.sites.length + 1;
    const ns = await createNetns(rigName(this.tag, `r${name}`), this.cleanup);
    const site: Site = {
      name,
      ns,
      index,
      nat: opts.nat ?? 'easy',
      wan4: `203.0.113.${10 + index}`,
      wan6: opts.ipv6 ? `2001:db8::${10 + index}` : undefined,
      lan4Prefix: `192.168.${index}`,
      lan6Prefix: opts.ipv6 ? `2001:db8:${index}:` : undefined,
      udpBlocked: 'none',
      hostCount: 0,
    };
    await createVeth(
      { ns: this.inet, name: `w${name}` },
      { ns, name: 'wan', cidr: `${site.wan4}/24` },
      this.cleanup,
    );
    await ipIn(this.inet, ['link', 'set', `w${name}`, 'master', 'br0']);
    await ipIn(ns, ['route', 'add', 'default', 'via', SERVER_V4]);
    await ipIn(ns, ['link', 'add', 'lan', 'type', 'bridge']);
    await ipIn(ns, ['addr', 'add', `${site.lan4Prefix}.1/24`, 'dev', 'lan']);
    await ipIn(ns, ['link', 'set', 'lan', 'up']);
    await sysctl(ns, 'net.ipv4.ip_forward', '1');
    if (site.wan6 !== undefined) {
      await ipIn(ns, ['addr', 'add', `${site.wan6}/64`, 'dev', 'wan', 'nodad']);
      await ipIn(ns, ['addr', 'add', `${site.lan6Prefix}:1/64`, 'dev', 'lan', 'nodad']);
      await ipIn(ns, ['-6', 'route', 'add', 'default', 'via', SERVER_V6]);
      await sysctl(ns, 'net.ipv6.conf.all.forwarding', '1');
      await ipIn(this.inet, ['-6', 'route', 'add', `${site.lan6Prefix}:/64`, 'via', site.wan6]);
    }
    await execIn(ns, 'nft', ['-f', '-'], { input: nftRouter(site, 'none') });
    this.sites.push(site);
    return site;
  }

  /** A host behind `site`'s router, with its default route(s) through it. */
  async addHost(site: Site, name: string): Promise<Host> {
    const ns = await createNetns(rigName(this.tag, `h${name}`), this.cleanup);
    const host: Host = { name, ns, site, v4: '', v6: undefined, moves: 0 };
    await this.plug(host, site);
    return host;
  }

  /**
   * Roaming: unplugs the host from its router and plugs it into `site`'s, with a new address there, as a
   * laptop moving from one Wi-Fi to another. Processes in the host keep running; their sockets stay bound.
   */
  async moveHost(host: Host, site: Site): Promise<void> {
    await ipIn(host.ns, ['link', 'del', linkName(host)]);
    host.moves++;
    await this.plug(host, site);
  }

  private async plug(host: Host, site: Site): Promise<void> {
    const k = 10 + site.hostCount++;
    host.site = site;
    host.v4 = `${site.lan4Prefix}.${k}`;
    host.v6 = site.lan6Prefix === undefined ? undefined : `${site.lan6Prefix}:${k}`;
    const port = `h${host.name}${host.moves}`;
    await createVeth(
      { ns: site.ns, name: port },
      { ns: host.ns, name: linkName(host), cidr: `${host.v4}/24` },
      this.cleanup,
    );
    await ipIn(site.ns, ['link', 'set', port, 'master', 'lan']);
    await ipIn(host.ns, ['route', 'add', 'default', 'via', `${site.lan4Prefix}.1`]);
    if (host.v6 !== undefined) {
      await ipIn(host.ns, ['addr', 'add', `${host.v6}/64`, 'dev', linkName(host), 'nodad']);
      await ipIn(host.ns, ['-6', 'route', 'add', 'default', 'via', `${site.lan6Prefix}:1`]);
    }
  }

  /** Sets the MTU of `hosts`' interfaces and of their ports on `site`'s LAN bridge (a jumbo-frame LAN, or a shrinking path). */
  async setLanMtu(site: Site, hosts: Host[], mtu: number): Promise<void> {
    // Senders first, so that no frame larger than a port takes is in flight when the ports shrink.
    for (const h of hosts) await ipIn(h.ns, ['link', 'set', linkName(h), 'mtu', String(mtu)]);
    for (const h of hosts) await ipIn(site.ns, ['link', 'set', `h${h.name}${h.moves}`, 'mtu', String(mtu)]);
    await ipIn(site.ns, ['link', 'set', 'lan', 'mtu', String(mtu)]);
  }

  /** Drops UDP through `site`'s router (a network that allows only TCP), or lifts that again. */
  async setUdpBlocked(site: Site, blocked: UdpBlock): Promise<void> {
    // The drop applies to flows already tracked too; packets it drops never become conntrack entries.
    await execIn(site.ns, 'nft', ['-f', '-'], { input: nftRouter(site, blocked) });
    site.udpBlocked = blocked;
  }
}

/** What `host` has sent on its interface (bytes and frames, Ethernet headers included) and the IP fragments it made. */
export async function txCounters(host: Host): Promise<{ bytes: number; packets: number; frags: number }> {
  const dir = `/sys/class/net/${linkName(host)}/statistics`;
  const link = await execIn(host.ns, 'cat', [`${dir}/tx_bytes`, `${dir}/tx_packets`]);
  const [bytes, packets] = link.stdout.trim().split(/\s+/).map(Number);
  const snmp = (await execIn(host.ns, 'cat', ['/proc/net/snmp'])).stdout
    .split('\n')
    .filter((l) => l.startsWith('Ip:'));
  const names = snmp[0]!.split(/\s+/);
  const values = snmp[1]!.split(/\s+/);
  return { bytes: bytes!, packets: packets!, frags: Number(values[names.indexOf('FragCreates')]) };
}

/** The host's interface: a new name after each move, so the old one is surely gone. */
const linkName = (host: Host): string => `eth${host.moves}`;

function sysctl(ns: string, key: string, value: string): Promise<unknown> {
  return execIn(ns, 'sysctl', ['-qw', `${key}=${value}`]);
}
