/**
 * The VPC-like shape of `bench -- tcp` (issue 21, Measure): two namespaces joined by one veth
 * whose MTU the bench sets (1,500 and 9,000), a wireguard-go pair (iperf3 TCP through it, the
 * reference) and then our two nodes (bench/ts-sender.ts → bench/tcp-peer.ts, in the runtime the
 * bench runs in) in the same namespaces. Beside each row, the mean frame on the veth read off
 * its counters (/sys/class/net/<veth>/statistics/tx_bytes ÷ tx_packets, in the sending
 * namespace; Ethernet header included): how many bytes each datagram carries on that path.
 * Both pairs are configured with the tunnel MTU wg-quick would use on the link (its MTU − 80).
 * The namespaces are the rig's (test/interop/rig/pair.ts), removed at the end.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePrivateKey, keyToBase64, publicKeyFromPrivate } from '../src/wireguard/keys.js';
import { execIn } from '../test/interop/rig/exec.js';
import { iperf3Tcp, type PairSide, startWireguardGoPair } from '../test/interop/rig/pair.js';
import type { Report } from './report.js';
import type { PeerReport } from './tcp-peer.js';
import type { SenderReport } from './ts-sender.js';

/** WireGuard over IPv4 adds 60 bytes (IP 20, UDP 8, header 16, tag 16); wg-quick leaves 80. */
const WG_OVERHEAD = 80;

const here = dirname(fileURLToPath(import.meta.url));

/** tx_bytes and tx_packets of `side`'s veth, read inside its namespace. */
async function txCounters(side: PairSide): Promise<{ bytes: number; packets: number }> {
  const dir = `/sys/class/net/${side.veth}/statistics`;
  const { stdout } = await execIn(side.ns, 'cat', [`${dir}/tx_bytes`, `${dir}/tx_packets`]);
  const [bytes, packets] = stdout.trim().split('\n').map(Number);
  return { bytes: bytes!, packets: packets! };
}

/** Runs `work` and returns its result with the mean frame `side` sent meanwhile. */
async function withMeanFrame<T>(side: PairSide, work: () => Promise<T>): Promise<[T, number]> {
  const before = await txCounters(side);
  const out = await work();
  const after = await txCounters(side);
  return [out, (after.bytes - before.bytes) / Math.max(1, after.packets - before.packets)];
}

/** Starts `script` in namespace `ns` in this runtime, with an IPC channel. */
function startIn(ns: string, script: string) {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, join(here, script)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ReturnType<typeof startIn>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${what} exited (${code}) before reporting`));
    child.once('exit', onExit);
    child.once('message', (m: T) => {
      child.off('exit', onExit);
      resolve(m);
    });
  });
}

/** Our two nodes, sender in `a`, receiver in `b`, for `seconds`, both with tunnel MTU `mtu`. */
async function ourPair(a: PairSide, b: PairSide, seconds: number, mtu: number) {
  const privA = generatePrivateKey();
  const privB = generatePrivateKey();
  const receiver = startIn(b.ns, 'tcp-peer.js');
  const sender = startIn(a.ns, 'ts-sender.js');
  try {
    const ready = nextMessage<{ port: number }>(receiver, 'receiver');
    receiver.send({
      privateKey: keyToBase64(privB),
      peer: keyToBase64(publicKeyFromPrivate(privA)),
      host: b.underlay,
      mtu,
    });
    const { port } = await ready;
    const received = nextMessage<PeerReport>(receiver, 'receiver');
    const sent = nextMessage<SenderReport>(sender, 'sender');
    sender.send({
      privateKey: keyToBase64(privA),
      peer: keyToBase64(publicKeyFromPrivate(privB)),
      host: a.underlay,
      endpoint: `${b.underlay}:${port}`,
      seconds,
      mtu,
    });
    const [rx, tx] = await Promise.all([received, sent]);
    return { rx, tx };
  } finally {
    if (receiver.connected) receiver.send({ cmd: 'stop' });
    sender.kill();
    await new Promise((res) => (receiver.exitCode === null ? receiver.once('exit', res) : res(null)));
  }
}

/** Adds the rows of one veth MTU to `r`. */
export async function vethShape(r: Report, mtu: number, seconds: number): Promise<void> {
  // Both pairs get the tunnel MTU a wg-quick user sets for this link (no disco here, so no PMTUD).
  const tunnelMtu = mtu - WG_OVERHEAD;
  const pair = await startWireguardGoPair({ logLevel: 'error', mtu: tunnelMtu });
  try {
    for (const side of [pair.a, pair.b]) {
      await execIn(side.ns, 'ip', ['link', 'set', 'dev', side.veth, 'mtu', String(mtu)]);
    }
    const ref = `veth MTU ${mtu}: wireguard-go pair, iperf3 TCP`;
    const [res, refFrame] = await withMeanFrame(pair.a, () =>
      iperf3Tcp({ serverNs: pair.b.ns, clientNs: pair.a.ns, serverAddress: pair.b.inner4, seconds }),
    );
    r.add({
      name: ref,
      value: res.bitsPerSecond / 8e6,
      unit: 'MB/s',
      note: `mean frame ${refFrame.toFixed(0)} B, ${res.retransmits ?? '?'} retransmits`,
    });
    const [ours, frame] = await withMeanFrame(pair.a, () => ourPair(pair.a, pair.b, seconds, tunnelMtu));
    r.add({
      name: `veth MTU ${mtu}: TS↔TS bulk`,
      value: ours.rx.bytes / ours.rx.seconds / 1e6,
      unit: 'MB/s',
      ratioTo: ref,
      note: `mean frame ${frame.toFixed(0)} B`,
    });
    r.add({
      name: `veth MTU ${mtu}: TS↔TS CPU per GB (sender + receiver)`,
      value: (ours.rx.cpuSeconds + ours.tx.cpuSeconds) / (ours.rx.bytes / 1e9),
      unit: 'CPU s/GB',
    });
  } finally {
    const errors = await pair.close();
    for (const err of errors) console.log(`  (cleanup: ${err.message})`);
  }
}
