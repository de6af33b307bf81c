// Two of our tailnet nodes on a real Headscale with a real derper: they start on DERP, reach each other
// over WireGuard (ICMP through our stack), and disco upgrades them to the direct UDP path.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Tailnet, type TailnetOptions } from '../../src/tailnet/tailnet.js';
import { Derper, freePort, Headscale, missingPeers } from './control-peers.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

skipUnless(missingPeers(['headscale', 'derper']))('tailnet nodes on Headscale + derper', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let key = '';
  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });
  beforeAll(async () => {
    const derper = await Derper.start(cleanup);
    hs = await Headscale.start(cleanup, { derpPort: derper.port });
    key = await hs.createKey(await hs.createUser('alice'), { reusable: true });
  });

  /** A node advertising only its loopback endpoint: tests send nothing beyond 127.0.0.1. */
  async function node(hostname: string, extra: Partial<TailnetOptions> = {}): Promise<Tailnet> {
    const port = await freePort();
    const tn = new Tailnet({
      hostname,
      controlURL: hs.url,
      authKey: key,
      stateDir: mkdtempSync(join(tmpdir(), 'qs-tn-')),
      derpHttp: true,
      port,
      endpoints: [`127.0.0.1:${port}`],
      ...extra,
    });
    cleanup.add(`close ${hostname}`, () => tn.close());
    await tn.up();
    return tn;
  }

  it('ping over DERP only, then a direct path after disco', async () => {
    const a = await node('alpha');
    const b = await node('bravo', { derpOnly: true });
    const bIp = b.status().self.addresses[0]!;
    expect(bIp).toMatch(/^100\.64\./);
    await a.up(); // idempotent
    // B never uses direct UDP: everything between them rides the derper.
    const r = await a.stack!.ping(bIp, { size: 1000, timeoutMs: 8000 });
    expect(r.from).toBe(bIp);
    expect(a.status().peers.find((p) => p.hostname === 'bravo')!.path).toBe('derp local');
    const c = await node('charlie');
    await c.stack!.ping(a.status().self.addresses[0]!, { timeoutMs: 8000 });
    const p = await c.ping('alpha');
    expect(p.node).toBe('alpha');
    // After a disco pong on the loopback endpoint the path is direct.
    await new Promise((res) => setTimeout(res, 500));
    const st = c.status().peers.find((x) => x.hostname === 'alpha')!;
    expect(st.path).toMatch(/^direct 127\.0\.0\.1:\d+$/);
    expect(st.lastHandshake).toBeDefined();
    expect(st.rxBytes).toBeGreaterThan(0);
    expect((await c.ping('alpha.tailnet.test')).via).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(c.ping('nobody')).rejects.toThrow(/unknown tailnet host 'nobody'/);
  });
});
