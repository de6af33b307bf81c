/**
 * Two of our nodes for the TS↔TS measurements (`bench -- tcp`, `npm run profile`): this process
 * sends, a child (tcp-peer.ts) receives; WireGuard over UDP loopback, one TCP connection.
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stack } from '../src/netstack/stack.js';
import { TcpEndpoint } from '../src/netstack/tcp/endpoint.js';
import { type TcpSocket, tcpConnect } from '../src/netstack/tcp/socket.js';
import { openUdpBind } from '../src/wireguard/bun-udp-bind.js';
import { Device } from '../src/wireguard/device.js';
import { generatePrivateKey, keyToBase64, publicKeyFromPrivate } from '../src/wireguard/keys.js';
import { UdpBind } from '../src/wireguard/udp-bind.js';
import type { PeerReport } from './tcp-peer.js';

const CHUNK = Buffer.alloc(256 * 1024, 0x5a);

/** Writes 256 KiB chunks to `s` as fast as it drains, for `seconds`, then ends it. */
export function blast(s: TcpSocket, seconds: number): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    const until = performance.now() + seconds * 1000;
    const pump = () => {
      while (performance.now() < until) {
        sent += CHUNK.length;
        if (!s.write(CHUNK)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
      resolve(sent);
    };
    pump();
  });
}

/** A connected pair: the sending end's endpoint, and what the receiver reports at the end. */
export interface TsPair {
  tcp: TcpEndpoint;
  /** Blasts for `seconds`; resolves with the receiver's count, time, CPU (and profile). */
  transfer(seconds: number): Promise<PeerReport>;
  close(): Promise<void>;
}

/**
 * Starts the receiver, connects to it, and returns the pair; `profile` profiles the receiver's
 * transfer; `dgram` keeps both ends on node:dgram under Bun too (else each runtime's best bind);
 * `cryptoWorkers` gives each end that many crypto worker threads (DeviceOptions.cryptoWorkers).
 */
export async function openTsPair(
  opts: { profile?: boolean; dgram?: boolean; cryptoWorkers?: number } = {},
): Promise<TsPair> {
  const privA = generatePrivateKey();
  const privB = generatePrivateKey();
  const here = dirname(fileURLToPath(import.meta.url));
  const child = fork(join(here, 'tcp-peer.js'), [], { stdio: ['pipe', 'inherit', 'inherit', 'ipc'] });
  child.send({
    privateKey: keyToBase64(privB),
    peer: keyToBase64(publicKeyFromPrivate(privA)),
    profile: opts.profile === true,
    dgram: opts.dgram === true,
    cryptoWorkers: opts.cryptoWorkers ?? 0,
  });
  const port = await new Promise<number>((res) =>
    child.once('message', (m: { port: number }) => res(m.port)),
  );
  const bind = await (opts.dgram ? UdpBind.open : openUdpBind)({ host: '127.0.0.1' });
  const dev = new Device({ privateKey: privA, bind, cryptoWorkers: opts.cryptoWorkers });
  dev.addPeer({
    publicKey: publicKeyFromPrivate(privB),
    endpoint: bind.parseEndpoint(`127.0.0.1:${port}`),
    allowedIPs: ['10.9.0.2/32'],
  });
  const stack = new Stack(dev, { addresses: ['10.9.0.1/24'] });
  const tcp = new TcpEndpoint(stack, { sendBuffer: 4 << 20 });
  const close = async () => {
    child.send({ cmd: 'stop' });
    await new Promise((res) => child.once('exit', res));
    tcp.close();
    stack.close();
    await dev.close();
  };
  let socket: TcpSocket;
  try {
    await stack.ping('10.9.0.2', { timeoutMs: 5000 });
    socket = tcpConnect(tcp, { host: '10.9.0.2', port: 5001 });
    await new Promise((res) => socket.once('connect', res));
  } catch (err) {
    await close();
    throw err;
  }
  return {
    tcp,
    async transfer(seconds) {
      const report = new Promise<PeerReport>((res) => child.once('message', (m: PeerReport) => res(m)));
      await blast(socket, seconds);
      const got = await report;
      socket.destroy();
      return got;
    },
    close,
  };
}
