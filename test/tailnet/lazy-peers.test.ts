// Lazy WireGuard peer configuration on real nodes (embedded tailnet): netmap peers cost nothing
// until traffic; the first packet out or the first initiation in configures them; netmap
// removals and key changes reach configured and unconfigured peers alike.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** Polls `f` until it returns true (netmap deltas arrive asynchronously). */
async function until(what: string, f: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lazy WireGuard peers on tailnet nodes', () => {
  let local: LocalTailnet;
  const nodes: Tailnet[] = [];

  beforeAll(async () => {
    local = await startLocalTailnet({ stateDir: tmp('qs-lazy-') });
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
    await local.close();
  });

  async function node(
    hostname: string,
    o: { stateDir?: string; ephemeral?: boolean } = {},
  ): Promise<Tailnet> {
    const tn = new Tailnet({
      hostname,
      controlURL: local.controlURL,
      authKey: await local.authKey({ ephemeral: o.ephemeral }),
      stateDir: o.stateDir ?? tmp('qs-lazy-node-'),
      endpoints: [],
    });
    nodes.push(tn);
    await tn.up();
    return tn;
  }

  /** Sends `n` random bytes from `from` to `to`'s sink on tailnet port 7000; checks length + sha256. */
  async function send(from: Tailnet, to: Tailnet, host: string, n = 256 * 1024): Promise<void> {
    const srv = await to.listen(7000).catch(() => undefined);
    srv?.on('connection', (s) => {
      const h = createHash('sha256');
      let len = 0;
      s.on('data', (d: Buffer) => {
        h.update(d);
        len += d.length;
      });
      s.on('end', () => s.end(`${len} ${h.digest('hex')}`));
    });
    const data = randomBytes(n);
    const sock = await from.dial(host, 7000);
    let reply = '';
    sock.on('data', (d) => (reply += d));
    await new Promise((r) => {
      sock.on('close', r);
      sock.end(data);
    });
    expect(reply).toBe(`${n} ${createHash('sha256').update(data).digest('hex')}`);
  }

  const peer = (tn: Tailnet, hostname: string) => tn.status().peers.find((p) => p.hostname === hostname);

  it('configures on the first outbound packet (dialer) and the first inbound initiation (listener)', async () => {
    const a = await node('lazy-a');
    const b = await node('lazy-b');
    await until('a sees b', () => peer(a, 'lazy-b') !== undefined);
    await until('b sees a', () => peer(b, 'lazy-a') !== undefined);
    expect(peer(a, 'lazy-b')?.configured).toBe(false);
    expect(peer(b, 'lazy-a')?.configured).toBe(false);
    expect(a.status().wireguardPeers).toEqual({ configured: 0, lazy: 1 });
    await send(a, b, 'lazy-b');
    expect(peer(a, 'lazy-b')?.configured).toBe(true);
    expect(peer(b, 'lazy-a')?.configured).toBe(true);
    expect(peer(a, 'lazy-b')?.lastHandshake).toBeDefined();
  });

  it('a peer removed from the netmap is unconfigured (configured or lazy alike)', async () => {
    const a = nodes[0]!;
    const gone = await node('lazy-gone', { ephemeral: true });
    const idle = await node('lazy-idle', { ephemeral: true });
    await until(
      'a sees both',
      () => peer(a, 'lazy-gone') !== undefined && peer(a, 'lazy-idle') !== undefined,
    );
    await send(a, gone, 'lazy-gone');
    expect(peer(a, 'lazy-gone')?.configured).toBe(true);
    expect(peer(a, 'lazy-idle')?.configured).toBe(false);
    const before = a.status().wireguardPeers;
    // Logging out an ephemeral node deletes it: both leave A's netmap, and A's WireGuard.
    await gone.logout();
    await idle.logout();
    await until('both gone', () => !peer(a, 'lazy-gone') && !peer(a, 'lazy-idle'));
    expect(a.status().wireguardPeers).toEqual({
      configured: before.configured - 1,
      lazy: before.lazy - 1,
    });
  });

  it('a key change drops the configured peer; the new key is configured on first traffic', async () => {
    const a = nodes[0]!;
    const dir = tmp('qs-lazy-rekey-');
    const first = await node('lazy-rekey', { stateDir: dir });
    await until('a sees it', () => peer(a, 'lazy-rekey') !== undefined);
    await send(a, first, 'lazy-rekey');
    expect(peer(a, 'lazy-rekey')?.configured).toBe(true);
    const counts = a.status().wireguardPeers;
    // Logout forgets the node key; the same machine logs in again with a new one and keeps its address.
    const addr = first.status().self.addresses;
    await first.logout();
    const again = await node('lazy-rekey', { stateDir: dir });
    expect(again.status().self.addresses).toEqual(addr);
    await until('a sees the new key', () => peer(a, 'lazy-rekey')?.configured === false);
    expect(a.status().wireguardPeers).toEqual({ configured: counts.configured - 1, lazy: counts.lazy + 1 });
    await send(a, again, 'lazy-rekey');
    expect(peer(a, 'lazy-rekey')?.configured).toBe(true);
    expect(a.status().wireguardPeers).toEqual(counts);
  });
});
