// Binding a host and its other-family counterpart (loopback, wildcard): same port, best effort where
// the machine lacks the family, and a fresh port when the counterpart's is taken.
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { DerpHttpServer } from '../../src/derp/http-server.js';
import { bindBothFamilies, otherFamily } from '../../src/derp/listen.js';
import { connect, numbered, relayChecked } from './helpers.js';

const HAVE_V6_LOOPBACK = Object.values(networkInterfaces()).some((l) =>
  l?.some((a) => a.family === 'IPv6' && a.address === '::1'),
);

/** A binder that records binds, and fails those `fail` names with the given code. */
function fake(fail: (host: string, port: number, n: number) => string | undefined) {
  const bound: string[] = [];
  const closed: string[] = [];
  let n = 0;
  let nextPort = 40000;
  return {
    bound,
    closed,
    binder: {
      bind: async (host: string, port: number) => {
        const code = fail(host, port, n++);
        if (code) throw Object.assign(new Error(code), { code });
        const b = `${host}:${port || nextPort++}`;
        bound.push(b);
        return b;
      },
      port: (b: string) => Number(b.slice(b.lastIndexOf(':') + 1)),
      close: (b: string) => {
        closed.push(b);
      },
    },
  };
}

describe('bindBothFamilies', () => {
  it('pairs loopback and wildcard across families, and nothing else', () => {
    expect(['127.0.0.1', '::1', '0.0.0.0', '::', '', '192.0.2.1', 'localhost'].map(otherFamily)).toEqual([
      '::1',
      '127.0.0.1',
      '::',
      '0.0.0.0',
      '::',
      undefined,
      undefined,
    ]);
  });

  it('binds the counterpart on the same port; without IPv6 only the first', async () => {
    const ok = fake(() => undefined);
    expect(await bindBothFamilies('127.0.0.1', 0, ok.binder)).toEqual(['127.0.0.1:40000', '::1:40000']);
    const noV6 = fake((h) => (h === '::1' ? 'EADDRNOTAVAIL' : undefined));
    expect(await bindBothFamilies('127.0.0.1', 3478, noV6.binder)).toEqual(['127.0.0.1:3478']);
    expect(await bindBothFamilies('192.0.2.1', 3478, ok.binder)).toEqual(['192.0.2.1:3478']);
  });

  it('with port 0 tries a new port when the counterpart is taken; a fixed port in use is an error', async () => {
    const busyOnce = fake((h, _p, n) => (h === '::1' && n === 1 ? 'EADDRINUSE' : undefined));
    expect(await bindBothFamilies('127.0.0.1', 0, busyOnce.binder)).toEqual(['127.0.0.1:40001', '::1:40001']);
    expect(busyOnce.closed).toEqual(['127.0.0.1:40000']);
    const busy = fake((h) => (h === '::1' ? 'EADDRINUSE' : undefined));
    await expect(bindBothFamilies('127.0.0.1', 3478, busy.binder)).rejects.toThrow('EADDRINUSE');
    expect(busy.closed).toEqual(['127.0.0.1:3478']);
  });

  it.skipIf(!HAVE_V6_LOOPBACK)('a relay on 127.0.0.1 relays for clients on ::1 as well', async () => {
    const srv = await DerpHttpServer.listen({ port: 0, stunPort: 0 });
    try {
      expect(srv.addresses).toEqual([`127.0.0.1:${srv.port}`, `[::1]:${srv.port}`]);
      expect(srv.stun!.addresses).toEqual([`127.0.0.1:${srv.stun!.port}`, `[::1]:${srv.stun!.port}`]);
      const a = await connect(`http://[::1]:${srv.port}/derp`);
      const b = await connect(`http://127.0.0.1:${srv.port}/derp`);
      await relayChecked(a, b, [numbered(0, 1200), numbered(1, 60_000)]);
      a.close();
      b.close();
    } finally {
      await srv.close();
    }
  });
});
