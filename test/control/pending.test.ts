// The pending-registration table on its own, with a fake clock: ids, expiry, the cap, one entry per machine.
import { describe, expect, it } from 'vitest';
import { isSameHost } from '../../src/control/server/admin.js';
import { PendingRegistrations, parseRegistrationId } from '../../src/control/server/pending.js';
import type { RegisterInput } from '../../src/control/server/registry.js';

const input = (machine: number, node = machine): RegisterInput => ({
  machineKey: `mkey:${String(machine).padStart(64, '0')}`,
  nodeKey: `nodekey:${String(node).padStart(64, '0')}`,
  hostinfo: { Hostname: `h${machine}` },
  capVersion: 130,
  ephemeral: false,
});

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('PendingRegistrations', () => {
  it('hands out unguessable, distinct ids that parse back from a /register/ URL', () => {
    const p = new PendingRegistrations();
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(p.begin(input(i)).reg.id);
    expect(ids.size).toBe(50);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/); // 24 random bytes
      expect(parseRegistrationId(`http://127.0.0.1:8080/register/${id}`)).toBe(id);
      expect(parseRegistrationId(`https://ctl.example/register/${id}/`)).toBe(id);
      expect(parseRegistrationId(id)).toBe(id);
    }
    expect(parseRegistrationId('http://x/register/short')).toBeUndefined();
    expect(parseRegistrationId('http://x/other/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    expect(parseRegistrationId('')).toBeUndefined();
  });

  it('expires entries after the TTL, and wakes their waiters', async () => {
    const c = clock();
    const p = new PendingRegistrations({ ttlMs: 10 * 60_000, now: c.now });
    const { reg } = p.begin(input(1));
    c.advance(10 * 60_000 - 1);
    expect(p.get(reg.id)).toBe(reg);
    const ac = new AbortController();
    let woke = false;
    const waiting = p.wait(reg.id, 3_600_000, ac.signal).then(() => {
      woke = true;
    });
    c.advance(1);
    p.prune();
    await waiting;
    expect(woke).toBe(true);
    expect(p.get(reg.id)).toBeUndefined();
    expect(p.size).toBe(0);
  });

  it('refuses new entries at the cap with a clear error, and takes them again once one expires', () => {
    const c = clock();
    const p = new PendingRegistrations({ max: 3, ttlMs: 1_000, now: c.now });
    p.begin(input(1));
    c.advance(500);
    p.begin(input(2));
    p.begin(input(3));
    expect(() => p.begin(input(4))).toThrow(/too many interactive logins are waiting for approval \(3\)/);
    expect(p.size).toBe(3);
    c.advance(500); // the first one expires
    expect(p.begin(input(4)).fresh).toBe(true);
    expect(p.size).toBe(3);
  });

  it('keeps one entry per machine: the same node key gets the same entry, a new one replaces it', () => {
    const p = new PendingRegistrations({ max: 2 });
    const a = p.begin(input(1));
    const again = p.begin({ ...input(1), hostinfo: { Hostname: 'renamed' } });
    expect(again.fresh).toBe(false);
    expect(again.reg.id).toBe(a.reg.id);
    expect(again.reg.input.hostinfo?.Hostname).toBe('renamed');
    const rekeyed = p.begin(input(1, 99));
    expect(rekeyed.fresh).toBe(true);
    expect(rekeyed.reg.id).not.toBe(a.reg.id);
    expect(p.get(a.reg.id)).toBeUndefined();
    expect(p.size).toBe(1);
  });

  it('wakes a waiter when its entry is settled, and on abort', async () => {
    const p = new PendingRegistrations();
    const { reg } = p.begin(input(1));
    const ac = new AbortController();
    const w = p.wait(reg.id, 3_600_000, ac.signal);
    p.settle(reg.id, 'approved', 7);
    await w;
    expect(p.get(reg.id)?.state).toBe('approved');
    expect(p.get(reg.id)?.nodeId).toBe(7);
    const ac2 = new AbortController();
    const w2 = p.wait(reg.id, 3_600_000, ac2.signal);
    ac2.abort();
    await w2;
  });
});

describe('isSameHost (admin API)', () => {
  it('accepts loopback and the listening address itself, refuses other hosts', () => {
    expect(isSameHost({ remoteAddress: '127.0.0.1', localAddress: '127.0.0.1' })).toBe(true);
    expect(isSameHost({ remoteAddress: '::ffff:127.0.0.1', localAddress: '::ffff:127.0.0.1' })).toBe(true);
    expect(isSameHost({ remoteAddress: '::1', localAddress: '::1' })).toBe(true);
    expect(isSameHost({ remoteAddress: '10.1.2.3', localAddress: '10.1.2.3' })).toBe(true);
    expect(isSameHost({ remoteAddress: '10.1.2.4', localAddress: '10.1.2.3' })).toBe(false);
    expect(isSameHost({ remoteAddress: '::ffff:192.0.2.9', localAddress: '::ffff:192.0.2.1' })).toBe(false);
    expect(isSameHost({ remoteAddress: undefined, localAddress: undefined })).toBe(false);
  });
});
