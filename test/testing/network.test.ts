// The in-memory network (src/testing/network): routing through NATs, the NAT kinds' mappings and
// firewalls, each link shape, impossible shapes refused, and a seed that repeats a run bit for bit.
import { describe, expect, it } from 'vitest';
import {
  checkShape,
  TestNetworkError,
  VirtualNetwork,
  type VirtualUdpSocket,
} from '../../src/testing/index.js';
import { UdpEndpoint } from '../../src/wireguard/udp-bind.js';

const ep = (ip: string, port: number) => UdpEndpoint.from(ip, port);
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Collects `ip:port payload` of what a socket receives. */
function inbox(sock: VirtualUdpSocket): string[] {
  const got: string[] = [];
  sock.onDatagram((from, d) => got.push(`${from} ${Buffer.from(d).toString()}`));
  return got;
}

/** Two sites behind NATs of `kind` and a public server. */
function sites(kind: 'easy' | 'hard', seed = 1) {
  const net = new VirtualNetwork({ seed });
  net.addHost('server', { ip: '203.0.113.1' });
  net.addNat('A', { publicIp: '203.0.113.11', kind });
  net.addNat('B', { publicIp: '203.0.113.12', kind: 'easy' });
  net.addHost('a', { ip: '192.168.1.10', behind: 'A' });
  net.addHost('a2', { ip: '192.168.1.11', behind: 'A' });
  net.addHost('b', { ip: '192.168.2.10', behind: 'B' });
  return net;
}

describe('routing and NAT', () => {
  it('easy NAT: one public port for every destination (the inside port kept), answers let back in', async () => {
    const net = sites('easy');
    const a = net.bind('a', 41641);
    const srv = net.bind('server', 3478);
    const s2 = net.bind('server', 3479);
    const atServer = inbox(srv);
    const atServer2 = inbox(s2);
    const atA = inbox(a);
    a.send(ep('203.0.113.1', 3478), Buffer.from('hi'));
    a.send(ep('203.0.113.1', 3479), Buffer.from('hi2'));
    await tick();
    expect(atServer).toEqual(['203.0.113.11:41641 hi']);
    expect(atServer2).toEqual(['203.0.113.11:41641 hi2']);
    srv.send(ep('203.0.113.11', 41641), Buffer.from('back'));
    await tick();
    expect(atA).toEqual(['203.0.113.1:3478 back']);
  });

  it('hard NAT: a new port per destination; the firewall drops what the mapping never sent to', async () => {
    const net = sites('hard');
    const a = net.bind('a', 41641);
    const srv = net.bind('server', 3478);
    const s2 = net.bind('server', 3479);
    const atServer = inbox(srv);
    const atServer2 = inbox(s2);
    const atA = inbox(a);
    a.send(ep('203.0.113.1', 3478), Buffer.from('x'));
    a.send(ep('203.0.113.1', 3479), Buffer.from('y'));
    await tick();
    const p1 = atServer[0]!.split(' ')[0]!;
    const p2 = atServer2[0]!.split(' ')[0]!;
    expect(p1).not.toBe(p2);
    // The server's other port answering to the first mapping: filtered.
    s2.send(UdpEndpoint.from('203.0.113.11', Number(p1.split(':')[1])), Buffer.from('nope'));
    srv.send(UdpEndpoint.from('203.0.113.11', Number(p1.split(':')[1])), Buffer.from('ok'));
    await tick();
    expect(atA).toEqual(['203.0.113.1:3478 ok']);
    expect(net.log.filter((r) => r.verdict === 'filtered').map((r) => r.from)).toEqual(['203.0.113.1:3479']);
  });

  it('two hosts behind one NAT reach each other by their LAN addresses; unknown addresses have no route', async () => {
    const net = sites('easy');
    const a = net.bind('a', 1000);
    const got = inbox(net.bind('a2', 2000));
    a.send(ep('192.168.1.11', 2000), Buffer.from('lan'));
    a.send(ep('192.168.2.10', 2000), Buffer.from('other lan')); // b's LAN address: not routed from here
    a.send(ep('198.51.100.1', 9), Buffer.from('nowhere'));
    await tick();
    expect(got).toEqual(['192.168.1.10:1000 lan']);
    expect(net.log.map((r) => r.verdict)).toEqual(['delivered', 'no-route', 'no-route']);
  });
});

