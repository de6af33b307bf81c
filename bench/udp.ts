/**
 * The UDP bind microbench (`npm run bench -- udp`): CPU per datagram to send and to receive on
 * loopback, node:dgram (UdpBind) under Node and under Bun against Bun's own socket (BunUdpBind,
 * sendmmsg/recvmmsg), at a WireGuard datagram of a 1,420-byte MTU and of a 9,000-byte one (issue
 * 21, item 2). Sender and receiver are separate processes (bench/udp-peer.ts) in the runtime
 * measured, so each one's CPU time is its side alone. The sender sends bursts of 64 as fast as it
 * can; what the receiver's queue cannot hold is dropped, and the receive cost is per datagram
 * received. Ratios are against node:dgram under Node in the same run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runtime } from '../src/platform/runtime.js';
import { Report } from './report.js';
import type { UdpPeerReport } from './udp-peer.js';

const COUNT = 200_000;
/** WireGuard datagrams carrying a full 1,420-byte and 8,940-byte inner packet (32 bytes of header and tag). */
const SIZES = [1452, 8972];

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

interface Variant {
  label: string;
  bin: string;
  bind: 'dgram' | 'bun';
}

function variants(): Variant[] {
  // The reference is Node even when the suite runs under another runtime (bench --runtime).
  const node = runtime.name === 'node' ? process.execPath : 'node';
  const out: Variant[] = [{ label: 'node:dgram under Node', bin: node, bind: 'dgram' }];
  const list = execFileSync(join(root, 'scripts', 'fetch-runtimes.sh'), ['--list'], { encoding: 'utf8' });
  const bun = list.split('\n').find((l) => l.startsWith('bun '));
  if (bun === undefined) {
    console.log('  (no Bun in the cache: run scripts/fetch-runtimes.sh for its rows)');
    return out;
  }
  const bin = bun.split(' ')[2]!;
  out.push({ label: 'node:dgram under Bun', bin, bind: 'dgram' });
  out.push({ label: 'Bun.udpSocket (sendMany)', bin, bind: 'bun' });
  return out;
}

/** Starts a peer; resolves with its first line and a function reading its next one. */
function startPeer(v: Variant, args: string[]) {
  const child = spawn(v.bin, [join(here, 'udp-peer.js'), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async <T>(): Promise<T> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`udp-peer ${args.join(' ')} under ${v.label} ended early`);
    return JSON.parse(value as string) as T;
  };
  return { child, next };
}

async function measure(v: Variant, size: number): Promise<{ send: UdpPeerReport; recv: UdpPeerReport }> {
  const recv = startPeer(v, ['recv', v.bind]);
  const { port } = await recv.next<{ port: number }>();
  const send = startPeer(v, ['send', v.bind, String(port), String(size), String(COUNT)]);
  const sent = await send.next<UdpPeerReport>();
  await new Promise((r) => setTimeout(r, 200));
  recv.child.stdin.end('stop\n');
  const got = await recv.next<UdpPeerReport>();
  return { send: sent, recv: got };
}

export async function run(): Promise<Report> {
  const r = new Report('udp');
  for (const size of SIZES) {
    const refSend = `send, node:dgram under Node, ${size} B`;
    const refRecv = `receive, node:dgram under Node, ${size} B`;
    for (const [i, v] of variants().entries()) {
      const { send, recv } = await measure(v, size);
      const gb = (n: number) => (n * size) / 1e9;
      r.add({
        name: `send, ${v.label}, ${size} B`,
        value: (send.cpuSeconds / send.datagrams) * 1e6,
        unit: 'µs CPU/datagram',
        ratioTo: i === 0 ? undefined : refSend,
        note: `${(send.cpuSeconds / gb(send.datagrams)).toFixed(2)} CPU-s/GB, ${send.errors} errors`,
      });
      r.add({
        name: `receive, ${v.label}, ${size} B`,
        value: (recv.cpuSeconds / Math.max(1, recv.datagrams)) * 1e6,
        unit: 'µs CPU/datagram',
        ratioTo: i === 0 ? undefined : refRecv,
        note: `${(recv.cpuSeconds / gb(recv.datagrams)).toFixed(2)} CPU-s/GB, ${((100 * recv.datagrams) / send.datagrams).toFixed(0)}% received`,
      });
    }
  }
  return r;
}
