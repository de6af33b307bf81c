// TSMP between two IP stacks joined by an in-memory wire, each behind the tailnet's packet filter as a
// node has it: pings answered whatever the rules, a SYN the filter denies answered with a rejection,
// and that rejection ending the dial at once with EHOSTUNREACH (not after the connect timeout).
import { afterEach, describe, expect, it } from 'vitest';
import { parseIp } from '../../../src/netstack/address.js';
import { writeIPv4Header } from '../../../src/netstack/ipv4.js';
import { memoryLinkPair } from '../../../src/netstack/link.js';
import { Stack } from '../../../src/netstack/stack.js';
import { TcpEndpoint } from '../../../src/netstack/tcp/endpoint.js';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { type TcpSocket, tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { type FilterRule, PacketFilter } from '../../../src/tailnet/filter.js';
import { FilteredLink } from '../../../src/tailnet/filtered-link.js';
import { buildTsmpReject, TSMP_PROTOCOL } from '../../../src/tailnet/tsmp/packet.js';
import { Tsmp } from '../../../src/tailnet/tsmp/tsmp.js';
import { CaptureLink } from '../../netstack/capture-link.js';

const A = '100.64.0.1';
const B = '100.64.0.2';

/** A node's stack: a link, its filter (`rules` for inbound), TCP and TSMP. */
function node(link: ConstructorParameters<typeof FilteredLink>[0], self: string, rules: FilterRule[]) {
  const filter = new PacketFilter(rules, [self]);
  let tsmp: Tsmp | undefined;
  const stack = new Stack(
    new FilteredLink(
      link,
      () => filter,
      (ip, why) => tsmp?.denied(ip, why),
    ),
    { addresses: [self] },
  );
  tsmp = new Tsmp(stack);
  return { stack, filter, tsmp, tcp: new TcpEndpoint(stack) };
}
type Node = ReturnType<typeof node>;

const open: Node[] = [];
afterEach(() => {
  for (const n of open.splice(0)) {
    n.tsmp.close();
    n.tcp.close();
    n.stack.close();
  }
});

function pair(bRules: FilterRule[]): [Node, Node] {
  const [la, lb] = memoryLinkPair();
  const a = node(la, A, [{ SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }]);
  const b = node(lb, B, bRules);
  open.push(a, b);
  return [a, b];
}

function dial(n: Node, host: string, port: number): Promise<TcpSocket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(n.tcp, { host, port, connectTimeout: 10_000 });
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });
}

describe('TSMP on a node', () => {
  it('answers pings from a peer its filter denies everything (filter.go: "tsmp ok")', async () => {
    const [a, b] = pair([]); // B lets nothing in
    const pong = await a.tsmp.ping(B, 2000);
    expect(pong).toBeDefined();
    expect(pong!.peerAPIPort).toBe(0);
    expect(b.tsmp.stats.pingsAnswered).toBe(1);
    expect(a.tsmp.stats).toMatchObject({ pingsSent: 1, pongsMatched: 1 });
    expect(b.filter.stats.dropped).toBe(0);
  });

  it('a ping nobody answers resolves undefined after the timeout', async () => {
    const [la] = memoryLinkPair();
    const lone = node(la, A, []);
    open.push(lone);
    const t0 = performance.now();
    expect(await lone.tsmp.ping(B, 200)).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('a SYN the filter denies is rejected: the dial fails at once with EHOSTUNREACH, the reason named', async () => {
    const [a, b] = pair([{ SrcIPs: [A], DstPorts: [{ IP: B, Ports: { First: 5000, Last: 5000 } }] }]);
    new TcpServer(b.tcp).listen(5000);
    new TcpServer(b.tcp).listen(6000); // listening: only the filter stands in the way
    (await dial(a, B, 5000)).destroy();
    const t0 = performance.now();
    const err = await dial(a, B, 6000).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(performance.now() - t0).toBeLessThan(1000); // the connect timeout is 10 s
    expect(err?.code).toBe('EHOSTUNREACH');
    expect(err?.message).toMatch(/refused by the peer's packet filter: TSMP reject, reason acl/);
    expect(b.tsmp.stats.rejectsSent).toBe(1);
    expect(a.tsmp.stats.rejectsReceived).toBe(1);
    expect(b.filter.stats.dropReasons['no rule for tcp']).toBe(1);
  });

  it('an admitted SYN to a closed port is refused by a RST as before, with no rejection', async () => {
    const [a, b] = pair([{ SrcIPs: ['*'], DstPorts: [{ IP: '*', Ports: { First: 0, Last: 65535 } }] }]);
    const err = await dial(a, B, 7000).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ECONNREFUSED');
    expect(b.tsmp.stats.rejectsSent).toBe(0);
  });
});

describe('a rejection received', () => {
  /** An IPv4 TSMP packet from B to A with `payload`. */
  function tsmpFromB(payload: Uint8Array): Uint8Array {
    const p = new Uint8Array(20 + payload.length);
    writeIPv4Header(p, 0, {
      src: parseIp(B),
      dst: parseIp(A),
      protocol: TSMP_PROTOCOL,
      payloadLength: payload.length,
      ttl: 64,
    });
    p.set(payload, 20);
    return p;
  }

  it('"maybe broken" is advice only; a plain one ends the SYN_SENT connection it names, and only that one', async () => {
    const link = new CaptureLink(1420);
    const n = node(link, A, []);
    open.push(n);
    const sock = tcpConnect(n.tcp, { host: B, port: 22, connectTimeout: 10_000 });
    const other = tcpConnect(n.tcp, { host: B, port: 23, connectTimeout: 10_000 });
    const errors: string[] = [];
    sock.on('error', (e: NodeJS.ErrnoException) => errors.push(`22 ${e.code}`));
    other.on('error', (e: NodeJS.ErrnoException) => errors.push(`23 ${e.code}`));
    await new Promise((r) => setTimeout(r, 10));
    const [c] = n.tcp.list().filter((x) => x.remotePort === 22);
    expect(c?.state).toBe('SYN_SENT');
    const flow = { protocol: 6, srcPort: c!.localPort, dstPort: 22 };
    link.inject(tsmpFromB(buildTsmpReject({ ...flow, reason: 'host-firewall', maybeBroken: true })));
    await new Promise((r) => setTimeout(r, 10));
    expect(errors).toEqual([]);
    link.inject(tsmpFromB(buildTsmpReject({ ...flow, reason: 'shields' })));
    await new Promise((r) => setTimeout(r, 10));
    expect(errors).toEqual(['22 EHOSTUNREACH']);
    expect(n.tcp.list().map((x) => x.remotePort)).toEqual([23]);
    expect(n.tsmp.stats.rejectsReceived).toBe(2);
    other.destroy();
  });
});
