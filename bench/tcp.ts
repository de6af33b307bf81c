/**
 * TCP benchmarks (`npm run bench -- tcp`), all in one run so the ratios hold on a noisy machine:
 * 1. TS↔TS: two of our nodes in two processes, WireGuard over UDP loopback, bulk TCP; again with
 *    1, 2 and 4 crypto worker threads per node, printed as ratios to none (the slope over cores);
 *    plus our TCP alone over an in-memory link (no crypto), to show what TCP itself costs;
 * 2. TS↔Linux through wireguard-go in a namespace: download and upload;
 * 3. the reference: a pair of wireguard-go peers in two namespaces, iperf3 TCP;
 * 4. the VPC-like shape (bench/tcp-veth.ts): a veth of MTU 1,500 and 9,000 between two namespaces,
 *    the wireguard-go pair and our two nodes in them, with the mean frame size on the veth;
 * and CPU seconds per GB, and the RSS of 1,000 idle connections.
 * TCP_BENCH_SKIP_RIG=1 skips everything that needs root and namespaces (2, 3 and 4).
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memoryLinkPair } from '../src/netstack/link.js';
import { Stack } from '../src/netstack/stack.js';
import { TcpEndpoint } from '../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../src/netstack/tcp/server.js';
import { tcpConnect } from '../src/netstack/tcp/socket.js';
import { hasBunUdp } from '../src/wireguard/bun-udp-bind.js';
import { Cleanup, execIn, spawnIn, waitFor } from '../test/interop/rig/exec.js';
import { iperf3Tcp, startWireguardGoPair } from '../test/interop/rig/pair.js';
import { checkRequirements } from '../test/interop/rig/requirements.js';
import { startTcpNode, type TcpNode } from '../test/interop/rig/tcp-node.js';
import { Report } from './report.js';
import { vethShape } from './tcp-veth.js';
import { blast, openTsPair } from './ts-pair.js';

const SECONDS = 4;
/** Crypto worker counts of the TS↔TS rows beside the default (none): the slope over threads. */
const CRYPTO_WORKERS = [1, 2, 4];

export async function run(): Promise<Report> {
  const r = new Report('tcp');
  const missing = process.env.TCP_BENCH_SKIP_RIG
    ? ['skipped']
    : checkRequirements(['root', 'netns', 'tun', 'wireguard-go', 'wg', 'ip', 'iperf3', 'python3', 'ss']);
  if (missing.length === 0) await reference(r);
  else console.log(`  (no wireguard-go reference: missing ${missing.join(', ')})`);
  const ref = missing.length === 0 ? 'reference: wireguard-go pair, iperf3 TCP' : undefined;
  await tsToTs(r, ref);
  // Under Bun, the same pair on node:dgram too: the same-run ratio of the two binds.
  if (hasBunUdp()) await tsToTs(r, ref, true);
  for (const workers of CRYPTO_WORKERS) await tsToTs(r, ref, false, workers);
  await memoryOnly(r, ref);
  if (missing.length === 0) await tsToLinux(r, ref);
  if (missing.length === 0) for (const mtu of [1500, 9000]) await vethShape(r, mtu, SECONDS);
  await idleConnections(r);
  const print = (name: string, aim: string) => {
    const x = ref ? r.ratio(name, ref) : undefined;
    if (x !== undefined) console.log(`  ${name}: ${x.toFixed(2)}× the wireguard-go pair (aim ${aim})`);
  };
  const bun = hasBunUdp() ? ', Bun.udpSocket' : '';
  print(`TS↔TS bulk (2 processes, WireGuard over UDP loopback${bun})`, '≥ 2×');
  if (bun) {
    const x = r.ratio(
      'TS↔TS CPU per GB (sender + receiver, Bun.udpSocket)',
      'TS↔TS CPU per GB (sender + receiver, node:dgram)',
    );
    if (x !== undefined)
      console.log(`  TS↔TS CPU per GB, Bun.udpSocket: ${x.toFixed(2)}× node:dgram under Bun`);
  }
  for (const w of CRYPTO_WORKERS) {
    const speed = r.ratio(
      `TS↔TS bulk (2 processes, WireGuard over UDP loopback${bun}${workersLabel(w)})`,
      `TS↔TS bulk (2 processes, WireGuard over UDP loopback${bun})`,
    );
    const cpu = r.ratio(
      `TS↔TS CPU per GB (sender + receiver${bun}${workersLabel(w)})`,
      `TS↔TS CPU per GB (sender + receiver${bun})`,
    );
    if (speed !== undefined && cpu !== undefined)
      console.log(
        `  TS↔TS,${workersLabel(w).slice(1)}: ${speed.toFixed(2)}× the throughput at ${cpu.toFixed(2)}× the CPU per GB of none (${availableParallelism()} cores here)`,
      );
  }
  print('TS↔Linux download (wireguard-go, Linux sends)', '≥ 1×');
  print('TS↔Linux upload (wireguard-go, we send)', '≥ 1×');
  return r;
}

