// ts2021 over WebSocket (controlhttp client_js.go's way, a web page's only way) against a real Headscale: a
// client on the WebSocket and one on the HTTP upgrade log in and see each other in their netmaps.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { fetchServerKeyWeb } from '../../src/control/ws-dial.js';
import { Headscale, missingPeers } from './control-peers.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

skipUnless(missingPeers(['headscale']))('ts2021 over WebSocket ↔ Headscale', () => {
  const cleanup = new Cleanup();
  let hs: Headscale;
  let key = '';
  afterAll(async () => {
    expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
  });
  beforeAll(async () => {
    hs = await Headscale.start(cleanup);
    key = await hs.createKey(await hs.createUser('web'), { reusable: true });
  });

  async function client(hostname: string, websocket: boolean, controlKey?: string): Promise<ControlClient> {
    const dir = await mkdtemp(join(tmpdir(), 'qs-wsc-'));
    cleanup.add(`rm ${dir}`, () => rm(dir, { recursive: true, force: true }));
    const c = await ControlClient.open({
      serverURL: hs.url,
      stateDir: dir,
      hostname,
      authKey: key,
      websocket,
      controlKey,
    });
    cleanup.add(`close ${hostname}`, () => c.close());
    await c.login();
    c.start();
    return c;
  }

  it('a WebSocket client (server key given, as a page would) and an HTTP-upgrade client see each other', async () => {
    // Headscale sends no CORS headers on /key: a page gets the key some other way and passes it in.
    const controlKey = (await fetchServerKeyWeb(hs.url, 100)).toString();
    const page = await client('page', true, controlKey);
    const host = await client('host', false);
    const nm = await page.waitForNetmap(
      (m) => [...m.peers.values()].some((p) => p.name.startsWith('host.')),
      20_000,
    );
    expect(nm.self.addresses[0]).toMatch(/^100\.64\./);
    const other = await host.waitForNetmap(
      (m) => [...m.peers.values()].some((p) => p.name.startsWith('page.')),
      20_000,
    );
    expect([...other.peers.values()].find((p) => p.name.startsWith('page.'))!.nodeKey).toBe(
      page.nodeKey!.toString(),
    );
    const res = await fetch(`${hs.url}/key?v=100`, { headers: { origin: 'http://page.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
