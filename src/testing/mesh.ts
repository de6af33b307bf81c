/**
 * A tailnet's data plane in one process over the in-memory network: a relay host with STUN and
 * an in-memory DERP relay on the "internet", and one host per node (behind its own NAT router
 * unless `nat: 'none'`), each running our real magicsock (disco, STUN, CallMeMaybe, path choice),
 * WireGuard device and IP stack. Nodes find their endpoints with STUN through their NATs and are
 * introduced to each other as a control server would (node key, disco key, endpoints, DERP home),
 * so whether a direct path opens is up to the real code, as in the NAT lab. What a control server
 * adds (login, netmap deltas, packet filter, MagicDNS) is not here.
 */
import type { DerpMap } from '../derp/derpmap.js';
import { generateNodeKeyPair } from '../derp/keys.js';
import { Stack } from '../netstack/stack.js';
import { TcpEndpoint } from '../netstack/tcp/endpoint.js';
import { generateDiscoKey } from '../tailnet/disco.js';
import { Magicsock } from '../tailnet/magicsock.js';
import { Device } from '../wireguard/device.js';
import { MemoryDerp } from './derp.js';
import type { NatKind } from './network/nat.js';
import { VirtualNetwork } from './network/network.js';
import type { LinkShape } from './network/shape.js';
import { TestNetworkError } from './network/shape.js';
import { serveStun } from './stun.js';

const RELAY_IP = '203.0.113.1';
const STUN_PORT = 3478;
/** The in-memory relay's DERP region. */
export const REGION = 900;
/** The UDP port every test node binds. */
export const NODE_PORT = 41641;

/** One node of {@link createTestMesh}: where it is and how its links behave. */
export interface TestNodeSpec {
  name: string;
  /** Its router: `easy` (default), `hard` (a new port per destination), or `none` (a public address). */
  nat?: NatKind | 'none';
  /** The host's own link, and its router's link to the internet. */
  link?: LinkShape;
  natLink?: LinkShape;
}

/** A running node. */
export interface TestNode {
  name: string;
  /** Its tailnet address (100.64.0.N) and the endpoints it found (LAN, and public by STUN). */
  address: string;
  endpoints: string[];
  nodeKey: Uint8Array;
  magicsock: Magicsock;
  device: Device;
  stack: Stack;
  tcp: TcpEndpoint;
}

/** What {@link createTestMesh} builds. */
export interface TestMesh {
  net: VirtualNetwork;
  nodes: Map<string, TestNode>;
  /** The path `from`'s packets to `to` take now: `direct ip:port`, `derp`, or `none`. */
  path(from: string, to: string): string;
  close(): Promise<void>;
}

/** The DERP map of a test network: one region, the in-memory relay, with STUN on the relay host. */
export const TEST_DERP_MAP: DerpMap = {
  Regions: {
    [String(REGION)]: {
      RegionID: REGION,
      RegionCode: 'mem',
      RegionName: 'in-memory relay',
      Nodes: [
        {
          Name: '900a',
          RegionID: REGION,
          HostName: RELAY_IP,
          IPv4: RELAY_IP,
          STUNPort: STUN_PORT,
          DERPPort: 443,
        },
      ],
    },
  },
};

/** The network, its relay host with STUN, and the in-memory DERP relay; the node specs checked. */
export function createTestInternet(opts: { seed?: number; nodes: TestNodeSpec[]; relayLink?: LinkShape }): {
  net: VirtualNetwork;
  relay: MemoryDerp;
  stopStun: () => Promise<void>;
} {
  const names = new Set(opts.nodes.map((n) => n.name));
  if (names.size !== opts.nodes.length) throw new TestNetworkError('node names must differ');
  if (opts.nodes.length > 250) throw new TestNetworkError(`${opts.nodes.length} nodes: at most 250`);
  const net = new VirtualNetwork({ seed: opts.seed });
  net.addHost('relay', { ip: RELAY_IP, link: opts.relayLink });
  return { net, relay: new MemoryDerp(), stopStun: serveStun(net, 'relay', STUN_PORT) };
}

