import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCidr, parseIp } from '../../src/netstack/address.js';
import { internetChecksum, pseudoHeaderSum } from '../../src/netstack/checksum.js';
import { NetstackError } from '../../src/netstack/errors.js';
import { encodeIcmpEcho, parseIcmp, parseIcmpPacket } from '../../src/netstack/icmp.js';
import { parseIPv4Packet, writeIPv4Header } from '../../src/netstack/ipv4.js';
import { parseIPv6Packet, writeIPv6Header } from '../../src/netstack/ipv6.js';
import type { IpPacket } from '../../src/netstack/packet.js';
import { parseIpPacket, Stack, type StackStats } from '../../src/netstack/stack.js';
import { assertFuzz, fuzzRuns } from '../fuzz.js';
import { CaptureLink } from './capture-link.js';

const RUNS = 2000;

/** Runs `fn`; it may return or throw a NetstackError, and nothing else. */
function onlyNetstackErrors<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof NetstackError) return undefined;
    throw err;
  }
}

/** A parse result must describe a region inside the buffer, consistently. */
function expectSane(pkt: IpPacket | undefined, buf: Uint8Array): void {
  if (!pkt) return;
  expect(pkt.start).toBeGreaterThanOrEqual(0);
  expect(pkt.start + pkt.headerLength).toBe(pkt.payloadOffset);
  expect(pkt.payloadOffset + pkt.payloadLength).toBe(pkt.end);
  expect(pkt.end).toBeLessThanOrEqual(buf.length);
  expect(pkt.payloadLength).toBeGreaterThanOrEqual(0);
  expect(pkt.dstOffset + pkt.addressLength).toBeLessThanOrEqual(pkt.payloadOffset);
}

const LOCAL4 = parseIp('100.64.0.1');
const LOCAL6 = parseIp('fd7a:115c:a1e0::1');

/** Extension headers (RFC 8200 §4) as [Next Header value that names it, bytes without its own Next Header]. */
const extension = fc.constantFrom<[number, number[]]>(
  [0, [0, 1, 4, 0, 0, 0, 0]],
  [60, [0, 0, 5, 2, 0, 0, 0]],
  [43, [0, 4, 0, 0, 0, 0, 0]],
  [44, [0, 0, 0, 1, 2, 3, 4]],
  [44, [0, 0, 9, 1, 2, 3, 4]],
  // Well-formed but to be discarded: an option whose type says "discard if unknown", and a
  // routing header with segments left (RFC 8200 §4.2, §4.4).
  [60, [0, 0x42, 4, 0, 0, 0, 0]],
  [43, [0, 4, 1, 0, 0, 0, 0]],
);

/** Well-formed packets addressed to (mostly) the stack under test: echo, other ICMP, UDP. */
const validPacket = fc
  .record({
    v6: fc.boolean(),
    remote: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    toUs: fc.boolean(),
    kind: fc.constantFrom('echoRequest', 'echoReply', 'icmpOther', 'udp'),
    identifier: fc.integer({ min: 0, max: 0xffff }),
    sequence: fc.integer({ min: 0, max: 0xffff }),
    data: fc.uint8Array({ maxLength: 64 }),
    exts: fc.array(extension, { maxLength: 3 }),
  })
  .map(({ v6, remote, toUs, kind, identifier, sequence, data, exts }) => {
    const src = v6 ? remote : remote.subarray(0, 4);
    const dst = v6 ? (toUs ? LOCAL6 : remote) : toUs ? LOCAL4 : remote.subarray(4, 8);
    const protocol = kind === 'udp' ? 17 : v6 ? 58 : 1;
    const type = kind === 'echoRequest' ? (v6 ? 128 : 8) : kind === 'echoReply' ? (v6 ? 129 : 0) : v6 ? 1 : 3;
    const pseudo = v6 ? pseudoHeaderSum(src, 0, dst, 0, 16, protocol, 8 + data.length) : 0;
    const upper = encodeIcmpEcho({ type, identifier, sequence, data }, pseudo);
    if (!v6) {
      const buf = new Uint8Array(20 + upper.length);
      writeIPv4Header(buf, 0, { src, dst, protocol, payloadLength: upper.length });
      buf.set(upper, 20);
      return buf;
    }
    // Each header's first byte names the one after it; the last names the upper layer.
    const extBytes: number[] = [];
    for (let i = 0; i < exts.length; i++) extBytes.push(exts[i + 1]?.[0] ?? protocol, ...exts[i]![1]);
    const buf = new Uint8Array(40 + extBytes.length + upper.length);
    const first = exts[0]?.[0] ?? protocol;
    writeIPv6Header(buf, 0, { src, dst, nextHeader: first, payloadLength: extBytes.length + upper.length });
    buf.set(extBytes, 40);
    buf.set(upper, 40 + extBytes.length);
    return buf;
  });

type Mutation =
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'append'; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 16 }) }),
);

