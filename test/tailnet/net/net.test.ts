// tn.net: node:net's shape over the tailnet, between two of our nodes on the embedded control
// server (in process, direct UDP on loopback). The real clients and servers (pg, mysql2, ioredis,
// tailscaled) are in test/interop/node-clients*.test.ts; this file pins the net surface itself.
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TcpSocket } from '../../../src/netstack/tcp/socket.js';
import { isTailnetAddress } from '../../../src/tailnet/names.js';
import { Tailnet } from '../../../src/tailnet/tailnet.js';
import { echoed, hashReplyServer, type TwoNodes, twoNodes } from './helpers.js';

let t: TwoNodes;
beforeAll(async () => {
  t = await twoNodes();
  await t.b.listen(7000, hashReplyServer());
});
afterAll(() => t?.close());

/** The error a socket ends with. */
async function failure(s: net.Socket | TcpSocket): Promise<NodeJS.ErrnoException> {
  const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  return err;
}

describe('tn.net', () => {
  it('an unconnected Socket dials by MagicDNS short name on .connect(port, host), as pg uses it', async () => {
    const s = new t.a.net.Socket();
    expect(s.pending).toBe(true);
    s.setNoDelay(true);
    s.connect(7000, 'bravo');
    expect(s.connecting).toBe(true);
    const data = Buffer.alloc(1_000_000, 'x');
    const [n, hash] = await echoed(s, data);
    expect(`${n} ${hash}`).toBe(t.digest(data));
    expect(s.remoteAddress).toBe(t.bIPv4);
  });

  it('createConnection returns the socket at once, in the (port, host, listener) and (options, listener) forms', async () => {
    let connected = 0;
    const s1 = t.a.net.createConnection(7000, 'bravo.tailnet.internal.', () => connected++);
    const s2 = t.a.net.connect(
      { port: 7000, host: t.bIPv4, noDelay: true, keepAlive: true, timeout: 60_000 },
      () => connected++,
    );
    expect(s1).toBeDefined();
    expect(s2.connecting).toBe(true);
    expect((s2 as TcpSocket).timeout).toBe(60_000);
    const [r1, r2] = await Promise.all([echoed(s1, Buffer.from('one')), echoed(s2, Buffer.from('two'))]);
    expect(`${r1[0]} ${r1[1]}`).toBe(t.digest(Buffer.from('one')));
    expect(`${r2[0]} ${r2[1]}`).toBe(t.digest(Buffer.from('two')));
    expect(connected).toBe(2);
  });

  it('lookup has dns.lookup signature: one address, all, a family, IP literals, ENOTFOUND', async () => {
    const lookup = (host: string, opts: object) =>
      new Promise<unknown>((resolve, reject) =>
        t.a.net.lookup(host, opts, (err, address, family) =>
          err ? reject(err) : resolve([address, family]),
        ),
      );
    expect(await lookup('bravo', {})).toEqual([t.bIPv4, 4]);
    const [all] = (await lookup('BRAVO.tailnet.internal', { all: true })) as [
      { address: string; family: number }[],
    ];
    expect(all.map((a) => a.family)).toEqual([4, 6]);
    expect(all.every((a) => isTailnetAddress(a.address))).toBe(true);
    const [v6] = (await lookup('bravo', { family: 6 })) as [string];
    expect(net.isIPv6(v6)).toBe(true);
    expect(await lookup('100.64.7.7', {})).toEqual(['100.64.7.7', 4]);
    await expect(lookup('nosuch', {})).rejects.toMatchObject({ code: 'ENOTFOUND', hostname: 'nosuch' });
    await expect(lookup('nosuch.tailnet.internal', {})).rejects.toThrow(/unknown tailnet host/);
    // Only with direct do other names go to the OS resolver; tailnet names never do.
    const direct = t.a.createNet({ direct: true });
    const os = await new Promise((r) => direct.lookup('localhost', { family: 4 }, (e, a) => r(e ?? a)));
    expect(os).toBe('127.0.0.1');
    await expect(
      new Promise((res, rej) =>
        direct.lookup('nosuch.tailnet.internal', {}, (e, a) => (e ? rej(e) : res(a))),
      ),
    ).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it("fails with the codes Node's clients handle, as 'error' events, never a throw or a hang", async () => {
    expect((await failure(t.a.net.connect(80, 'nosuch'))).code).toBe('ENOTFOUND');
    expect((await failure(t.a.net.connect(80, 'example.com'))).message).toMatch(/unknown tailnet host/);
    expect((await failure(t.a.net.connect(7001, 'bravo'))).code).toBe('ECONNREFUSED');
    // An address of the tailnet's range that no node has: no route, at once.
    const unrouted = await failure(t.a.net.connect(80, '100.100.100.100'));
    expect(unrouted.code).toBe('EHOSTUNREACH');
    expect(unrouted.message).toMatch(/100\.100\.100\.100:80/);
    expect((await failure(t.a.net.connect(80, '10.1.2.3'))).code).toBe('EHOSTUNREACH');
    expect(() => t.a.net.connect(70000, 'bravo')).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }),
    );
  });

  it('before up, a socket fails with a clear error event', async () => {
    const idle = new Tailnet({
      hostname: 'idle',
      controlURL: 'http://127.0.0.1:9',
      stateDir: '/nonexistent',
    });
    expect((await failure(new idle.net.Socket().connect(80, 'bravo'))).message).toMatch(/not up/);
    await idle.close();
  });

  it('direct: hosts that are not on the tailnet go through the OS; tailnet hosts still over the tailnet', async () => {
    const server = net.createServer((s) => s.end('from the OS'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const direct = t.a.createNet({ direct: true });
    const s = direct.connect(port, '127.0.0.1');
    expect(s).toBeInstanceOf(net.Socket);
    const got: Buffer[] = [];
    for await (const c of s) got.push(c as Buffer);
    expect(Buffer.concat(got).toString()).toBe('from the OS');
    const overTailnet = direct.connect(7000, 'bravo');
    expect(overTailnet).not.toBeInstanceOf(net.Socket);
    overTailnet.destroy();
    expect((await failure(t.a.net.connect(port, '127.0.0.1'))).code).toBe('EHOSTUNREACH');
    server.close();
  });

  it('createServer listens on a tailnet port; whois names each connection; the node closes it', async () => {
    const seen: string[] = [];
    const server = t.b.net.createServer((s) => {
      s.on('error', () => {}); // alpha closes (and resets what is left) when the file ends
      seen.push(t.b.whois(s)?.hostname ?? '?');
      s.end('hi');
    });
    server.listen({ port: 7100 });
    await once(server, 'listening');
    expect(server.address()?.port).toBe(7100);
    const s = t.a.net.connect(7100, 'bravo');
    const got: Buffer[] = [];
    for await (const c of s) got.push(c as Buffer);
    expect(Buffer.concat(got).toString()).toBe('hi');
    expect(seen).toEqual(['alpha']);
    server.close();
  });
});
