import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseIp } from '../../src/netstack/address.js';
import { internetChecksum, pseudoHeaderSumV6 } from '../../src/netstack/checksum.js';
import { NetstackError, type NetstackErrorCode } from '../../src/netstack/errors.js';
import { parseIcmpPacket } from '../../src/netstack/icmp.js';
import { memoryLinkPair } from '../../src/netstack/link.js';
import { type IpPacket, packetSource, upperLayerChecksumOk } from '../../src/netstack/packet.js';
import { parseIpPacket, Stack, type StackStats } from '../../src/netstack/stack.js';
import { CaptureLink } from './capture-link.js';
import { KERNEL_V4_REPLY, KERNEL_V4_REQUEST, KERNEL_V6_REPLY, KERNEL_V6_REQUEST, toHex } from './vectors.js';

async function expectReject(code: NetstackErrorCode, p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NetstackError);
  expect((err as NetstackError).code).toBe(code);
}

/** Received packets are each counted in exactly one disposition. */
function expectBalanced(s: Readonly<StackStats>): void {
  const dispositions =
    s.delivered +
    s.malformed +
    s.badChecksum +
    s.unsupported +
    s.badSource +
    s.notForUs +
    s.fragmentsDropped +
    s.unknownProtocol;
  expect(dispositions).toBe(s.received);
}

const open: Stack[] = [];
function stack(...args: ConstructorParameters<typeof Stack>): Stack {
  const s = new Stack(...args);
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  vi.useRealTimers();
});

function pair(faults = {}): [Stack, Stack] {
  const [la, lb] = memoryLinkPair(1420, faults);
  const a = stack(la, { addresses: ['100.64.0.1/32', 'fd7a:115c:a1e0::1/48'] });
  const b = stack(lb, { addresses: ['100.64.0.2', 'fd7a:115c:a1e0::2'] });
  return [a, b];
}

describe('Stack echo over a memory link', () => {
  it('pings over IPv4', async () => {
    const [a, b] = pair();
    const r = await a.ping('100.64.0.2');
    expect(r).toMatchObject({ from: '100.64.0.2', ttl: 64, bytes: 64 });
    expect(r.rttMs).toBeGreaterThanOrEqual(0);
    expect(b.stats.echoRequestsAnswered).toBe(1);
    expect(a.stats.echoRepliesMatched).toBe(1);
    expectBalanced(a.stats);
    expectBalanced(b.stats);
  });

  it('pings over IPv6', async () => {
    const [a, b] = pair();
    const r = await b.ping('fd7a:115c:a1e0::1', { size: 1000, seq: 77 });
    expect(r).toMatchObject({ from: 'fd7a:115c:a1e0::1', ttl: 64, bytes: 1008 });
    expect(a.stats.echoRequestsAnswered).toBe(1);
  });

  it('treats an IPv4-mapped destination as IPv4', async () => {
    const [a] = pair();
    expect((await a.ping('::ffff:100.64.0.2')).from).toBe('100.64.0.2');
  });

  it('runs many pings concurrently and matches each reply', async () => {
    const [a, b] = pair({ reorder: 0.3, seed: 7 });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 ? a.ping('100.64.0.2', { size: i }) : a.ping('fd7a:115c:a1e0::2'),
      ),
    );
    expect(results.map((r) => r.from).filter((f) => f === '100.64.0.2')).toHaveLength(25);
    expect(b.stats.echoRequestsAnswered).toBe(50);
    expect(a.stats.echoRepliesMatched).toBe(50);
  });

  it('counts duplicated replies as unmatched', async () => {
    const [a] = pair({ duplicate: 1 });
    await a.ping('100.64.0.2');
    await new Promise((r) => setTimeout(r, 5));
    // The request is duplicated too, so two replies of each come back: one matches.
    expect(a.stats.echoRepliesMatched).toBe(1);
    expect(a.stats.echoRepliesUnmatched).toBe(3);
  });

  it('times out when the link loses everything', async () => {
    const [a, b] = pair({ loss: 1 });
    await expectReject('TIMEOUT', a.ping('100.64.0.2', { timeoutMs: 20 }));
    expect(b.stats.received).toBe(0);
    // The sequence number is free again after the timeout.
    await expectReject('TIMEOUT', a.ping('100.64.0.2', { timeoutMs: 1, seq: 0 }));
  });

  it('close rejects pending pings with CLOSED and leaves no timers', async () => {
    vi.useFakeTimers();
    const [a] = pair({ loss: 1 });
    const p1 = a.ping('100.64.0.2');
    const p2 = a.ping('fd7a:115c:a1e0::2');
    expect(vi.getTimerCount()).toBe(2);
    a.close();
    expect(vi.getTimerCount()).toBe(0);
    await expectReject('CLOSED', p1);
    await expectReject('CLOSED', p2);
    await expectReject('CLOSED', a.ping('100.64.0.2'));
    expect(() => a.sendIp(parseIp('100.64.0.2'), 17, new Uint8Array(1))).toThrow(NetstackError);
    a.close();
  });

  it('stops answering once closed', async () => {
    const [a, b] = pair();
    b.close();
    await expectReject('TIMEOUT', a.ping('100.64.0.2', { timeoutMs: 10 }));
    expect(b.stats.received).toBe(0);
  });

  it('rejects pings it cannot send', async () => {
    const [la] = memoryLinkPair(100);
    const v4only = stack(la, { addresses: ['10.0.0.1/24'] });
    await expectReject('NO_ROUTE', v4only.ping('fd00::1'));
    await expectReject('BAD_ADDRESS', v4only.ping('10.0.0.300'));
    await expectReject('TOO_BIG', v4only.ping('10.0.0.2', { size: 73 }));
    await expectReject('INVALID_ARGUMENT', v4only.ping('10.0.0.2', { seq: 70000 }));
    await expectReject('INVALID_ARGUMENT', v4only.ping('10.0.0.2', { size: -1 }));
    await expectReject('INVALID_ARGUMENT', v4only.ping('10.0.0.2', { timeoutMs: Number.NaN }));
    const first = v4only.ping('10.0.0.2', { seq: 5, timeoutMs: 5 });
    await expectReject('IN_USE', v4only.ping('10.0.0.2', { seq: 5 }));
    await expectReject('TIMEOUT', first);
  });

  it('refuses bad configuration', () => {
    const [la] = memoryLinkPair();
    expect(() => new Stack(la, { addresses: ['10.0.0.1/33'] })).toThrow(NetstackError);
    expect(() => new Stack(la, { addresses: [], ttl: 0 })).toThrow(NetstackError);
  });
});

