import { describe, expect, it } from 'vitest';
import { isTailnetAddress, NameResolver, UnknownHostError } from '../../src/tailnet/names.js';

const nodes = [
  { name: 'db-server.tail1234.ts.net.', addresses: ['100.64.0.7', 'fd7a:115c:a1e0::7'] },
  { name: 'Worker-1.tail1234.ts.net.', addresses: ['100.64.0.8'] },
];
const r = new NameResolver(nodes, 'tail1234.ts.net');

describe('NameResolver', () => {
  it('resolves short names, FQDNs with and without the dot, any case', () => {
    for (const h of ['db-server', 'DB-Server', 'db-server.tail1234.ts.net', 'db-server.tail1234.ts.net.']) {
      expect(r.resolve(h)).toBe('100.64.0.7');
    }
    expect(r.resolve('worker-1')).toBe('100.64.0.8');
    expect(r.resolve('db-server', 6)).toBe('fd7a:115c:a1e0::7');
  });

  it('passes tailnet literals through, brackets and all', () => {
    expect(r.resolve('100.64.0.99')).toBe('100.64.0.99');
    expect(r.resolve('[fd7a:115c:a1e0::7]')).toBe('fd7a:115c:a1e0::7');
  });

  it('says which name is unknown', () => {
    expect(() => r.resolve('nope')).toThrow(UnknownHostError);
    expect(() => r.resolve('nope')).toThrow(/unknown tailnet host 'nope'/);
    expect(() => r.resolve('8.8.8.8')).toThrow(UnknownHostError);
    expect(() => r.resolve('worker-1', 6)).toThrow(UnknownHostError);
  });

  it('tells tailnet hosts from others', () => {
    expect(r.isTailnetHost('db-server')).toBe(true);
    expect(r.isTailnetHost('anything.tail1234.ts.net')).toBe(true);
    expect(r.isTailnetHost('x.other.ts.net')).toBe(true);
    expect(r.isTailnetHost('100.100.1.1')).toBe(true);
    expect(r.isTailnetHost('example.com')).toBe(false);
    expect(r.isTailnetHost('127.0.0.1')).toBe(false);
    expect(isTailnetAddress('100.128.0.1')).toBe(false);
  });
});
