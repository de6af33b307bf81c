/**
 * A whole tailnet in one process: our control server, an in-memory DERP relay with STUN, and N
 * {@link Tailnet} nodes whose UDP and DERP traffic crosses the in-memory network (NATs, loss,
 * delay, reordering, MTU, all from a seed). Each node logs in, gets its netmap, packet filter
 * and MagicDNS names from the control server and finds its paths with its real disco and STUN
 * code, as it would on the internet. The control server is reached over loopback TCP (Node's
 * HTTP/2 client dials it); nothing else touches a host socket, and nothing needs root.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AclPolicy } from '../control/server/policy.js';
import { ControlServer } from '../control/server/server.js';
import type { DERPMap } from '../control/tailcfg.js';
import { Tailnet } from '../tailnet/tailnet.js';
import type { Logger } from '../wireguard/logger.js';
import type { MemoryDerp } from './derp.js';
import {
  createTestInternet,
  NODE_PORT,
  placeTestHost,
  REGION,
  TEST_DERP_MAP,
  type TestNodeSpec,
} from './mesh.js';
import type { VirtualNetwork } from './network/network.js';
import { type LinkShape, TestNetworkError } from './network/shape.js';

/** What {@link createTestTailnet} builds. */
export interface TestTailnet {
  net: VirtualNetwork;
  control: ControlServer;
  /** The in-memory DERP relay (its `server.metrics` count what it relayed and dropped). */
  relay: MemoryDerp;
  /** The nodes by name, each up (logged in, with a netmap and a DERP home). */
  nodes: Map<string, Tailnet>;
  /** The path `from`'s packets to `to` take now: `direct ip:port`, `derp mem` (the relay), or `none`. */
  path(from: string, to: string): string;
  /** Closes every node, the control server and the network, and removes their state. */
  close(): Promise<void>;
}

/**
 * Builds the tailnet and brings every node up. `seed` fixes every loss, delay, reordering and
 * NAT port decision of the network; `policy` is the control server's ACL policy (default: all
 * nodes reach all).
 *
 * @example
 * const tn = await createTestTailnet({ seed: 7, nodes: [{ name: 'a' }, { name: 'b', nat: 'hard', link: { loss: 0.02 } }] });
 * await tn.nodes.get('b')!.listen(80, http.createServer((_, res) => res.end('hi')));
 * const res = await tn.nodes.get('a')!.fetch('http://b/');
 * await tn.close();
 */
export async function createTestTailnet(opts: {
  seed?: number;
  nodes: TestNodeSpec[];
  relayLink?: LinkShape;
  policy?: AclPolicy;
  logger?: Logger;
}): Promise<TestTailnet> {
  const { net, relay, stopStun } = createTestInternet(opts);
  const dirs: string[] = [];
  const tempDir = async (prefix: string) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  const nodes = new Map<string, Tailnet>();
  let control: ControlServer | undefined;
  const close = async (): Promise<void> => {
    await Promise.all([...nodes.values()].map((n) => n.close()));
    await control?.close();
    relay.close();
    await stopStun();
    net.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    control = await ControlServer.create({
      stateDir: await tempDir('qs-testctl-'),
      derpMap: TEST_DERP_MAP as DERPMap,
      policy: opts.policy,
    });
    const controlURL = await control.listen(0, '127.0.0.1');
    const authKey = await control.createAuthKey({ reusable: true });
    let index = 0;
    for (const spec of opts.nodes) {
      const ip = placeTestHost(net, spec, ++index);
      const node = new Tailnet({
        hostname: spec.name,
        controlURL,
        authKey,
        stateDir: await tempDir('qs-testnode-'),
        logger: opts.logger,
        network: {
          udp: net.bind(spec.name, NODE_PORT),
          derp: relay.options(REGION),
          interfaces: (port) => [`${ip}:${port}`],
        },
      });
      nodes.set(spec.name, node);
    }
    await Promise.all([...nodes.values()].map((n) => n.up()));
  } catch (err) {
    await close();
    throw err;
  }
  const path = (from: string, to: string): string => {
    const a = nodes.get(from);
    if (!a || !nodes.has(to)) throw new TestNetworkError(`no node '${a ? to : from}'`);
    return a.peers().find((p) => p.hostname === to)?.path ?? 'none';
  };
  return { net, control, relay, nodes, path, close };
}
