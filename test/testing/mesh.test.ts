// createTestMesh: our real magicsock, WireGuard and IP stack across in-memory NATs. Behind two easy NATs
// the nodes punch a direct path to each other's public endpoint (found by STUN through their own NAT), and
// a TCP transfer through a lossy link arrives intact; a hard NAT on one side leaves them on the relay, as
// the NAT lab shows with tailscaled; with UDP blocked, the relay carries everything.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpServer } from '../../src/netstack/tcp/server.js';
import { tcpConnect } from '../../src/netstack/tcp/socket.js';
import { createTestMesh, type TestMesh } from '../../src/testing/index.js';

let mesh: TestMesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

/** Disco-pings `from` → `to` until the path is direct (or `ms` pass); the last path. */
async function settle(m: TestMesh, from: string, to: string, ms: number): Promise<string> {
  const a = m.nodes.get(from)!;
  const b = m.nodes.get(to)!;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await a.magicsock.ping(b.nodeKey);
    if (m.path(from, to).startsWith('direct')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return m.path(from, to);
}

/** Sends `n` random bytes from `from` to an echo-less sink on `to` over TCP; the digest both sides saw. */
async function transfer(m: TestMesh, from: string, to: string, n: number): Promise<[string, string]> {
  const dst = m.nodes.get(to)!;
  const data = randomBytes(n);
  const received = new Promise<string>((resolve) => {
    new TcpServer(dst.tcp, {}, (s) => {
      const h = createHash('sha256');
      s.on('data', (d: Buffer) => h.update(d));
      s.on('end', () => resolve(h.digest('hex')));
    }).listen(7000);
  });
  const sock = tcpConnect(m.nodes.get(from)!.tcp, { host: dst.address, port: 7000 });
  sock.end(data);
  return [createHash('sha256').update(data).digest('hex'), await received];
}

describe('createTestMesh', () => {
  it('two easy NATs: a direct path to the public endpoints STUN found; 2 MB intact through 2% loss', async () => {
    mesh = await createTestMesh({
      seed: 11,
      nodes: [
        { name: 'a', link: { loss: 0.02, delayMs: 2 } },
        { name: 'b', link: { delayMs: 3 } },
      ],
    });
    const a = mesh.nodes.get('a')!;
    const b = mesh.nodes.get('b')!;
    expect(a.endpoints).toEqual(['192.168.1.10:41641', '203.0.113.11:41641']);
    expect(b.endpoints).toEqual(['192.168.2.10:41641', '203.0.113.12:41641']);
    expect(await settle(mesh, 'a', 'b', 10_000)).toBe('direct 203.0.113.12:41641');
    expect(await settle(mesh, 'b', 'a', 10_000)).toBe('direct 203.0.113.11:41641');
    const [sent, got] = await transfer(mesh, 'a', 'b', 2 * 1024 * 1024);
    expect(got).toBe(sent);
    // The loss was real: a's link dropped datagrams, and TCP made up for them.
    expect(mesh.net.log.filter((r) => r.verdict === 'lost').length).toBeGreaterThan(10);
  });

  it('a hard NAT on one side: disco cannot punch through, the relay carries the transfer', async () => {
    mesh = await createTestMesh({ seed: 12, nodes: [{ name: 'h', nat: 'hard' }, { name: 'e' }] });
    const h = mesh.nodes.get('h')!;
    // STUN saw a port the NAT chose (a new one per destination): not the node's own.
    expect(h.endpoints[1]).toMatch(/^203\.0\.113\.11:\d+$/);
    expect(h.endpoints[1]).not.toBe('203.0.113.11:41641');
    expect(await settle(mesh, 'h', 'e', 4000)).toBe('derp');
    expect(await settle(mesh, 'e', 'h', 2000)).toBe('derp');
    expect(mesh.net.log.some((r) => r.verdict === 'filtered')).toBe(true);
    const [sent, got] = await transfer(mesh, 'h', 'e', 256 * 1024);
    expect(got).toBe(sent);
  });

  it("UDP blocked on one node's link: no endpoint but its LAN one, and the relay carries everything", async () => {
    mesh = await createTestMesh({
      seed: 13,
      nodes: [
        { name: 'u', link: { udpBlocked: true } },
        { name: 'o', nat: 'none' },
      ],
    });
    expect(mesh.nodes.get('u')!.endpoints).toEqual(['192.168.1.10:41641']);
    expect(await settle(mesh, 'o', 'u', 2000)).toBe('derp');
    const [sent, got] = await transfer(mesh, 'o', 'u', 128 * 1024);
    expect(got).toBe(sent);
  });

  it('rejects a mesh it cannot build', async () => {
    await expect(createTestMesh({ nodes: [{ name: 'x' }, { name: 'x' }] })).rejects.toThrow(
      /names must differ/,
    );
    await expect(createTestMesh({ nodes: [{ name: 'x', link: { loss: 2 } }] })).rejects.toThrow(
      /host x: loss 2/,
    );
  });
});
