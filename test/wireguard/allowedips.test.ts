import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AllowedIPs, canonicalCidr, formatIp, parseCidr, parseIp } from '../../src/wireguard/allowedips.js';
import { WireGuardError } from '../../src/wireguard/errors.js';

const ip = (text: string): Uint8Array => parseIp(text)!;

/** The reference: scan every prefix and keep the longest that matches. */
function naiveLookup(
  table: Map<string, { addr: Uint8Array; bits: number; value: number }>,
  addr: Uint8Array,
) {
  let best: { bits: number; value: number } | undefined;
  for (const p of table.values()) {
    if (p.addr.length !== addr.length) continue;
    if (!prefixMatches(p.addr, p.bits, addr)) continue;
    if (best === undefined || p.bits > best.bits) best = p;
  }
  return best?.value;
}

function prefixMatches(prefix: Uint8Array, bits: number, addr: Uint8Array): boolean {
  for (let i = 0; i < bits; i++) {
    const bit = (b: Uint8Array) => (b[i >> 3]! >> (7 - (i & 7))) & 1;
    if (bit(prefix) !== bit(addr)) return false;
  }
  return true;
}

/** Bytes drawn mostly from a few values so that random prefixes nest and share bits. */
const byteArb = fc.oneof(fc.constantFrom(0, 0xff, 0x80, 0x0f), fc.integer({ min: 0, max: 255 }));
const addrArb = (len: 4 | 16) =>
  fc.array(byteArb, { minLength: len, maxLength: len }).map((a) => Uint8Array.from(a));
/** Addresses a few bit flips away from one random base, so that prefixes nest at every depth. */
const nearArb = (base: Uint8Array) =>
  fc.array(fc.nat(base.length * 8 - 1), { maxLength: 3 }).map((flips) => {
    const a = base.slice();
    for (const f of flips) a[f >> 3]! ^= 0x80 >> (f & 7);
    return a;
  });
const prefixArb = (len: 4 | 16, addr = addrArb(len)) =>
  fc.record({ addr, bits: fc.integer({ min: 0, max: len * 8 }), value: fc.nat(20) });

function build(prefixes: Array<{ addr: Uint8Array; bits: number; value: number }>) {
  const trie = new AllowedIPs<number>();
  const table = new Map<string, { addr: Uint8Array; bits: number; value: number }>();
  for (const p of prefixes) {
    trie.insert({ addr: p.addr, bits: p.bits }, p.value);
    table.set(canonicalCidr(p), p);
  }
  return { trie, table };
}

