// Proves the real-peer rig on its own: two wireguard-go peers in two namespaces reach each other through the
// tunnel. The same pair is the reference that benchmarks compare our device against.

import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execIn } from './rig/exec.js';
import { addIngressLoss, netnsList, sweepLeftovers, WG_RUN_DIR } from './rig/netns.js';
import { iperf3Tcp, startWireguardGoPair, type WireguardGoPair } from './rig/pair.js';
import { checkRequirements, skipUnless } from './rig/requirements.js';

const missing = checkRequirements([
  'root',
  'netns',
  'tun',
  'wireguard-go',
  'wg',
  'ip',
  'ping',
  'iperf3',
  'nft',
]);

skipUnless(missing)('wireguard-go pair (reference peers)', () => {
  let pair: WireguardGoPair | undefined;
  const get = (): WireguardGoPair => {
    if (pair === undefined) throw new Error('pair not started');
    return pair;
  };

  beforeAll(async () => {
    await sweepLeftovers();
    pair = await startWireguardGoPair();
  });

  afterAll(async () => {
    const errors = (await pair?.close()) ?? [];
    expect(errors.map((e) => e.message)).toEqual([]);
  });

  it('pings the inner IPv4 address both ways', async () => {
    const { a, b } = get();
    await execIn(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', b.inner4]);
    await execIn(b.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '3', a.inner4]);
  });

  it('pings the inner IPv6 address both ways', async () => {
    const { a, b } = get();
    await execIn(a.ns, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '3', b.inner6]);
    await execIn(b.ns, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '3', a.inner6]);
  });

  it('wg show reports a handshake and traffic in both directions', async () => {
    const { a, b } = get();
    for (const [me, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const peer = await me.wg.waitForHandshake(other.keys.publicKey);
      expect(peer.endpoint).toBe(`${other.underlay}:${other.listenPort}`);
      expect(peer.allowedIps.sort()).toEqual([`${other.inner4}/32`, `${other.inner6}/128`].sort());
      expect(peer.latestHandshake).toBeGreaterThan(0);
      expect(peer.rx).toBeGreaterThan(0);
      expect(peer.tx).toBeGreaterThan(0);
      const status = await me.wg.show();
      expect(status.publicKey).toBe(me.keys.publicKey);
      expect(status.listenPort).toBe(me.listenPort);
    }
  });

  it('carries iperf3 TCP through the tunnel (the benchmark reference)', async () => {
    const { a, b } = get();
    const res = await iperf3Tcp({ serverNs: b.ns, clientNs: a.ns, serverAddress: b.inner4, seconds: 2 });
    console.log(
      `[reference] wireguard-go pair, iperf3 TCP a->b: ${(res.bitsPerSecond / 1e6).toFixed(0)} Mbit/s`,
    );
    expect(res.bytes).toBeGreaterThan(0);
    expect(res.bitsPerSecond).toBeGreaterThan(1e6);
  });

  it('a second pair with underlay loss still gets through, and close() leaves nothing behind', async () => {
    const lossy = await startWireguardGoPair({ logLevel: 'error' });
    const { a, b } = lossy;
    const names = [a.ns, b.ns];
    const sockets = [a.wg.uapiPath, b.wg.uapiPath];
    const pids = [a.wg.process.pid, b.wg.process.pid];
    try {
      // Loss comes after the handshake: a lost handshake would cost a 5 s retry and make the test slow.
      await execIn(a.ns, 'ping', ['-c', '1', '-W', '2', b.inner4]);
      await addIngressLoss(a.ns, a.veth, 20, lossy.cleanup);
      await addIngressLoss(b.ns, b.veth, 20, lossy.cleanup);
      // 20% on each end drops ~36% of round trips: of 60 pings some come back and some do not.
      const res = await execIn(a.ns, 'ping', ['-c', '60', '-i', '0.02', '-W', '1', b.inner4], {
        check: false,
      });
      const received = Number(/(\d+) received/.exec(res.stdout)?.[1] ?? 0);
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(60);
    } finally {
      expect((await lossy.close()).map((e) => e.message)).toEqual([]);
    }
    const left = await netnsList();
    expect(names.filter((n) => left.includes(n))).toEqual([]);
    expect(sockets.filter((s) => existsSync(s))).toEqual([]);
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    expect(existsSync(WG_RUN_DIR)).toBe(true);
  });
});
