// The reference pair: two wireguard-go peers in two namespaces joined by one veth. Interop tests use it to
// prove the rig; benchmarks use it as the like-for-like baseline (iperf3 TCP through the tunnel, same run).
import { Cleanup, execIn, spawnIn, waitFor } from './exec.js';
import {
  addIngressLoss,
  allocateSubnet30,
  createNetns,
  createVeth,
  type NetemOptions,
  newRunTag,
  rigName,
  setNetem,
  sweepLeftovers,
} from './netns.js';
import {
  generateKeyPair,
  startWireguardGo,
  type WgKeyPair,
  type WgLogLevel,
  type WgPeerConfig,
  type WireguardGo,
} from './wireguard-go.js';

export interface PairOptions {
  logLevel?: WgLogLevel;
  /** Tunnel MTU (default 1420). */
  mtu?: number;
  persistentKeepalive?: number;
  /** nftables drop of this percent of packets arriving on each underlay veth end. */
  underlayLossPercent?: number;
  /** tc netem on the egress of each underlay veth end; needs the 'netem' requirement. */
  netem?: NetemOptions;
}

export interface PairSide {
  ns: string;
  /** The underlay veth end in `ns` and its address. */
  veth: string;
  underlay: string;
  listenPort: number;
  /** The TUN interface and its inner addresses, without prefix length. */
  ifname: string;
  inner4: string;
  inner6: string;
  keys: WgKeyPair;
  wg: WireguardGo;
}

/** What every rig topology carries: its run tag and the teardown of everything it made. */
export interface RigHandle {
  tag: string;
  cleanup: Cleanup;
  /** Tears everything down; returns (and has logged) whatever could not be removed. */
  close(): Promise<Error[]>;
}

export interface WireguardGoPair extends RigHandle {
  a: PairSide;
  b: PairSide;
}

export interface WireguardGoPeer extends RigHandle, PairSide {
  /** The root-namespace end of the underlay veth and its address: where the peer sends to. */
  hostVeth: string;
  hostAddress: string;
  /** Inner addresses left for the node in the root namespace (10.200.1.1, fd00:200::1). */
  hostInner4: string;
  hostInner6: string;
}

export interface PeerOptions extends PairOptions {
  /** The peer wireguard-go accepts (our node); without it, add one later with `wg.setPeer`. */
  peer?: {
    publicKey: string;
    /** Our UDP port on hostAddress; without it wireguard-go learns the endpoint from our handshake. */
    port?: number;
    /** Default: hostInner4/32 and hostInner6/128. */
    allowedIps?: string[];
  };
}

const LISTEN_PORT = 51820;
const INNER = { a: ['10.200.1.1', 'fd00:200::1'], b: ['10.200.1.2', 'fd00:200::2'] } as const;