describe('AllowedIPs', () => {
  it('finds the longest matching prefix, v4 and v6', () => {
    const t = new AllowedIPs<string>();
    t.insert('0.0.0.0/0', 'default');
    t.insert('10.0.0.0/8', 'ten');
    t.insert('10.1.0.0/16', 'ten-one');
    t.insert('10.1.2.3', 'host');
    t.insert('fd00::/8', 'ula');
    t.insert('fd00:1::/32', 'ula-1');
    expect(t.lookup(ip('10.1.2.3'))).toBe('host');
    expect(t.lookup(ip('10.1.2.4'))).toBe('ten-one');
    expect(t.lookup(ip('10.2.0.1'))).toBe('ten');
    expect(t.lookup(ip('192.168.0.1'))).toBe('default');
    expect(t.lookup(ip('fd00:1::5'))).toBe('ula-1');
    expect(t.lookup(ip('fd00:2::5'))).toBe('ula');
    expect(t.lookup(ip('2001:db8::1'))).toBeUndefined();
    expect(t.lookup(new Uint8Array(5))).toBeUndefined();
    expect(t.size).toBe(6);
  });

  it('reads addresses inside a packet at an offset and rejects short buffers', () => {
    const t = new AllowedIPs<number>();
    t.insert('100.64.0.0/10', 1);
    t.insert('fd7a:115c:a1e0::/48', 2);
    const v4 = new Uint8Array(20);
    v4.set(ip('100.100.1.2'), 16);
    expect(t.lookupV4(v4, 16)).toBe(1);
    expect(t.lookupV4(v4, 12)).toBeUndefined();
    expect(t.lookupV4(v4, 17)).toBeUndefined();
    const v6 = new Uint8Array(40);
    v6.set(ip('fd7a:115c:a1e0::1'), 24);
    expect(t.lookupV6(v6, 24)).toBe(2);
    expect(t.lookupV6(v6, 25)).toBeUndefined();
  });

  it('moves an existing prefix to the newest value, whatever its host bits', () => {
    const t = new AllowedIPs<string>();
    t.insert('10.0.0.0/24', 'a');
    t.insert('10.0.0.77/24', 'b');
    expect(t.size).toBe(1);
    expect(t.lookup(ip('10.0.0.5'))).toBe('b');
    expect(t.entries('a')).toEqual([]);
    expect(t.entries('b')).toEqual(['10.0.0.0/24']);
  });

  it('removes prefixes and peers and keeps the rest reachable', () => {
    const t = new AllowedIPs<string>();
    t.insert('10.0.0.0/8', 'a');
    t.insert('10.1.0.0/16', 'b');
    t.insert('10.1.1.0/24', 'a');
    t.insert('10.2.0.0/16', 'c');
    t.insert('::/0', 'a');
    expect(t.remove('10.1.0.0/16')).toBe(true);
    expect(t.remove('10.1.0.0/16')).toBe(false);
    expect(t.remove('10.3.0.0/16')).toBe(false);
    expect(t.lookup(ip('10.1.5.5'))).toBe('a');
    expect(t.removeByValue('a')).toBe(3);
    expect(t.removeByValue('a')).toBe(0);
    expect(t.lookup(ip('10.1.1.1'))).toBeUndefined();
    expect(t.lookup(ip('10.2.1.1'))).toBe('c');
    expect(t.lookup(ip('::1'))).toBeUndefined();
    expect(t.entries()).toEqual(['10.2.0.0/16']);
    t.clear();
    expect(t.entries()).toEqual([]);
  });

  it('lists canonical prefixes, IPv4 first, in address order', () => {
    const t = new AllowedIPs<number>();
    for (const c of ['fd00::1:0/112', '10.9.8.7/8', '1.2.3.4', '::ffff:1.2.3.4/128', '0:0:0:0:0:0:0:0/0']) {
      t.insert(c, 1);
    }
    expect(t.entries()).toEqual(['1.2.3.4/32', '10.0.0.0/8', '::/0', '::ffff:1.2.3.4/128', 'fd00::1:0/112']);
    expect(t.entries(2)).toEqual([]);
  });

  it('matches a naive longest-prefix scan (IPv4)', () => {
    fc.assert(
      fc.property(
        fc.array(prefixArb(4), { maxLength: 40 }),
        fc.array(addrArb(4), { maxLength: 40 }),
        (ps, qs) => {
          const { trie, table } = build(ps);
          for (const q of [...qs, ...ps.map((p) => p.addr)]) {
            expect(trie.lookup(q)).toBe(naiveLookup(table, q));
          }
          expect(trie.size).toBe(table.size);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches a naive longest-prefix scan (IPv6)', () => {
    fc.assert(
      fc.property(
        fc.array(prefixArb(16), { maxLength: 40 }),
        fc.array(addrArb(16), { maxLength: 40 }),
        (ps, qs) => {
          const { trie, table } = build(ps);
          for (const q of [...qs, ...ps.map((p) => p.addr)]) {
            expect(trie.lookup(q)).toBe(naiveLookup(table, q));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches a naive scan when all prefixes sit near one address (deep IPv6 branches)', () => {
    const arb = addrArb(16).chain((base) =>
      fc.tuple(
        fc.array(prefixArb(16, nearArb(base)), { maxLength: 40 }),
        fc.array(nearArb(base), { maxLength: 40 }),
      ),
    );
    fc.assert(
      fc.property(arb, ([ps, qs]) => {
        const { trie, table } = build(ps);
        for (const q of [...qs, ...ps.map((p) => p.addr)]) {
          expect(trie.lookup(q)).toBe(naiveLookup(table, q));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('matches the naive scan after removing prefixes and values', () => {
    const mixed = fc.oneof(prefixArb(4), prefixArb(16));
    fc.assert(
      fc.property(
        fc.array(mixed, { maxLength: 50 }),
        fc.array(fc.boolean(), { maxLength: 50 }),
        fc.nat(20),
        (ps, drop, gone) => {
          const { trie, table } = build(ps);
          ps.forEach((p, i) => {
            if (!drop[i]) return;
            const key = canonicalCidr(p);
            expect(trie.remove(p)).toBe(table.delete(key));
          });
          trie.removeByValue(gone);
          for (const [k, p] of table) if (p.value === gone) table.delete(k);
          for (const p of ps) expect(trie.lookup(p.addr)).toBe(naiveLookup(table, p.addr));
          expect(new Set(trie.entries())).toEqual(new Set(table.keys()));
          expect(trie.size).toBe(table.size);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('CIDR text', () => {
  it('parses and formats canonically (RFC 5952)', () => {
    expect(canonicalCidr('2001:DB8:0:0:1:0:0:1/128')).toBe('2001:db8::1:0:0:1/128');
    expect(canonicalCidr('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1/128');
    expect(canonicalCidr('10.1.2.3/12')).toBe('10.0.0.0/12');
    expect(canonicalCidr('::ffff:10.0.0.1/120')).toBe('::ffff:10.0.0.0/120');
    expect(canonicalCidr('fe80::1:2/65')).toBe('fe80::/65');
    expect(formatIp(ip('1:0:0:2:0:0:0:3'))).toBe('1:0:0:2::3');
    expect(formatIp(ip('::'))).toBe('::');
    expect(parseCidr('192.168.1.1')).toEqual({ addr: ip('192.168.1.1'), bits: 32 });
  });

  it('rejects malformed addresses and out-of-range lengths with BAD_CONFIG', () => {
    for (const bad of [
      '10.0.0.0/33',
      'fd00::/129',
      '10.0.0/8',
      '10.0.0.256',
      '010.0.0.1',
      '1.2.3.4/',
      '1.2.3.4/08',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '12345::',
      'fe80::1%eth0',
      '::1.2.3',
      'host.example',
      '',
    ]) {
      expect(() => parseCidr(bad), bad).toThrow(WireGuardError);
    }
    expect(() => new AllowedIPs().insert({ addr: new Uint8Array(5), bits: 0 }, 1)).toThrow(/4 or 16/);
    expect(() => new AllowedIPs().insert({ addr: new Uint8Array(4), bits: 33 }, 1)).toThrow(/0-32/);
  });

  it('round-trips random addresses through text', () => {
    fc.assert(
      fc.property(fc.oneof(addrArb(4), addrArb(16)), (a) => {
        expect(parseIp(formatIp(a))).toEqual(a);
      }),
    );
  });
});
