import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { runtime } from '../../src/platform/runtime.js';
import { type Endpoint, NamedEndpoint } from '../../src/wireguard/bind.js';
import { WireGuardError } from '../../src/wireguard/errors.js';
import { parseEndpoint, resolveEndpoint, UdpBind, UdpEndpoint } from '../../src/wireguard/udp-bind.js';

const hasIPv6Loopback = Object.values(networkInterfaces()).some((list) =>
  list?.some((i) => i.family === 'IPv6' && i.address === '::1'),
);

const open: UdpBind[] = [];
async function openBind(options: Parameters<typeof UdpBind.open>[0]): Promise<UdpBind> {
  const b = await UdpBind.open(options);
  open.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

function nextDatagram(bind: UdpBind, timeoutMs = 2000): Promise<{ from: Endpoint; data: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram')), timeoutMs);
    bind.onDatagram((from, data) => {
      clearTimeout(timer);
      // A plain Uint8Array, so that slice() copies as it does for MemoryBind's datagrams.
      expect(Buffer.isBuffer(data)).toBe(false);
      resolve({ from, data: data.slice() });
    });
  });
}

async function exchange(a: UdpBind, b: UdpBind, host: string): Promise<void> {
  const wrap = (h: string, port: number) => (h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`);
  const toB = parseEndpoint(wrap(host, b.port));
  const got = nextDatagram(b);
  a.send(toB, Uint8Array.of(1, 2, 3));
  const { from, data } = await got;
  expect(data).toEqual(Uint8Array.of(1, 2, 3));
  expect(from.key).toBe(parseEndpoint(wrap(host, a.port)).key);
  // The endpoint a datagram came from is the one to answer to, and it is interned.
  expect(from).toBe(parseEndpoint(wrap(host, a.port)));
  const back = nextDatagram(a);
  b.send(from, Uint8Array.of(9));
  expect((await back).from.key).toBe(toB.key);
}

describe('UdpBind', () => {
  it('exchanges datagrams over 127.0.0.1 with the right from-endpoint', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    const b = await openBind({ host: '127.0.0.1' });
    expect(a.families).toEqual([4]);
    await exchange(a, b, '127.0.0.1');
  });

  it.skipIf(!hasIPv6Loopback)('exchanges datagrams over ::1', async () => {
    const a = await openBind({ host: '::1' });
    const b = await openBind({ host: '::1' });
    expect(a.families).toEqual([6]);
    await exchange(a, b, '::1');
    expect(String(parseEndpoint(`[::1]:${a.port}`))).toBe(`[::1]:${a.port}`);
  });

  it('listens on both families on one OS-chosen port by default', async () => {
    const a = await openBind({});
    const b = await openBind({ host: '127.0.0.1' });
    expect(a.port).toBeGreaterThan(0);
    await exchange(b, a, '127.0.0.1');
    if (a.families.includes(6) && hasIPv6Loopback) {
      const c = await openBind({ host: '::1' });
      await exchange(c, a, '::1');
    } else {
      expect(a.ipv6Unavailable).toBeDefined();
    }
  });

  it('rebinds to a new port mid-flow, and peers see the new source', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    const b = await openBind({ host: '127.0.0.1' });
    await exchange(a, b, '127.0.0.1');
    const before = a.port;
    await a.rebind(0);
    expect(a.port).not.toBe(before);
    await exchange(a, b, '127.0.0.1');
  });

  it('closes both sockets, frees the port, and ignores sends afterwards', async () => {
    // Node names its socket handles 'UDPWrap'; Bun and Deno report theirs otherwise, or not at all.
    const udpHandles = () =>
      runtime.name === 'node' ? process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length : 0;
    const baseline = udpHandles();
    const a = await UdpBind.open({});
    if (runtime.name === 'node') expect(udpHandles()).toBe(baseline + a.families.length);
    const port = a.port;
    await a.close();
    // Nothing of the bind keeps the event loop, and so the process, alive.
    expect(udpHandles()).toBe(baseline);
    await a.close();
    expect(() => a.send(parseEndpoint(`127.0.0.1:${port}`), new Uint8Array(1))).not.toThrow();
    await expect(a.rebind(0)).rejects.toThrow(WireGuardError);
    const again = await openBind({ port });
    expect(again.port).toBe(port);
  });

  it('refuses a port already in use', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    await expect(UdpBind.open({ host: '127.0.0.1', port: a.port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await expect(UdpBind.open({ host: 'localhost' })).rejects.toThrow(WireGuardError);
  });

  it('counts undeliverable sends instead of throwing', async () => {
    const a = await openBind({ host: '127.0.0.1' });
    a.send(new NamedEndpoint('derp:xyz'), new Uint8Array(1));
    a.send(parseEndpoint('[::1]:9'), new Uint8Array(1));
    expect(a.stats.sendErrors).toBe(2);
    // Larger than any UDP datagram: the OS refuses it asynchronously (EMSGSIZE).
    a.send(parseEndpoint('127.0.0.1:9'), new Uint8Array(70_000));
    await new Promise((r) => setTimeout(r, 50));
    expect(a.stats.sendErrors).toBe(3);
    expect(a.lastError).toBeInstanceOf(Error);
  });
});

describe('endpoints', () => {
  it('parses IP literals into canonical, interned endpoints', () => {
    const e = parseEndpoint('[FD00:0:0::1]:51820');
    expect(e.key).toBe('udp6:[fd00::1]:51820');
    expect(e.toString()).toBe('[fd00::1]:51820');
    expect(e.family).toBe(6);
    expect(parseEndpoint('[fd00::1]:51820')).toBe(e);
    const v4 = parseEndpoint('192.0.2.1:51820');
    expect([v4.key, v4.address, v4.port, v4.family]).toEqual(['udp4:192.0.2.1:51820', '192.0.2.1', 51820, 4]);
    expect(UdpEndpoint.from('192.0.2.1', 51820)).toBe(v4);
  });

  it('rejects anything but ip:port and [ipv6]:port', () => {
    for (const bad of [
      '1.2.3.4',
      'fd00::1:5',
      'host.example:5',
      '1.2.3.4:0',
      '1.2.3.4:99999',
      '[1.2.3.4]:5',
      '1.2.3:5',
    ]) {
      expect(() => parseEndpoint(bad), bad).toThrow(WireGuardError);
    }
  });

  it('resolves hostnames with the system resolver', async () => {
    const e = await resolveEndpoint('localhost', 51820);
    expect(['127.0.0.1', '::1']).toContain(e.address);
    expect((await resolveEndpoint('localhost', 1, 4)).address).toBe('127.0.0.1');
    expect(await resolveEndpoint('10.0.0.1', 7)).toBe(parseEndpoint('10.0.0.1:7'));
  });
});