describe('Stack against kernel packets', () => {
  it('answers the kernel IPv4 ping with the kernel reply ICMP bytes', () => {
    const link = new CaptureLink();
    const s = stack(link, { addresses: ['127.0.0.1/8'] });
    link.inject(KERNEL_V4_REQUEST);
    expect(link.sent).toHaveLength(1);
    const reply = link.sent[0]!;
    expect(toHex(reply.subarray(20))).toBe(toHex(KERNEL_V4_REPLY.subarray(20)));
    const pkt = parseIpPacket(reply);
    expect(pkt).toMatchObject({ protocol: 1, ttl: 64 });
    expect(s.stats).toMatchObject({ received: 1, delivered: 1, echoRequestsAnswered: 1, sent: 1 });
  });

  it('answers the kernel IPv6 ping with the kernel reply ICMPv6 bytes', () => {
    const link = new CaptureLink();
    stack(link, { addresses: ['::1'] });
    link.inject(KERNEL_V6_REQUEST);
    expect(link.sent).toHaveLength(1);
    expect(toHex(link.sent[0]!)).toBe(toHex(KERNEL_V6_REPLY).replace(/^600d6bae/, '60000000'));
  });

  it('counts a reply it cannot send because the link MTU is smaller', () => {
    const link = new CaptureLink(50);
    const s = stack(link, { addresses: ['::1'] });
    link.inject(KERNEL_V6_REQUEST); // 56 bytes, so is the reply
    expect(link.sent).toHaveLength(0);
    expect(s.stats).toMatchObject({ delivered: 1, tooBig: 1, echoRequestsAnswered: 0 });
  });

  it('drops and counts what is not for it', () => {
    const link = new CaptureLink();
    const s = stack(link, { addresses: ['10.0.0.1', 'fd00::1'] });
    link.inject(KERNEL_V4_REQUEST); // to 127.0.0.1
    link.inject(KERNEL_V6_REQUEST); // to ::1
    link.inject(new Uint8Array(0));
    link.inject(new Uint8Array([0x45, 0, 0]));
    const badSum = KERNEL_V4_REQUEST.slice();
    badSum[11] ^= 0xff;
    link.inject(badSum);
    expect(link.sent).toHaveLength(0);
    expect(s.stats).toMatchObject({ received: 5, notForUs: 2, malformed: 2, badChecksum: 1 });
    expectBalanced(s.stats);
  });

  it('does not answer multicast or unspecified sources', () => {
    const link = new CaptureLink();
    const s = stack(link, { addresses: ['::1'] });
    const multicast = KERNEL_V6_REQUEST.slice();
    multicast[8] = 0xff; // ff00::1 — the ICMPv6 checksum no longer matters, the IP layer drops it first
    link.inject(multicast);
    expect(s.stats.badSource).toBe(1);
    expect(link.sent).toHaveLength(0);
  });
});

