/**
 * Child process of the TS↔TS pair (bench/ts-pair.ts): one of our nodes (WireGuard device,
 * stack, TCP) listening on 10.9.0.2:5001, counting what it receives until the sender closes,
 * then reporting bytes, seconds, this process's CPU time and, when asked, a V8 CPU profile of
 * the transfer.
 */
import type { Profiler } from 'node:inspector';
import { Stack } from '../src/netstack/stack.js';
import { TcpEndpoint } from '../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../src/netstack/tcp/server.js';
import { openUdpBind } from '../src/wireguard/bun-udp-bind.js';
import { Device } from '../src/wireguard/device.js';
import { keyFromBase64 } from '../src/wireguard/keys.js';
import { UdpBind } from '../src/wireguard/udp-bind.js';
import { startProfile } from './cpu-profile.js';

interface Setup {
  privateKey: string;
  peer: string;
  profile?: boolean;
  /** node:dgram even under Bun. */
  dgram?: boolean;
  /** Where to listen (default 127.0.0.1), e.g. a veth's address in a namespace (bench/tcp-veth.ts). */
  host?: string;
  /** Crypto worker threads (DeviceOptions.cryptoWorkers). */
  cryptoWorkers?: number;
  /** The tunnel's MTU (DeviceOptions.mtu, default 1,420), as wg-quick's `MTU =`. */
  mtu?: number;
}

/** What the receiver reports once the sender has closed. */
export interface PeerReport {
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  profile?: Profiler.Profile;
}

process.once('message', async (setup: Setup) => {
  const bind = await (setup.dgram ? UdpBind.open : openUdpBind)({ host: setup.host ?? '127.0.0.1' });
  const dev = new Device({
    privateKey: keyFromBase64(setup.privateKey),
    bind,
    cryptoWorkers: setup.cryptoWorkers,
    mtu: setup.mtu,
  });
  dev.addPeer({ publicKey: keyFromBase64(setup.peer), allowedIPs: ['10.9.0.1/32'] });
  const stack = new Stack(dev, { addresses: ['10.9.0.2/24'] });
  const tcp = new TcpEndpoint(stack, { receiveBuffer: 4 << 20 });
  new TcpServer(tcp, {}, (s) => {
    let bytes = 0;
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    const profiling = setup.profile ? startProfile() : undefined;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    s.on('end', async () => {
      const cpu = process.cpuUsage(cpu0);
      const report: PeerReport = {
        bytes,
        seconds: (performance.now() - start) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
      };
      if (profiling) report.profile = await (await profiling)();
      process.send!(report);
      s.end();
    });
  }).listen(5001);
  process.on('message', async () => {
    tcp.close();
    stack.close();
    await dev.close();
    process.exit(0);
  });
  process.send!({ port: bind.port });
});
