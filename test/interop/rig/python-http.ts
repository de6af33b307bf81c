// `python3 -m http.server` on a loopback port: a real static file server (no Range support: it
// answers 200 with the whole file), for tests whose files a tailscaled host serves.
import http from 'node:http';
import { freePort } from '../control-peers.js';
import { type Cleanup, spawnIn, waitFor } from './exec.js';

/** Serves `directory` on 127.0.0.1 until cleanup; resolves with the port once it answers. */
export async function pythonHttpServer(cleanup: Cleanup, directory: string): Promise<number> {
  const port = await freePort();
  const py = spawnIn(
    null,
    'python3',
    ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', directory],
    { cleanup },
  );
  await waitFor(
    'python http.server',
    () =>
      new Promise<true | undefined>((resolve) => {
        if (!py.isRunning()) throw new Error(`python3 -m http.server exited:\n${py.output()}`);
        http
          .get({ host: '127.0.0.1', port, path: '/' }, (res) => resolve(res.resume() && true))
          .on('error', () => resolve(undefined));
      }),
    20_000,
    100,
  );
  return port;
}
