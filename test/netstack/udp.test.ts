// UDP over two stacks: dgram-like bind/send/message, connect, EADDRINUSE and EMSGSIZE, ICMP Port
// Unreachable for unbound ports and ECONNREFUSED on a connected socket; also TCP's use of it.
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLinkPair } from '../../src/netstack/link.js';
import { IpProtocol } from '../../src/netstack/packet.js';
import { Stack } from '../../src/netstack/stack.js';
import { TcpEndpoint } from '../../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../../src/netstack/tcp/server.js';
import { tcpConnect } from '../../src/netstack/tcp/socket.js';
import { type RemoteInfo, UdpEndpoint } from '../../src/netstack/udp.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function pair() {
  const [la, lb] = memoryLinkPair(1420);
  const sa = new Stack(la, { addresses: ['10.0.0.1', 'fd00::1'] });
  const sb = new Stack(lb, { addresses: ['10.0.0.2', 'fd00::2'] });
  const a = new UdpEndpoint(sa);
  const b = new UdpEndpoint(sb);
  cleanup.push(() => {
    a.close();
    b.close();
    sa.close();
    sb.close();
  });
  return { a, b, sa, sb };
}

function nextMessage(s: ReturnType<UdpEndpoint['createSocket']>): Promise<[Buffer, RemoteInfo]> {
  return new Promise((r) => s.once('message', (m: Buffer, info: RemoteInfo) => r([m, info])));
}

describe('UDP', () => {
  it('bind, send and receive over IPv4 and IPv6, with rinfo', async () => {
    const { a, b } = pair();
    const server = b.createSocket();
    await new Promise<void>((r) => server.bind(53, r));
    expect(server.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 53 });
    const client = a.createSocket();
    const got = nextMessage(server);
    client.send('hello', 53, '10.0.0.2');
    const [msg, info] = await got;
    expect(msg.toString()).toBe('hello');
    expect(info).toMatchObject({ address: '10.0.0.1', family: 'IPv4', size: 5 });
    expect(info.port).toBe(client.address().port);
    const reply = nextMessage(client);
    server.send(Buffer.from('world'), info.port, info.address);
    expect((await reply)[0].toString()).toBe('world');
    const six = nextMessage(server);
    client.send(new Uint8Array([1, 2, 3]), 53, 'fd00::2');
    const [m6, i6] = await six;
    expect([...m6]).toEqual([1, 2, 3]);
    expect(i6).toMatchObject({ address: 'fd00::1', family: 'IPv6' });
  });

  it('EADDRINUSE for a taken port, EMSGSIZE past the MTU (through the callback)', async () => {
    const { a } = pair();
    a.createSocket().bind(5000);
    expect(() => a.createSocket().bind(5000)).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', port: 5000 }),
    );
    const s = a.createSocket();
    const err = await new Promise<NodeJS.ErrnoException | null>((r) =>
      s.send(Buffer.alloc(2000), 9, '10.0.0.2', r),
    );
    expect(err?.code).toBe('EMSGSIZE');
  });

  it('a datagram to an unbound port draws Port Unreachable: ECONNREFUSED on a connected socket', async () => {
    const { a, b } = pair();
    const s = a.createSocket();
    await new Promise<void>((r) => s.connect(7777, '10.0.0.2', r));
    const err = new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
    s.send('anyone?');
    const e = await err;
    expect(e.code).toBe('ECONNREFUSED');
    expect(b.stats.noPort).toBe(1);
    // An unconnected socket is not told (as Linux).
    const quiet = a.createSocket();
    let errors = 0;
    quiet.on('error', () => errors++);
    quiet.send('x', 7778, '10.0.0.2');
    await new Promise((r) => setTimeout(r, 10));
    expect(errors).toBe(0);
    expect(b.stats.noPort).toBe(2);
  });

  it('a connected socket only receives from its peer', async () => {
    const { a, b } = pair();
    const s = b.createSocket();
    s.bind(1000);
    s.connect(2000, '10.0.0.1');
    const got: string[] = [];
    s.on('message', (m: Buffer) => got.push(m.toString()));
    const right = a.createSocket();
    right.bind(2000);
    const wrong = a.createSocket();
    wrong.bind(2001);
    wrong.send('wrong', 1000, '10.0.0.2');
    right.send('right', 1000, '10.0.0.2');
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(['right']);
  });

  it('TCP: an ICMP Port Unreachable quoting our SYN fails the connect with ECONNREFUSED', async () => {
    const [la, lb] = memoryLinkPair(1420);
    const sa = new Stack(la, { addresses: ['10.0.0.1'] });
    const sb = new Stack(lb, { addresses: ['10.0.0.2'] });
    const tcp = new TcpEndpoint(sa, { initialRtoMs: 1000 });
    cleanup.push(() => {
      tcp.close();
      sa.close();
      sb.close();
    });
    // b has no TCP: answer a's SYN the way a host with a firewall rejecting it would.
    sb.registerProtocol(IpProtocol.TCP, (pkt) => sb.sendPortUnreachable(pkt));
    const c = tcpConnect(tcp, { host: '10.0.0.2', port: 80 });
    const e = await new Promise<NodeJS.ErrnoException & { port?: number }>((r) => c.once('error', r));
    expect(e.code).toBe('ECONNREFUSED');
    expect(e.port).toBe(80);
    expect(tcp.list()).toEqual([]);
  });
});

describe('loopback', () => {
  it('TCP and UDP to our own address loop back inside the stack', async () => {
    const [la] = memoryLinkPair(1420);
    const s = new Stack(la, { addresses: ['10.0.0.1'] });
    const tcp = new TcpEndpoint(s);
    const udp = new UdpEndpoint(s);
    cleanup.push(() => {
      tcp.close();
      udp.close();
      s.close();
    });
    const refused = tcpConnect(tcp, { host: '10.0.0.1', port: 1 });
    const e = await new Promise<NodeJS.ErrnoException>((r) => refused.once('error', r));
    expect(e.code).toBe('ECONNREFUSED');
    const server = new TcpServer(tcp, {}, (c) => c.end('self'));
    server.listen(7);
    const c = tcpConnect(tcp, { host: '10.0.0.1', port: 7 });
    const got = await new Promise<string>((r) => c.once('data', (d: Buffer) => r(d.toString())));
    expect(got).toBe('self');
    const u = udp.createSocket();
    u.bind(53);
    const m = new Promise<string>((r) => u.once('message', (d: Buffer) => r(d.toString())));
    udp.createSocket().send('me', 53, '10.0.0.1');
    expect(await m).toBe('me');
    expect(s.stats.loopback).toBeGreaterThan(4);
  });
});
