// The NAT lab's hard cases (issue 14, items 3 and 4). A hard NAT (masquerade with random ports: a new
// mapping for every destination) on one side: two real tailscaled show where a pair ends up there, and
// ours, with tailscaled and with itself, must end up no worse. A site whose router drops all UDP: DERP
// carries everything, and once UDP is allowed again every pair upgrades to a direct path; how long that
// takes is printed next to tailscaled's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectTransfers, publicOf } from './natlab-expect.js';
import { Cleanup } from './rig/exec.js';
import type { Site } from './rig/natlab.js';
import type { LabNode, LabOurs, LabTailscaled } from './rig/natlab-nodes.js';
import { natlabMissing, TailnetLab } from './rig/natlab-tailnet.js';
import { skipUnless } from './rig/requirements.js';

/** Transfers here go over DERP too, which is slower than a direct path: 20 MB each way. */
const MB = 20;
/** How long a pair is given to find a direct path before it counts as relayed. */
const TRY_DIRECT_MS = 20_000;

skipUnless(natlabMissing())('NAT lab: hard NAT, UDP blocked and unblocked', () => {
  const cleanup = new Cleanup();
  let t: TailnetLab;
  let easy: Site;
  let tsB: LabTailscaled;
  let qB: LabOurs;

  beforeAll(async () => {
    t = await TailnetLab.create(cleanup, MB);
    easy = await t.lab.addSite('b');
    tsB = await t.tailscaled(easy, 'ts-b');
    qB = await t.ours(easy, 'q-b');
  });

  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });

  /** Where `a`'s packets to `b` go after TRY_DIRECT_MS of trying: a direct address, or 'derp'. */
  async function outcome(a: LabNode, b: LabNode): Promise<string> {
    await a.meet(b);
    return a.waitDirect(b, TRY_DIRECT_MS).catch(() => 'derp');
  }

  describe('hard NAT on one side', () => {
    let hard: Site;
    let tsH: LabTailscaled;
    let qH: LabOurs;

    beforeAll(async () => {
      hard = await t.lab.addSite('h', { nat: 'hard' });
      tsH = await t.tailscaled(hard, 'ts-h');
      qH = await t.ours(hard, 'q-h');
    });

    it('ours ends where tailscaled ends, never worse, and the transfers are intact', async () => {
      // All four pairs try at once: the reference pair and ours on either side and on both.
      const pairs: Array<[LabNode, LabNode]> = [
        [tsH, tsB],
        [qH, tsB],
        [tsH, qB],
        [qH, qB],
      ];
      // Both directions of every pair at once, so the whole comparison takes TRY_DIRECT_MS.
      const [ends, reverse] = await Promise.all([
        Promise.all(pairs.map(([a, b]) => outcome(a, b))),
        Promise.all(pairs.map(([a, b]) => outcome(b, a))),
      ]);
      const text = pairs.map(([a, b], i) => `${a.name}→${b.name} ${ends[i]}, back ${reverse[i]}`);
      console.log(`[natlab] hard NAT: ${text.join('; ')}`);
      const reference = { there: ends[0]!, back: reverse[0]! };
      for (const [i, [a, b]] of pairs.entries()) {
        // Never worse: where tailscaled went direct, so do we (to the same kind of address).
        if (reference.there !== 'derp')
          expect(ends[i], `${a.name} → ${b.name}`).toBe(publicOf(b.host, b.port));
        if (reference.back !== 'derp') expect(reverse[i], `${b.name} → ${a.name}`).not.toBe('derp');
      }
      await expectTransfers(t, qH, tsB, MB);
      await expectTransfers(t, tsH, qB, MB);
      await expectTransfers(t, qH, qB, MB);
    });
  });

  describe('UDP blocked at one router, then allowed again', () => {
    let blocked: Site;
    let tsU: LabTailscaled;
    let qU: LabOurs;

    beforeAll(async () => {
      blocked = await t.lab.addSite('u');
      await t.lab.setUdpBlocked(blocked, 'all');
      tsU = await t.tailscaled(blocked, 'ts-u');
      qU = await t.ours(blocked, 'q-u');
    });

    it('blocked: everything goes over DERP, intact', async () => {
      for (const [a, b] of [
        [tsU, tsB],
        [qU, tsB],
        [qU, qB],
      ] as const) {
        await a.meet(b);
        expect(await a.ping(b)).toBe('DERP(lab)');
      }
      await expectTransfers(t, qU, tsB, MB);
      await expectTransfers(t, tsB, qU, MB);
      await expectTransfers(t, qU, qB, MB);
      expect(await qU.directAddr(tsB)).toBeUndefined();
      expect(await tsB.directAddr(qU)).toBeUndefined();
    });

    it('unblocked: every pair upgrades to a direct path through the NAT', async () => {
      await t.lab.setUdpBlocked(blocked, 'none');
      const t0 = performance.now();
      const pairs: Array<[LabNode, LabNode]> = [
        [tsU, tsB],
        [qU, tsB],
        [qU, qB],
      ];
      const times = await Promise.all(
        pairs.map(async ([a, b]) => {
          expect(await a.waitDirect(b, 60_000)).toBe(publicOf(b.host, b.port));
          return Math.round(performance.now() - t0);
        }),
      );
      console.log(
        `[natlab] UDP unblocked → direct: ${pairs.map(([a, b], i) => `${a.name}→${b.name} ${times[i]} ms`).join(', ')}`,
      );
      expect(await tsB.waitDirect(qU)).toBe(publicOf(qU.host, qU.port));
      await expectTransfers(t, qU, tsB, MB);
    });
  });
});
