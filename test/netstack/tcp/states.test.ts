// One test per RFC 9293 state transition (§3.3.2 figure 5), driven through the sockets and
// watched on the wire, plus the RFC 5961 checks and the error paths.
import { afterEach, describe, expect, it } from 'vitest';
import { TcpFlag } from '../../../src/netstack/tcp/segment.js';
import { TcpServer } from '../../../src/netstack/tcp/server.js';
import { type TcpSocket, tcpConnect } from '../../../src/netstack/tcp/socket.js';
import { A, B, inject, type Pair, settle, tcpPair, until } from './helpers.js';

const { SYN, ACK, FIN, RST } = TcpFlag;
let pair: Pair;
afterEach(() => pair?.close());

const fast = { minRtoMs: 20, initialRtoMs: 50, timeWaitMs: 100 };

/** A listener on b:80 whose accepted sockets land in `accepted`. */
function listen(p: Pair, opts: { allowHalfOpen?: boolean; backlog?: number } = {}) {
  const accepted: TcpSocket[] = [];
  const server = new TcpServer(p.b, { allowHalfOpen: opts.allowHalfOpen }, (s) => accepted.push(s));
  server.listen(80, undefined, opts.backlog);
  return { server, accepted };
}

async function established(p: Pair, opts: { allowHalfOpen?: boolean } = {}) {
  const { server, accepted } = listen(p, opts);
  const client = tcpConnect(p.a, { host: B, port: 80, allowHalfOpen: opts.allowHalfOpen });
  await new Promise((r) => client.once('connect', r));
  await until(() => accepted.length === 1, 2000, 'accept');
  return { server, client, peer: accepted[0]! };
}

function states(p: Pair, side: 'a' | 'b'): string[] {
  return p[side].list().map((c) => c.state);
}

describe('opening', () => {
  it('CLOSED → SYN_SENT → ESTABLISHED, with MSS, window scale, SACK and timestamps offered', async () => {
    pair = tcpPair({ a: fast, b: fast });
    listen(pair);
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    expect(client.tcpState).toBe('SYN_SENT');
    expect(client.connecting).toBe(true);
    await new Promise((r) => client.once('connect', r));
    expect(client.tcpState).toBe('ESTABLISHED');
    expect(client.remoteAddress).toBe(B);
    expect(client.remotePort).toBe(80);
    expect(client.localAddress).toBe(A);
    expect(client.localPort).toBeGreaterThanOrEqual(49152);
    const [syn, synAck, ack] = pair.wire;
    expect(syn!.flags).toBe(SYN);
    expect(synAck!.flags).toBe(SYN | ACK);
    expect(synAck!.ack).toBe((syn!.seq + 1) >>> 0);
    expect(ack!.flags).toBe(ACK);
    expect(ack!.seq).toBe((syn!.seq + 1) >>> 0);
    expect(ack!.ack).toBe((synAck!.seq + 1) >>> 0);
  });

  it('LISTEN → SYN_RECEIVED → ESTABLISHED, accepted only on the final ACK', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { accepted } = listen(pair);
    let dropAcks = true;
    pair.drop = (s) => dropAcks && s.from === 'a' && s.flags === ACK;
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    await new Promise((r) => client.once('connect', r));
    expect(states(pair, 'b')).toEqual(['SYN_RECEIVED']);
    expect(accepted).toHaveLength(0);
    dropAcks = false;
    client.write('x'); // carries the ACK the server is waiting for
    await until(() => accepted.length === 1, 2000, 'accept');
    expect(accepted[0]!.tcpState).toBe('ESTABLISHED');
    expect(accepted[0]!.remoteAddress).toBe(A);
  });

  it('simultaneous open: SYN_SENT → SYN_RECEIVED → ESTABLISHED on both sides', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const x = tcpConnect(pair.a, { host: B, port: 5000, localPort: 6000 });
    const y = tcpConnect(pair.b, { host: A, port: 6000, localPort: 5000 });
    await Promise.all([new Promise((r) => x.once('connect', r)), new Promise((r) => y.once('connect', r))]);
    expect(x.tcpState).toBe('ESTABLISHED');
    expect(y.tcpState).toBe('ESTABLISHED');
    expect(pair.wire.filter((s) => s.flags === (SYN | ACK))).toHaveLength(2);
    y.end('hello');
    const got = await new Promise<string>((r) => x.once('data', (d: Buffer) => r(d.toString())));
    expect(got).toBe('hello');
  });

  it('SYN to a closed port → RST → ECONNREFUSED with code, address and port', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const client = tcpConnect(pair.a, { host: B, port: 81 });
    const closed = new Promise((r) => client.once('close', r));
    const err = await new Promise<NodeJS.ErrnoException & { address?: string; port?: number }>((r) =>
      client.once('error', r),
    );
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.syscall).toBe('connect');
    expect(err.address).toBe(B);
    expect(err.port).toBe(81);
    expect(err.errno).toBeLessThan(0);
    expect(pair.wire.find((s) => s.from === 'b')!.flags).toBe(RST | ACK);
    await closed;
  });

  it('SYN_SENT to a silent host → SYN retransmissions with backoff → ETIMEDOUT', async () => {
    pair = tcpPair({ a: { ...fast, synRetries: 2 }, b: fast });
    pair.drop = (s) => s.from === 'a';
    const client = tcpConnect(pair.a, { host: B, port: 80 });
    const err = await new Promise<NodeJS.ErrnoException>((r) => client.once('error', r));
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.syscall).toBe('connect');
    expect(pair.wire.filter((s) => s.flags === SYN)).toHaveLength(3);
    expect(pair.a.list()).toEqual([]);
  });

  it('a connect timeout ends a slow handshake with ETIMEDOUT', async () => {
    pair = tcpPair({ a: fast, b: fast });
    pair.drop = (s) => s.from === 'a';
    const client = tcpConnect(pair.a, { host: B, port: 80, connectTimeout: 30 });
    const err = await new Promise<NodeJS.ErrnoException>((r) => client.once('error', r));
    expect(err.code).toBe('ETIMEDOUT');
    await settle(10);
    expect(pair.a.list()).toEqual([]);
  });

  it('EADDRINUSE for a second listener on a port, as an error event', async () => {
    pair = tcpPair();
    listen(pair);
    const second = new TcpServer(pair.b).listen(80);
    const err = await new Promise<NodeJS.ErrnoException & { port?: number }>((r) => second.once('error', r));
    expect(err.code).toBe('EADDRINUSE');
    expect(err.port).toBe(80);
  });

  it('the SYN backlog bounds half-open connections', async () => {
    pair = tcpPair({ a: fast, b: fast });
    listen(pair, { backlog: 2 });
    pair.drop = (s) => s.from === 'a' && s.flags === ACK; // handshakes never complete
    for (let i = 0; i < 4; i++) tcpConnect(pair.a, { host: B, port: 80 }).on('error', () => {});
    await settle(20);
    expect(states(pair, 'b')).toEqual(['SYN_RECEIVED', 'SYN_RECEIVED']);
    expect(pair.b.stats.synsDropped).toBeGreaterThanOrEqual(2);
  });
});