/** Applies mutations, then optionally re-fixes the IPv4 header checksum so they reach deeper layers. */
function mutate(packet: Uint8Array, mutations: Mutation[], fixChecksum: boolean): Uint8Array {
  let buf = packet.slice();
  for (const m of mutations) {
    if (buf.length === 0) break;
    if (m.op === 'set') buf[m.at % buf.length] = m.value;
    else if (m.op === 'truncate') buf = buf.slice(0, m.at % (buf.length + 1));
    else buf = Uint8Array.from([...buf, ...m.bytes]);
  }
  const ihl = ((buf[0] ?? 0) & 0x0f) * 4;
  if (fixChecksum && buf[0]! >>> 4 === 4 && ihl >= 20 && ihl <= buf.length) {
    buf[10] = 0;
    buf[11] = 0;
    const sum = internetChecksum(buf, 0, ihl);
    buf[10] = sum >>> 8;
    buf[11] = sum & 0xff;
  }
  return buf;
}

const mutatedPacket = fc
  .tuple(validPacket, fc.array(mutation, { maxLength: 4 }), fc.boolean())
  .map(([p, ms, fix]) => mutate(p, ms, fix));

const anyBytes = fc.uint8Array({ maxLength: 120 });
const anyInput = fc.oneof(anyBytes, mutatedPacket, validPacket);

describe('fuzzing the parsers', () => {
  it('IPv4, IPv6 and the dispatcher only return or throw NetstackError', () => {
    assertFuzz(
      fc.property(
        anyInput,
        fc.integer({ min: -2, max: 130 }),
        fc.integer({ min: -2, max: 130 }),
        (buf, off, len) => {
          expectSane(
            onlyNetstackErrors(() => parseIPv4Packet(buf)),
            buf,
          );
          expectSane(
            onlyNetstackErrors(() => parseIPv6Packet(buf)),
            buf,
          );
          expectSane(
            onlyNetstackErrors(() => parseIpPacket(buf)),
            buf,
          );
          expectSane(
            onlyNetstackErrors(() => parseIPv4Packet(buf, off, len)),
            buf,
          );
          expectSane(
            onlyNetstackErrors(() => parseIPv6Packet(buf, off, len)),
            buf,
          );
          expectSane(
            onlyNetstackErrors(() => parseIpPacket(buf, off)),
            buf,
          );
        },
      ),
      { numRuns: fuzzRuns(RUNS) },
    );
  });

  it('ICMP only returns or throws NetstackError', () => {
    assertFuzz(
      fc.property(
        anyInput,
        fc.integer({ min: -2, max: 130 }),
        fc.integer({ min: -2, max: 130 }),
        fc.nat(),
        (buf, off, len, pseudo) => {
          const msg = onlyNetstackErrors(() => parseIcmp(buf, off, len, pseudo));
          if (msg) expect(msg.dataOffset + msg.dataLength).toBeLessThanOrEqual(buf.length);
          const pkt = onlyNetstackErrors(() => parseIpPacket(buf));
          if (pkt) onlyNetstackErrors(() => parseIcmpPacket(pkt));
        },
      ),
      { numRuns: fuzzRuns(RUNS) },
    );
  });

  it('address and prefix text only parse or throw NetstackError', () => {
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef:./%'.split('')), maxLength: 45 }),
      fc.string({ unit: 'binary', maxLength: 45 }),
    );
    assertFuzz(
      fc.property(text, (t) => {
        onlyNetstackErrors(() => parseIp(t));
        onlyNetstackErrors(() => parseCidr(t));
      }),
      { numRuns: fuzzRuns(RUNS) },
    );
  });
});

describe('fuzzing the Stack through its link', () => {
  it('never throws, counts every packet once, and sends only valid packets', () => {
    const link = new CaptureLink(1500);
    const stack = new Stack(link, { addresses: ['100.64.0.1/10', 'fd7a:115c:a1e0::1/48'] });
    stack.registerProtocol(17, (pkt) => expectSane(pkt, pkt.buf));
    assertFuzz(
      fc.property(fc.array(anyInput, { minLength: 1, maxLength: 5 }), (packets) => {
        for (const p of packets) link.inject(p);
      }),
      { numRuns: fuzzRuns(RUNS) },
    );
    const s: Readonly<StackStats> = stack.stats;
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
    // The generators reach every branch, not only the early drops.
    for (const key of [
      'delivered',
      'malformed',
      'badChecksum',
      'notForUs',
      'echoRequestsAnswered',
    ] as const) {
      expect(s[key]).toBeGreaterThan(0);
    }
    for (const key of [
      'unsupported',
      'fragmentsDropped',
      'echoRepliesUnmatched',
      'icmpOther',
      'badSource',
    ] as const) {
      expect(s[key]).toBeGreaterThan(0);
    }
    expect(link.sent.length).toBe(s.echoRequestsAnswered);
    for (const out of link.sent) {
      const pkt = parseIpPacket(out);
      const msg = parseIcmpPacket(pkt);
      expect(msg.type === 0 || msg.type === 129).toBe(true);
    }
    stack.close();
  });
});