/** How the TS↔TS rows name a crypto worker count (DeviceOptions.cryptoWorkers). */
function workersLabel(workers: number): string {
  return workers ? `, ${workers} crypto worker${workers > 1 ? 's' : ''} each` : '';
}

async function reference(r: Report): Promise<void> {
  const pair = await startWireguardGoPair({ logLevel: 'error' });
  try {
    const res = await iperf3Tcp({
      serverNs: pair.b.ns,
      clientNs: pair.a.ns,
      serverAddress: pair.b.inner4,
      seconds: SECONDS,
    });
    r.add({
      name: 'reference: wireguard-go pair, iperf3 TCP',
      value: res.bitsPerSecond / 8e6,
      unit: 'MB/s',
      note: `${(res.bitsPerSecond / 1e6).toFixed(0)} Mbit/s, ${res.retransmits ?? '?'} retransmits`,
    });
  } finally {
    await pair.close();
  }
}

async function tsToTs(r: Report, ref: string | undefined, dgram = false, cryptoWorkers = 0): Promise<void> {
  const pair = await openTsPair({ dgram, cryptoWorkers });
  // Under Bun the rows name the bind, so that both appear side by side.
  const bind = (!hasBunUdp() ? '' : dgram ? ', node:dgram' : ', Bun.udpSocket') + workersLabel(cryptoWorkers);
  try {
    const cpu0 = process.cpuUsage();
    const result = await pair.transfer(SECONDS);
    const cpu = process.cpuUsage(cpu0);
    const cpuTotal = result.cpuSeconds + (cpu.user + cpu.system) / 1e6;
    r.add({
      name: `TS↔TS bulk (2 processes, WireGuard over UDP loopback${bind})`,
      value: result.bytes / result.seconds / 1e6,
      unit: 'MB/s',
      ratioTo: ref,
      note: `${pair.tcp.stats.recoveries} recoveries, ${pair.tcp.stats.timeouts} RTOs`,
    });
    r.add({
      name: `TS↔TS CPU per GB (sender + receiver${bind})`,
      value: cpuTotal / (result.bytes / 1e9),
      unit: 'CPU s/GB',
    });
  } finally {
    await pair.close();
  }
}

/** Our TCP alone: two endpoints in this process over an in-memory link, no crypto, no UDP. */
async function memoryOnly(r: Report, ref: string | undefined): Promise<void> {
  const [la, lb] = memoryLinkPair(1420);
  const a = new TcpEndpoint(new Stack(la, { addresses: ['10.0.0.1'] }), { sendBuffer: 4 << 20 });
  const b = new TcpEndpoint(new Stack(lb, { addresses: ['10.0.0.2'] }), { receiveBuffer: 4 << 20 });
  let bytes = 0;
  const done = new Promise<void>((res) => {
    new TcpServer(b, {}, (s) => {
      s.on('data', (d: Buffer) => (bytes += d.length));
      s.on('end', () => res());
    }).listen(80);
  });
  const s = tcpConnect(a, { host: '10.0.0.2', port: 80 });
  await new Promise((res) => s.once('connect', res));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await blast(s, SECONDS / 2);
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  r.add({
    name: 'TCP only, in-memory link (1 process, no crypto)',
    value: bytes / seconds / 1e6,
    unit: 'MB/s',
    ratioTo: ref,
  });
  r.add({
    name: 'TCP only CPU per GB (both ends)',
    value: (cpu.user + cpu.system) / 1e6 / (bytes / 1e9),
    unit: 'CPU s/GB',
  });
  a.close();
  b.close();
}

