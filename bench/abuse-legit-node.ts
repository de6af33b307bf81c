/**
 * Child process of the abuse bench: a legitimate node's view of one target (abuse-legit.ts), in a
 * process of its own so that what it measures is the server's delay, not the attacking
 * process's. It takes the target as JSON in argv[2] and answers the parent over IPC:
 * `{ cmd: 'sample', everyMs }` starts measuring, `stop` returns the measurements,
 * `fresh` whether a new client is served now, `close` ends it.
 */
import { controlLegit, derpLegit, sampleWhile } from './abuse-legit.js';
import type { Target } from './abuse-targets.js';

/** What the parent sends. */
export type LegitCommand = { cmd: 'sample'; everyMs: number } | { cmd: 'stop' | 'fresh' | 'close' };

const target = JSON.parse(process.argv[2]!) as Target;
const legit = target.kind === 'derp' ? await derpLegit(target) : await controlLegit(target);
let sampling: ReturnType<typeof sampleWhile> | undefined;
process.on('message', (m: LegitCommand) => {
  void (async () => {
    if (m.cmd === 'sample') {
      sampling = sampleWhile(legit, m.everyMs);
      process.send!({ ok: true });
    } else if (m.cmd === 'stop') {
      process.send!({ samples: (await sampling?.stop()) ?? [] });
      sampling = undefined;
    } else if (m.cmd === 'fresh') process.send!({ fresh: await legit.fresh() });
    else {
      await legit.close();
      process.exit(0);
    }
  })();
});
process.send!({ ready: true });
