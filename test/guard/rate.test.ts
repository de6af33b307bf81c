// Token buckets and the per-source table: rates, bursts, refill, forgetting idle sources, and the
// source keys limits are counted under.
import { describe, expect, it } from 'vitest';
import { SourceRateLimiter, TokenBucket } from '../../src/guard/rate.js';
import { sourceKey } from '../../src/guard/source.js';

describe('TokenBucket', () => {
  it('allows the burst at once, then the rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
    expect(b.isFull(100_000)).toBe(true);
  });

  it('an infinite rate never refuses', () => {
    const b = new TokenBucket(Number.POSITIVE_INFINITY, 1, 0);
    for (let i = 0; i < 1000; i++) expect(b.take(0)).toBe(true);
  });
});

describe('SourceRateLimiter', () => {
  it('keeps a bucket per source and forgets the ones that refilled', () => {
    const lim = new SourceRateLimiter({ perSecond: 1, burst: 2 });
    expect([lim.allow('a', 0), lim.allow('a', 0), lim.allow('a', 0)]).toEqual([true, true, false]);
    expect(lim.allow('b', 0)).toBe(true);
    expect(lim.size).toBe(2);
    expect(lim.allow('a', 1000)).toBe(true);
    // Two seconds on, both have refilled: the sweep drops them before 'c' is added.
    expect(lim.allow('c', 3500)).toBe(true);
    expect(lim.size).toBe(1);
  });

  it('refuses new sources once the table is full', () => {
    const lim = new SourceRateLimiter({ perSecond: 1, burst: 1, maxSources: 2 });
    expect([lim.allow('a', 0), lim.allow('b', 0), lim.allow('c', 0)]).toEqual([true, true, false]);
  });
});

describe('sourceKey', () => {
  it('IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64, zone ignored', () => {
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('2001:db8:0:1:aa::5%eth0')).toBe('2001:db8:0:1::/64');
    expect(sourceKey('2001:db8:0:1::9')).toBe(sourceKey('2001:db8:0:1:ffff:1:2:3'));
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });

  it('missing or malformed addresses count as one "unknown" source', () => {
    expect(sourceKey(undefined)).toBe('unknown');
    expect(sourceKey('')).toBe('unknown');
    expect(sourceKey('1:2:3')).toBe('unknown');
    expect(sourceKey('1::2::3')).toBe('unknown');
    expect(sourceKey('g::1')).toBe('unknown');
  });
});