describe('closing', () => {
  it('active close: FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT → CLOSED after the TIME_WAIT time', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { client, peer } = await established(pair, { allowHalfOpen: true });
    client.resume(); // as net.Socket: a stream nobody reads never ends, so never closes
    const closed = new Promise((r) => client.once('close', r));
    pair.drop = (s) => s.from === 'b'; // hold the ACK of our FIN to see FIN_WAIT_1
    client.end();
    await until(() => client.tcpState === 'FIN_WAIT_1', 1000, 'FIN_WAIT_1');
    pair.drop = undefined;
    await until(() => client.tcpState === 'FIN_WAIT_2', 2000, 'FIN_WAIT_2');
    expect(peer.tcpState).toBe('CLOSE_WAIT');
    peer.end();
    await until(() => states(pair, 'a')[0] === 'TIME_WAIT', 2000, 'TIME_WAIT');
    await closed;
    const t0 = performance.now();
    await until(() => pair.a.list().length === 0, 2000, 'CLOSED');
    expect(performance.now() - t0).toBeGreaterThan(50);
  });

  it('passive close: CLOSE_WAIT → LAST_ACK → CLOSED', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { client, peer } = await established(pair, { allowHalfOpen: true });
    client.end();
    await until(() => peer.tcpState === 'CLOSE_WAIT', 1000, 'CLOSE_WAIT');
    peer.resume();
    const closed = new Promise((r) => peer.once('close', r));
    pair.drop = (s) => s.from === 'a';
    peer.end();
    await until(() => states(pair, 'b')[0] === 'LAST_ACK', 1000, 'LAST_ACK');
    pair.drop = undefined;
    await until(() => pair.b.list().length === 0, 2000, 'CLOSED');
    await closed;
  });

  it('simultaneous close: FIN_WAIT_1 → CLOSING → TIME_WAIT on both sides', async () => {
    // A little delay on the wire so that the two FINs cross.
    pair = tcpPair({ a: fast, b: { ...fast, timeWaitMs: 1000 }, faults: { delayMs: 5 } });
    const { client, peer } = await established(pair, { allowHalfOpen: true });
    client.resume();
    peer.resume();
    client.end();
    peer.end();
    await until(() => states(pair, 'a')[0] === 'TIME_WAIT' && states(pair, 'b')[0] === 'TIME_WAIT', 2000);
    const fins = pair.wire.filter((s) => s.flags & FIN);
    expect(fins.map((s) => s.from).sort()).toEqual(['a', 'b']);
    // Both FINs left before either was acknowledged: that is the CLOSING path.
    expect(fins.every((f) => f.ack === fins.find((g) => g !== f)!.seq)).toBe(true);
  });

  it('a RST with the exact sequence number → ECONNRESET (RFC 5961 §3.2)', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { client, peer } = await established(pair);
    const errP = new Promise<NodeJS.ErrnoException>((r) => client.once('error', r));
    peer.resetAndDestroy();
    const err = await errP;
    expect(err.code).toBe('ECONNRESET');
    expect(pair.a.list()).toEqual([]);
  });

  it('a RST inside the window but not at RCV.NXT gets a challenge ACK and changes nothing', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { client } = await established(pair);
    const last = pair.wire.filter((s) => s.from === 'b').at(-1)!;
    const before = pair.a.stats.challengeAcks;
    inject(pair.sb, B, A, {
      srcPort: 80,
      dstPort: client.localPort,
      seq: last.seq + 100,
      ack: 0,
      flags: RST,
      window: 0,
    });
    await settle();
    expect(client.tcpState).toBe('ESTABLISHED');
    expect(pair.a.stats.challengeAcks).toBe(before + 1);
    // Outside the window: silently dropped, not even a challenge.
    inject(pair.sb, B, A, {
      srcPort: 80,
      dstPort: client.localPort,
      seq: last.seq + 0x40000000,
      ack: 0,
      flags: RST,
      window: 0,
    });
    await settle();
    expect(client.tcpState).toBe('ESTABLISHED');
    expect(pair.a.stats.challengeAcks).toBe(before + 1);
  });

  it('a SYN on an established connection gets a challenge ACK (RFC 5961 §4)', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { client } = await established(pair);
    const last = pair.wire.filter((s) => s.from === 'b').at(-1)!;
    const n = pair.wire.length;
    inject(pair.sb, B, A, {
      srcPort: 80,
      dstPort: client.localPort,
      seq: last.seq,
      ack: 0,
      flags: SYN,
      window: 100,
    });
    await settle();
    expect(client.tcpState).toBe('ESTABLISHED');
    const reply = pair.wire.slice(n).find((s) => s.from === 'a')!;
    expect(reply.flags).toBe(ACK);
    expect(reply.ack).toBe((last.seq + 1) >>> 0); // the last from b was its SYN-ACK
  });

  it('an ACK of data never sent is answered and ignored (RFC 5961 §5.2)', async () => {
    pair = tcpPair({ a: fast, b: fast });
    const { client, peer } = await established(pair);
    const last = pair.wire.filter((s) => s.from === 'b').at(-1)!;
    inject(pair.sb, B, A, {
      srcPort: 80,
      dstPort: client.localPort,
      seq: last.seq,
      ack: last.ack + 5000,
      flags: ACK,
      window: 100,
    });
    await settle();
    client.write('still fine');
    const got = await new Promise<string>((r) => peer.once('data', (d: Buffer) => r(d.toString())));
    expect(got).toBe('still fine');
  });

  it('a peer that stops answering mid-transfer → retransmissions → ETIMEDOUT', async () => {
    pair = tcpPair({ a: { ...fast, maxRetries: 3 }, b: fast });
    const { client } = await established(pair);
    pair.drop = (s) => s.from === 'b';
    client.write(Buffer.alloc(10_000));
    const err = await new Promise<NodeJS.ErrnoException>((r) => client.once('error', r));
    expect(err.code).toBe('ETIMEDOUT');
    expect(pair.a.stats.timeouts).toBe(3);
    expect(pair.a.list()).toEqual([]);
  });

  it('keepalive probes a silent peer and gives up with ETIMEDOUT; an alive peer answers them', async () => {
    pair = tcpPair({ a: { ...fast, keepaliveIntervalMs: 20, keepaliveProbes: 3 }, b: fast });
    const { client } = await established(pair);
    client.setKeepAlive(true, 40);
    await settle(150);
    expect(client.tcpState).toBe('ESTABLISHED');
    const probes = pair.wire.filter((s) => s.from === 'a' && s.len === 0 && s.flags === ACK);
    expect(probes.length).toBeGreaterThan(1);
    pair.drop = (s) => s.from === 'b';
    const err = await new Promise<NodeJS.ErrnoException>((r) => client.once('error', r));
    expect(err.code).toBe('ETIMEDOUT');
  });
});

describe('errors as net.connect reports them', () => {
  it("EADDRINUSE for a taken local port arrives as 'error', not a throw", async () => {
    pair = tcpPair({ a: fast, b: fast });
    listen(pair);
    const first = tcpConnect(pair.a, { host: B, port: 80, localPort: 40000 });
    await new Promise((r) => first.once('connect', r));
    const second = tcpConnect(pair.a, { host: B, port: 80, localPort: 40000 });
    const err = await new Promise<NodeJS.ErrnoException & { port?: number }>((r) => second.once('error', r));
    expect(err.code).toBe('EADDRINUSE');
    expect(err.port).toBe(40000);
    expect(first.tcpState).toBe('ESTABLISHED');
  });
});
