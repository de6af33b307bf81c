import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  formatCidr,
  formatIPv4,
  formatIPv6,
  formatIp,
  ipEqual,
  ipFamily,
  ipv4ToMapped,
  isIPv4Mapped,
  parseCidr,
  parseIPv4,
  parseIPv6,
  parseIp,
  unmapIPv4,
} from '../../src/netstack/address.js';
import { NetstackError } from '../../src/netstack/errors.js';
import { toHex } from './vectors.js';

function expectBadAddress(fn: () => unknown): void {
  expect(fn).toThrow(NetstackError);
  try {
    fn();
  } catch (err) {
    expect((err as NetstackError).code).toBe('BAD_ADDRESS');
  }
}

describe('IPv4 text', () => {
  it('parses and formats dotted quads', () => {
    expect([...parseIPv4('100.64.0.1')]).toEqual([100, 64, 0, 1]);
    expect(formatIPv4(new Uint8Array([255, 0, 10, 9]))).toBe('255.0.10.9');
    expect(formatIPv4(new Uint8Array([9, 9, 1, 2, 3, 4]), 2)).toBe('1.2.3.4');
  });

  it('refuses what is not a dotted quad', () => {
    for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', ' 1.2.3.4', '1.2.3.4/8', '', '::1']) {
      expectBadAddress(() => parseIPv4(bad));
    }
  });
});

describe('IPv6 text', () => {
  const cases: [string, string, string][] = [
    // input, canonical RFC 5952 form, hex bytes
    ['::', '::', '00'.repeat(16)],
    ['::1', '::1', `${'00'.repeat(15)}01`],
    ['1::', '1::', `0001${'00'.repeat(14)}`],
    ['2001:DB8:0:0:0:0:2:1', '2001:db8::2:1', '20010db8000000000000000000020001'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1', '20010000000000010000000000000001'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', '20010db8000000000001000000000001'],
    ['fd7a:115c:a1e0::1', 'fd7a:115c:a1e0::1', 'fd7a115ca1e000000000000000000001'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['::FFFF:0102:0304', '::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['1:2:3:4:5:6:7.8.9.10', '1:2:3:4:5:6:708:90a', '0001000200030004000500060708090a'],
    ['::1.2.3.4', '::102:304', '00000000000000000000000001020304'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', '00010002000300040005000600070000'],
  ];

  it.each(cases)('parses %s and formats it per RFC 5952', (input, canonical, bytes) => {
    const parsed = parseIPv6(input);
    expect(toHex(parsed)).toBe(bytes);
    expect(formatIPv6(parsed)).toBe(canonical);
    expect(toHex(parseIPv6(canonical))).toBe(bytes);
  });

  it('refuses malformed text and zone ids', () => {
    for (const bad of [
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1::2:3:4:5:6:7:8',
      '12345::',
      'fe80::1%eth0',
      '[::1]',
      '1.2.3.4',
    ]) {
      expectBadAddress(() => parseIPv6(bad));
    }
  });

  it('round-trips any 16 bytes through text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        expect(toHex(parseIPv6(formatIPv6(bytes)))).toBe(toHex(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it('formats like the WHATWG URL serializer (also RFC 5952) for non-mapped addresses', () => {
    // Zero-heavy bytes, so that runs of zero groups of every length and position come up.
    const word = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
        const bytes = new Uint8Array(16);
        words.forEach((w, i) => {
          bytes[2 * i] = w >>> 8;
          bytes[2 * i + 1] = w & 0xff;
        });
        fc.pre(!isIPv4Mapped(bytes));
        const text = formatIPv6(bytes);
        expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('family-agnostic helpers', () => {
  it('detects the family and agrees with node:net on validity', () => {
    expect(ipFamily('10.0.0.1')).toBe(4);
    expect(ipFamily('::1')).toBe(6);
    expect(ipFamily('fe80::1%lo')).toBeUndefined();
    expect(ipFamily('nope')).toBeUndefined();
    const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.%/ x'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 24 }), (text) => {
        const family = isIP(text);
        if (family === 0 || text.includes('%')) {
          expectBadAddress(() => parseIp(text));
        } else {
          expect(parseIp(text).length).toBe(family === 4 ? 4 : 16);
          expect(ipEqual(parseIp(formatIp(parseIp(text))), parseIp(text))).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('maps and unmaps IPv4', () => {
    const v4 = parseIPv4('192.0.2.33');
    const mapped = ipv4ToMapped(v4);
    expect(formatIp(mapped)).toBe('::ffff:192.0.2.33');
    expect(isIPv4Mapped(mapped)).toBe(true);
    expect(ipEqual(unmapIPv4(mapped), v4)).toBe(true);
    expect(unmapIPv4(parseIPv6('::1')).length).toBe(16);
    expect(ipEqual(v4, mapped)).toBe(false);
  });

  it('refuses addresses of the wrong length', () => {
    expectBadAddress(() => formatIp(new Uint8Array(5)));
    expectBadAddress(() => formatIPv4(new Uint8Array(4), 1));
    expectBadAddress(() => ipv4ToMapped(new Uint8Array(16)));
  });
});

describe('CIDR', () => {
  it('parses prefixes, defaulting to a host route', () => {
    expect(formatCidr(parseCidr('10.0.0.1/24'))).toBe('10.0.0.1/24');
    expect(parseCidr('10.0.0.1').prefix).toBe(32);
    expect(parseCidr('fd7a:115c:a1e0::1/48')).toMatchObject({ family: 6, prefix: 48 });
    expect(parseCidr('::/0').prefix).toBe(0);
    expect(parseCidr('2001:db8::1').prefix).toBe(128);
  });

  it('refuses bad prefixes', () => {
    for (const bad of [
      '10.0.0.1/33',
      '10.0.0.1/',
      '10.0.0.1/-1',
      '10.0.0.1/08',
      '::1/129',
      '/24',
      'x/1',
      '1.2.3.4/ 1',
    ]) {
      expectBadAddress(() => parseCidr(bad));
    }
  });

  it('tests containment bit by bit', () => {
    const net = parseCidr('100.64.0.0/10');
    expect(cidrContains(net, parseIPv4('100.127.255.255'))).toBe(true);
    expect(cidrContains(net, parseIPv4('100.128.0.0'))).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), parseIPv4('8.8.8.8'))).toBe(true);
    expect(cidrContains(parseCidr('fd7a:115c:a1e0::/48'), parseIPv6('fd7a:115c:a1e0:ab12::1'))).toBe(true);
    expect(cidrContains(parseCidr('fd7a:115c:a1e0::/48'), parseIPv6('fd7a:115c:a1e1::1'))).toBe(false);
    expect(cidrContains(net, new Uint8Array(2))).toBe(false);
  });
});