/** Runs `build` with a fresh tag and cleanup; when it throws, everything made so far is torn down. */
async function withRig<T>(build: (tag: string, cleanup: Cleanup) => Promise<T>): Promise<T & RigHandle> {
  const cleanup = new Cleanup();
  const tag = await newRunTag(cleanup);
  const close = async (): Promise<Error[]> => {
    const errors = await cleanup.run();
    const leftovers = await sweepLeftovers({ tag });
    if (leftovers.length > 0) errors.push(new Error(`cleanup missed ${leftovers.join(', ')} (swept)`));
    return errors;
  };
  try {
    return { ...(await build(tag, cleanup)), tag, cleanup, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function impair(ns: string | null, veth: string, opts: PairOptions, cleanup: Cleanup): Promise<void> {
  if (opts.underlayLossPercent !== undefined)
    await addIngressLoss(ns, veth, opts.underlayLossPercent, cleanup);
  if (opts.netem !== undefined) await setNetem(ns, veth, opts.netem);
}

interface SideSpec {
  tag: string;
  role: 'a' | 'b';
  keys: WgKeyPair;
  ns: string;
  veth: string;
  underlay: string;
  peers: WgPeerConfig[];
}

async function startSide(spec: SideSpec, opts: PairOptions, cleanup: Cleanup): Promise<PairSide> {
  const { ns, veth, underlay, keys } = spec;
  const ifname = rigName(spec.tag, `w${spec.role}`);
  const [inner4, inner6] = INNER[spec.role];
  const wg = await startWireguardGo({
    ns,
    ifname,
    privateKey: keys.privateKey,
    listenPort: LISTEN_PORT,
    addresses: [`${inner4}/24`, `${inner6}/64`],
    mtu: opts.mtu ?? 1420,
    logLevel: opts.logLevel ?? 'verbose',
    cleanup,
    peers: spec.peers.map((p) =>
      opts.persistentKeepalive === undefined ? p : { ...p, persistentKeepalive: opts.persistentKeepalive },
    ),
  });
  return { ns, veth, underlay, listenPort: LISTEN_PORT, ifname, inner4, inner6, keys, wg };
}

/**
 * a (10.98.1.1, inner 10.200.1.1 / fd00:200::1) ⇄ veth ⇄ b (10.98.1.2, inner 10.200.1.2 / fd00:200::2).
 * The underlay lives only inside the two namespaces, so fixed addresses cannot collide with other runs.
 */
export function startWireguardGoPair(opts: PairOptions = {}): Promise<WireguardGoPair> {
  return withRig(async (tag, cleanup) => {
    const ns = {
      a: await createNetns(rigName(tag, 'a'), cleanup),
      b: await createNetns(rigName(tag, 'b'), cleanup),
    };
    const veth = { a: rigName(tag, 'va'), b: rigName(tag, 'vb') };
    const underlay = { a: '10.98.1.1', b: '10.98.1.2' };
    await createVeth(
      { ns: ns.a, name: veth.a, cidr: `${underlay.a}/30` },
      { ns: ns.b, name: veth.b, cidr: `${underlay.b}/30` },
      cleanup,
    );
    await impair(ns.a, veth.a, opts, cleanup);
    await impair(ns.b, veth.b, opts, cleanup);
    const keys = { a: await generateKeyPair(), b: await generateKeyPair() };
    const peerOf = (role: 'a' | 'b'): WgPeerConfig => ({
      publicKey: keys[role].publicKey,
      endpoint: `${underlay[role]}:${LISTEN_PORT}`,
      allowedIps: INNER[role].map((addr) => (addr.includes(':') ? `${addr}/128` : `${addr}/32`)),
    });
    const side = (role: 'a' | 'b', other: 'a' | 'b'): Promise<PairSide> =>
      startSide(
        {
          tag,
          role,
          keys: keys[role],
          ns: ns[role],
          veth: veth[role],
          underlay: underlay[role],
          peers: [peerOf(other)],
        },
        opts,
        cleanup,
      );
    const a = await side('a', 'b');
    const b = await side('b', 'a');
    return { a, b };
  });
}

/**
 * One wireguard-go (inner 10.200.1.2 / fd00:200::2) in a namespace, reached from the root namespace over a veth
 * with a free 10.98.x.y/30: the partner for a node of ours running in the test process itself.
 */
export function startWireguardGoPeer(opts: PeerOptions = {}): Promise<WireguardGoPeer> {
  return withRig(async (tag, cleanup) => {
    const ns = await createNetns(rigName(tag, 'b'), cleanup);
    const subnet = await allocateSubnet30();
    const hostVeth = rigName(tag, 'vh');
    const veth = rigName(tag, 'vb');
    await createVeth(
      { ns: null, name: hostVeth, cidr: subnet.cidrA },
      { ns, name: veth, cidr: subnet.cidrB },
      cleanup,
    );
    await impair(ns, veth, opts, cleanup);
    const [hostInner4, hostInner6] = INNER.a;
    const peers: WgPeerConfig[] = [];
    if (opts.peer !== undefined) {
      peers.push({
        publicKey: opts.peer.publicKey,
        allowedIps: opts.peer.allowedIps ?? [`${hostInner4}/32`, `${hostInner6}/128`],
        ...(opts.peer.port === undefined ? {} : { endpoint: `${subnet.a}:${opts.peer.port}` }),
      });
    }
    const keys = await generateKeyPair();
    const side = await startSide(
      { tag, role: 'b', keys, ns, veth, underlay: subnet.b, peers },
      opts,
      cleanup,
    );
    return { ...side, hostVeth, hostAddress: subnet.a, hostInner4, hostInner6 };
  });
}

export interface Iperf3Options {
  serverNs: string | null;
  clientNs: string | null;
  /** Where the server listens and the client connects (e.g. the server side's inner address). */
  serverAddress: string;
  seconds?: number;
  port?: number;
  /** Server sends, client receives (-R). */
  reverse?: boolean;
  parallel?: number;
}

export interface Iperf3Result {
  /** Goodput as the receiver counted it. */
  bitsPerSecond: number;
  bytes: number;
  seconds: number;
  retransmits: number | null;
}

interface Iperf3Json {
  error?: string;
  end?: {
    sum_sent?: { retransmits?: number };
    sum_received?: { bits_per_second: number; bytes: number; seconds: number };
  };
}

/** One iperf3 TCP run: a one-shot server (-s -1) in serverNs, the client (-J) in clientNs. */
export async function iperf3Tcp(opts: Iperf3Options): Promise<Iperf3Result> {
  const cleanup = new Cleanup();
  const port = String(opts.port ?? 5201);
  const seconds = opts.seconds ?? 3;
  try {
    const server = spawnIn(opts.serverNs, 'iperf3', ['-s', '-1', '-B', opts.serverAddress, '-p', port], {
      cleanup,
    });
    // iperf3's stdout is block-buffered into a pipe, so its banner says nothing in time: ask the socket table.
    await waitFor('iperf3 server', async () => {
      if (!server.isRunning()) throw new Error(`iperf3 server exited: ${server.output()}`);
      const { stdout } = await execIn(opts.serverNs, 'ss', ['-Hltn', 'sport', '=', `:${port}`]);
      return stdout.trim() !== '' ? true : undefined;
    });
    const args = ['-c', opts.serverAddress, '-p', port, '-t', String(seconds), '-J'];
    if (opts.reverse) args.push('-R');
    if (opts.parallel !== undefined) args.push('-P', String(opts.parallel));
    const client = await execIn(opts.clientNs, 'iperf3', args, {
      timeoutMs: (seconds + 20) * 1000,
      check: false,
    });
    let report: Iperf3Json;
    try {
      report = JSON.parse(client.stdout) as Iperf3Json;
    } catch (err) {
      throw new Error(
        `iperf3 client (exit ${client.code}) printed no JSON: ${client.stdout}${client.stderr}`,
        {
          cause: err,
        },
      );
    }
    const received = report.end?.sum_received;
    if (report.error !== undefined || received === undefined) {
      throw new Error(`iperf3 failed: ${report.error ?? 'no summary'}; server: ${server.output()}`);
    }
    return {
      bitsPerSecond: received.bits_per_second,
      bytes: received.bytes,
      seconds: received.seconds,
      retransmits: report.end?.sum_sent?.retransmits ?? null,
    };
  } finally {
    await cleanup.run();
  }
}
