import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIp } from '../../src/netstack/address.js';
import { pseudoHeaderSumV6 } from '../../src/netstack/checksum.js';
import { NetstackError, type NetstackErrorCode } from '../../src/netstack/errors.js';
import {
  encodeIcmpEcho,
  Icmpv4Type,
  Icmpv6Type,
  parseIcmp,
  parseIcmpPacket,
  writeIcmpEcho,
} from '../../src/netstack/icmp.js';
import { parseIPv4Packet } from '../../src/netstack/ipv4.js';
import { parseIPv6Packet } from '../../src/netstack/ipv6.js';
import { KERNEL_V4_REPLY, KERNEL_V4_REQUEST, KERNEL_V6_REPLY, KERNEL_V6_REQUEST, toHex } from './vectors.js';

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

const LOOPBACK6 = parseIp('::1');

describe('ICMPv4 echo (RFC 792)', () => {
  it('parses the kernel ping request', () => {
    const msg = parseIcmpPacket(parseIPv4Packet(KERNEL_V4_REQUEST));
    expect(msg).toMatchObject({ type: Icmpv4Type.ECHO_REQUEST, code: 0, identifier: 0x03c5, sequence: 1 });
    expect(msg).toMatchObject({ dataOffset: 28, dataLength: 8 });
  });

  it('encodes the same reply bytes as the Linux kernel', () => {
    const data = KERNEL_V4_REQUEST.subarray(28);
    const reply = encodeIcmpEcho({ type: Icmpv4Type.ECHO_REPLY, identifier: 0x03c5, sequence: 1, data }, 0);
    expect(toHex(reply)).toBe(toHex(KERNEL_V4_REPLY.subarray(20)));
  });

  it('rejects bad checksums and short messages', () => {
    const bad = KERNEL_V4_REQUEST.slice();
    bad[30] ^= 1;
    expectCode('BAD_CHECKSUM', () => parseIcmp(bad, 20, 16, 0));
    expectCode('MALFORMED_PACKET', () => parseIcmp(KERNEL_V4_REQUEST, 20, 7, 0));
    expectCode('MALFORMED_PACKET', () => parseIcmp(KERNEL_V4_REQUEST, 20, 17, 0));
  });
});

describe('ICMPv6 echo (RFC 4443)', () => {
  it('parses the kernel ping request, checksum over the pseudo-header', () => {
    const msg = parseIcmpPacket(parseIPv6Packet(KERNEL_V6_REQUEST));
    expect(msg).toMatchObject({
      type: Icmpv6Type.ECHO_REQUEST,
      identifier: 0x03c6,
      sequence: 1,
      dataLength: 8,
    });
  });

  it('encodes the same reply bytes as the Linux kernel', () => {
    const data = KERNEL_V6_REQUEST.subarray(48);
    const pseudo = pseudoHeaderSumV6(LOOPBACK6, LOOPBACK6, 58, 16);
    const reply = encodeIcmpEcho(
      { type: Icmpv6Type.ECHO_REPLY, identifier: 0x03c6, sequence: 1, data },
      pseudo,
    );
    expect(toHex(reply)).toBe(toHex(KERNEL_V6_REPLY.subarray(40)));
  });

  it('fails the checksum when the pseudo-header changes (RFC 4443 §2.3)', () => {
    const moved = KERNEL_V6_REQUEST.slice();
    moved[39] = 2; // destination ::2
    expectCode('BAD_CHECKSUM', () => parseIcmpPacket(parseIPv6Packet(moved)));
  });

  it('refuses ICMP carried under the wrong protocol number', () => {
    const v6 = KERNEL_V6_REQUEST.slice();
    v6[6] = 1; // ICMPv4's number over IPv6
    expectCode('MALFORMED_PACKET', () => parseIcmpPacket(parseIPv6Packet(v6)));
  });
});

describe('echo encode → parse', () => {
  it('round-trips any fields and data, v4 and v6', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 8, 128, 129),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: 0x3ffff }),
        fc.integer({ min: 0, max: 16 }),
        (type, identifier, sequence, data, pseudo, offset) => {
          const buf = new Uint8Array(offset + 8 + data.length);
          const len = writeIcmpEcho(buf, offset, { type, identifier, sequence, data }, pseudo);
          expect(len).toBe(8 + data.length);
          const msg = parseIcmp(buf, offset, len, pseudo);
          expect(msg).toMatchObject({ type, code: 0, identifier, sequence, dataLength: data.length });
          expect(toHex(buf.subarray(msg.dataOffset))).toBe(toHex(data));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('checksums data already in place when given only its length', () => {
    const buf = new Uint8Array(8 + 5);
    buf.set([9, 8, 7, 6, 5], 8);
    writeIcmpEcho(buf, 0, { type: 8, identifier: 1, sequence: 2, dataLength: 5 }, 0);
    expect(parseIcmp(buf, 0, 13, 0).dataLength).toBe(5);
    expectCode('TOO_BIG', () =>
      writeIcmpEcho(buf, 0, { type: 8, identifier: 1, sequence: 2, dataLength: 6 }, 0),
    );
  });
});
