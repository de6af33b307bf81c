// Our relay under abuse beside the real derper, each with its defaults, asserting the same observable
// deadlines: silent connections and requests that trickle in are closed at 30 s by both (derper: Go's
// http.Server ReadTimeout, cmd/derper/derper.go; ours: the request deadline), a logged-in client that
// sends nothing is kept by both, and a frame declaring 2 GB closes its connection at once. Where the two
// differ by design, the test pins the difference: derper takes every login from one address, ours
// refuses those over its per-source rate (docs/server-limits.md).
import { afterEach, describe, expect, it } from 'vitest';
import {
  derpHandshake,
  handshakes,
  oversizedFrames,
  silent,
  slowHeaders,
} from '../../bench/abuse-attacks.js';
import type { Target } from '../../bench/abuse-targets.js';
import { DerpClient } from '../../src/derp/client.js';
import { DerpHttpServer } from '../../src/derp/http-server.js';
import { generateNodeKeyPair } from '../../src/derp/keys.js';
import { expectShedAt30s } from './abuse-expect.js';
import { DERPER, missingBinaries, startDerper } from './derp-rig.js';
import { Cleanup } from './rig/exec.js';
import { skipUnless } from './rig/requirements.js';

const missing = missingBinaries([DERPER]);
let cleanup = new Cleanup();
afterEach(async () => {
  const errors = await cleanup.run();
  cleanup = new Cleanup();
  expect(errors.map((e) => e.message)).toEqual([]);
});

const target = (name: string, ours: boolean, port: number): Target => ({
  kind: 'derp',
  name,
  ours,
  port,
  url: `http://127.0.0.1:${port}/derp`,
  pid: process.pid,
  authKey: '',
  isRunning: () => true,
});

const servers: Array<[string, () => Promise<Target>]> = [
  ['derper', async () => target('derper', false, (await startDerper(cleanup)).port)],
  [
    'ours',
    async () => {
      const s = await DerpHttpServer.listen({ port: 0 });
      cleanup.add('close our relay', () => s.close());
      return target('ours', true, s.port);
    },
  ],
];

skipUnless(missing)('derper and our relay under abuse', () => {
  for (const [name, start] of servers) {
    describe(name, () => {
      it('silent and trickling connections are closed at 30 s; an idle logged-in client stays', async () => {
        const t = await start();
        const idle = await DerpClient.connect({ url: t.url, privateKey: generateNodeKeyPair().privateKey });
        cleanup.add('close idle client', () => idle.close());
        const [quiet, slow] = await Promise.all([
          silent(t, 50, '127.0.0.2', 40_000),
          slowHeaders(t, 50, '127.0.0.3', 40_000),
        ]);
        expectShedAt30s([quiet, slow], 50);
        expect(await idle.ping()).toBeGreaterThan(0);
      }, 90_000);

      it('a frame declaring 2 GB, before or after login, closes its connection at once', async () => {
        const t = await start();
        const o = await oversizedFrames(t, 20, '127.0.0.5');
        expect([o.attempts, o.refused, o.stillOpen]).toEqual([20, 20, 0]);
      });

      it(`logins from one address: ${name === 'ours' ? 'over the burst of 40 refused' : 'all taken'}`, async () => {
        const t = await start();
        const o = await handshakes(await derpHandshake(t), 200, 0.5, ['127.0.0.4']);
        expect(o.attempts).toBeGreaterThanOrEqual(90);
        if (name === 'derper') expect(o.completed).toBe(o.attempts);
        // A burst of 40 and 20 more a second: about 50 in half a second.
        else expect(o.completed).toBeGreaterThanOrEqual(35);
        if (name === 'ours') expect(o.completed).toBeLessThanOrEqual(55);
      });
    });
  }
});
