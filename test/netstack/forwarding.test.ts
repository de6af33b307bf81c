// A router's stack: packets to routed prefixes (Stack.setRouted) reach the TCP and UDP forwarders and the
// echo hook instead of our own sockets, with replies sent in the routed address's name; our own addresses
// and listeners are untouched. Two stacks over an in-memory link: a client (10.0.0.1) whose packets to
// 192.168.9.0/24 go to the router (10.0.0.2).
import { afterEach, describe, expect, it } from 'vitest';
import { cidrContains, parseCidr } from '../../src/netstack/address.js';
import { memoryLinkPair } from '../../src/netstack/link.js';
import { Stack } from '../../src/netstack/stack.js';
import type { TcpConnection } from '../../src/netstack/tcp/connection.js';
import { TcpEndpoint, type TcpForwardRequest } from '../../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../../src/netstack/tcp/server.js';
import { TcpSocket, tcpConnect } from '../../src/netstack/tcp/socket.js';
import { type ForwardedDatagram, type RemoteInfo, UdpEndpoint } from '../../src/netstack/udp.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

const ROUTED = parseCidr('192.168.9.0/24');

function routerPair(echo: (dst: string, reply: () => void) => void = () => {}) {
  const [la, lb] = memoryLinkPair(1420);
  const client = new Stack(la, { addresses: ['10.0.0.1'] });
  const router = new Stack(lb, { addresses: ['10.0.0.2'] });
  // The client's link carries every destination to the router (as WireGuard's allowed IPs would).
  router.setRouted({ contains: (buf, off, len) => len === 4 && cidrContains(ROUTED, buf, off), echo });
  const tcp = { client: new TcpEndpoint(client), router: new TcpEndpoint(router) };
  const udp = { client: new UdpEndpoint(client), router: new UdpEndpoint(router) };
  cleanup.push(() => {
    for (const t of Object.values(tcp)) t.close();
    for (const u of Object.values(udp)) u.close();
    client.close();
    router.close();
  });
  return { client, router, tcp, udp };
}

function connect(tcp: TcpEndpoint, host: string, port: number): Promise<TcpSocket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(tcp, { host, port }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('routed prefixes', () => {
  it('a SYN to a routed address waits for the forwarder, which accepts it in that address’s name', async () => {
    const { tcp } = routerPair();
    const requests: TcpForwardRequest[] = [];
    tcp.router.setForwarder((r) => requests.push(r));
    const dialled = connect(tcp.client, '192.168.9.5', 80);
    await new Promise((r) => setTimeout(r, 50));
    // Undecided: no SYN-ACK yet, and one request however many SYNs.
    expect(requests).toHaveLength(1);
    const req = requests[0]!;
    expect(req).toMatchObject({ local: '192.168.9.5', localPort: 80, remote: '10.0.0.1' });
    const established = new Promise<TcpConnection>((resolve, reject) => req.accept(resolve, reject));
    const sock = await dialled;
    expect(sock.remoteAddress).toBe('192.168.9.5');
    const far = TcpSocket.fromConnection(await established);
    expect(far.localAddress).toBe('192.168.9.5');
    far.write('from the LAN');
    const got = await new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString())));
    expect(got).toBe('from the LAN');
    sock.destroy();
    far.destroy();
  });

  it('a rejected request answers with a RST: the client sees ECONNREFUSED', async () => {
    const { tcp } = routerPair();
    tcp.router.setForwarder((r) => r.reject());
    await expect(connect(tcp.client, '192.168.9.6', 81)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('our listener on "any" address takes our address only, never a routed one', async () => {
    const { tcp } = routerPair();
    const ours = new TcpServer(tcp.router).listen(80);
    cleanup.push(() => ours.close());
    let accepted = 0;
    ours.on('connection', (s: TcpSocket) => {
      accepted++;
      s.destroy();
    });
    // Without a forwarder a routed SYN is refused, not taken by the listener on that port.
    await expect(connect(tcp.client, '192.168.9.5', 80)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(accepted).toBe(0);
    (await connect(tcp.client, '10.0.0.2', 80)).destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(accepted).toBe(1);
  });

  it('a client that gives up before the handshake completes is reported abandoned', async () => {
    const { tcp } = routerPair();
    let request: TcpForwardRequest | undefined;
    tcp.router.setForwarder((r) => {
      request = r;
    });
    const sock = tcpConnect(tcp.client, { host: '192.168.9.7', port: 82 });
    sock.on('error', () => {});
    await new Promise((r) => setTimeout(r, 20));
    const abandoned = new Promise<string>((resolve) =>
      request!.accept(
        () => resolve('established'),
        () => resolve('abandoned'),
      ),
    );
    // The client's endpoint answers our SYN-ACK with a RST once its socket is gone.
    sock.destroy();
    expect(await abandoned).toBe('abandoned');
  });

  it('datagrams to a routed address go to the UDP forwarder; answers come from that address', async () => {
    const { udp } = routerPair();
    const seen: ForwardedDatagram[] = [];
    udp.router.setForwarder((d) => {
      seen.push(d);
      udp.router.sendDatagram(d.dst, d.dstPort, d.src, d.srcPort, Buffer.from(`echo ${Buffer.from(d.data)}`));
    });
    const sock = udp.client.createSocket();
    const reply = new Promise<[Buffer, RemoteInfo]>((r) => sock.once('message', (m, i) => r([m, i])));
    sock.send('ping', 5353, '192.168.9.8');
    const [msg, info] = await reply;
    expect(msg.toString()).toBe('echo ping');
    expect(info).toMatchObject({ address: '192.168.9.8', port: 5353 });
    expect(seen[0]).toMatchObject({ srcPort: sock.address().port, dstPort: 5353 });
  });

  it('an echo request to a routed address is answered only when the hook says the host answered', async () => {
    const answered = new Set(['192.168.9.9']);
    const asked: string[] = [];
    const { client } = routerPair((dst, reply) => {
      asked.push(dst);
      if (answered.has(dst)) setTimeout(reply, 5);
    });
    const pong = await client.ping('192.168.9.9', { timeoutMs: 1000 });
    expect(pong.rttMs).toBeGreaterThanOrEqual(0);
    await expect(client.ping('192.168.9.10', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(asked).toEqual(['192.168.9.9', '192.168.9.10']);
    // Our own address is still answered by the stack itself.
    expect((await client.ping('10.0.0.2')).rttMs).toBeGreaterThanOrEqual(0);
  });
});
