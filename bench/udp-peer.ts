/**
 * One end of the UDP bind microbench (bench/udp.ts), run as its own process in the runtime being
 * measured: `udp-peer.js recv BIND` listens on 127.0.0.1 and counts, `udp-peer.js send BIND PORT
 * SIZE COUNT` sends. BIND is `dgram` (node:dgram's UdpBind) or `bun` (BunUdpBind). They talk to
 * the bench over stdin/stdout lines of JSON, which every runtime has (IPC channels differ).
 */
import { createInterface } from 'node:readline';
import type { Bind } from '../src/wireguard/bind.js';
import { BunUdpBind } from '../src/wireguard/bun-udp-bind.js';
import { UdpBind, UdpEndpoint } from '../src/wireguard/udp-bind.js';

/** Datagrams per burst: the transport's vector (wireguard/vector.ts VECTOR_CAPACITY is 128; a TCP window's burst is smaller). */
const BURST = 64;

/** What each end prints when done. */
export interface UdpPeerReport {
  datagrams: number;
  cpuSeconds: number;
  errors: number;
}

const [role, bindName, portText, sizeText, countText] = process.argv.slice(2);
const bind: Bind & { port: number; stats: { sendErrors: number }; close(): Promise<void> } =
  bindName === 'bun'
    ? await BunUdpBind.open({ host: '127.0.0.1' })
    : await UdpBind.open({ host: '127.0.0.1' });
const print = (m: object) => process.stdout.write(`${JSON.stringify(m)}\n`);

if (role === 'recv') {
  let datagrams = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  bind.onDatagram(() => {
    if (datagrams++ === 0) cpu0 = process.cpuUsage();
  });
  print({ port: bind.port });
  // The bench says "stop" once the sender is done and the queue has drained; the CPU spent
  // idling since the last datagram is negligible next to the receiving.
  for await (const _line of createInterface({ input: process.stdin })) break;
  const cpu = process.cpuUsage(cpu0);
  print({ datagrams, cpuSeconds: (cpu.user + cpu.system) / 1e6, errors: 0 } satisfies UdpPeerReport);
} else {
  const to = UdpEndpoint.from('127.0.0.1', Number(portText));
  const size = Number(sizeText);
  const count = Number(countText);
  // Distinct buffers per burst slot, as a device's vector has.
  const buffers = Array.from({ length: BURST }, (_, i) => new Uint8Array(size).fill(i));
  const cpu0 = process.cpuUsage();
  for (let sent = 0; sent < count; ) {
    bind.beginBatch?.();
    for (let i = 0; i < BURST && sent < count; i++, sent++) bind.send(to, buffers[i]!);
    bind.endBatch?.();
    // One burst per event-loop turn, as the device sends them.
    await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  print({
    datagrams: count,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    errors: bind.stats.sendErrors,
  } satisfies UdpPeerReport);
}
await bind.close();
process.exit(0);
