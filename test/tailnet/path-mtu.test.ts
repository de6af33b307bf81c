// Path MTU discovery between two of our nodes over real UDP on loopback (MTU 65,536): the
// probes raise the size toward the peer far above 1,420, the WireGuard datagrams on the wire
// grow with it, and 16 MB cross intact (length + sha256). With peerMtu off on either side the
// datagrams stay at the base size.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalTailnet, startLocalTailnet } from '../../src/tailnet/local.js';
import { MAX_INNER_MTU } from '../../src/tailnet/pmtu.js';
import { Tailnet } from '../../src/tailnet/tailnet.js';
import { echoed, hashReplyServer } from './net/helpers.js';

let dir: string;
let local: LocalTailnet;
const nodes: Tailnet[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qs-pmtu-'));
  local = await startLocalTailnet({ stateDir: join(dir, 'control') });
});
afterAll(async () => {
  for (const n of nodes) await n.close();
  await local?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function node(hostname: string, peerMtu?: boolean): Promise<Tailnet> {
  const tn = new Tailnet({
    hostname,
    controlURL: local.controlURL,
    authKey: await local.authKey(),
    stateDir: join(dir, hostname),
    endpoints: ['127.0.0.1:0'],
    ...(peerMtu === undefined ? {} : { peerMtu }),
  });
  nodes.push(tn);
  await tn.up();
  return tn;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Sends `data` from `a` to a hashing server on `b`; resolves with the server's `<length> <sha256>`. */
async function transfer(a: Tailnet, b: Tailnet, bName: string, port: number, data: Buffer): Promise<string> {
  await b.listen(port, hashReplyServer());
  return (await echoed(await a.dial(bName, port), data)).join(' ');
}

/** WireGuard datagrams `from` sent to `peer` on the direct path: bytes and packets (metrics). */
function directSent(from: Tailnet, peer: string): { bytes: number; packets: number } {
  const fam = from.metrics().families;
  const pick = (name: string) =>
    fam
      .find((f) => f.name === name)!
      .samples.find((s) => s.labels.peer === peer && s.labels.path === 'direct')?.value ?? 0;
  return {
    bytes: pick('quackscale_peer_sent_bytes_total'),
    packets: pick('quackscale_peer_sent_packets_total'),
  };
}

const digest = (d: Buffer) => `${d.length} ${createHash('sha256').update(d).digest('hex')}`;

describe('path MTU discovery between our nodes on loopback', () => {
  // The egress interface's MTU comes from Linux's /proc and /sys; elsewhere nothing is raised.
  it.skipIf(process.platform !== 'linux')(
    'raises the datagram size far above 1,420 and moves 16 MB intact',
    async () => {
      const a = await node('pmtu-a');
      const b = await node('pmtu-b');
      await until(() => a.peers().some((p) => p.hostname === 'pmtu-b'), 10_000, 'a to know b');
      // A first exchange makes the path direct; probes follow while data flows.
      const warm = randomBytes(64 * 1024);
      expect(await transfer(a, b, 'pmtu-b', 7001, warm)).toBe(digest(warm));
      const peer = () => a.peers().find((p) => p.hostname === 'pmtu-b')!;
      await until(() => peer().path.startsWith('direct'), 15_000, 'a direct path');
      // Keep a trickle of data flowing while the ladder is climbed.
      const trickle = setInterval(() => void a.ping('pmtu-b').catch(() => {}), 100);
      try {
        await until(() => peer().mtu === MAX_INNER_MTU, 15_000, 'the path MTU to reach its ceiling');
      } finally {
        clearInterval(trickle);
      }
      const before = directSent(a, 'pmtu-b');
      const data = randomBytes(16 << 20);
      expect(await transfer(a, b, 'pmtu-b', 7002, data)).toBe(digest(data));
      const after = directSent(a, 'pmtu-b');
      const mean = (after.bytes - before.bytes) / (after.packets - before.packets);
      // Segments of up to 65,472 − 52 bytes: the mean datagram is many times today's 1,452.
      expect(mean).toBeGreaterThan(8000);
      expect(peer().mtu).toBe(MAX_INNER_MTU);
    },
    90_000,
  );

  it('stays at 1,420 toward a node with peerMtu off, and moves data intact', async () => {
    const a = await node('pmtu-c');
    const b = await node('pmtu-d', false);
    await until(() => a.peers().some((p) => p.hostname === 'pmtu-d'), 10_000, 'c to know d');
    const warm = randomBytes(64 * 1024);
    expect(await transfer(a, b, 'pmtu-d', 7003, warm)).toBe(digest(warm));
    const peer = () => a.peers().find((p) => p.hostname === 'pmtu-d')!;
    await until(() => peer().path.startsWith('direct'), 15_000, 'a direct path');
    const before = directSent(a, 'pmtu-d');
    const data = randomBytes(4 << 20);
    expect(await transfer(a, b, 'pmtu-d', 7004, data)).toBe(digest(data));
    const after = directSent(a, 'pmtu-d');
    const mean = (after.bytes - before.bytes) / (after.packets - before.packets);
    expect(mean).toBeLessThanOrEqual(1420 + 32);
    expect(peer().mtu).toBe(1420);
    // And d, with PMTUD off, sends at most 1,452-byte datagrams to c.
    const back = randomBytes(1 << 20);
    const d0 = directSent(b, 'pmtu-c');
    expect(await transfer(b, a, 'pmtu-c', 7005, back)).toBe(digest(back));
    const d1 = directSent(b, 'pmtu-c');
    expect((d1.bytes - d0.bytes) / (d1.packets - d0.packets)).toBeLessThanOrEqual(1452);
  }, 90_000);
});