describe('protocol handlers', () => {
  it('delivers registered protocols with a parse TCP/UDP can use directly', async () => {
    const [a, b] = pair();
    const got: { from: string; payload: string; checksumOk: boolean }[] = [];
    b.registerProtocol(17, (pkt: IpPacket) => {
      got.push({
        from: packetSource(pkt),
        payload: toHex(pkt.buf.subarray(pkt.payloadOffset, pkt.end)),
        checksumOk: upperLayerChecksumOk(pkt),
      });
    });
    // A UDP datagram with a checksum over the pseudo-header (RFC 768), built in place.
    const src = a.localAddress(6)!;
    const dst = parseIp('fd7a:115c:a1e0::2');
    const packet = new Uint8Array(40 + 12);
    packet.set([0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 0xde, 0xad, 0xbe, 0xef], 40);
    const sum = internetChecksum(packet, 40, 12, pseudoHeaderSumV6(src, dst, 17, 12));
    packet[46] = sum >>> 8;
    packet[47] = sum & 0xff;
    a.sendPrepared(packet, dst, 17, { src });
    a.sendIp(parseIp('100.64.0.2'), 17, new Uint8Array([1, 2, 3]));
    a.sendIp(parseIp('100.64.0.2'), 99, new Uint8Array([1]));
    await new Promise((r) => setTimeout(r, 1));
    expect(got).toEqual([
      {
        from: 'fd7a:115c:a1e0::1',
        payload: `30390035000c${toHex(packet.subarray(46, 48))}deadbeef`,
        checksumOk: true,
      },
      { from: '100.64.0.1', payload: '010203', checksumOk: false },
    ]);
    expect(b.stats).toMatchObject({ delivered: 2, unknownProtocol: 1 });
    b.unregisterProtocol(17);
    a.sendIp(parseIp('100.64.0.2'), 17, new Uint8Array([1]));
    await new Promise((r) => setTimeout(r, 1));
    expect(b.stats.unknownProtocol).toBe(2);
  });

  it('guards protocol numbers and sends', () => {
    const [a] = pair();
    a.registerProtocol(6, () => {});
    expect(() => a.registerProtocol(6, () => {})).toThrow(NetstackError);
    expect(() => a.registerProtocol(1, () => {})).toThrow(NetstackError);
    expect(() => a.registerProtocol(58, () => {})).toThrow(NetstackError);
    expect(() => a.registerProtocol(256, () => {})).toThrow(NetstackError);
    expect(() => a.sendIp(new Uint8Array(5), 17, new Uint8Array(1))).toThrow(NetstackError);
    expect(() => a.sendIp(parseIp('100.64.0.2'), 17, new Uint8Array(1500))).toThrow(NetstackError);
    expect(() => a.sendIp(parseIp('100.64.0.2'), 17, new Uint8Array(1), { src: new Uint8Array(16) })).toThrow(
      NetstackError,
    );
    const [lc] = memoryLinkPair();
    const v6only = stack(lc, { addresses: ['fd00::1'] });
    let code: string | undefined;
    try {
      v6only.sendIp(parseIp('10.0.0.1'), 17, new Uint8Array(1));
    } catch (err) {
      code = (err as NetstackError).code;
    }
    expect(code).toBe('NO_ROUTE');
  });

  it('drops fragments with a counter', () => {
    const link = new CaptureLink();
    const s = stack(link, { addresses: ['127.0.0.1'] });
    const frag = KERNEL_V4_REQUEST.slice();
    frag[6] = 0x20; // MF; header checksum fixed below
    frag[10] = 0;
    frag[11] = 0;
    const sum = internetChecksum(frag, 0, 20);
    frag[10] = sum >>> 8;
    frag[11] = sum & 0xff;
    link.inject(frag);
    expect(s.stats.fragmentsDropped).toBe(1);
    expect(link.sent).toHaveLength(0);
    expect(parseIcmpPacket(parseIpPacket(KERNEL_V4_REQUEST)).type).toBe(8);
  });
});
