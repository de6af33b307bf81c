import { describe, expect, it } from 'vitest';
import { allocateAddresses } from '../../src/control/server/ipam.js';
import {
  compileFilter,
  FILTER_ALLOW_ALL,
  PolicyError,
  validatePolicy,
} from '../../src/control/server/policy.js';
import { sanitizeLabel } from '../../src/control/server/registry.js';

const db = { name: 'db', tags: [], addresses: ['100.64.0.1', 'fd7a:115c:a1e0::1'] };
const web = { name: 'web', tags: ['tag:web'], addresses: ['100.64.0.2', 'fd7a:115c:a1e0::2'] };
const laptop = { name: 'laptop', tags: [], addresses: ['100.64.0.3', 'fd7a:115c:a1e0::3'] };
const all = [db, web, laptop];

describe('ACL policy', () => {
  it('allows all without a policy or without acls', () => {
    expect(compileFilter(undefined, all, db)).toBe(FILTER_ALLOW_ALL);
    expect(compileFilter({}, all, db)).toBe(FILTER_ALLOW_ALL);
  });

  it('gives each node only the rules that target it, with its own addresses', () => {
    const policy = {
      acls: [
        { action: 'accept' as const, src: ['tag:web', 'laptop'], dst: ['db:5432,6000-6010'] },
        { action: 'accept' as const, src: ['*'], dst: ['tag:web:443'], proto: 'tcp' as const },
      ],
    };
    expect(compileFilter(policy, all, db)).toEqual([
      {
        SrcIPs: ['100.64.0.2', '100.64.0.3', 'fd7a:115c:a1e0::2', 'fd7a:115c:a1e0::3'],
        DstPorts: [
          { IP: '100.64.0.1', Ports: { First: 5432, Last: 5432 } },
          { IP: '100.64.0.1', Ports: { First: 6000, Last: 6010 } },
          { IP: 'fd7a:115c:a1e0::1', Ports: { First: 5432, Last: 5432 } },
          { IP: 'fd7a:115c:a1e0::1', Ports: { First: 6000, Last: 6010 } },
        ],
      },
    ]);
    expect(compileFilter(policy, all, web)).toEqual([
      {
        SrcIPs: ['*'],
        DstPorts: web.addresses.map((ip) => ({ IP: ip, Ports: { First: 443, Last: 443 } })),
        IPProto: [6],
      },
    ]);
    expect(compileFilter(policy, all, laptop)).toEqual([]);
  });

  it('accepts IP and CIDR selectors and IPv6 destinations', () => {
    const rules = compileFilter(
      { acls: [{ action: 'accept', src: ['10.0.0.0/8'], dst: ['fd7a:115c:a1e0::1:22'] }] },
      all,
      db,
    );
    expect(rules).toEqual([
      {
        SrcIPs: ['10.0.0.0/8'],
        DstPorts: [
          { IP: '100.64.0.1', Ports: { First: 22, Last: 22 } },
          { IP: 'fd7a:115c:a1e0::1', Ports: { First: 22, Last: 22 } },
        ],
      },
    ]);
  });

  it('gives a router the rules naming what it routes, with the prefix as written', () => {
    const router = { ...web, routes: ['192.168.1.0/24', '0.0.0.0/0', '::/0'] };
    const policy = {
      acls: [
        { action: 'accept' as const, src: ['laptop'], dst: ['192.168.1.0/25:80', '10.9.0.0/16:22'] },
        { action: 'accept' as const, src: ['db'], dst: ['*:443'] },
        { action: 'accept' as const, src: ['db'], dst: ['100.64.0.0/10:5432'] },
      ],
    };
    const rules = compileFilter(policy, all, router);
    const ips = (i: number) => rules[i]!.DstPorts!.map((d) => d.IP);
    // 10.9.0.0/16 overlaps only the exit route: an exit node enforces it too.
    expect(ips(0)).toEqual(['192.168.1.0/25', '10.9.0.0/16']);
    expect(ips(1)).toEqual([...web.addresses, '192.168.1.0/24', '0.0.0.0/0', '::/0']);
    // A CIDR holding the node's address selects it (and only its own addresses are rewritten in).
    expect(ips(2)).toEqual(web.addresses);
    // Without routes the subnet rule is nobody's.
    expect(compileFilter(policy, all, laptop).map((r) => r.DstPorts!.map((d) => d.IP))).toEqual([
      laptop.addresses,
      laptop.addresses,
    ]);
  });

  it('rejects bad policies', () => {
    expect(() =>
      validatePolicy({ acls: [{ action: 'accept', src: ['*'], dst: ['10.0.0.300/8:80'] }] }),
    ).toThrow(/'10.0.0.300\/8' in '10.0.0.300\/8:80' is not an IP address or prefix/);
    expect(() => validatePolicy({ autoApprovers: { routes: { '100.64.0.0/24': ['tag:r'] } } })).toThrow(
      /autoApprovers.routes: '100.64.0.0\/24' overlaps/,
    );
    expect(() => validatePolicy({ acls: [{ action: 'accept', src: ['*'], dst: ['db'] }] })).toThrow(
      PolicyError,
    );
    expect(() => validatePolicy({ acls: [{ action: 'accept', src: ['*'], dst: ['db:70000'] }] })).toThrow(
      PolicyError,
    );
    expect(() =>
      validatePolicy({ acls: [{ action: 'deny' as 'accept', src: ['*'], dst: ['db:1'] }] }),
    ).toThrow(/action/);
  });
});

describe('addresses and names', () => {
  it('hands out 100.64.0.0/10 and fd7a:115c:a1e0::/48 sequentially, skipping used and reserved ones', () => {
    expect(allocateAddresses(1, new Set())).toEqual({
      ipv4: '100.64.0.1',
      ipv6: 'fd7a:115c:a1e0::1',
      next: 2,
    });
    const r = allocateAddresses(1, new Set(['100.64.0.1']));
    expect(r.ipv4).toBe('100.64.0.2');
    const quad100 = (100 - 64) * 65536 + 100 * 256 + 1;
    expect(allocateAddresses(quad100, new Set()).ipv4).toBe('100.100.101.1');
    expect(allocateAddresses(70000, new Set()).ipv6).toBe('fd7a:115c:a1e0::1:1170');
  });

  it('makes DNS labels from hostnames', () => {
    expect(sanitizeLabel('My Laptop!')).toBe('my-laptop');
    expect(sanitizeLabel('---')).toBe('node');
  });
});
