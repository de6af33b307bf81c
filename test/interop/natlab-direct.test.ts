// The NAT lab's easy case (issue 14, items 1, 2 and 7): two sites behind home-router NATs (rig/natlab.ts),
// Headscale with its DERP and STUN on the internet between them, and nodes that find their endpoints with
// STUN alone. First two real tailscaled prove the lab (a direct path through both NATs); then our node with
// tailscaled and with itself through the same NATs, and two nodes behind the same NAT by their LAN addresses.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectDirectThroughNats, expectTransfers, publicOf } from './natlab-expect.js';
import { Cleanup } from './rig/exec.js';
import type { Site } from './rig/natlab.js';
import type { LabNode, LabOurs, LabTailscaled } from './rig/natlab-nodes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';

/** Each way, per pair: the 50 MB, which takes a few seconds on a direct path. */
const MB_EACH_WAY = 50;

skipUnless(natlabMissing())('NAT lab: direct paths through two NATs', () => {
  const cleanup = new Cleanup();
  let t: TailnetLab;
  let siteA: Site;
  let siteB: Site;

  beforeAll(async () => {
    t = await TailnetLab.create(cleanup, MB_EACH_WAY);
    siteA = await t.lab.addSite('a');
    siteB = await t.lab.addSite('b');
  });

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  let tsA: LabTailscaled;
  let tsB: LabTailscaled;

  it('control case: two tailscaled behind their own NATs reach a direct path (tailscale ping --until-direct)', async () => {
    tsA = await t.tailscaled(siteA, 'ts-a');
    tsB = await t.tailscaled(siteB, 'ts-b');
    await tsA.meet(tsB);
    const r = await tsA.cli(['ping', '--until-direct', '-c', '30', '--timeout=5s', await tsB.ip()]);
    expect(r.stdout).toContain(`via ${publicOf(tsB.host, tsB.port)}`);
    await expectDirectThroughNats(tsA, tsB);
  });

  let qA: LabOurs;
  let qB: LabOurs;

  it('ours ↔ tailscaled: direct both ways to the public addresses; status and ping name them; 50 MB each way', async () => {
    qA = await t.ours(siteA, 'q-a');
    await qA.meet(tsB);
    await expectDirectThroughNats(qA, tsB);
    // What a user sees: `quackscale status` and `quackscale ping` name tailscaled's public address…
    const pub = publicOf(tsB.host, tsB.port);
    expect(await qA.cli(['status'])).toMatch(
      new RegExp(`ts-b\\s+online\\s+direct ${pub.replace(/\./g, '\\.')}`),
    );
    expect(await qA.cli(['ping', 'ts-b'])).toContain(`via ${pub} in`);
    // …and tailscaled's own status and ping name ours.
    expect((await tsB.peerStatus(qA))?.CurAddr).toBe(publicOf(qA.host, qA.port));
    expect(await tsB.ping(qA)).toBe(publicOf(qA.host, qA.port));
    await expectTransfers(t, qA, tsB, MB_EACH_WAY);
    expect(await qA.directAddr(tsB)).toBe(pub);
  });

  it('ours ↔ ours: direct both ways through both NATs; 50 MB each way', async () => {
    qB = await t.ours(siteB, 'q-b');
    await qA.meet(qB);
    await expectDirectThroughNats(qA, qB);
    await expectTransfers(t, qB, qA, MB_EACH_WAY);
    expect(await qB.directAddr(qA)).toBe(publicOf(qA.host, qA.port));
  });

  it('two nodes behind the same NAT find each other by their LAN addresses', async () => {
    // ts-a and q-a share site A's router, which does not hairpin: only their LAN endpoints connect them.
    const lan = (n: LabNode) => `${n.host.v4}:${n.port}`;
    await qA.meet(tsA);
    expect(await qA.waitDirect(tsA)).toBe(lan(tsA));
    expect(await tsA.waitDirect(qA)).toBe(lan(qA));
    const qA2 = await t.ours(siteA, 'q-a2');
    await qA2.meet(qA);
    expect(await qA2.waitDirect(qA)).toBe(lan(qA));
    expect(await qA.waitDirect(qA2)).toBe(lan(qA2));
    await expectTransfers(t, qA2, qA, 10);
    await expectTransfers(t, qA2, tsA, 10);
  });
});
