import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../src/netstack/address.js';
import { internetChecksum, pseudoHeaderSumV6 } from '../../src/netstack/checksum.js';
import { NetstackError, type NetstackErrorCode } from '../../src/netstack/errors.js';
import { encodeIcmpEcho } from '../../src/netstack/icmp.js';
import { parseIPv4Packet, writeIPv4Header } from '../../src/netstack/ipv4.js';
import { parseIPv6Packet, writeIPv6Header } from '../../src/netstack/ipv6.js';
import {
  packetDestination,
  packetDestinationBytes,
  packetPseudoHeaderSum,
  packetSource,
  packetSourceBytes,
  upperLayerChecksumOk,
} from '../../src/netstack/packet.js';
import { parseIpPacket } from '../../src/netstack/stack.js';
import { hex, KERNEL_V4_REQUEST, KERNEL_V6_REQUEST } from './vectors.js';

function expectCode(code: NetstackErrorCode, fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(NetstackError);
  expect((thrown as NetstackError).code).toBe(code);
}

const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const addr16 = fc.uint8Array({ minLength: 16, maxLength: 16 });

describe('IPv4 (RFC 791)', () => {
  it('parses a header the kernel sent', () => {
    const pkt = parseIPv4Packet(KERNEL_V4_REQUEST);
    expect(pkt).toMatchObject({ version: 4, protocol: 1, ttl: 64, headerLength: 20, payloadOffset: 20 });
    expect(pkt).toMatchObject({ payloadLength: 16, end: 36, fragment: false, addressLength: 4 });
    expect(packetSource(pkt)).toBe('127.0.0.1');
    expect(packetDestination(pkt)).toBe('127.0.0.1');
    expect(formatIp(packetSourceBytes(pkt))).toBe('127.0.0.1');
    expect(packetDestinationBytes(pkt).length).toBe(4);
  });

  it('round-trips build → parse at any offset', () => {
    fc.assert(
      fc.property(
        addr4,
        addr4,
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 1500 }),
        fc.record({ ttl: fc.integer({ min: 0, max: 255 }), tos: fc.integer({ min: 0, max: 255 }) }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 64 }),
        (src, dst, protocol, payloadLength, { ttl, tos }, identification, offset) => {
          const buf = new Uint8Array(offset + 20 + payloadLength + 7);
          expect(
            writeIPv4Header(buf, offset, { src, dst, protocol, payloadLength, ttl, tos, identification }),
          ).toBe(20);
          const pkt = parseIPv4Packet(buf, offset);
          expect(pkt).toMatchObject({ protocol, ttl, trafficClass: tos, payloadLength, fragment: false });
          expect(pkt.start).toBe(offset);
          expect(pkt.payloadOffset).toBe(offset + 20);
          expect(pkt.end).toBe(offset + 20 + payloadLength);
          expect([...packetSourceBytes(pkt)]).toEqual([...src]);
          expect([...packetDestinationBytes(pkt)]).toEqual([...dst]);
          expect(buf[offset + 6]).toBe(0x40); // DF by default
          expect(internetChecksum(buf, offset, 20)).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('skips options and ignores link padding', () => {
    const buf = new Uint8Array(24 + 4 + 10);
    writeIPv4Header(buf, 0, {
      src: parseIp('10.0.0.1'),
      dst: parseIp('10.0.0.2'),
      protocol: 17,
      payloadLength: 8,
    });
    // Rebuild as IHL 6 with one NOP-padded option word (RFC 791 §3.1 "No Operation" = 1).
    buf.copyWithin(24, 20, 28);
    buf[0] = 0x46;
    buf[3] = 32;
    buf.set([1, 1, 1, 0], 20);
    buf[10] = 0;
    buf[11] = 0;
    const sum = internetChecksum(buf, 0, 24);
    buf[10] = sum >>> 8;
    buf[11] = sum & 0xff;
    const pkt = parseIPv4Packet(buf);
    expect(pkt).toMatchObject({ headerLength: 24, payloadOffset: 24, payloadLength: 8, end: 32 });
  });

  it('flags fragments', () => {
    const mk = (b6: number, b7: number) => {
      const buf = new Uint8Array(28);
      writeIPv4Header(buf, 0, {
        src: new Uint8Array(4),
        dst: new Uint8Array(4),
        protocol: 17,
        payloadLength: 8,
      });
      buf[6] = b6;
      buf[7] = b7;
      buf[10] = 0;
      buf[11] = 0;
      const sum = internetChecksum(buf, 0, 20);
      buf[10] = sum >>> 8;
      buf[11] = sum & 0xff;
      return parseIPv4Packet(buf).fragment;
    };
    expect(mk(0x40, 0)).toBe(false); // DF only
    expect(mk(0x00, 0)).toBe(false);
    expect(mk(0x20, 0)).toBe(true); // MF
    expect(mk(0x00, 1)).toBe(true); // offset 8
    expect(mk(0x01, 0)).toBe(true);
  });

  it('rejects malformed headers with precise codes', () => {
    const ok = KERNEL_V4_REQUEST;
    const edit = (i: number, v: number) => {
      const b = ok.slice();
      b[i] = v;
      return b;
    };
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(ok.subarray(0, 19)));
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(edit(0, 0x65)));
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(edit(0, 0x44)));
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(edit(3, 19)));
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(edit(3, 37)));
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(ok, 30));
    expectCode('MALFORMED_PACKET', () => parseIPv4Packet(ok, 0, 100));
    expectCode('BAD_CHECKSUM', () => parseIPv4Packet(edit(8, 63)));
  });

  it('refuses to build what cannot be encoded', () => {
    const a = new Uint8Array(4);
    expectCode('TOO_BIG', () =>
      writeIPv4Header(new Uint8Array(20), 0, { src: a, dst: a, protocol: 1, payloadLength: 65516 }),
    );
    expectCode('TOO_BIG', () =>
      writeIPv4Header(new Uint8Array(19), 0, { src: a, dst: a, protocol: 1, payloadLength: 0 }),
    );
    expectCode('BAD_ADDRESS', () =>
      writeIPv4Header(new Uint8Array(20), 0, {
        src: new Uint8Array(16),
        dst: a,
        protocol: 1,
        payloadLength: 0,
      }),
    );
  });
});