/** Adds the `index`th node's host (behind its own NAT router unless `nat: 'none'`); returns its address. */
export function placeTestHost(net: VirtualNetwork, spec: TestNodeSpec, index: number): string {
  const nat = spec.nat ?? 'easy';
  const publicIp = `203.0.113.${10 + index}`;
  const ip = nat === 'none' ? publicIp : `192.168.${index}.10`;
  if (nat !== 'none') net.addNat(spec.name, { publicIp, kind: nat, link: spec.natLink });
  net.addHost(spec.name, { ip, behind: nat === 'none' ? undefined : spec.name, link: spec.link });
  return ip;
}

/**
 * Builds the mesh and introduces every node to every other. `seed` fixes every loss, delay,
 * reordering and NAT port decision of the network.
 *
 * @example
 * const mesh = await createTestMesh({ seed: 1, nodes: [{ name: 'a' }, { name: 'b', nat: 'hard', link: { loss: 0.02 } }] });
 * const sock = tcpConnect(mesh.nodes.get('a')!.tcp, { host: mesh.nodes.get('b')!.address, port: 80 });
 * await mesh.close();
 */
export async function createTestMesh(opts: {
  seed?: number;
  nodes: TestNodeSpec[];
  relayLink?: LinkShape;
}): Promise<TestMesh> {
  const { net, relay, stopStun } = createTestInternet(opts);
  const nodes = new Map<string, TestNode>();
  const discoKeys = new Map<string, Uint8Array>();
  let index = 0;
  for (const spec of opts.nodes) {
    index++;
    const ip = placeTestHost(net, spec, index);
    const keys = generateNodeKeyPair();
    const disco = generateDiscoKey();
    const magicsock = await Magicsock.open({
      nodePrivateKey: keys.privateKey,
      nodePublicKey: keys.publicKey,
      disco,
      udp: net.bind(spec.name, NODE_PORT),
      derp: relay.options(REGION),
    });
    await magicsock.setDerpMap(TEST_DERP_MAP);
    const seen = await magicsock.stun(RELAY_IP, STUN_PORT);
    const endpoints = [`${ip}:${NODE_PORT}`, ...(seen && seen.ip !== ip ? [`${seen.ip}:${seen.port}`] : [])];
    magicsock.setLocalEndpoints(endpoints);
    const device = new Device({ privateKey: keys.privateKey, bind: magicsock, roaming: false });
    const address = `100.64.0.${index}`;
    const stack = new Stack(device, { addresses: [address] });
    nodes.set(spec.name, {
      name: spec.name,
      address,
      endpoints,
      nodeKey: keys.publicKey,
      magicsock,
      device,
      stack,
      tcp: new TcpEndpoint(stack),
    });
    discoKeys.set(spec.name, disco.publicKey);
  }
  // As control would: every node learns every other's keys, endpoints and DERP home.
  for (const a of nodes.values()) {
    for (const b of nodes.values()) {
      if (a === b) continue;
      const endpoint = a.magicsock.upsertPeer({
        nodeKey: b.nodeKey,
        discoKey: discoKeys.get(b.name),
        endpoints: b.endpoints,
        homeDERP: REGION,
      });
      a.device.addPeer({ publicKey: b.nodeKey, endpoint, allowedIPs: [`${b.address}/32`] });
    }
  }
  const path = (from: string, to: string): string => {
    const a = nodes.get(from);
    const b = nodes.get(to);
    if (!a || !b) throw new TestNetworkError(`no node '${a ? to : from}'`);
    const p = a.magicsock.pathOf(b.nodeKey);
    return p.kind === 'direct' ? `direct ${p.addr}` : p.kind;
  };
  return {
    net,
    nodes,
    path,
    close: async () => {
      for (const n of nodes.values()) {
        n.tcp.close();
        n.stack.close();
        await n.device.close();
      }
      relay.close();
      await stopStun();
      net.close();
    },
  };
}
