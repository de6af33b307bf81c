/**
 * The sending node of the TS↔TS pair when both run in namespaces of their own (bench/tcp-veth.ts):
 * a WireGuard device, stack and TCP as bench/ts-pair.ts has in-process, connecting to the
 * receiver (bench/tcp-peer.ts) at 10.9.0.2:5001 and writing for the given seconds. Reports the
 * bytes written and this process's CPU time.
 */
import { Stack } from '../src/netstack/stack.js';
import { TcpEndpoint } from '../src/netstack/tcp/endpoint.js';
import { tcpConnect } from '../src/netstack/tcp/socket.js';
import { openUdpBind } from '../src/wireguard/bun-udp-bind.js';
import { Device } from '../src/wireguard/device.js';
import { keyFromBase64 } from '../src/wireguard/keys.js';
import { blast } from './ts-pair.js';

interface Setup {
  privateKey: string;
  peer: string;
  /** Our underlay address, and the receiver's `host:port`. */
  host: string;
  endpoint: string;
  seconds: number;
  /** The tunnel's MTU (DeviceOptions.mtu, default 1,420), as wg-quick's `MTU =`. */
  mtu?: number;
}

/** What the sender reports. */
export interface SenderReport {
  bytes: number;
  cpuSeconds: number;
}

process.once('message', async (setup: Setup) => {
  const bind = await openUdpBind({ host: setup.host });
  const dev = new Device({ privateKey: keyFromBase64(setup.privateKey), bind, mtu: setup.mtu });
  dev.addPeer({
    publicKey: keyFromBase64(setup.peer),
    endpoint: bind.parseEndpoint(setup.endpoint),
    allowedIPs: ['10.9.0.2/32'],
  });
  const stack = new Stack(dev, { addresses: ['10.9.0.1/24'] });
  const tcp = new TcpEndpoint(stack, { sendBuffer: 4 << 20 });
  await stack.ping('10.9.0.2', { timeoutMs: 5000 });
  const socket = tcpConnect(tcp, { host: '10.9.0.2', port: 5001 });
  await new Promise((res) => socket.once('connect', res));
  socket.resume();
  const cpu0 = process.cpuUsage();
  const bytes = await blast(socket, setup.seconds);
  await new Promise((res) => socket.once('close', res));
  const cpu = process.cpuUsage(cpu0);
  process.send!({ bytes, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies SenderReport);
  tcp.close();
  stack.close();
  await dev.close();
  process.exit(0);
});