describe('link shapes', () => {
  it('loss drops about the share asked for; MTU drops what is too big; UDP blocked drops all', async () => {
    const net = new VirtualNetwork({ seed: 3 });
    net.addHost('s', { ip: '203.0.113.1' });
    net.addHost('c', { ip: '203.0.113.2', link: { loss: 0.2, mtu: 1280 } });
    const c = net.bind('c', 1);
    const got = inbox(net.bind('s', 2));
    for (let i = 0; i < 1000; i++) c.send(ep('203.0.113.1', 2), Buffer.alloc(100));
    c.send(ep('203.0.113.1', 2), Buffer.alloc(1280 - 28 + 1));
    await tick();
    expect(got.length).toBeGreaterThan(740);
    expect(got.length).toBeLessThan(860);
    expect(net.log.at(-1)).toMatchObject({ verdict: 'too-big', link: 'host c' });
    net.setShape('host c', { udpBlocked: true });
    c.send(ep('203.0.113.1', 2), Buffer.alloc(10));
    expect(net.log.at(-1)).toMatchObject({ verdict: 'blocked', link: 'host c' });
  });

  it('delay holds datagrams for the time asked; reorder swaps neighbours', async () => {
    const net = new VirtualNetwork({ seed: 5 });
    net.addHost('s', { ip: '203.0.113.1' });
    net.addHost('c', { ip: '203.0.113.2', link: { delayMs: 40 } });
    net.addHost('r', { ip: '203.0.113.3', link: { reorder: 0.5 } });
    const got = inbox(net.bind('s', 2));
    const t0 = performance.now();
    net.bind('c', 1).send(ep('203.0.113.1', 2), Buffer.from('late'));
    await tick(10);
    expect(got).toEqual([]);
    await tick(60);
    expect(got).toEqual(['203.0.113.2:1 late']);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(39);
    got.length = 0;
    const r = net.bind('r', 1);
    for (let i = 0; i < 200; i++) r.send(ep('203.0.113.1', 2), Buffer.from(String(i)));
    await tick(150);
    const order = got.map((g) => Number(g.split(' ')[1]));
    expect(order.slice().sort((x, y) => x - y)).toEqual([...Array(200).keys()]); // nothing lost
    expect(order).not.toEqual([...Array(200).keys()]); // but not in order
  });

  it('impossible shapes and networks are refused with a message', () => {
    expect(() => checkShape({ loss: 1.5 }, 'host x')).toThrow(
      new TestNetworkError('host x: loss 1.5 is not within 0..1'),
    );
    expect(() => checkShape({ delayMs: -1 }, 'host x')).toThrow(/delayMs -1 is not a delay/);
    expect(() => checkShape({ reorder: Number.NaN }, 'nat y')).toThrow(/reorder NaN/);
    expect(() => checkShape({ mtu: 20 }, 'host x')).toThrow(/mtu 20 is not within 68\.\.65535/);
    const net = new VirtualNetwork();
    expect(() => net.addHost('h', { ip: '10.0.0.1', behind: 'nowhere' })).toThrow(/no NAT 'nowhere'/);
    expect(() => net.addHost('h', { ip: 'fd00::1' })).toThrow(/not an IPv4 address/);
    expect(() => net.addNat('n', { publicIp: '203.0.113.9', link: { loss: -0.1 } })).toThrow(
      /nat n: loss -0.1/,
    );
    expect(() => new VirtualNetwork({ seed: 1.5 })).toThrow(/seed 1.5/);
  });
});

describe('seeds', () => {
  /** A run: 500 datagrams through a lossy, reordering hard NAT and back; what arrived, and the log. */
  async function run(seed: number) {
    const net = new VirtualNetwork({ seed });
    net.addHost('s', { ip: '203.0.113.1' });
    net.addNat('N', { publicIp: '203.0.113.11', kind: 'hard', link: { loss: 0.05, reorder: 0.1 } });
    net.addHost('c', { ip: '192.168.1.10', behind: 'N', link: { loss: 0.02 } });
    const c = net.bind('c', 41641);
    const got = inbox(net.bind('s', 3478));
    net.bind('s', 3479).onDatagram((from, d) => got.push(`${from} ${Buffer.from(d).toString()}`));
    // Two destinations: the hard NAT draws a port for each from the seeded generator.
    for (let i = 0; i < 500; i++) c.send(ep('203.0.113.1', 3478 + (i % 2)), Buffer.from(String(i)));
    await tick(150);
    return { got, log: JSON.stringify(net.log) };
  }

  it('the same seed repeats a run exactly (verdicts, NAT ports, arrival order); another seed does not', async () => {
    const one = await run(42);
    const two = await run(42);
    expect(two.log).toBe(one.log);
    expect(two.got).toEqual(one.got);
    expect(one.got.length).toBeGreaterThan(400);
    const other = await run(43);
    expect(other.log).not.toBe(one.log);
  });
});