/** Python in the namespace: a source that sends `size` bytes to each client, or a sink that counts. */
const PY_SOURCE = [
  'import socket, sys',
  's = socket.create_server((sys.argv[1], int(sys.argv[2])))',
  'buf = bytes(1 << 20)',
  'while True:',
  '    c, _ = s.accept()',
  '    for _ in range(int(sys.argv[3])): c.sendall(buf)',
  '    c.close()',
].join('\n');
const PY_SINK = [
  'import socket, sys',
  's = socket.create_server((sys.argv[1], int(sys.argv[2])))',
  'while True:',
  '    c, _ = s.accept()',
  '    while c.recv(1 << 20): pass',
  '    c.close()',
].join('\n');

async function tsToLinux(r: Report, ref: string | undefined): Promise<void> {
  const node: TcpNode = await startTcpNode({ tcp: { receiveBuffer: 4 << 20, sendBuffer: 4 << 20 } });
  const cleanup = new Cleanup();
  try {
    const mb = 400;
    for (const [script, port, extra] of [
      [PY_SOURCE, 7001, [String(mb)]],
      [PY_SINK, 7002, []],
    ] as const) {
      spawnIn(node.peer.ns, 'python3', ['-c', script, node.peer.inner4, String(port), ...extra], { cleanup });
      await waitFor('python server', async () => {
        const { stdout } = await execIn(node.peer.ns, 'ss', ['-Hltn', 'sport', '=', `:${port}`]);
        return stdout.trim() !== '' ? true : undefined;
      });
    }
    const down = tcpConnect(node.tcp, { host: node.peer.inner4, port: 7001 });
    let bytes = 0;
    const t0 = performance.now();
    down.on('data', (d: Buffer) => (bytes += d.length));
    await new Promise((res) => down.once('end', res));
    const downSeconds = (performance.now() - t0) / 1000;
    if (bytes !== mb << 20) throw new Error(`download got ${bytes} bytes, expected ${mb << 20}`);
    r.add({
      name: 'TS↔Linux download (wireguard-go, Linux sends)',
      value: bytes / downSeconds / 1e6,
      unit: 'MB/s',
      ratioTo: ref,
    });
    const up = tcpConnect(node.tcp, { host: node.peer.inner4, port: 7002 });
    await new Promise((res) => up.once('connect', res));
    up.resume();
    const t1 = performance.now();
    const sent = await blast(up, SECONDS);
    await new Promise((res) => up.once('close', res));
    r.add({
      name: 'TS↔Linux upload (wireguard-go, we send)',
      value: sent / ((performance.now() - t1) / 1000) / 1e6,
      unit: 'MB/s',
      ratioTo: ref,
      note: `${node.tcp.stats.recoveries} recoveries (${node.tcp.stats.spurious} undone), ${node.tcp.stats.timeouts} RTOs, ${node.tcp.stats.probes} probes`,
    });
  } finally {
    await cleanup.run();
    await node.close();
  }
}

/**
 * Memory of 1,000 established, idle connections (both ends, so 2,000 sockets), measured in a
 * fresh child process (bench/tcp-idle.ts) so that nothing from the other runs is on its heap.
 */
async function idleConnections(r: Report): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const child = fork(join(here, 'tcp-idle.js'), [], {
    execArgv: ['--expose-gc'],
    stdio: ['pipe', 'inherit', 'inherit', 'ipc'],
  });
  const m = await new Promise<{ rss: number; heap: number; accepted: number }>((res, rej) => {
    child.once('message', res);
    child.once('error', rej);
  });
  if (m.accepted !== 1000) throw new Error(`only ${m.accepted} of 1000 connections accepted`);
  r.add({
    name: 'RSS of 1,000 idle connections (both ends)',
    value: m.rss / 1e6,
    unit: 'MB',
    note: `JS heap + buffers ${(m.heap / 1e6).toFixed(2)} MB, ${(m.heap / 2000 / 1024).toFixed(1)} KiB per socket`,
  });
}
