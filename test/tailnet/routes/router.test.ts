// SubnetRouter (routes/router.ts) against the host's real sockets: a client stack whose packets go
// over an in-memory link to a router stack, which forwards them to servers on this host. RoutedNets
// never routes loopback, so the router here is given a prefix set that does (127.0.0.0/8): the only
// host addresses a unit test may use. The NAT lab (test/interop/natlab-routes.test.ts) proves the
// same against tailscaled on real LANs.
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLinkPair } from '../../../src/netstack/link.js';
import { Stack } from '../../../src/netstack/stack.js';
import { TcpEndpoint } from '../../../src/netstack/tcp/endpoint.js';
import { type TcpSocket, tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { type RemoteInfo, UdpEndpoint } from '../../../src/netstack/udp.js';
import type { RoutedNets } from '../../../src/tailnet/routes/local-nets.js';
import { PrefixSet } from '../../../src/tailnet/routes/prefixes.js';
import { SubnetRouter } from '../../../src/tailnet/routes/router.js';
import { silentLogger } from '../../../src/wireguard/logger.js';

const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function routerRig() {
  const [la, lb] = memoryLinkPair(1420);
  const client = new Stack(la, { addresses: ['10.0.0.1'] });
  const stack = new Stack(lb, { addresses: ['10.0.0.2'] });
  const loopback = new PrefixSet(['127.0.0.0/8']);
  const nets = { contains: (buf, off, len) => loopback.has(buf, off, len) } as RoutedNets;
  const tcp = { client: new TcpEndpoint(client), router: new TcpEndpoint(stack) };
  const udp = { client: new UdpEndpoint(client), router: new UdpEndpoint(stack) };
  const router = new SubnetRouter({ stack, tcp: tcp.router, udp: udp.router, nets, logger: silentLogger });
  cleanup.push(() => {
    router.close();
    for (const t of Object.values(tcp)) t.close();
    for (const u of Object.values(udp)) u.close();
    client.close();
    stack.close();
  });
  return { router, tcp, udp };
}

/** A host TCP server on 127.0.0.1 that answers each connection with `blob`, then reports what it read. */
async function hostServer(handle: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => {
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

function connect(tcp: TcpEndpoint, host: string, port: number): Promise<TcpSocket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(tcp, { host, port, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('SubnetRouter', () => {
  it('splices a tunnel connection to the host’s own connection: 4 MB each way intact, half-close passed on', async () => {
    const blob = randomBytes(4 * 1024 * 1024);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    let upload: Promise<Buffer> | undefined;
    const port = await hostServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      upload = once(s, 'end').then(() => Buffer.concat(chunks));
      s.end(blob);
    });
    const { router, tcp } = routerRig();
    const sock = await connect(tcp.client, '127.0.0.1', port);
    expect(sock.remoteAddress).toBe('127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.end(blob);
    await once(sock, 'end');
    expect(sha(Buffer.concat(chunks))).toBe(sha(blob));
    expect(sha(await upload!)).toBe(sha(blob));
    expect(router.stats.tcpForwarded).toBe(1);
    sock.destroy();
  });

  it('a port the host finds closed is a reset for the client (ECONNREFUSED), after the host’s own dial', async () => {
    const port = await hostServer(() => {});
    const closed = port === 65535 ? port - 1 : port + 1; // nothing listens there on a test host
    const { router, tcp } = routerRig();
    await expect(connect(tcp.client, '127.0.0.1', closed)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(router.stats.tcpRefused).toBe(1);
  });

  it('UDP: a flow per client port, answers returned in the destination’s name', async () => {
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo '), m]), r.port, r.address));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    cleanup.push(() => {
      echo.close();
    });
    const port = echo.address().port;
    const { router, udp } = routerRig();
    const sock = udp.client.createSocket();
    for (const text of ['one', 'two']) {
      const reply = new Promise<[Buffer, RemoteInfo]>((r) => sock.once('message', (m, i) => r([m, i])));
      sock.send(text, port, '127.0.0.1');
      const [msg, info] = await reply;
      expect(msg.toString()).toBe(`echo ${text}`);
      expect(info).toMatchObject({ address: '127.0.0.1', port });
    }
    expect(router.stats).toMatchObject({ udpFlows: 1, udpDatagrams: 2 });
    sock.close();
  });

  it('after close() nothing is forwarded: the host sees no connection', async () => {
    let accepted = 0;
    const port = await hostServer((s) => {
      accepted++;
      s.destroy();
    });
    const { router, tcp } = routerRig();
    router.close();
    const sock = tcpConnect(tcp.client, { host: '127.0.0.1', port });
    sock.on('error', () => {}); // it never connects; destroyed below
    await new Promise((r) => setTimeout(r, 300));
    expect([accepted, router.stats.tcpForwarded, sock.readyState]).toEqual([0, 0, 'opening']);
    sock.destroy();
  });
});
