/**
 * Port forwarding between loopback and the tailnet, as `tailscale serve --tcp` (tailnet → a
 * local port) and a local listener that dials a peer (local port → tailnet) do it. Each
 * connection is a {@link splice}; its byte counts are logged when it ends.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { splice } from '../netstack/splice.js';
import type { Logger } from '../wireguard/logger.js';

/** Carries one accepted tailnet connection to `127.0.0.1:localPort`. */
export function relayToLocal(conn: Duplex, port: number, localPort: number, log: Logger): void {
  const local = net.connect(localPort, '127.0.0.1');
  splice(conn, local, (r) =>
    log.debug(`serve ${port}→${localPort}: ${r.aToB}/${r.bToA} bytes${r.error ? ` (${r.error})` : ''}`),
  );
}

/**
 * Listens on `127.0.0.1:localPort` (0: any) and carries each connection to `target` through
 * `dial`. Incoming bytes wait (paused) until the dial succeeds; a failed dial closes the
 * local connection.
 */
export async function listenForward(
  localPort: number,
  target: string,
  dial: () => Promise<Duplex>,
  log: Logger,
): Promise<net.Server> {
  const server = net.createServer((local) => {
    local.pause();
    dial().then(
      (remote) => {
        splice(local, remote, (r) => log.debug(`forward ${localPort}→${target}: ${r.aToB}/${r.bToA} bytes`));
        local.resume();
      },
      (err: Error) => {
        log.warn(`forward ${localPort}→${target}: ${err.message}`);
        local.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(localPort, '127.0.0.1', () => resolve());
  });
  return server;
}
