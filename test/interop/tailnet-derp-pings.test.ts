// A real tailscaled (v1.102.3) on our relay answers the liveness Pings the relay sends to clients that
// declare CanAckPings (magicsock sets it; derp_client.go answers every server Ping): with a keepalive every
// second and a pong deadline of a second, it stays connected for the whole test and is never closed.
import { afterEach, expect, it } from 'vitest';
import { DerpHttpServer } from '../../src/derp/http-server.js';
import { Rig } from '../control/helpers.js';
import { localDerpMap, missingPeers, Tailscaled } from './control-peers.js';
import { Cleanup, waitFor } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const cleanup = new Cleanup();
const rig = new Rig();
afterEach(async () => {
  await rig.cleanup();
  expect((await cleanup.run()).map((e) => e.message)).toEqual([]);
});

skipUnless(missingPeers(['tailscaled', 'tailscale']))('tailscaled and our relay’s liveness pings', () => {
  it('tailscaled answers them and is never closed for a late Pong', async () => {
    const relay = await DerpHttpServer.listen({
      port: 0,
      serverOptions: { keepAliveMs: 1000, pongTimeoutMs: 1000 },
    });
    cleanup.add('close relay', () => relay.close());
    const srv = await rig.server({ derpMap: localDerpMap(relay.port) });
    const ts = await Tailscaled.start(cleanup, 'pings');
    await ts.up(srv.url, await srv.createAuthKey(), 'ts-pings');
    await waitFor(
      'tailscaled on the relay',
      () => (relay.derp.clientKeyCount === 1 ? true : undefined),
      20_000,
      100,
    );
    const accepts = relay.derp.metrics.accepts;
    await new Promise((r) => setTimeout(r, 8000));
    expect(relay.derp.metrics.livenessPongs).toBeGreaterThanOrEqual(5);
    expect(relay.derp.metrics.pongTimeouts).toBe(0);
    expect(relay.derp.metrics.badInputCloses).toBe(0);
    expect(relay.derp.metrics.accepts).toBe(accepts); // the same connection all along
    expect(relay.derp.clientKeyCount).toBe(1);
    await ts.stop();
  }, 90_000);
});
