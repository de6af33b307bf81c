// Our node for TCP interop: a WireGuard Device, a Stack and TCP in this process, wireguard-go and
// the Linux kernel's TCP in a namespace, optionally with the UDP impairment relay in between;
// plus the namespace-side helpers (python3 -m http.server, a file of random bytes).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack } from '../../../src/netstack/stack.js';
import { TcpEndpoint } from '../../../src/netstack/tcp/endpoint.js';
import type { TcpOptions } from '../../../src/netstack/tcp/options.js';
import { Device } from '../../../src/wireguard/device.js';
import {
  generatePrivateKey,
  keyFromBase64,
  keyToBase64,
  publicKeyFromPrivate,
} from '../../../src/wireguard/keys.js';
import { UdpBind } from '../../../src/wireguard/udp-bind.js';
import { type Cleanup, execIn, spawnIn, waitFor } from './exec.js';
import { type ImpairOptions, type ImpairRelay, startImpairRelay } from './impair-relay.js';
import { startWireguardGoPeer, type WireguardGoPeer } from './pair.js';

export interface TcpNode {
  device: Device;
  bind: UdpBind;
  stack: Stack;
  tcp: TcpEndpoint;
  peer: WireguardGoPeer;
  relay: ImpairRelay | undefined;
  privateKey: Uint8Array;
  close(): Promise<Error[]>;
}

/** wireguard-go in a namespace and our node here; with `impair`, the underlay goes through the relay. */
export async function startTcpNode(
  opts: { impair?: ImpairOptions; tcp?: TcpOptions; cryptoWorkers?: number } = {},
): Promise<TcpNode> {
  const privateKey = generatePrivateKey();
  const bind = await UdpBind.open({ host: '0.0.0.0' });
  // wireguard-go learns our endpoint from our handshake: the relay's address when there is one.
  const peer = await startWireguardGoPeer({
    logLevel: 'error',
    peer: { publicKey: keyToBase64(publicKeyFromPrivate(privateKey)) },
  });
  const relay = opts.impair
    ? await startImpairRelay(peer.hostAddress, { host: peer.underlay, port: peer.listenPort }, opts.impair)
    : undefined;
  const device = new Device({ privateKey, bind, cryptoWorkers: opts.cryptoWorkers });
  const endpoint = relay ? `${relay.address}:${relay.port}` : `${peer.underlay}:${peer.listenPort}`;
  device.addPeer({
    publicKey: keyFromBase64(peer.keys.publicKey),
    endpoint: bind.parseEndpoint(endpoint),
    allowedIPs: ['10.200.1.0/24', 'fd00:200::/64'],
  });
  const stack = new Stack(device, { addresses: [`${peer.hostInner4}/24`, `${peer.hostInner6}/64`] });
  const tcp = new TcpEndpoint(stack, opts.tcp);
  // Bring the session up before a test times anything. Through a lossy relay the first
  // initiation may be lost, and WireGuard retries only after REKEY_TIMEOUT (5 s).
  for (let attempt = 1; ; attempt++) {
    try {
      await stack.ping(peer.inner4, { seq: attempt, timeoutMs: 6000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  return {
    device,
    bind,
    stack,
    tcp,
    peer,
    relay,
    privateKey,
    async close() {
      tcp.close();
      stack.close();
      await device.close();
      await relay?.close();
      return peer.close();
    },
  };
}

/** A temporary directory with `name` holding `size` random bytes; returns its path and sha256. */
export function randomFile(
  size: number,
  name = 'blob.bin',
): { dir: string; path: string; size: number; sha256: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'qs-tcp-'));
  const path = join(dir, name);
  const data = randomBytes(size);
  writeFileSync(path, data);
  return {
    dir,
    path,
    size,
    sha256: createHash('sha256').update(data).digest('hex'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Python's http.server (threaded, as `python3 -m http.server`) in `ns` on address:port serving
 * `dir`, stopped by `cleanup`. The listen backlog is raised from socketserver's 5 so that many
 * simultaneous SYNs are queued by Linux rather than dropped.
 */
export async function serveDirectory(
  ns: string,
  address: string,
  port: number,
  dir: string,
  cleanup: Cleanup,
) {
  const script = [
    'import functools, http.server, sys',
    'http.server.ThreadingHTTPServer.request_queue_size = 1024',
    'h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])',
    'http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), h).serve_forever()',
  ].join('\n');
  const server = spawnIn(ns, 'python3', ['-c', script, address, String(port), dir], { cleanup });
  await waitFor(
    'python3 http.server',
    async () => {
      if (!server.isRunning()) throw new Error(`http.server exited: ${server.output()}`);
      const { stdout } = await execIn(ns, 'ss', ['-Hltn', 'sport', '=', `:${port}`]);
      return stdout.trim() !== '' ? true : undefined;
    },
    10_000,
  );
  return server;
}