/** An IPv6 packet from ::1 to ::2 whose payload is `ext` followed by an ICMPv6 echo request. */
function v6WithExtensions(firstNext: number, ext: number[]): Uint8Array {
  const src = parseIp('2001:db8::1');
  const dst = parseIp('2001:db8::2');
  const icmpLength = 8 + 4;
  const echo = encodeIcmpEcho(
    { type: 128, identifier: 7, sequence: 9, data: new Uint8Array([1, 2, 3, 4]) },
    pseudoHeaderSumV6(src, dst, 58, icmpLength),
  );
  const buf = new Uint8Array(40 + ext.length + echo.length);
  writeIPv6Header(buf, 0, { src, dst, nextHeader: firstNext, payloadLength: ext.length + echo.length });
  buf.set(ext, 40);
  buf.set(echo, 40 + ext.length);
  return buf;
}

describe('IPv6 (RFC 8200)', () => {
  it('parses a header the kernel sent', () => {
    const pkt = parseIPv6Packet(KERNEL_V6_REQUEST);
    expect(pkt).toMatchObject({ version: 6, protocol: 58, ttl: 64, headerLength: 40, payloadLength: 16 });
    expect(packetSource(pkt)).toBe('::1');
    expect(upperLayerChecksumOk(pkt)).toBe(true);
  });

  it('round-trips build → parse at any offset', () => {
    fc.assert(
      fc.property(
        addr16,
        addr16,
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 1400 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0xfffff }),
        fc.integer({ min: 0, max: 64 }),
        (src, dst, hopLimit, payloadLength, trafficClass, flowLabel, offset) => {
          // Next Header 6 (TCP) so no extension header walk interprets the zero payload.
          const buf = new Uint8Array(offset + 40 + payloadLength + 3);
          writeIPv6Header(buf, offset, {
            src,
            dst,
            nextHeader: 6,
            payloadLength,
            hopLimit,
            trafficClass,
            flowLabel,
          });
          const pkt = parseIPv6Packet(buf, offset);
          expect(pkt).toMatchObject({
            protocol: 6,
            ttl: hopLimit,
            trafficClass,
            payloadLength,
            fragment: false,
          });
          expect(pkt.payloadOffset).toBe(offset + 40);
          expect(pkt.end).toBe(offset + 40 + payloadLength);
          expect(((buf[offset + 1]! & 0x0f) << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!).toBe(
            flowLabel,
          );
          expect([...packetSourceBytes(pkt)]).toEqual([...src]);
          expect([...packetDestinationBytes(pkt)]).toEqual([...dst]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('walks hop-by-hop, destination options and routing headers to the upper layer', () => {
    const hbh = [60, 0, 1, 4, 0, 0, 0, 0]; // → dest opts; PadN(4)
    const dest = [43, 0, 0, 5, 2, 0, 0, 0]; // → routing; Pad1, router alert-like option type 5 (action 00)
    const routing = [58, 0, 4, 0, 0, 0, 0, 0]; // type 4, segments left 0
    const pkt = parseIPv6Packet(v6WithExtensions(0, [...hbh, ...dest, ...routing]));
    expect(pkt).toMatchObject({ protocol: 58, headerLength: 64, payloadOffset: 64, payloadLength: 12 });
    // RFC 8200 §8.1: the pseudo-header length excludes extension headers.
    expect(upperLayerChecksumOk(pkt)).toBe(true);
    expect(packetPseudoHeaderSum(pkt)).toBe(
      pseudoHeaderSumV6(parseIp('2001:db8::1'), parseIp('2001:db8::2'), 58, 12),
    );
  });

  it('handles fragment headers: atomic ones are whole packets, others are flagged', () => {
    const atomic = parseIPv6Packet(v6WithExtensions(44, [58, 0, 0, 0, 1, 2, 3, 4]));
    expect(atomic).toMatchObject({ fragment: false, protocol: 58, headerLength: 48 });
    const first = parseIPv6Packet(v6WithExtensions(44, [58, 0, 0, 1, 1, 2, 3, 4])); // M set
    expect(first).toMatchObject({ fragment: true, protocol: 58 });
    const later = parseIPv6Packet(v6WithExtensions(44, [58, 0, 0, 8, 1, 2, 3, 4])); // offset 1
    expect(later.fragment).toBe(true);
  });

  it('drops what RFC 8200 says to discard, with precise codes', () => {
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(v6WithExtensions(60, [0, 0, 1, 4, 0, 0, 0, 0])));
    expectCode('UNSUPPORTED', () => parseIPv6Packet(v6WithExtensions(60, [58, 0, 0x42, 4, 0, 0, 0, 0])));
    expectCode('UNSUPPORTED', () => parseIPv6Packet(v6WithExtensions(0, [58, 0, 0xc2, 4, 0, 1, 0, 0])));
    expectCode('UNSUPPORTED', () => parseIPv6Packet(v6WithExtensions(43, [58, 0, 0, 1, 0, 0, 0, 0])));
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(v6WithExtensions(60, [58, 0, 1, 9, 0, 0, 0, 0])));
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(v6WithExtensions(60, [58, 0, 0, 0, 0, 0, 0, 1])));
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(v6WithExtensions(60, [58, 5, 1, 4, 0, 0, 0, 0])));
    const truncated = v6WithExtensions(0, [58, 0, 1, 4, 0, 0, 0, 0]).slice(0, 45);
    truncated[5] = 5;
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(truncated));
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(KERNEL_V6_REQUEST.subarray(0, 39)));
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(KERNEL_V6_REQUEST.subarray(0, 55)));
    expectCode('MALFORMED_PACKET', () => parseIPv6Packet(KERNEL_V4_REQUEST));
  });

  it('refuses to build what cannot be encoded', () => {
    const a = new Uint8Array(16);
    expectCode('TOO_BIG', () =>
      writeIPv6Header(new Uint8Array(40), 0, { src: a, dst: a, nextHeader: 6, payloadLength: 65536 }),
    );
    expectCode('BAD_ADDRESS', () =>
      writeIPv6Header(new Uint8Array(40), 0, {
        src: new Uint8Array(4),
        dst: a,
        nextHeader: 6,
        payloadLength: 0,
      }),
    );
  });
});

describe('parseIpPacket', () => {
  it('dispatches on the version nibble', () => {
    expect(parseIpPacket(KERNEL_V4_REQUEST).version).toBe(4);
    expect(parseIpPacket(KERNEL_V6_REQUEST).version).toBe(6);
    expectCode('MALFORMED_PACKET', () => parseIpPacket(new Uint8Array(0)));
    expectCode('MALFORMED_PACKET', () => parseIpPacket(hex('50000000')));
  });
});
